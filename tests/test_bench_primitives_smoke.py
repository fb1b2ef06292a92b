"""Smoke test of benchmarks/bench_primitives.py: it runs, builds grad and vmap for
every primitive, and prints its tables.  No timing is asserted."""
import importlib.util
import pathlib
import subprocess
import sys

from npfunc.core.primitive import REGISTRY

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_primitives.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_primitives", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def test_quick_cli_text_table():
    proc = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for text in ("numpy", "OPENBLAS_CORETYPE", "plain µs", "grad ovh µs", "vmap/8plain",
                 "worst", "by grad overhead", "by vmap overhead", "add", "matmul", "argmax"):
        assert text in out, f"{text!r} missing from:\n{out}"


def test_every_primitive_markdown(capsys):
    bench = _load()
    assert bench.main(["--markdown", "--repeats", "1", "--min-time", "0"]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    names = {line.split("|")[1].strip() for line in table}
    missing = set(REGISTRY) - names
    assert not missing, f"primitives missing from the table: {sorted(missing)}"
    assert "### worst" in out
    # non-differentiable primitives get a vmap row but no grad
    argmax = next(line for line in table if line.split("|")[1].strip() == "argmax")
    assert "non-differentiable" in argmax


def test_filter_and_no_match(capsys):
    bench = _load()
    assert bench.main(["--filter", "tanh", "--repeats", "1", "--min-time", "0"]) == 0
    out = capsys.readouterr().out
    assert "tanh" in out and "matmul" not in out
    assert bench.main(["--filter", "no-such-primitive"]) == 2
