"""The CI regression gate (``fastrnn bench --check``): it passes an unchanged kernel and fails a slowed one."""

from __future__ import annotations

import itertools
import json
import os
import pathlib
import subprocess
import sys

import pytest

from fastrnn.__main__ import main
from fastrnn.bench import gate, grid
from fastrnn.registry import CELLS

# Runs `fastrnn bench` with the registry's RNN forward made FACTOR times slower
# (called FACTOR times), the way a slow kernel would reach the gate.
SLOWED = """
import dataclasses, sys
from fastrnn.registry import CELLS
from fastrnn.__main__ import main

factor = int(sys.argv[1])
cell = CELLS["rnn"]

def slowed_forward(*args, **kwargs):
    for _ in range(factor - 1):
        cell.forward(*args, **kwargs)
    return cell.forward(*args, **kwargs)

if factor > 1:
    CELLS["rnn"] = dataclasses.replace(cell, forward=slowed_forward)
sys.exit(main(["bench", *sys.argv[2:]]))
"""
CASE = ["--quick", "--threads", "1", "--cell", "rnn", "--dtype", "float32", "--mode", "fwd",
        "--batch", "1", "--hidden", "32", "--seq-len", "32"]


def gate_run(factor, *args):
    """A separate process, so BLAS really runs on one thread (it reads the variables at start-up)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", SLOWED, str(factor), *CASE, *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_gate_fails_a_slowed_kernel_and_names_it(tmp_path):
    baseline = tmp_path / "baseline.json"
    written = gate_run(1, "--check", str(baseline), "--update")
    assert written.returncode == 0, written.stderr
    cases = json.loads(baseline.read_text())["cases"]
    assert list(cases) == ["rnn float32 fwd T=32 B=1 D=32 H=32"]
    # The same kernel passes (a generous tolerance: this asserts the plumbing, not the machine's noise) ...
    same = gate_run(1, "--check", str(baseline), "--tolerance", "2")
    assert same.returncode == 0, same.stdout + same.stderr
    assert "PASS" in same.stdout
    # ... and eight times the work fails at the default tolerance, naming the kernel.
    slowed = gate_run(8, "--check", str(baseline))
    assert slowed.returncode == 1, slowed.stdout + slowed.stderr
    assert "FAIL" in slowed.stdout
    assert "rnn float32 fwd T=32 B=1 D=32 H=32" in slowed.stdout.split("FAIL")[1]
    assert "SLOWER" in slowed.stdout


def test_judge_flags_only_cases_beyond_the_tolerance():
    base = {"a": {"vs_reference": 1.0}, "b": {"vs_reference": 1.0}}
    rows = gate.judge(base, {"a": {"vs_reference": 1.2}, "b": {"vs_reference": 1.3}, "c": {"vs_reference": 9.0}}, 0.25)
    assert {row["case"]: row["status"] for row in rows} == {"a": "ok", "b": "SLOWER", "c": "new"}
    assert gate.report(rows, 0.25).splitlines()[-2].startswith("FAIL: 1 case(s) slower than the baseline by more than 25%: b")


def test_judge_remeasures_a_suspect_and_keeps_the_better_figure():
    base = {"a": {"vs_reference": 1.0}, "b": {"vs_reference": 1.0}}
    asked = []

    def remeasure(key):
        asked.append(key)
        return {"vs_reference": 1.1}

    rows = gate.judge(base, {"a": {"vs_reference": 1.5}, "b": {"vs_reference": 1.0}}, 0.25, remeasure)
    assert asked == ["a"]  # only the case over the tolerance is measured again
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert rows[0]["now"] == pytest.approx(1.1)


def test_missing_baseline_and_update_without_check_are_clear_errors(tmp_path):
    with pytest.raises(SystemExit, match="--update needs --check"):
        main(["bench", "--update"])
    with pytest.raises(SystemExit, match="--tolerance must be positive"):
        main(["bench", "--check", "x.json", "--tolerance", "0"])
    missing = tmp_path / "nope.json"
    args = type("Args", (), dict(check=str(missing), update=False, threads=1, tolerance=0.25, rounds=None))
    with pytest.raises(SystemExit, match="does not exist; create it with"):
        gate.run(args, [], {})


def test_committed_baseline_covers_every_case_ci_measures():
    # Otherwise a grid or registry change would leave CI's cases "new" (unjudged) and the gate would pass blind.
    path = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "baseline.json"
    baseline = json.loads(path.read_text())
    expected = {gate.case_key(dict(cell=cell, dtype=dtype, mode=mode, **shape._asdict()))
                for cell, dtype, mode, shape in itertools.product(
                    CELLS, ["float32", "float64"], grid.MODES, grid.product(**grid.QUICK))}
    assert set(baseline["cases"]) == expected
    assert baseline["gated_figure"] == gate.GATED_FIGURE and baseline["threads"] == 1


def test_baseline_records_the_blas_kernels_and_a_change_is_noted(tmp_path, capsys):
    import argparse

    path = tmp_path / "baseline.json"
    gate.write_baseline(str(path), {"a": {"vs_reference": 1.0, "vs_gemm": 2.0}}, 1, {"scipy": "Haswell"})
    assert json.loads(path.read_text())["openblas_kernels"] == {"scipy": "Haswell"}
    args = argparse.Namespace(check=str(path), update=False, threads=1, tolerance=0.25, rounds=None)
    assert gate.run(args, [], {}, {"scipy": "SkylakeX"}) == 0
    assert "OpenBLAS kernels {'scipy': 'Haswell'}, this run has {'scipy': 'SkylakeX'}" in capsys.readouterr().out
    gate.run(args, [], {}, {"scipy": "Haswell"})
    assert "OpenBLAS kernels" not in capsys.readouterr().out
