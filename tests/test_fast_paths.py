"""The eager fast paths give exactly what the general paths give."""
import copy
import pickle
import threading

import numpy as np
import optree
import pytest

import npfunc
from npfunc.api._common import ArgsSpec, tree_flatten, tree_unflatten
from npfunc.core import array_hooks, context
from npfunc.core.lazy import deferred

TREES = [np.ones(2), 1.0, 3, np.float64(2.0), (np.ones(2), 1.0), (), (np.ones(1),), (np.ones(2), None),
         [np.ones(2)], {"a": np.ones(1)}, (np.ones(2), (1.0,)), None, True, (True, 1.0)]


@pytest.mark.parametrize("none_is_leaf", [False, True])
@pytest.mark.parametrize("k", range(len(TREES)))
def test_tree_flatten_is_optrees(k, none_is_leaf):
    tree = TREES[k]
    leaves, spec = tree_flatten(tree, none_is_leaf=none_is_leaf)
    ref_leaves, ref_spec = optree.tree_flatten(tree, none_is_leaf=none_is_leaf)
    assert len(leaves) == len(ref_leaves) and all(a is b for a, b in zip(leaves, ref_leaves))
    assert spec == ref_spec and ref_spec == spec and not spec != ref_spec and not ref_spec != spec
    assert str(spec) == str(ref_spec) and repr(spec) == repr(ref_spec) and f"{spec}" == f"{ref_spec}"
    assert hash(spec) == hash(ref_spec)
    assert spec.num_leaves == ref_spec.num_leaves and spec.num_nodes == ref_spec.num_nodes
    rebuilt = tree_unflatten(spec, leaves)
    assert optree.tree_structure(rebuilt, none_is_leaf=none_is_leaf) == ref_spec
    assert copy.deepcopy(spec) == ref_spec and pickle.loads(pickle.dumps(spec)) == ref_spec


def test_args_spec_compares_like_optree():
    a = tree_flatten((np.ones(1), 2.0))[1]
    assert type(a) is ArgsSpec
    assert a == tree_flatten((3, 4))[1] and a != tree_flatten((3,))[1] and a != tree_flatten(3)[1]
    assert a != tree_flatten((3, 4), none_is_leaf=True)[1]
    assert a != optree.tree_structure([1, 2]) and a != "(*, *)"
    with pytest.raises(ValueError, match="Too few leaves"):
        tree_unflatten(a, [1])


def test_deferred_takes_its_place():
    namespace = {}
    namespace["f"] = deferred("math:hypot", namespace, "f")
    assert namespace["f"](3.0, 4.0) == 5.0
    import math

    assert namespace["f"] is math.hypot


def test_numpys_constructors_are_replaced_only_while_a_transform_runs():
    original = array_hooks._ORIGINAL["array"]
    seen = []

    def f(x):
        seen.append(np.array is original)
        return npfunc.grad(lambda y: np.array([y, 2 * y]).sum())(x) * x

    npfunc.grad(f)(np.array(1.0))
    assert seen == [False] and np.array is original and array_hooks._active == 0
    # a transform left on the stack by an error inside a nested one, cleaned up by its outer exit
    with pytest.raises(ZeroDivisionError):
        npfunc.grad(lambda x: npfunc.vmap(lambda y: 1 / 0)(x).sum())(np.ones(2))
    assert np.array is original and array_hooks._active == 0 and context.current_stack() == ()


def test_two_threads_keep_the_constructors_until_both_end():
    original = array_hooks._ORIGINAL["array"]
    inside, release = threading.Event(), threading.Event()

    def other():
        def f(x):
            inside.set()
            release.wait(10)
            return x.sum()

        npfunc.grad(f)(np.ones(2))

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(10)
    npfunc.grad(lambda x: x.sum())(np.ones(2))  # ends while the other thread's transform runs
    assert np.array is not original
    release.set()
    thread.join()
    assert np.array is original and array_hooks._active == 0


def test_unary_and_binary_rules_match_their_definitions():
    x = np.array([0.3, -1.2, 2.0])
    y = np.array([1.5, 0.5, -0.7])
    g = npfunc.grad(lambda x, y: (np.sin(x) * y + np.power(np.abs(x) + 1, y)).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(g[0], np.cos(x) * y + y * (np.abs(x) + 1) ** (y - 1) * np.sign(x))
    np.testing.assert_allclose(g[1], np.sin(x) + (np.abs(x) + 1) ** y * np.log(np.abs(x) + 1))
    out, t = npfunc.jvp(lambda x: np.exp(x) * x, (x,), (np.ones(3),))
    np.testing.assert_allclose(t, np.exp(x) * (x + 1))
    # NumPy scalars (0-d results) and float32 keep their dtypes through the fast paths
    assert npfunc.grad(np.sin)(np.float32(0.5)).dtype == np.float32
    assert type(npfunc.grad(lambda q: q[0] * q[1])(np.array([2.0, 3.0]))) is np.ndarray
