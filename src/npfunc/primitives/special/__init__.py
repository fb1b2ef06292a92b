"""``scipy.special``: elementwise special functions, the incomplete gamma and
beta families, logsumexp and softmax, Bessel functions."""
from . import functions, logsumexp, incomplete, bessel, gamma_zeta, integrals, boxcox, inverses, hypergeometric, harmonics, twin_hints  # noqa: F401
