"""NumPy's aliasing on traced values: views share their base, writes reach it.

A traced array that NumPy would return as a *view* (``x[1:]``, ``x.T``, a
reshape that needs no copy, ``x.real``, ``np.diagonal(x)``...) joins an
*alias family*: the arrays that share one piece of memory.  A family keeps
the current value of the memory's owner (``Storage.value``) and every
member records how it is read from the owner: a chain of view operations
(``Index``, ``Transpose``, ``Reshape``...), each with its inverse.

A write through any member (``y[0] = 1``, ``y += 1``, ``out=y``, ``y.fill``)
becomes a functional update of the owner -- the new value of the member is
pushed through the chain's inverses (``set_at`` for slices, the inverse
permutation for transposes...) -- and then every live member is rebuilt
from the owner, so reads afterwards see the write, as in NumPy.  The
transforms only ever see ordinary primitives, so derivatives, batching and
staging follow with no rule of their own (this is torch's functionalisation,
done eagerly: members are held by weak references and rebuilt at the write).

Whether NumPy gives a view or a copy can depend on memory layout (a reshape
of a transposed array copies).  Each family knows the layout candidates of
its owner: exactly one for arrays passed into a transform (their real
strides), every dense axis order for arrays computed inside (NumPy lays out
a new array in some axis order, which depends on how it was computed).  A
layout-dependent decision that is the same for every candidate is taken;
otherwise the result is an *uncertain* member: it reads correctly, but a
write through it, or a read after the family was written, raises instead of
guessing.

0-d results that NumPy returns as scalars (``x.sum()``, ``x[0]`` of a 1-d
``x``) are immutable there: ``s += 1`` rebinds ``s``.  Traced 0-d values
keep that: only 0-d *arrays* (views, copies, arrays passed in) are updated
in place.  ``_alias`` on a traced value is therefore one of: ``None`` (a
fresh result), an ``Alias`` (a family member), ``"C"`` (a fresh C-contiguous
array, e.g. a copy), or the value its layout comes from (an array passed
into a transform, or the outer traced value an inner transform wraps).
"""
from __future__ import annotations

import itertools
import math
import weakref

import numpy as np

from ...core.context import Invalidated, current_stack, describe_stack
from ...core.dispatch import twin_hint
from ...core.errors import UnsupportedOperationError
from ...core.tracer import Tracer, become, clone
from ...core.values import shape_of

FRESH_C = "C"  # the _alias marker of a fresh C-contiguous array (a copy)
_MAX_CANDIDATE_RANK = 5  # beyond this, a fresh array's layout counts as unknown

def alias_of(x):
    """The ``Alias`` of a family member, else None."""
    a = getattr(x, "_alias", None)
    return a if type(a) is Alias else None


def is_scalar(x: Tracer) -> bool:
    """True when ``x`` stands for a NumPy scalar (0-d and not an array): immutable."""
    return not x.shape and getattr(x, "_alias", None) is None


def array_result(out):
    """``out``, a result NumPy returns as a new array even when it is 0-d
    (``np.where``, ``np.asarray`` of a scalar, ``np.tensordot``...): a 0-d
    traced ``out`` would otherwise stand for an immutable NumPy scalar, and
    ``b = a; a += 1`` would rebind ``a`` instead of updating the array ``b``
    shares.  A 0-d result becomes a new traced object holding a 0-d array."""
    if isinstance(out, Tracer) and not out.shape and getattr(out, "_alias", None) is None:
        from ..shape.basic import _copy

        out = _copy.bind(out)  # a new object, whose value is a 0-d array where it was a NumPy scalar
        out._alias = FRESH_C
    return out


def mark_input(tracer: Tracer, source, axis: int | None = None) -> Tracer:
    """Record that ``tracer`` stands for ``source`` passed into a transform
    (one element of it, mapped over ``axis``, for vmap): an array keeps its
    layout (and 0-d arrays stay arrays), a NumPy or Python scalar stays a
    scalar."""
    check_plain_array(source)
    # An outer traced value that stands for a NumPy scalar (a row of a 1-d
    # array under vmap) stays a scalar inside the inner transform too.
    # (isinstance(tracer, np.ndarray) is True: ask Tracer first.)
    if (not is_scalar(source) if isinstance(source, Tracer) else
            isinstance(source, np.ndarray) and (source.ndim or source.flags.writeable)):
        tracer._alias = source if axis is None else (source, axis)
    return tracer


