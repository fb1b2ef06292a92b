"""Batches of differential tests and the command line (``python -m npfunc.testing.difftest``)."""
from __future__ import annotations

import argparse
import collections
import re
import sys
import time
from typing import Callable, Iterable

import numpy as np

from .checks import Report, check_program
from .generator import generate_program
from .program import Program
from .reduce import reduce_program

__all__ = ["Summary", "program_for", "run", "main", "KNOWN_ISSUES", "known_issue"]


# Failures with a known cause, each pinned by a strict xfail in
# tests/test_difftest_regressions.py: counted apart, so a batch shows new ones.
# Remove an entry when its cause is fixed (its xfail then fails, as a reminder).
JIT_CHECKS = ("jit", "vmap(jit(f))", "grad(jit(f)), jit(grad(f))")
KNOWN_ISSUES = {
    "jit: arguments that are views of one another": (
        lambda program, outcome: outcome.transform in JIT_CHECKS and program.alias not in ("", "x"),
        "f(x, x.T) under jit, f updating x in place: every call refuses (the recording cannot "
        "follow an update from one view to the other) "
        "(test_jit_arguments_that_are_views_of_each_other_refuse_on_every_call)"),
    "jit: writes into a closed-over array happen once": (
        lambda program, outcome: outcome.transform == "grad(jit(f)), jit(grad(f))" and _mutates_y(program),
        "the function writes into a plain array it closes over: the plain function changes it on "
        "every call, jit's recording reads it once: jit's documented snapshot rule, as JAX's "
        "(test_jit_reads_a_closed_over_array_once)"),
}


def _mutates_y(program: Program) -> bool:
    """True when the plain program writes into its second argument (a plain array
    that grad(jit(f)) closes over: jit reads it once, when recording)."""
    if not program.has_y or program.alias:
        return False
    args = program.arguments(0)
    before = args[1].copy()
    try:
        program.build()(*args)
    except Exception:  # noqa: BLE001
        return False
    return not np.array_equal(before, args[1], equal_nan=True)


def known_issue(program: Program, outcome) -> str | None:
    """The name of the known issue a failing check belongs to, or None."""
    for name, (applies, _) in KNOWN_ISSUES.items():
        if applies(program, outcome):
            return name
    return None


def program_for(seed: int, index: int) -> Program:
    """Program ``index`` of the batch with ``seed``: reproducible on its own."""
    return generate_program(np.random.default_rng([seed, index]), label=f"{seed}:{index}")


class Summary:
    """Counts over a batch: outcomes per check, refusals by kind, failing reports."""

    def __init__(self) -> None:
        self.programs = 0
        self.status: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.refusals: collections.Counter = collections.Counter()
        self.notes: collections.Counter = collections.Counter()
        self.failed: list[Report] = []   # reports with failures no known issue explains
        self.known: collections.Counter = collections.Counter()
        self.seconds = 0.0

    def add(self, report: Report) -> None:
        self.programs += 1
        for o in report.outcomes:
            self.status[o.transform][o.status] += 1
            if o.status == "refused":
                # group messages by their wording, not by names and numbers
                text = re.sub(r"\b[a-zA-Z]\w*\d+\b|\d+|'[^']*'|\([^)]*\)", "_", o.detail)[:110]
                self.refusals[(o.transform, o.error, text)] += 1
        for key, value in report.notes.items():
            self.notes[f"{key}: {value}"] += 1
        new = [o for o in report.failures if known_issue(report.program, o) is None]
        for o in report.failures:
            if known_issue(report.program, o) is not None:
                self.known[known_issue(report.program, o)] += 1
        if new:
            self.failed.append(report)

    def format(self, top: int = 25) -> str:
        lines = [f"{self.programs} programs in {self.seconds:.1f} s, {len(self.failed)} with new failures"]
        lines += [f"  known issue {name!r}: {n} failing checks" for name, n in self.known.items()]
        lines += ["",
                 f"{'check':48} {'ok':>6} {'refused':>8} {'skipped':>8} {'mismatch':>9} {'crash':>6}"]
        for name, c in self.status.items():
            counts = f"{c['ok']:6} {c['refused']:8} {c['skipped']:8} {c['mismatch']:9} {c['crash']:6}"
            lines.append(f"{name:48} {counts}")
        if self.refusals:
            lines += ["", "most frequent refusals (check, error, message):"]
            for (name, err, text), n in self.refusals.most_common(top):
                lines.append(f"{n:6}  {name} | {err} | {text}")
        if self.notes:
            lines += ["", "notes:"] + [f"{n:6}  {k}" for k, n in self.notes.most_common()]
        return "\n".join(lines)


def run(seed: int, programs: int, start: int = 0, on_report: Callable[[Report], None] | None = None,
        indices: Iterable[int] | None = None) -> Summary:
    """Generate and check ``programs`` programs of batch ``seed``; the :class:`Summary`."""
    summary = Summary()
    t0 = time.perf_counter()
    for index in (range(start, start + programs) if indices is None else indices):
        report = check_program(program_for(seed, index))
        summary.add(report)
        if on_report is not None:
            on_report(report)
    summary.seconds = time.perf_counter() - t0
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m npfunc.testing.difftest",
                                     description="Random NumPy programs under every npfunc transform, "
                                                 "compared with NumPy and central differences.")
    parser.add_argument("--programs", type=int, default=100, help="how many programs (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="the batch's seed (default 0)")
    parser.add_argument("--start", type=int, default=0, help="index of the first program (default 0)")
    parser.add_argument("--only", type=int, nargs="*", help="check only these program indices")
    parser.add_argument("--show", action="store_true", help="print every program, not only failing ones")
    parser.add_argument("--top", type=int, default=25, help="how many refusal kinds to list")
    parser.add_argument("--known", action="store_true", help="print failures of known issues too")
    parser.add_argument("--reduce", action="store_true",
                        help="shrink each failing program to a smaller one that fails the same check")
    parser.add_argument("--progress", type=int, default=0, metavar="N",
                        help="print a progress line to stderr every N programs")
    args = parser.parse_args(argv)
    done = [0, time.perf_counter()]

    def on_report(report: Report) -> None:
        done[0] += 1
        if args.progress and done[0] % args.progress == 0:
            print(f"{done[0]} programs, {time.perf_counter() - done[1]:.0f} s", file=sys.stderr, flush=True)
        new = [o for o in report.failures if known_issue(report.program, o) is None]
        if new or args.show or (args.known and report.failures):
            print(report.format(None if args.known or args.show else new), flush=True)
        if args.reduce and new:
            small = reduce_program(report.program, new[0].transform)
            print(f"--- reduced, still failing {new[0].transform}:\n{small.script()}", flush=True)
            print(flush=True)

    summary = run(args.seed, args.programs, args.start, on_report, args.only)
    print(summary.format(args.top))
    return 1 if summary.failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
