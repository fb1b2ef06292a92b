"""NumPy's view semantics under every transform: a generated family of programs.

Each program makes a base array (an argument, or an array computed inside),
takes a view of it, writes through the view, the base or a sibling view with
one of NumPy's writers, and returns everything.  The plain NumPy program is
the reference: values must be equal under vjp, jvp, vmap, jit and
functionalize, derivatives equal to central differences of the plain
program, under grad, jvp, jacfwd/jacrev, vmap(grad) and jacfwd(jacrev).
Where NumPy refuses a write (read-only views), npfunc refuses it too.
"""
import itertools

import numpy as np
import pytest

import npfunc
from npfunc.errors import UnsupportedOperationError
from npfunc.testing import numerical_jacobian

# ---- the pieces of a program ----------------------------------------------------------

VIEWS = {  # name: (make the view of a 2-d base of shape (4, 6), writeable in NumPy)
    "slice": (lambda b: b[1:3], True),
    "step slice": (lambda b: b[::2, 1::2], True),
    "negative step": (lambda b: b[::-1, ::-2], True),
    "row": (lambda b: b[1], True),
    "column": (lambda b: b[:, 2], True),
    "new axis": (lambda b: b[None, 1:], True),
    "ellipsis": (lambda b: b[..., 1], True),
    "T": (lambda b: b.T, True),
    "transpose": (lambda b: np.transpose(b), True),
    "swapaxes": (lambda b: np.swapaxes(b, 0, 1), True),
    "moveaxis": (lambda b: np.moveaxis(b[None], 0, 2), True),
    "reshape": (lambda b: b.reshape(2, 12), True),
    "reshape F": (lambda b: b.reshape(6, 4, order="F"), True),
    "ravel": (lambda b: b.ravel(), True),
    "squeeze": (lambda b: np.squeeze(b[:1]), True),
    "expand_dims": (lambda b: np.expand_dims(b, 1), True),
    "flip": (lambda b: np.flip(b, 1), True),
    "rot90": (lambda b: np.rot90(b), True),
    "split": (lambda b: np.split(b, 2, axis=1)[1], True),
    "view of a view": (lambda b: b.T[1:4, ::2], True),
    "reshape of a slice": (lambda b: b[1:3].reshape(-1), True),
    "einsum diagonal": (lambda b: np.einsum("ii->i", b[:, :4]), True),
    "broadcast_to": (lambda b: np.broadcast_to(b[0], (3, 6)), False),
    "diagonal": (lambda b: np.diagonal(b), False),
    "sliding windows": (lambda b: np.lib.stride_tricks.sliding_window_view(b[0], 3), False),
}


def _sibling(b):
    return b[:, 1:4]  # overlaps most views above


def _write_item(t):
    t[(0,) * t.ndim] = np.sin(t[(-1,) * t.ndim]) + 1.0


def _write_slice(t):
    t[..., :1] = t[..., -1:] * 2.0


def _iadd(t):
    t += np.cos(t) * 0.5


def _imul(t):
    t *= t


def _out(t):
    np.multiply(t, 3.0, out=t)


def _copyto(t):
    np.copyto(t, np.tanh(t))


def _fill(t):
    t.fill(0.25)


def _sort(t):
    t.sort(axis=-1)


WRITERS = {"item": _write_item, "slice": _write_slice, "+=": _iadd, "*=": _imul, "out=": _out,
           "copyto": _copyto, "fill": _fill, "sort": _sort}
TARGETS = ("view", "base", "sibling")
BASES = ("argument", "inside")


def program(view, writer, target, base):
    make, _ = VIEWS[view]
    write = WRITERS[writer]

    def f(x):
        b = x if base == "argument" else np.sin(x) * 1.5
        v = make(b)
        s = _sibling(b)
        write({"view": v, "base": b, "sibling": s}[target])
        return np.concatenate([np.ravel(b), np.ravel(v), np.ravel(s)])

    return f


def _programs():
    for view, writer, target, base in itertools.product(VIEWS, WRITERS, TARGETS, BASES):
        yield pytest.param(view, writer, target, base, id=f"{base}-{view}-{writer}-{target}")


PROGRAMS = list(_programs())


def _input(seed=0):
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (4, 6))


