"""Forward mode: each traced value carries a tangent alongside its primal."""
from __future__ import annotations

import numpy as np

from ..core.context import Interpreter
from ..core.debug import FLAGS, NAN_CHECKS
from ..core.primitive import Primitive
from ..core.tracer import PrimalTracer, Tracer
from ..core.values import is_inexact
from ..core.zeros import zero


class JVPTracer(PrimalTracer):
    __slots__ = ("tangent",)

    def __init__(self, interp: "JVPInterpreter", primal, tangent) -> None:
        self._interp = interp
        self.primal = primal
        self.tangent = tangent


class JVPInterpreter(Interpreter):
    """Runs each primitive on the primals (one level down) and its JVP rule
    on the tangents.  A primitive whose tangents are all symbolic zeros never
    reaches this interpreter: its arguments are not this level's tracers."""

    __slots__ = ()
    watch_refusals = True

    def process(self, prim, args, params):
        if len(args) == 1:  # the argument is this level's tracer: bind chose this level for it
            arg = args[0]
            primal = arg.primal
            primals = (primal,)
            tangents = (arg.tangent,)
            plain = type(prim) is Primitive and not isinstance(primal, Tracer)
            independent = tangents[0] is zero
        elif len(args) == 2:  # binary arithmetic: no loop
            x, y = args
            plain = type(prim) is Primitive
            if type(x) is JVPTracer and x._interp is self:
                px, tx = x.primal, x.tangent
            else:
                px, tx = x, zero
            if type(y) is JVPTracer and y._interp is self:
                py, ty = y.primal, y.tangent
            else:
                py, ty = y, zero
            if plain and (isinstance(px, Tracer) or isinstance(py, Tracer)):
                plain = False
            primals, tangents = (px, py), (tx, ty)
            independent = tx is zero and ty is zero
        else:
            primals = list(args)
            tangents = [zero] * len(args)
            plain = type(prim) is Primitive  # and no primal is traced: prim.bind is prim.impl
            i = 0
            for arg in args:
                if type(arg) is JVPTracer and arg._interp is self:
                    primal = primals[i] = arg.primal
                    tangents[i] = arg.tangent
                    if plain and isinstance(primal, Tracer):
                        plain = False
                elif plain and isinstance(arg, Tracer):
                    plain = False
                i += 1
            independent = all(t is zero for t in tangents)  # e.g. lifted integer constants
        if plain and not (NAN_CHECKS[0] and FLAGS.nans):
            out = prim.impl(*primals, **params) if params else prim.impl(*primals)
        else:
            out = prim.bind(*primals, **params)
        if independent or not prim.differentiable:
            return out
        tangent_out = prim.jvp(primals, tangents, out, **params)
        if prim.multiple_results:
            return tuple(self.wrap(o, t) for o, t in zip(out, tangent_out))
        if tangent_out is zero:
            return out
        tout = type(out)
        if tout is np.float64 or (out.dtype.kind in "fc" if tout is np.ndarray else is_inexact(out)):
            return JVPTracer(self, out, tangent_out)
        return out

    def known(self, prim, args, params, out):
        """What ``process`` returns for ``prim(*args)`` when its primal output
        ``out`` is already known (computed by a level below that recorded it):
        the JVP rule runs, the primitive does not (see api/tape_replay.py)."""
        primals, tangents = list(args), [zero] * len(args)
        for i, arg in enumerate(args):
            if type(arg) is JVPTracer and arg._interp is self:
                primals[i], tangents[i] = arg.primal, arg.tangent
        if not prim.differentiable or all(t is zero for t in tangents):
            return out
        tangent_out = prim.jvp(primals, tangents, out, **params)
        if prim.multiple_results:
            return tuple(self.wrap(o, t) for o, t in zip(out, tangent_out))
        return self.wrap(out, tangent_out)

    def lift(self, value) -> JVPTracer:
        """``value`` as this level's tracer, with a zero tangent (for in-place
        writes of values that do not depend on this level's inputs)."""
        from ..primitives.elementwise.arithmetic import zeros_like

        # integers and booleans carry no tangent: a symbolic zero, never an integer tangent
        return JVPTracer(self, value, zeros_like(value) if is_inexact(value) else zero)

    def wrap(self, primal, tangent):
        if tangent is zero or not is_inexact(primal):
            return primal
        return JVPTracer(self, primal, tangent)

    def tangent_of(self, value):
        """The tangent of ``value`` at this level (``zero`` if it has none)."""
        if isinstance(value, JVPTracer) and value._interp is self:
            return value.tangent
        return zero

    def primal_of(self, value):
        if isinstance(value, JVPTracer) and value._interp is self:
            return value.primal
        return value
