"""The CI regression gate: ``fastrnn bench --check BASELINE.json`` (``--update`` rewrites it).

Absolute times mean nothing on a shared machine: the same kernel runs twice as
long when a neighbour is busy.  The gate therefore compares, per case,
figures that are ratios of two timings taken in the same run, so a machine
that is uniformly slower (or faster) cancels out:

* ``vs_reference`` -- fastrnn time / NumPy-reference time, both measured
  interleaved round by round (:func:`fastrnn.bench.harness.measure`);
* ``vs_gemm`` -- fastrnn time / the time this machine's GEMM would take for
  the same FLOPs (GEMM rate measured once at the start of the run).

Both are smaller-is-better.  The gate judges ``GATED_FIGURE``, the one whose
run-to-run spread measured smaller on a noisy 2-core machine (README,
"Benchmarks"); the other is recorded in the baseline and shown for context.

A case whose figure exceeds ``baseline * (1 + tolerance)`` is measured once
more, and fails only if the better of the two measurements is still over:
one unlucky burst of noise must not fail CI, a real slowdown fails twice.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

GATED_FIGURE = "vs_reference"
FIGURES = ("vs_reference", "vs_gemm")
GATE_IMPLS = ["fastrnn", "reference"]
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def add_arguments(parser) -> None:
    group = parser.add_argument_group("regression gate")
    group.add_argument("--check", metavar="BASELINE.json",
                       help="compare against this baseline; exit 1 if a kernel got slower than --tolerance")
    group.add_argument("--update", action="store_true", help="with --check: rewrite the baseline from this run")
    group.add_argument("--tolerance", type=float, default=0.25,
                       help="allowed slowdown as a fraction (default 0.25, i.e. 25%%)")


def prepare(args) -> None:
    """Before measuring: the gate needs fastrnn and the reference, and nothing else (peers only cost time)."""
    if args.update and not args.check:
        raise SystemExit("fastrnn bench: --update needs --check BASELINE.json (the file to rewrite)")
    if args.tolerance <= 0:
        raise SystemExit(f"fastrnn bench: --tolerance must be positive; got {args.tolerance}")
    if args.check:
        args.impl = list(GATE_IMPLS)
        # BLAS reads its thread count once, at start-up, so only the environment can pin it.
        unpinned = [name for name in BLAS_THREAD_VARIABLES if os.environ.get(name) != str(args.threads)]
        if unpinned:
            print(f"fastrnn bench: note: {', '.join(unpinned)} not set to --threads {args.threads}; BLAS may use "
                  "other thread counts and the figures vary far more (README, 'Benchmarks')", file=sys.stderr)


def case_key(result: dict) -> str:
    return f"{result['cell']} {result['dtype']} {result['mode']} T={result['T']} B={result['B']} D={result['D']} H={result['H']}"


def figures(result: dict) -> dict:
    """The machine-normalized figures of one ``fastrnn bench`` result row."""
    fast = result["seconds"]["fastrnn"]
    return {"vs_reference": fast / result["seconds"]["reference"], "vs_gemm": 1.0 / result["peak_fraction"]}


def run(args, results: list[dict], peaks: dict, blas: dict | None = None) -> int:
    """After measuring: rewrite the baseline (``--update``) or judge this run against it.

    ``blas`` is the OpenBLAS kernel family per package (``fastrnn._blas.openblas_kernels``),
    recorded in the baseline: a baseline made with other kernels gets a note, not a verdict
    change, because both fastrnn and the reference run on that BLAS."""
    measured = {case_key(r): figures(r) for r in results}
    if args.update:
        write_baseline(args.check, measured, args.threads, blas)
        print(f"\nbaseline written: {args.check} ({len(measured)} cases, gated figure {GATED_FIGURE})")
        return 0
    try:
        with open(args.check) as f:
            baseline = json.load(f)
    except FileNotFoundError:
        raise SystemExit(f"fastrnn bench: baseline {args.check} does not exist; create it with --check {args.check} --update")
    if baseline.get("threads") != args.threads:
        print(f"\nnote: the baseline was measured with {baseline.get('threads')} threads, this run with {args.threads}")
    if blas and baseline.get("openblas_kernels") and baseline["openblas_kernels"] != blas:
        print(f"\nnote: the baseline was measured with OpenBLAS kernels {baseline['openblas_kernels']}, "
              f"this run has {blas}; figures may move for that reason alone")
    rows = judge(baseline["cases"], measured, args.tolerance, remeasure=lambda key: _remeasure(key, results, args))
    print("\n" + report(rows, args.tolerance))
    return 1 if any(row["status"] == "SLOWER" for row in rows) else 0


def judge(baseline: dict, measured: dict, tolerance: float, remeasure=None) -> list[dict]:
    """One row per measured case: baseline and current gated figure, change, and status.

    ``remeasure(key)``, if given, returns fresh figures for a case that looks
    slower; the better measurement counts.
    """
    rows = []
    for key, now in measured.items():
        if key not in baseline:
            rows.append(dict(case=key, base=None, now=now[GATED_FIGURE], change=None, status="new"))
            continue
        base = baseline[key][GATED_FIGURE]
        value = now[GATED_FIGURE]
        if value > base * (1 + tolerance) and remeasure is not None:
            value = min(value, remeasure(key)[GATED_FIGURE])
        change = value / base - 1
        status = "SLOWER" if change > tolerance else "ok"
        rows.append(dict(case=key, base=base, now=value, change=change, status=status))
    return rows


def report(rows: list[dict], tolerance: float) -> str:
    header = ["case", f"base {GATED_FIGURE}", "now", "change", "status"]
    table = [header]
    for row in rows:
        table.append([row["case"], "-" if row["base"] is None else f"{row['base']:.3f}", f"{row['now']:.3f}",
                      "-" if row["change"] is None else f"{100 * row['change']:+.0f}%", row["status"]])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in table]
    slower = [row["case"] for row in rows if row["status"] == "SLOWER"]
    new = sum(row["status"] == "new" for row in rows)
    verdict = (f"FAIL: {len(slower)} case(s) slower than the baseline by more than {100 * tolerance:.0f}%: "
               + "; ".join(slower)) if slower else \
        f"PASS: no case slower than the baseline by more than {100 * tolerance:.0f}%"
    notes = f"\n{new} case(s) not in the baseline (not judged); refresh it with --update." if new else ""
    return (f"regression gate ({GATED_FIGURE} = fastrnn time / reference time, same run; smaller is better)\n"
            + "\n".join(lines) + f"\n{verdict}{notes}")


def write_baseline(path: str, measured: dict, threads: int, blas: dict | None = None) -> None:
    data = {
        "about": "fastrnn bench regression-gate baseline; regenerate with the command in README.md, 'Benchmarks'",
        "gated_figure": GATED_FIGURE,
        "threads": threads,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "openblas_kernels": blas or {},
        "cases": {key: {name: round(value, 5) for name, value in figs.items()} for key, figs in sorted(measured.items())},
    }
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


def _remeasure(key: str, results: list[dict], args) -> dict:
    """Measure one case again, the way ``fastrnn bench`` measured it."""
    from ..registry import CELLS
    from . import harness, runners
    from .grid import Shape

    result = next(r for r in results if case_key(r) == key)
    shape = Shape(result["T"], result["B"], result["D"], result["H"])
    backward = result["mode"] == "fwdbwd"
    case = {impl: runners.make_runner(impl, result["cell"], shape, result["dtype"], result["mode"], args.threads)
            for impl in GATE_IMPLS}
    timings = harness.measure(case, rounds=args.rounds or 7, min_sample=2e-3, budget=0.6)
    fast = timings["fastrnn"].seconds
    flops = CELLS[result["cell"]].flops(*shape, backward=backward)
    peak = flops / 1e9 / (result["gflops"] / result["peak_fraction"])  # GEMM seconds for these FLOPs
    return {"vs_reference": fast / timings["reference"].seconds, "vs_gemm": fast / peak}
