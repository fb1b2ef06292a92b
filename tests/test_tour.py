"""The whirlwind tour runs, passes its own checks, and fails loudly when one fails."""
import subprocess
import sys

import pytest

from npfunc import tour


def test_tour_main_passes(capsys):
    tour.main()  # raises SystemExit(1) if any check fails
    out = capsys.readouterr().out
    assert "all checks passed" in out
    assert "FAIL" not in out
    assert out.count("ok: matches") >= 30


def test_tour_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "npfunc.tour"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all checks passed" in proc.stdout


def test_tour_exits_nonzero_when_a_check_fails(monkeypatch, capsys):
    def broken_step():
        tour.check("a deliberately wrong value", 1.0, 2.0)

    monkeypatch.setattr(tour, "tour_grad", broken_step)
    with pytest.raises(SystemExit) as info:
        tour.main()
    assert info.value.code == 1
    assert "FAIL: a deliberately wrong value" in capsys.readouterr().out


def test_tour_reports_a_step_that_raises(monkeypatch, capsys):
    def crashing_step():
        raise RuntimeError("boom")

    monkeypatch.setattr(tour, "tour_vmap", crashing_step)
    with pytest.raises(SystemExit) as info:
        tour.main()
    assert info.value.code == 1
    out = capsys.readouterr().out
    assert "FAIL: crashing_step raised" in out
    assert "model ensembles" in out  # later steps still ran
