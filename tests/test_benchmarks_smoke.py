"""Run benchmarks/bench_core.py in --quick mode: its built-in correctness checks
(npfunc result == hand-written NumPy result) must pass.  No timing is asserted."""
import pathlib
import subprocess
import sys

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_core.py"


def test_bench_core_quick_correctness():
    proc = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for workload in ("per-sample grads", "jacrev", "jacfwd", "hessian", "elementwise chain",
                     "ensemble", "vmap(jacrev)", "HVP", "import npfunc"):
        assert workload in proc.stdout, f"{workload!r} missing from:\n{proc.stdout}"
