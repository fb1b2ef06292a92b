"""Differential tests in CI: a fixed batch of random NumPy programs under every transform.

``npfunc.testing.difftest`` generates programs (ufuncs, dtypes, reductions,
shape operations, indexing, views and writes through them, copies, aliased
arguments, closures, static arguments...) and checks every transform against
plain NumPy and central differences.  Here a fixed-seed batch must give no
failure outside the known issues (each pinned by a strict xfail in
``test_difftest_regressions.py``); ``docs/testing.md`` describes the longer
run.  The harness itself is tested too: a transform made wrong on purpose
must be caught.
"""
import numpy as np
import pytest

import npfunc
from npfunc.compiler import randomness
from npfunc.testing import difftest
from npfunc.testing.difftest import checks as dt_checks
from npfunc.testing.difftest import KNOWN_ISSUES, Program, check_program, known_issue, program_for, run

SEED = 2024
PROGRAMS = 200  # ~15 s on one core of the 2-core machine


def test_fixed_batch_has_no_failures():
    """One test (not several sharing a fixture), so that pytest-xdist runs the batch once."""
    with randomness.unwatched():  # the heap scan of jit's watch for random draws (tested in test_jit.py)
        batch = run(SEED, PROGRAMS)  # would dominate, in a worker that ran many tests before
    report = "\n\n".join(r.format([o for o in r.failures if known_issue(r.program, o) is None])
                         for r in batch.failed)
    assert not batch.failed, f"{len(batch.failed)} programs differ from NumPy:\n\n{report}"
    # not vacuous: every check ran on many programs and passes on most of those
    for name, counts in batch.status.items():
        ran = sum(counts.values()) - counts["skipped"]
        assert ran >= 0.25 * PROGRAMS, (name, dict(counts))
        assert counts["ok"] >= 0.5 * ran, (name, dict(counts))


def test_programs_are_reproducible_and_print_as_runnable_scripts(capsys):
    p, q = program_for(SEED, 7), program_for(SEED, 7)
    assert p.source() == q.source() and p.returns == q.returns
    np.testing.assert_array_equal(p.samples[0]["x"], q.samples[0]["x"])
    namespace = {}
    exec(p.script(), namespace)  # defines the arrays and f, prints f(...)
    assert "f" in namespace and capsys.readouterr().out


def _program(body, returns, x, y=None, alias="", closures=None, statics=None):
    samples = []
    for k in range(4):
        s = {"x": np.asarray(x, dtype=float) + 0.1 * k}
        if y is not None:
            s["y"] = np.asarray(y) + 0 * k
        samples.append(s)
    return Program(body=body, returns=returns, samples=samples, alias=alias, has_y=y is not None or bool(alias),
                   has_c=statics is not None, statics=statics or [], closures=closures or {},
                   closure_updates=[{n: v + 1.0 for n, v in (closures or {}).items()}] * 2, label="hand")


def _statuses(report):
    return {o.transform: o.status for o in report.outcomes}


def test_a_correct_program_passes_every_check():
    p = _program(["v = x[1:]", "v *= np.sin(x[:-1])", "s = 0.0", "for i in range(3):", "    s += x[i] * x[i]"],
                 ["s", "v"], [0.3, -0.7, 1.1, 0.4])
    report = check_program(p)
    bad = {o.transform: o.detail for o in report.failures}
    assert not bad, bad
    assert _statuses(report)["grad"] == "ok" and _statuses(report)["functionalize"] == "ok"


def test_a_wrong_derivative_is_caught(monkeypatch):
    """A JVP off by 1 % in one entry: the comparison with differences must see it."""
    real_jvp = dt_checks.jvp

    def bad_jvp(f, primals, tangents, **kw):
        out, tan = real_jvp(f, primals, tangents, **kw)
        tan = tuple(np.asarray(t) * 1.01 for t in tan) if isinstance(tan, tuple) else np.asarray(tan) * 1.01
        return out, tan

    monkeypatch.setattr(dt_checks, "jvp", bad_jvp)
    report = check_program(_program(["a = np.tanh(x) * x"], ["a"], [0.3, -0.7, 1.1]))
    assert _statuses(report)["vjp/jvp/linearize"] == "mismatch"


