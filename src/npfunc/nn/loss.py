"""Loss modules: thin wrappers of the losses in ``npfunc.nn.functional``
(``reduction=`` validated when the module is built)."""
from __future__ import annotations

from . import functional as F
from .activation import _configured


def _loss(name: str, fn, **defaults):
    def forward(self, input, target):
        return fn(input, target, **{k: getattr(self, k) for k in defaults})

    def extra_repr(self):
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in defaults
                         if getattr(self, k) is not defaults[k] and getattr(self, k) != defaults[k]
                         and not hasattr(getattr(self, k), "shape"))

    return _configured("Loss", name, fn, defaults, forward, extra_repr)


MSELoss = _loss("MSELoss", F.mse_loss, reduction="mean")
L1Loss = _loss("L1Loss", F.l1_loss, reduction="mean")
SmoothL1Loss = _loss("SmoothL1Loss", F.smooth_l1_loss, reduction="mean", beta=1.0)
HuberLoss = _loss("HuberLoss", F.huber_loss, reduction="mean", delta=1.0)
CrossEntropyLoss = _loss("CrossEntropyLoss", F.cross_entropy, weight=None, ignore_index=-100,
                         reduction="mean", label_smoothing=0.0)
NLLLoss = _loss("NLLLoss", F.nll_loss, weight=None, ignore_index=-100, reduction="mean")
BCELoss = _loss("BCELoss", F.binary_cross_entropy, weight=None, reduction="mean")
BCEWithLogitsLoss = _loss("BCEWithLogitsLoss", F.binary_cross_entropy_with_logits, weight=None,
                          reduction="mean", pos_weight=None)
KLDivLoss = _loss("KLDivLoss", F.kl_div, reduction="mean", log_target=False)