def check_plain_array(source) -> None:
    """Refuse a masked array or a matrix passed into a transform (naming the fix)."""
    if type(source) is np.ndarray or not isinstance(source, (np.ma.MaskedArray, np.matrix)):
        return
    from ...core.context import describe_stack

    kind = type(source).__name__
    fix = ("pass the data and the mask as two arrays (x.data, x.mask; or x.filled(fill)) and keep the mask "
           "with np.where(mask, ...), np.sum(x, where=~mask) or the np.nan* functions"
           if isinstance(source, np.ma.MaskedArray) else
           "pass np.asarray(m) and write matrix products with @")
    raise UnsupportedOperationError(
        f"{describe_stack()}: an argument is a {type(source).__module__}.{kind}, whose operations differ from "
        f"a plain array's (a masked mean skips the masked entries, a matrix's * is a product); traced values "
        f"are plain arrays and would silently compute the plain array's result. To fix it, {fix}.")


# ---- the view operations --------------------------------------------------------------
# Each reads a view from its parent (``forward``), writes a new view value back
# into the parent (``inverse``, a functional update), and maps a layout shadow
# (a real ndarray laid out as NumPy would lay out the parent) to the view's.


class ViewOp:
    __slots__ = ()
    writeable = True

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse(self, x, new):  # pragma: no cover - abstract
        raise NotImplementedError

    def shadow(self, s):  # pragma: no cover - abstract
        raise NotImplementedError


class Index(ViewOp):
    """Basic indexing (ints, slices, None, Ellipsis) as a gather ``spec``."""

    __slots__ = ("spec",)

    def __init__(self, spec) -> None:
        self.spec = spec

    def forward(self, x):
        from .gather import _gather

        return _gather.bind(x, spec=self.spec)

    def inverse(self, x, new):
        from .updates import _set

        return _set.bind(x, new, spec=self.spec)

    def shadow(self, s):
        from .gather import _build

        return s[_build(self.spec, ())]


class Transpose(ViewOp):
    __slots__ = ("perm",)

    def __init__(self, perm) -> None:
        self.perm = tuple(perm)

    def forward(self, x):
        from ..shape.basic import transpose

        return transpose(x, self.perm)

    def inverse(self, x, new):
        from ..shape.basic import transpose

        return transpose(new, tuple(np.argsort(self.perm)))

    def shadow(self, s):
        return s.transpose(self.perm)


class Reshape(ViewOp):
    __slots__ = ("shape", "order")

    def __init__(self, shape, order: str = "C") -> None:
        self.shape = tuple(shape)
        self.order = order

    def forward(self, x):
        from ..shape.basic import reshape

        return reshape(x, self.shape, order=self.order)

    def inverse(self, x, new):
        from ..shape.basic import reshape

        return reshape(new, tuple(shape_of(x)), order=self.order)

    def shadow(self, s):
        return np.reshape(s, self.shape, order=self.order, copy=False)


class RealPart(ViewOp):
    __slots__ = ()

    def forward(self, x):
        from ..elementwise.arithmetic import real

        return real(x)

    def inverse(self, x, new):
        from ..elementwise.arithmetic import imag, make_complex

        return make_complex(new, imag(x))

    def shadow(self, s):
        return s.real


class ImagPart(ViewOp):
    __slots__ = ()

    def forward(self, x):
        from ..elementwise.arithmetic import imag

        return imag(x)

    def inverse(self, x, new):
        from ..elementwise.arithmetic import make_complex, real

        return make_complex(real(x), new)

    def shadow(self, s):
        return s.imag


class ReadOnly(ViewOp):
    """A read-only view (NumPy refuses writes through it): ``fn(x, **params)``
    computes it, ``numpy_fn`` makes the same view of a shadow."""

    __slots__ = ("fn", "numpy_fn", "params")
    writeable = False

    def __init__(self, fn, numpy_fn, **params) -> None:
        self.fn = fn
        self.numpy_fn = numpy_fn
        self.params = params

    def forward(self, x):
        return self.fn(x, **self.params)

    def inverse(self, x, new):  # pragma: no cover - writes are refused before
        raise AssertionError("read-only views are never written")

    def shadow(self, s):
        return self.numpy_fn(s, **self.params)