def test_differences_that_do_not_settle_skip_instead_of_blaming_the_derivative(monkeypatch):
    """floor jumps within the difference step at these points (float32, where the step
    is large): central differences are no derivative there, and the check is skipped
    rather than reported as a mismatch (which it was).  A wrong derivative of a smooth
    function is still caught (test_a_wrong_derivative_is_caught): its differences settle."""
    x = np.array([0.913, 1.091, 1.413, 1.107, 0.305, -0.952], dtype=np.float32)
    p = _program(["a = np.floor(np.square(3 + x * x) * 40.0)"], ["a"], x)
    for s in p.samples:
        s["x"] = s["x"].astype(np.float32)
    statuses = _statuses(check_program(p))
    assert statuses["grad"] == statuses["vjp/jvp/linearize"] == "skipped"
    monkeypatch.setattr(dt_checks._Checker, "_settled", lambda *args: None)  # without the settling test
    statuses = _statuses(check_program(p))
    assert statuses["grad"] == statuses["vjp/jvp/linearize"] == "mismatch"


def test_a_lost_write_back_is_caught(monkeypatch):
    """functionalize that forgets to write a mutated argument back: a mismatch."""
    def forgetful(f, remove="mutations"):
        return lambda *args: npfunc.functionalize(f, remove=remove)(*(np.copy(a) for a in args))

    monkeypatch.setattr(dt_checks, "functionalize", forgetful)
    report = check_program(_program(["x[0] = 2.0", "a = x * 1.0"], ["a"], [0.3, -0.7, 1.1]))
    assert _statuses(report)["functionalize"] == "mismatch"
    assert "argument after the call" in next(o.detail for o in report.outcomes if o.transform == "functionalize")


def test_a_wrong_dtype_is_caught(monkeypatch):
    """A value with the right numbers but another dtype is a mismatch."""
    real_vjp = dt_checks.vjp

    def widening_vjp(f, *primals, **kw):
        out, pullback = real_vjp(f, *primals, **kw)
        return [np.asarray(leaf, dtype=np.float64) for leaf in difftest.program.leaves(out)], pullback

    monkeypatch.setattr(dt_checks, "vjp", widening_vjp)
    p = _program(["a = np.sin(x)"], ["a"], [0.3, -0.7, 1.1])
    for s in p.samples:
        s["x"] = s["x"].astype(np.float32)
    report = check_program(p)
    assert _statuses(report)["vjp/jvp/linearize"] == "mismatch"


def test_refusals_are_allowed_and_counted():
    """Python control flow on a traced value: vmap refuses (an NpfuncError), which is no failure."""
    p = _program(["a = x * 2.0 if x.sum() > 0 else x - 1.0"], ["a"], [0.3, -0.7, 1.1])
    report = check_program(p)
    statuses = _statuses(report)
    assert statuses["vmap in_dims=0"] == "refused" and statuses["grad"] == "ok"
    summary = difftest.Summary()
    summary.add(report)
    assert any(err == "BatchedConversionError" for (_, err, _) in summary.refusals)


def test_jit_closure_rule_is_observed():
    """A closure changed between jit calls: the value of the live or the snapshot rule is accepted."""
    p = _program(["a = x * W.sum()"], ["a"], [0.3, -0.7, 1.1], closures={"W": np.array([1.0, 2.0])})
    report = check_program(p)
    assert "jit closure rule" in report.notes or _statuses(report)["jit"] != "ok"


def test_known_issues_have_a_reason_and_a_regression_test():
    import pathlib

    regressions = (pathlib.Path(__file__).parent / "test_difftest_regressions.py").read_text()
    for name, (applies, reason) in KNOWN_ISSUES.items():
        assert callable(applies) and name
        test = reason.rsplit("(", 1)[1].rstrip(")")
        assert f"def {test}(" in regressions, (name, test)


def test_command_line_prints_a_summary(capsys):
    code = difftest.main(["--programs", "3", "--seed", "1"])
    out = capsys.readouterr().out
    assert "3 programs in" in out and "most frequent refusals" in out or "check" in out
    assert code in (0, 1)
