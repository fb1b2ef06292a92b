"""``scipy.special``: elementwise special functions, the incomplete gamma and
beta families, logsumexp and softmax."""
from . import functions, logsumexp, incomplete  # noqa: F401