class Positions(ViewOp):
    """The general view: the view's entries are the parent's entries at the
    C-order ``positions`` (an integer array shaped like the view), each at most
    once.  Used for the rare views no other operation expresses (einsum's)."""

    __slots__ = ("positions",)

    def __init__(self, positions) -> None:
        self.positions = np.asarray(positions)

    def forward(self, x):
        from ..shape.basic import ravel
        from .gather import take

        return take(ravel(x), self.positions)

    def inverse(self, x, new):
        from ..shape.basic import ravel, reshape
        from .updates import _set

        flat = _set.bind(ravel(x), ravel(new), self.positions.ravel(), spec=(("a", 0),))
        return reshape(flat, tuple(shape_of(x)))

    def shadow(self, s):
        return None  # layout not modelled: later layout decisions are uncertain


# ---- families ----------------------------------------------------------------------------

class Storage:
    """The shared memory of a family: the owner's current value (a private
    traced object), weak references to the members, the owner's layout
    candidates (None: unknown)."""

    __slots__ = ("value", "members", "layouts", "__weakref__")

    def __init__(self, value, layouts) -> None:
        self.value = value
        self.members: list = []
        self.layouts = layouts


class Alias:
    """A member's place in its family: how it is read from the owner."""

    __slots__ = ("storage", "chain", "writeable", "uncertain")

    def __init__(self, storage: Storage, chain: tuple, writeable: bool, uncertain: bool) -> None:
        self.storage = storage
        self.chain = chain
        self.writeable = writeable
        self.uncertain = uncertain


def _dense_candidates(shape, dtype):
    """Every dense layout NumPy could give a new array of ``shape`` (one per
    distinct axis order), as arrays sharing one uninitialised buffer."""
    shape = tuple(shape)
    nd = len(shape)
    if nd > _MAX_CANDIDATE_RANK:
        return None
    buffer = np.empty(max(math.prod(shape), 1), dtype)
    seen = {}
    for order in itertools.permutations(range(nd)):
        permuted = tuple(shape[i] for i in order)
        s = buffer[:math.prod(shape)].reshape(permuted).transpose(np.argsort(order))
        seen.setdefault(s.strides, s)
    return tuple(seen.values())


def _logical_layouts(source):
    """Layout candidates of the value a transform's input stands for:
    ``source`` itself, or ``(source, axis)`` for one element of a batch
    mapped over ``axis``."""
    if isinstance(source, tuple):
        source, axis = source
        outer = _logical_layouts(source)
        if outer is None:
            return None
        return tuple(_element(s, axis) for s in outer)
    if isinstance(source, Tracer):  # before ndarray: a traced value answers isinstance(x, np.ndarray)
        return layouts(source)
    if isinstance(source, np.ndarray):
        return (source,)
    return None


def _element(s, axis):
    """The layout of one element of the batch ``s`` mapped over ``axis``."""
    if s.shape[axis]:
        return s[(slice(None),) * axis + (0,)]
    return np.empty(s.shape[:axis] + s.shape[axis + 1:], s.dtype)


def layouts(x):
    """Candidate shadows of ``x``: arrays laid out as NumPy would lay out ``x``
    (one when the layout is known; None when it cannot be enumerated)."""
    if not isinstance(x, Tracer):
        x = np.asarray(x)
        return (x,)
    marker = getattr(x, "_alias", None)
    if type(marker) is Alias:
        return _member_layouts(marker)
    if marker is None:
        return _dense_candidates(x.shape, x.dtype)
    if marker is FRESH_C:
        return (np.empty(x.shape, x.dtype),)
    return _logical_layouts(marker)


def _member_layouts(alias: Alias):
    roots = alias.storage.layouts
    if roots is None or alias.uncertain:  # uncertain: the candidates disagree about it
        return None
    out = []
    for s in roots:
        for op in alias.chain:
            s = op.shadow(s)
            if s is None:
                return None
        out.append(s)
    return tuple(out)


def family(x: Tracer) -> Alias:
    """``x``'s alias, making ``x`` the owner of a new family if it has none."""
    alias = getattr(x, "_alias", None)
    if type(alias) is Alias:
        return alias
    storage = Storage(clone(x), layouts(x))
    alias = Alias(storage, (), True, False)
    x._alias = alias
    storage.members.append(weakref.ref(x))
    return alias


