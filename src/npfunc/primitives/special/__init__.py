"""``scipy.special``: elementwise special functions, the incomplete gamma and
beta families, logsumexp and softmax, Bessel functions, zeta, exponential and
trigonometric integrals, complete elliptic integrals, hypergeometric functions, Box-Cox, spherical harmonics."""
from . import functions, logsumexp, incomplete  # noqa: F401
from . import bessel, gamma_zeta, integrals, elliptic, boxcox, inverses, hypergeometric, harmonics  # noqa: F401
from . import twin_hints  # noqa: F401
