"""Benchmark `analyze_direction` at 10^5 train + 10^4 val windows of 768-d (run by hand, not in tests).

    .venv/bin/python benchmarks/bench_direction.py
    .venv/bin/python benchmarks/bench_direction.py --n-train 20000 --n-val 2000 --permutations 199

Uses the same random-walk data as ``bench_leakage.py`` (split by article, no article ids, so the
data layer recovers articles first, as ``lvmdiag direction`` does), in a fresh subprocess; prints a
markdown table row. Memory as in ``bench_leakage.py`` (peak anonymous RSS above the post-import
baseline, and VmHWM with mapped file pages).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_leakage import DATA, _hwm, _rss_anon, generate  # noqa: E402


def run_one(train: str, val: str, permutations: int) -> dict:
    from lvmdiag.analyzers.direction import analyze_direction
    from lvmdiag.data.groups import resolve_groups
    from lvmdiag.data.readers import load_sequences

    base = _rss_anon()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_anon())
            time.sleep(0.005)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0, c0 = time.perf_counter(), time.process_time()
    sets = {"train": load_sequences(train, split="train"), "val": load_sequences(val, split="val")}
    groups = resolve_groups(list(sets.values()))
    t_groups = time.perf_counter() - t0
    res = analyze_direction(sets, groups=groups, n_permutations=permutations)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    stop.set()
    th.join()
    tr, va = res.split("train"), res.split("val")
    return {"seconds": elapsed, "cpu": cpu, "groups_seconds": t_groups, "peak_anon": peak[0] - base, "hwm": _hwm(),
            "n_train": tr.n_windows, "n_val": va.n_windows, "auc_train": tr.classifier.effect.to_markdown(),
            "p_train": tr.classifier.pvalue, "method": res.group_method}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=100_000)
    ap.add_argument("--n-val", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--permutations", type=int, default=499)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--_run", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._run:
        print(json.dumps(run_one(args._run[0], args._run[1], int(args._run[2]))))
        return
    gb = lambda b: f"{b / 2**30:.2f} GB"  # noqa: E731
    try:
        tr, va = generate("article", args.n_train, args.n_val, args.d)
        cmd = [sys.executable, __file__, "--_run", str(tr), str(va), str(args.permutations)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print("| train × val windows | D | permutations | wall time | CPU time | of which load + groups | "
              "peak anon RSS | VmHWM (maps incl.) | train CV AUC (null data) | p |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        print(f"| {r['n_train']:,} × {r['n_val']:,} | {args.d} | {args.permutations} | {r['seconds']:.1f} s | "
              f"{r['cpu']:.1f} s | {r['groups_seconds']:.1f} s ({r['method']}) | {gb(r['peak_anon'])} | {gb(r['hwm'])} | "
              f"{r['auc_train']} | {r['p_train']:.3f} |")
    finally:
        if not args.keep:
            shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    main()
