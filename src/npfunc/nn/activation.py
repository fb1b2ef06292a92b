"""Activation modules: thin, configurable wrappers of ``npfunc.nn.functional``.

Each class takes its function's options positionally or by name, as torch's
(``nn.LeakyReLU(0.2)``, ``nn.Softmax(dim=1)``).
"""
from __future__ import annotations

from . import functional as F
from .module import Module, ModuleError


def _configured(kind: str, name: str, fn, defaults: dict, forward, extra_repr):
    """A Module class whose constructor takes ``defaults`` (positionally or by name)."""
    order = list(defaults)

    def __init__(self, *args, **kwargs):
        Module.__init__(self)
        if len(args) > len(order):
            raise TypeError(f"{name}() takes at most {len(order)} positional arguments ({', '.join(order)}), "
                            f"got {len(args)}")
        given = dict(zip(order, args))
        unknown = sorted(set(kwargs) - set(order))
        if unknown:
            raise TypeError(f"{name}(): unexpected arguments {unknown}; it accepts {order}")
        clash = sorted(set(given) & set(kwargs))
        if clash:
            raise TypeError(f"{name}(): {clash} given both positionally and by name")
        values = {**defaults, **given, **kwargs}
        if "reduction" in values and values["reduction"] not in F.REDUCTIONS + (("batchmean",) if fn is F.kl_div
                                                                               else ()):
            raise ModuleError(f"{name}: reduction must be one of {F.REDUCTIONS}, got {values['reduction']!r}")
        for key, value in values.items():
            object.__setattr__(self, key, value)

    doc = f"{kind} module form of ``npfunc.nn.functional.{fn.__name__}`` (arguments: {', '.join(order) or 'none'})."
    return type(name, (Module,), {"__init__": __init__, "forward": forward, "extra_repr": extra_repr,
                                  "__doc__": doc, "__module__": "npfunc.nn"})


def _activation(name: str, fn, **defaults):
    def forward(self, x):
        return fn(x, **{k: getattr(self, k) for k in defaults})

    def extra_repr(self):
        return ", ".join(f"{k}={getattr(self, k)}" for k in defaults)

    return _configured("Activation", name, fn, defaults, forward, extra_repr)


ReLU = _activation("ReLU", F.relu)
ReLU6 = _activation("ReLU6", F.relu6)
LeakyReLU = _activation("LeakyReLU", F.leaky_relu, negative_slope=0.01)
ELU = _activation("ELU", F.elu, alpha=1.0)
Hardtanh = _activation("Hardtanh", F.hardtanh, min_val=-1.0, max_val=1.0)
GELU = _activation("GELU", F.gelu, approximate="none")
SiLU = _activation("SiLU", F.silu)
Mish = _activation("Mish", F.mish)
Tanh = _activation("Tanh", F.tanh)
Sigmoid = _activation("Sigmoid", F.sigmoid)
LogSigmoid = _activation("LogSigmoid", F.logsigmoid)
Softsign = _activation("Softsign", F.softsign)
Softplus = _activation("Softplus", F.softplus, beta=1.0, threshold=20.0)
Softmax = _activation("Softmax", F.softmax, dim=-1)
LogSoftmax = _activation("LogSoftmax", F.log_softmax, dim=-1)