def _plain(f, x):
    """The plain NumPy program's result, or the exception it raises."""
    try:
        return f(x.copy())
    except (ValueError, TypeError) as err:
        return err


def _refusal(err) -> bool:
    """npfunc may refuse where NumPy's answer depends on a memory layout it does not track."""
    return isinstance(err, UnsupportedOperationError) and "memory layout" in str(err)


def _scalar(f, w):
    return lambda x: np.sum(np.sin(f(x)) * w)


# ---- values, first derivatives, batching ---------------------------------------------------

@pytest.mark.parametrize("view,writer,target,base", PROGRAMS)
def test_program_values_and_derivatives(view, writer, target, base):
    f = program(view, writer, target, base)
    x = _input()
    expected = _plain(f, x)
    if isinstance(expected, Exception):  # NumPy refuses (a read-only view): so does npfunc
        with pytest.raises(type(expected), match="read-only"):
            npfunc.vjp(f, x.copy())
        return
    try:
        out, pullback = npfunc.vjp(f, x.copy())
    except UnsupportedOperationError as err:
        assert _refusal(err), err
        return
    np.testing.assert_array_equal(out, expected)
    # vjp against the Jacobian of the plain program (central differences)
    J = numerical_jacobian(lambda z: f(z.copy()), x).reshape(expected.size, x.size)
    u = np.random.default_rng(1).standard_normal(out.shape)
    (g,) = pullback(u)
    np.testing.assert_allclose(g.ravel(), u @ J, rtol=1e-6, atol=1e-6)
    # jvp, same Jacobian
    t = np.random.default_rng(2).standard_normal(x.shape)
    out2, jv = npfunc.jvp(f, (x.copy(),), (t,))
    np.testing.assert_array_equal(out2, expected)
    np.testing.assert_allclose(jv, J @ t.ravel(), rtol=1e-6, atol=1e-6)
    # vmap against a loop of plain programs
    xs = np.stack([_input(k) for k in range(3)])
    np.testing.assert_allclose(npfunc.vmap(f)(xs.copy()), np.stack([f(z.copy()) for z in xs]), rtol=1e-12)


# ---- compositions, on a sample of the programs ------------------------------------------------

SAMPLED = [p for k, p in enumerate(PROGRAMS) if k % 7 == 0]


