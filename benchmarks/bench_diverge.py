"""Benchmark `analyze_divergence` at scale: 10^5 train vs 10^4 val windows of 768-d (run by hand).

Generates random-walk articles (adjacent cosine ~0.7, as in /ANCHOR_BENCHMARKS) into
benchmarks/_data/ as memory-mapped .npy directories, then runs the analyzer in a fresh subprocess
so the peak RSS is the analyzer's alone (reading + state), and deletes the data afterwards.

    .venv/bin/python benchmarks/bench_diverge.py --n-train 100000 --n-val 10000 --shift 0.0
    .venv/bin/python benchmarks/bench_diverge.py --n-train 100000 --n-val 10000 --shift 0.02

Prints one markdown table row for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "_data" / "diverge"


def _walks(n_windows: int, d: int, k: int, mean_len: int, first_id: int, shift_u: np.ndarray | None,
           shift: float, rng: np.random.Generator, out: Path) -> None:
    """Write contexts.npy / targets.npy / article_ids.npy for ~n_windows stride-1 windows, block by block."""
    out.mkdir(parents=True, exist_ok=True)
    rho = 0.71
    lengths = []
    total = 0
    while total < n_windows:
        length = int(rng.integers(mean_len // 2, 3 * mean_len // 2)) + k + 1
        length = min(length, n_windows - total + k)
        lengths.append(length)
        total += length - k
    ctx = np.lib.format.open_memmap(out / "contexts.npy", "w+", np.float32, (total, k, d))
    tgt = np.lib.format.open_memmap(out / "targets.npy", "w+", np.float32, (total, d))
    ids = np.empty(total, np.int64)
    row = 0
    for a, length in enumerate(lengths):
        x = np.empty((length, d), np.float32)
        v = rng.standard_normal(d)
        x[0] = v / np.linalg.norm(v)
        e = rng.standard_normal((length, d)).astype(np.float32)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        for t in range(1, length):
            step = e[t] - (e[t] @ x[t - 1]) * x[t - 1]
            x[t] = rho * x[t - 1] + np.sqrt(1 - rho**2) * step / np.linalg.norm(step)
        if shift_u is not None and shift:
            x = x + shift * shift_u  # the anchor benchmark's shift: normalize(x + s u)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
        w = length - k
        idx = np.arange(w)[:, None] + np.arange(k)[None, :]
        ctx[row : row + w] = x[idx]
        tgt[row : row + w] = x[k:]
        ids[row : row + w] = first_id + a
        row += w
    ctx.flush()
    tgt.flush()
    np.save(out / "article_ids.npy", ids)


def _sample_memory(peak: dict[str, float], stop: threading.Event) -> None:
    """Poll /proc/self/status: peak anonymous memory (the analyzer's own) and file-backed (mapped inputs)."""
    while not stop.is_set():
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile"):
                    peak[key] = max(peak.get(key, 0.0), float(value.split()[0]) / 2**20)  # kB -> GiB
        time.sleep(0.05)


def _run(args: argparse.Namespace) -> None:
    """Child process: load (memory-mapped) and analyze; print JSON timings."""
    from lvmdiag.analyzers.divergence import analyze_divergence
    from lvmdiag.data.readers import load_sequences

    peak: dict[str, float] = {}
    stop = threading.Event()
    threading.Thread(target=_sample_memory, args=(peak, stop), daemon=True).start()

    t0 = time.perf_counter()
    splits = {s: load_sequences(DATA / s, split=s, k=args.k) for s in ("train", "val")}
    t1 = time.perf_counter()
    res = analyze_divergence(splits, n_permutations=args.n_permutations, n_bootstrap=args.n_permutations, rng=0)
    t2 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    stop.set()
    (cmp,) = res.comparisons
    verdict = {t.name.replace("val vs train ", ""): t.pvalue_adjusted for t in res.tests()}
    print(json.dumps({"load_s": t1 - t0, "analyze_s": t2 - t1, "rss_gb": rss, "anon_gb": peak.get("RssAnon"),
                      "file_gb": peak.get("RssFile"), "cpu_s": time.process_time(), "n": list(cmp.n_windows),
                      "units": list(cmp.n_units), "findings": len(res.findings()), "bh_p": verdict}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, default=100_000)
    ap.add_argument("--n-val", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--mean-len", type=int, default=40, help="mean windows per article")
    ap.add_argument("--shift", type=float, default=0.0, help="normalize(x + shift * u) for every val chunk")
    ap.add_argument("--n-permutations", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="keep benchmarks/_data afterwards")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _run(args)
        return
    rng = np.random.default_rng(0)
    u = rng.standard_normal(args.d)
    u /= np.linalg.norm(u)
    try:
        t0 = time.perf_counter()
        _walks(args.n_train, args.d, args.k, args.mean_len, 0, None, 0.0, rng, DATA / "train")
        _walks(args.n_val, args.d, args.k, args.mean_len, 10**7, u, args.shift, rng, DATA / "val")
        gen_s = time.perf_counter() - t0
        cmd = [sys.executable, __file__, "--child", "--k", str(args.k), "--n-permutations", str(args.n_permutations)]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
        if out.returncode != 0:
            sys.exit(f"analyzer failed:\n{out.stderr}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            shutil.rmtree(DATA, ignore_errors=True)
    print(f"# generated in {gen_s:.0f} s; windows {r['n']}, articles {r['units']}; BH p per test:", file=sys.stderr)
    print(json.dumps(r["bh_p"], indent=1), file=sys.stderr)
    print("| lvmdiag diverge (article permutation, B = {b}) | {nt:,} vs {nv:,} | shift {s} | {a:.0f} s wall, {c:.0f} s CPU "
          "| {rss:.2f} GB ({anon:.2f} GB own + {file:.2f} GB mapped input) | {f} of {t} tests significant (BH 0.05) |".format(
              b=args.n_permutations, nt=r["n"][0], nv=r["n"][1], s=args.shift, a=r["analyze_s"], c=r["cpu_s"],
              rss=r["rss_gb"], anon=r["anon_gb"], file=r["file_gb"], f=r["findings"], t=len(r["bh_p"])))


if __name__ == "__main__":
    main()