def make_view(parent, out, *ops, uncertain: bool = False):
    """Make ``out`` (computed from ``parent`` by ``ops``) a view of ``parent``.

    Plain values are left alone (NumPy keeps their aliasing itself), and so
    are results of another interpreter than ``parent``'s."""
    if not isinstance(parent, Tracer) or not isinstance(out, Tracer) or out._interp is not parent._interp:
        return out
    if out is parent:  # an identity view: a new object, as NumPy returns
        out = clone(out)
    if is_scalar(parent):
        # A NumPy scalar has no memory to share: what NumPy derives from it is a
        # new value -- a scalar again when 0-d (s.T, s.reshape(()), s.real), else
        # a new array (np.ravel(s), s[None]); a read-only view (np.broadcast_to(s, n))
        # reads a private copy, so the scalar itself never becomes an array.
        if not all(op.writeable for op in ops):
            parent = clone(parent)
        elif out.shape:
            out._alias = FRESH_C
            return out
        else:
            return out
    base = family(parent)
    writeable = base.writeable and all(op.writeable for op in ops)
    out._alias = Alias(base.storage, base.chain + ops, writeable, base.uncertain or uncertain)
    members = base.storage.members
    if len(members) > 8 and len(members) & (len(members) - 1) == 0:  # prune now and then
        members[:] = [m for m in members if m() is not None]
    members.append(weakref.ref(out))
    return out


def decide(x, test):
    """``test(shadow)`` for every layout candidate of ``x``: the common answer,
    or None when the candidates disagree or are unknown."""
    candidates = layouts(x)
    if candidates is None:
        return None
    answers = {bool(test(s)) for s in candidates}
    return answers.pop() if len(answers) == 1 else None


# ---- writing ------------------------------------------------------------------------------

def updatable(x: Tracer) -> bool:
    """True when ``x`` belongs to the innermost running transform, so its
    object can take a new value (see inplace.py)."""
    interp = x._interp
    if not interp.alive:
        raise x._escaped()
    stack = current_stack()
    return bool(stack) and stack[-1] is interp


def _forward(value, chain):
    for op in chain:
        value = op.forward(value)
    return value


def _owner_after(root, chain, new):
    """The owner's value once the member read through ``chain`` holds ``new``."""
    parents = [root]
    for op in chain[:-1]:
        parents.append(op.forward(parents[-1]))
    for op, parent in zip(reversed(chain), reversed(parents)):
        new = op.inverse(parent, new)
    return new


def write(x: Tracer, new: Tracer, what: str) -> None:
    """Make the traced array ``x`` hold ``new`` (same shape and dtype, same
    interpreter), updating its whole family as NumPy's memory would be."""
    alias = getattr(x, "_alias", None)
    if type(alias) is not Alias:
        become(x, new)
        return
    if not alias.writeable:
        raise ValueError(f"assignment destination is read-only ({what} writes into a read-only view, "
                         "as NumPy's broadcast_to, diagonal and sliding_window_view return (traced windows "
                         "are read-only with writeable=True too: they overlap); write into a copy, or into "
                         "the array it views)")
    if alias.uncertain:
        raise uncertain_error(what)
    storage = alias.storage
    storage.value = clone(_owner_after(storage.value, alias.chain, new))
    become(x, new)
    _rebuild(storage, x)


def _rebuild(storage: Storage, written) -> None:
    live = []
    root = storage.value
    for ref in storage.members:
        member = ref()
        if member is None:
            continue
        live.append(ref)
        if member is written:
            continue
        alias = member._alias
        if alias.uncertain:
            member._interp = Invalidated(member._interp, _stale_message())
        else:
            become(member, _forward(root, alias.chain) if alias.chain else root)
    storage.members = live


def uncertain_error(what: str) -> UnsupportedOperationError:
    return UnsupportedOperationError(
        f"{describe_stack()}: {what} writes into an array that NumPy returns as a view or as a copy "
        "depending on the memory layout of an array computed inside the function (a reshape or ravel "
        "of it), which npfunc does not track. Make the intent explicit: take .copy() of the reshaped "
        "array to write into a copy, or index and write the original array itself.")


def _stale_message() -> str:
    return ("this array came from a reshape or ravel that NumPy returns as a view or as a copy "
            "depending on the memory layout of an array computed inside the function, and the array "
            "it came from was written to since, so its value depends on that layout, which npfunc "
            "does not track. Take .copy() of the reshaped array if you want a copy made before the "
            "write, or reshape again after it.")


# ---- what NumPy's memory attributes would say -------------------------------------------------

def known_layout(x, what: str):
    """The one layout shadow of ``x`` (for ``x.strides``), or a clear error."""
    candidates = layouts(x)
    if candidates is not None:
        strides = {s.strides for s in candidates}
        if len(strides) == 1:
            return candidates[0]
    raise UnsupportedOperationError(
        f"{describe_stack()}: {what} of an array computed inside the function depends on a memory "
        "layout npfunc does not track (NumPy lays out a new array following its inputs). Use "
        "np.ascontiguousarray(x) first if code needs a known layout." + twin_hint())