@pytest.mark.parametrize("view,writer,target,base", SAMPLED)
def test_program_under_nested_transforms(view, writer, target, base):
    f = program(view, writer, target, base)
    x = _input()
    if isinstance(_plain(f, x), Exception):
        return
    w = np.random.default_rng(3).standard_normal(_plain(f, x).shape)
    loss = _scalar(f, w)
    try:
        g = npfunc.grad(loss)(x.copy())
    except UnsupportedOperationError as err:
        assert _refusal(err), err
        return
    np.testing.assert_allclose(g, numerical_jacobian(lambda z: loss(z.copy()), x),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(npfunc.jacrev(f)(x.copy()), npfunc.jacfwd(f)(x.copy()), rtol=1e-12, atol=1e-12)
    H = npfunc.jacfwd(npfunc.jacrev(loss))(x.copy()).reshape(x.size, x.size)
    H_fd = numerical_jacobian(lambda z: npfunc.grad(loss)(z.copy()), x).reshape(x.size, x.size)
    np.testing.assert_allclose(H, H_fd, rtol=1e-5, atol=1e-5)
    xs = np.stack([_input(k) for k in range(3)])
    per_example = npfunc.vmap(npfunc.grad(loss))(xs.copy())
    np.testing.assert_allclose(per_example, np.stack([npfunc.grad(loss)(z.copy()) for z in xs]), rtol=1e-12)


@pytest.mark.parametrize("view,writer,target,base", SAMPLED)
def test_program_under_jit(view, writer, target, base):
    f = program(view, writer, target, base)
    if isinstance(_plain(f, _input()), Exception):
        return
    jitted = npfunc.jit(f)
    for seed in range(3):
        x, y = _input(seed), _input(seed)
        try:
            got = jitted(y)
        except UnsupportedOperationError as err:
            assert _refusal(err), err
            return
        np.testing.assert_array_equal(got, f(x))
        np.testing.assert_array_equal(y, x)  # the argument is written as the plain program writes it


@pytest.mark.parametrize("view,writer,target,base", SAMPLED)
@pytest.mark.parametrize("remove", ["mutations", "mutations_and_views"])
def test_program_under_functionalize(view, writer, target, base, remove):
    f = program(view, writer, target, base)
    if isinstance(_plain(f, _input()), Exception):
        return
    x, y = _input(), _input()
    expected = f(x)
    try:
        got = npfunc.functionalize(f, remove=remove)(y)
    except UnsupportedOperationError as err:
        assert _refusal(err), err
        return
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(y, x)  # mutations of the argument are written back
    try:
        g = npfunc.grad(lambda z: np.sum(np.sin(npfunc.functionalize(f, remove=remove)(z))))(_input())
    except UnsupportedOperationError as err:
        assert _refusal(err), err
        return
    np.testing.assert_allclose(g, npfunc.grad(lambda z: np.sum(np.sin(f(z))))(_input()), rtol=1e-12)


# ---- the aliasing rules themselves --------------------------------------------------------------

def test_copies_stay_independent():
    def f(x):
        b = x * 1.0
        copies = [b.copy(), np.copy(b), b.astype(np.float64), +b, b[[0, 1]], b.flatten(),
                  np.array(b) if False else b[np.arange(4)]]
        b[...] = 0.0
        return np.concatenate([np.ravel(c) for c in copies])

    x = _input()
    np.testing.assert_array_equal(npfunc.vjp(f, x)[0], f(x))


def test_scalars_are_immutable_and_0d_arrays_are_not():
    def f(x):
        history = []
        total = 0.0
        for i in range(3):
            total += x[i, 0]  # total is a scalar: += rebinds it
            history.append(total)
        zero_d = x[0, ...][0, ...]  # a 0-d view: in place
        alias = zero_d
        zero_d += 1.0
        return np.stack(history + [alias, x[0, 0]])

    x = _input()
    np.testing.assert_array_equal(npfunc.vmap(f)(np.stack([x, 2 * x])), np.stack([f(x.copy()), f(2 * x)]))
    np.testing.assert_allclose(npfunc.jacrev(f)(x.copy()), numerical_jacobian(lambda z: f(z.copy()), x)
                               .reshape(5, 4, 6), atol=1e-6)


def test_overlapping_in_place_operations_match_numpy():
    def f(x):
        b = np.sin(x)
        b[1:] += b[:-1]
        b[:, :-1] = b[:, 1:]
        np.add(b[:, 1:], b[:, :-1], out=b[:, :-1])
        return b

    x = _input()
    np.testing.assert_array_equal(npfunc.vjp(f, x.copy())[0], f(x.copy()))
    np.testing.assert_allclose(npfunc.jacrev(f)(x.copy()).reshape(24, 24),
                               numerical_jacobian(lambda z: f(z.copy()), x).reshape(24, 24), atol=1e-6)


def test_reshape_view_or_copy_follows_the_arguments_layout():
    def f(x):
        y = x.reshape(-1)  # a view for a C-ordered x, a copy for a transposed one
        y[0] = 100.0
        return x

    c = _input()
    np.testing.assert_array_equal(npfunc.vjp(f, c.copy())[0], f(c.copy()))
    fortran = np.asfortranarray(_input())
    np.testing.assert_array_equal(npfunc.vjp(f, fortran.copy(order="F"))[0], f(fortran.copy(order="F")))
    assert npfunc.vjp(f, fortran.copy(order="F"))[0][0, 0] != 100.0


def test_a_layout_npfunc_cannot_know_is_refused_not_guessed():
    def f(x):
        b = np.sin(x)  # C-ordered in NumPy here, but npfunc does not track computed layouts
        flat = b.reshape(-1)
        flat[0] = 100.0
        return b

    with pytest.raises(UnsupportedOperationError, match="memory layout.*copy"):
        npfunc.grad(lambda x: f(x).sum())(_input())

    def fixed(x):
        b = np.sin(x)
        b[0, 0] = 100.0  # the fix the message names: write the array itself
        return b

    assert npfunc.grad(lambda x: fixed(x).sum())(_input())[0, 0] == 0.0


def test_writes_into_read_only_views_raise_numpys_error():
    with pytest.raises(ValueError, match="read-only"):
        npfunc.grad(lambda x: np.broadcast_to(x, (2, 3)).__setitem__(0, 1.0) or x.sum())(np.ones(3))
