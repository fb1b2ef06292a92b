"""Plot eager and jit timings as ratios to hand-written NumPy (log axis).

    python benchmarks/bench_core.py --json /tmp/bench.json
    python benchmarks/plot_jit.py /tmp/bench.json docs/performance-jit.png

Each workload gets two bars, eager and jit, with its jit target from issue 14
marked; 1x (hand-written speed) is the vertical line.  Needs matplotlib.
"""
from __future__ import annotations

import json
import re
import sys


def _target(text: str) -> float | None:
    found = re.search(r"([\d.]+)\s*x", text or "")
    return float(found.group(1)) if found else None


def main(src: str, dst: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.load(open(src))
    rows = data["rows"]
    pairs = []  # (label, eager ratio, jit ratio, jit target): bench_core puts each jit row after its eager row
    for before, r in zip([None] + rows[:-1], rows):
        if r["workload"].startswith("jit("):
            eager = before["ratio"] if before and not before["workload"].startswith("jit(") else None
            label = before["workload"] if eager is not None else r["workload"]
            pairs.append((label, eager, r["ratio"], _target(r["target"])))
    fig, ax = plt.subplots(figsize=(8.5, 0.5 * len(pairs) + 1.2))
    ys = range(len(pairs))
    ax.barh([y + 0.2 for y in ys], [p[1] or 0 for p in pairs], height=0.38, color="#bbbbbb", label="eager")
    ax.barh([y - 0.2 for y in ys], [p[2] for p in pairs], height=0.38, color="#3b6ea5", label="jit")
    for y, p in zip(ys, pairs):
        if p[3]:
            ax.plot([p[3], p[3]], [y - 0.4, y], color="#c0392b", lw=2)
        ax.text(p[2] * 1.05, y - 0.2, f"{p[2]:.2f}x", va="center", fontsize=8)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(list(ys))
    ax.set_yticklabels([p[0] for p in pairs], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("time / hand-written NumPy (log scale; red tick: jit target)")
    m = data.get("machine", {})
    load = m.get("load_average")
    load = " / ".join(f"{x:.1f}" for x in load) + " over 1/5/15 min" if load else "?"
    ax.set_title(f"npfunc {m.get('npfunc', '')}, numpy {m.get('numpy', '')}, {m.get('cpus', '?')} cpus "
                 f"(load average {load}), {m.get('clock', 'wall')} clock, median of {m.get('repeats', '?')} "
                 "repeats", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