class TracedFlags:
    """``x.flags`` of a traced value: NumPy's flags of the array it stands for."""

    def __init__(self, x) -> None:
        self._x = x

    def _layout(self, test, name):
        answer = decide(self._x, test)
        if answer is None:
            raise UnsupportedOperationError(
                f"{describe_stack()}: x.flags.{name} of an array computed inside the function depends on a "
                "memory layout npfunc does not track. Use np.ascontiguousarray(x) first if code needs a "
                "known layout." + twin_hint())
        return answer

    @property
    def c_contiguous(self) -> bool:
        return self._layout(lambda s: s.flags.c_contiguous, "c_contiguous")

    @property
    def f_contiguous(self) -> bool:
        return self._layout(lambda s: s.flags.f_contiguous, "f_contiguous")

    @property
    def forc(self) -> bool:
        return self._layout(lambda s: s.flags.forc, "forc")

    @property
    def fnc(self) -> bool:
        return self._layout(lambda s: s.flags.fnc, "fnc")

    contiguous = c_contiguous
    aligned = True
    writebackifcopy = False

    @property
    def writeable(self) -> bool:
        alias = alias_of(self._x)
        return alias is None or alias.writeable

    @writeable.setter
    def writeable(self, value: bool) -> None:
        if value and not self.writeable:
            raise ValueError("cannot set WRITEABLE flag to True of this array")
        if not value:
            family(self._x).writeable = False

    @property
    def owndata(self) -> bool:
        alias = alias_of(self._x)
        return alias is None or not alias.chain

    @property
    def behaved(self) -> bool:
        return self.writeable

    @property
    def carray(self) -> bool:
        return self.c_contiguous and self.writeable

    @property
    def farray(self) -> bool:
        return self.f_contiguous and not self.c_contiguous and self.writeable

    _KEYS = {"C_CONTIGUOUS": "c_contiguous", "C": "c_contiguous", "CONTIGUOUS": "c_contiguous",
             "F_CONTIGUOUS": "f_contiguous", "F": "f_contiguous", "FORTRAN": "f_contiguous",
             "WRITEABLE": "writeable", "W": "writeable", "OWNDATA": "owndata", "O": "owndata",
             "ALIGNED": "aligned", "A": "aligned", "WRITEBACKIFCOPY": "writebackifcopy", "X": "writebackifcopy",
             "FNC": "fnc", "FORC": "forc", "BEHAVED": "behaved", "B": "behaved", "CARRAY": "carray",
             "CA": "carray", "FARRAY": "farray", "FA": "farray"}

    def __getitem__(self, key: str):
        return getattr(self, self._KEYS[key.upper()])

    def __setitem__(self, key: str, value) -> None:
        if self._KEYS.get(key.upper()) != "writeable":
            raise ValueError(f"flags: only WRITEABLE can be set on a traced value, not {key!r}")
        self.writeable = value

    def __repr__(self) -> str:
        return f"TracedFlags(writeable={self.writeable}, owndata={self.owndata})"


def base_of(x):
    """``x.base``: the array owning the memory ``x`` views, or None."""
    alias = alias_of(x)
    if alias is None or not alias.chain:
        return None
    for ref in alias.storage.members:
        member = ref()
        if member is not None and not member._alias.chain:
            return member
    return alias.storage.value


class FlatIterator:
    """``x.flat`` of a traced value: C-order reads (``x.flat[i]``, iteration)
    and writes (``x.flat[i] = v`` updates ``x`` and its views)."""

    def __init__(self, x) -> None:
        self._x = x

    def _flat(self):
        from ..shape.basic import reshape

        return reshape(self._x, (self._x.size,))

    def __getitem__(self, index):
        return self._flat()[index]

    def __setitem__(self, index, value) -> None:
        from ..shape.basic import reshape
        from .inplace import assign
        from .updates import set_at

        new = reshape(set_at(self._flat(), index, value), tuple(self._x.shape))
        assign(self._x, new, "x.flat[i] = v", "x = npfunc.numpy.set_at(x.ravel(), i, v).reshape(x.shape)")

    def __iter__(self):
        return iter(self._flat())

    def __len__(self) -> int:
        return self._x.size

    @property
    def base(self):
        return self._x
