"""Import time of npfunc, side by side for source trees (issue 14, item 6).

For each tree (``label=path/to/src``), in fresh interpreters with the
bytecode cache, interleaved over ``--runs`` rounds:

* CPU and wall time of ``import numpy``, then of ``import npfunc`` in the
  same process (npfunc's own cost);
* ``python -X importtime -c "import npfunc"``: the cumulative time, and
  npfunc's own share (cumulative less the ``numpy`` line of the same run);
* wall time from before ``import numpy`` to a first gradient's result
  (what lazy loading defers must not come back on first use).

Reports the median (minimum) in milliseconds.

    python benchmarks/bench_import.py --tree before=/path/to/main/src --tree after=src --runs 11
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

_SPLIT = ("import time; c0 = time.process_time(); w0 = time.perf_counter(); import numpy; "
          "c1 = time.process_time(); w1 = time.perf_counter(); import npfunc; "
          "c2 = time.process_time(); w2 = time.perf_counter(); print(c1 - c0, c2 - c1, w1 - w0, w2 - w1)")
_FIRST = ("import time; w0 = time.perf_counter(); import numpy as np; import npfunc; "
          "npfunc.grad(lambda x: (np.tanh(x) ** 2).sum())(np.ones(3)); print(time.perf_counter() - w0)")
COLUMNS = ("numpy cpu", "npfunc cpu (after numpy)", "numpy wall", "npfunc wall (after numpy)",
           "importtime npfunc", "npfunc's own (importtime)", "numpy+npfunc+first grad wall")


def _run(code: str, env: dict) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env).stdout


def _importtime(env: dict) -> tuple[float, float]:
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import npfunc"], check=True,
                         capture_output=True, text=True, env=env).stderr
    cumulative = {}
    for line in err.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[1].isdigit():
            cumulative[parts[2]] = int(parts[1]) / 1000
    return cumulative["npfunc"], cumulative["npfunc"] - cumulative.get("numpy", 0.0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", default=None, metavar="LABEL=SRC",
                        help="a source tree to import npfunc from (repeatable; default: this checkout's src)")
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args(argv)
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "src")
    trees = dict(t.split("=", 1) for t in (args.tree or [f"npfunc={here}"]))
    base = dict(os.environ)
    base.pop("PYTHONDONTWRITEBYTECODE", None)  # measure as installed: with the bytecode cache
    samples = {label: [] for label in trees}
    for label, src in trees.items():  # write the bytecode cache
        _run("import npfunc", dict(base, PYTHONPATH=src))
    for _ in range(args.runs):
        for label, src in trees.items():
            env = dict(base, PYTHONPATH=src)
            split = [float(v) * 1000 for v in _run(_SPLIT, env).split()]
            samples[label].append(split + list(_importtime(env)) + [float(_run(_FIRST, env)) * 1000])
    width = max(len(c) for c in COLUMNS)
    print(f"median (min) over {args.runs} interleaved runs, ms")
    print(" " * width + "".join(f"{label:>18}" for label in trees))
    for k, column in enumerate(COLUMNS):
        cells = []
        for label in trees:
            values = [s[k] for s in samples[label]]
            cells.append(f"{statistics.median(values):8.1f} ({min(values):6.1f})")
        print(column.ljust(width) + "".join(f"{c:>18}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
