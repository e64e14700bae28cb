"""Benchmark `lvmdiag resplit`: speed and memory on a memory-mapped .npy directory, and split quality.

Usage (run by hand, never in tests)::

    python benchmarks/bench_resplit.py --n 100000                 # 768-d: 1.8 GB in, 1.8 GB out
    python benchmarks/bench_resplit.py --n 1000000 --d 128        # 10^6 windows: 3.1 GB in, 3.1 GB out
    python benchmarks/bench_resplit.py --quality-only             # the group-split table only (seconds)

Data: stride-1 windows (K = 5) of articles with lognormal sizes (median 100 windows, sigma 1),
chunk vectors an AR(1) walk (adjacent cosine ~0.7), written block by block as ``contexts.npy``,
``targets.npy``, ``article_ids.npy`` under ``benchmarks/_data/`` and deleted afterwards.

Methods (each in a fresh subprocess):

resplit   ``lvmdiag.resplit.resplit(DIR, stratify=length,delta, analyses=False)``: validation scan
          (the reader), one scan pass (hashes, per-article Delta), assignment, streamed write of
          every split with ``open_memmap``, read-back verification of every guarantee, manifest
resplit-analyses  the same with the report's analyses (bias before/after, divergence, leakage);
          not in the default ``--methods``
naive     what users write: ``np.load`` every array into memory, shuffle article ids, cut by
          article count (GroupShuffleSplit-like), fancy-index and ``np.save`` each split; no
          stratification, no verification

Memory: peak ``RssAnon`` above the value after imports, sampled every 2 ms in a thread (the page
cache of the memory maps is file-backed and excluded), and ``VmHWM`` (peak total RSS).

Quality (pure numpy, the anchor benchmark's setting): target val share 0.2 by window count,
1,000 articles with lognormal sizes (sigma 1, 200 windows median, ~330k windows) and the stress
case 100 articles, sigma 2; 50 seeds; strata = article-size quartiles.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import AnonPeak, status_kb  # noqa: E402

HERE = Path(__file__).resolve().parent
K = 5


# ---------------------------------------------------------------------------------------------
# data


def generate(path: Path, n: int, d: int, seed: int = 0, batch_windows: int = 4096) -> int:
    """Write ~n stride-1 windows of lognormal-length articles as .npy memory maps; returns articles."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    sizes = []
    total = 0
    while total < n:
        w = int(max(1, round(np.exp(rng.normal(0, 1)) * 100)))
        w = min(w, n - total)
        sizes.append(w)
        total += w
    sizes = np.asarray(sizes)
    path.mkdir(parents=True, exist_ok=True)
    ctx = np.lib.format.open_memmap(path / "contexts.npy", mode="w+", dtype=np.float32, shape=(n, K, d))
    tgt = np.lib.format.open_memmap(path / "targets.npy", mode="w+", dtype=np.float32, shape=(n, d))
    ids = np.lib.format.open_memmap(path / "article_ids.npy", mode="w+", dtype=np.int64, shape=(n,))
    rho = 0.7
    at = 0
    a = 0
    while a < sizes.size:
        # a batch of whole articles
        b_end = a
        w_batch = 0
        while b_end < sizes.size and (w_batch == 0 or w_batch + sizes[b_end] <= batch_windows):
            w_batch += sizes[b_end]
            b_end += 1
        art_sizes = sizes[a:b_end]
        chunks_per = art_sizes + K
        noise = rng.standard_normal((int(chunks_per.sum()), d)).astype(np.float32) / np.sqrt(d)
        x = lfilter([np.sqrt(1 - rho**2)], [1.0, -rho], noise, axis=0).astype(np.float32)  # (C, D) AR(1)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        starts = np.r_[0, np.cumsum(chunks_per)[:-1]]
        win_start = np.concatenate([s + np.arange(w) for s, w in zip(starts, art_sizes)])  # (W,)
        span = win_start[:, None] + np.arange(K + 1)[None, :]  # (W, K+1)
        stop = at + win_start.size
        ctx[at:stop] = x[span[:, :K]]
        tgt[at:stop] = x[span[:, K]]
        ids[at:stop] = np.repeat(np.arange(a, b_end), art_sizes)
        at = stop
        a = b_end
    for m in (ctx, tgt, ids):
        m.flush()
    del ctx, tgt, ids
    return int(sizes.size)


# ---------------------------------------------------------------------------------------------
# measurement (child process)





def _naive(path: Path, out: Path, seed: int) -> None:
    ctx = np.load(path / "contexts.npy")
    tgt = np.load(path / "targets.npy")
    ids = np.load(path / "article_ids.npy")
    uniq = np.unique(ids)
    perm = np.random.default_rng(seed).permutation(uniq)
    cuts = np.round(np.cumsum([0.8, 0.1]) * uniq.size).astype(int)
    parts = np.split(perm, cuts)
    out.mkdir(parents=True)
    for name, arts in zip(("train", "val", "ood"), parts):
        rows = np.flatnonzero(np.isin(ids, arts))
        d = out / name
        d.mkdir()
        np.save(d / "contexts.npy", ctx[rows])
        np.save(d / "targets.npy", tgt[rows])
        np.save(d / "article_ids.npy", ids[rows])


def child(method: str, path: Path, out: Path, seed: int) -> None:
    import warnings

    import lvmdiag.resplit  # noqa: F401  imports before the baseline sample

    info: dict = {}
    with AnonPeak() as mem:
        t0 = time.perf_counter()
        if method in ("resplit", "resplit-analyses"):
            from lvmdiag.resplit import resplit

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = resplit([path], out_dir=out, seed=seed, stratify=("length", "delta"),
                              analyses=method == "resplit-analyses", n_resamples=200)
            info = {"achieved": res.achieved, "tolerance": res.tolerance, "passed": res.verification.passed,
                    "strata": res.strata.n_strata, "max_stratum_dev": res.assignment.max_stratum_deviation,
                    "method": res.assignment.method}
        elif method == "naive":
            _naive(path, out, seed)
        else:
            raise SystemExit(f"unknown method {method}")
        seconds = time.perf_counter() - t0
    print(json.dumps({"method": method, "seconds": seconds, "anon_peak_mb": mem.peak_mb,
                      "vmhwm_mb": status_kb("VmHWM") / 1024, **info}))


def run_child(method: str, path: Path, out: Path, seed: int) -> dict:
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, __file__, "--child", method, "--path", str(path), "--out", str(out), "--seed", str(seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{method} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)
    return result


# ---------------------------------------------------------------------------------------------
# quality (group-split table)


def quality() -> str:
    sys.path.insert(0, str(HERE.parent))
    from lvmdiag.resplit.assign import assign_groups, plain_group_split

    rows = []
    for label, g, sigma in (("1,000 articles, σ=1", 1000, 1.0), ("stress: 100 articles, σ=2", 100, 2.0)):
        res = {"ours": [], "plain": []}
        for seed in range(50):
            rng = np.random.default_rng(seed)
            sizes = np.maximum(1, np.round(np.exp(rng.normal(0, sigma, g)) * 200)).astype(np.int64)
            strata = np.searchsorted(np.quantile(sizes, [0.25, 0.5, 0.75]), sizes, side="right")
            for name, fn in (("ours", assign_groups), ("plain", plain_group_split)):
                a = fn(sizes, (0.8, 0.2), strata, rng=seed)
                res[name].append((a.achieved[1], a.max_stratum_deviation, a.tolerance, a.within_tolerance))
        for name, title in (("ours", "lvmdiag StratifiedGroupRatioSplit / resplit"), ("plain", "plain group shuffle (GroupShuffleSplit-like, numpy)")):
            arr = np.array([r[:3] for r in res[name]])
            within = sum(r[3] for r in res[name])
            rows.append(f"| {label} | {title} | {arr[:, 0].min():.5f} / {arr[:, 0].max():.5f} | {arr[:, 1].max():.5f} | "
                        f"{np.median(arr[:, 2]):.4f} | {within}/50 |")
    head = ("| setting | splitter | achieved val share min / max | worst per-stratum deviation | "
            "stated tolerance (median) | seeds within tolerance |\n|---|---|---|---|---|---|")
    return head + "\n" + "\n".join(rows)


# ---------------------------------------------------------------------------------------------
# driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="resplit,naive")
    ap.add_argument("--quality-only", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    ap.add_argument("--child")
    ap.add_argument("--path")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.child:
        child(args.child, Path(args.path), Path(args.out), args.seed)
        return
    print("## Group splits (target val share 0.2 by window count, 50 seeds, strata = size quartiles)\n")
    print(quality())
    if args.quality_only:
        return
    data = HERE / "_data" / f"resplit_n{args.n}_d{args.d}"
    out = HERE / "_data" / f"resplit_out_n{args.n}_d{args.d}"
    try:
        if not (data / "contexts.npy").exists():
            t0 = time.perf_counter()
            n_art = generate(data, args.n, args.d, seed=args.seed)
            print(f"\ngenerated {args.n} windows, {n_art} articles, D={args.d} in {time.perf_counter() - t0:.1f} s")
        gb = sum(f.stat().st_size for f in data.iterdir()) / 1e9
        print(f"\n## resplit of {args.n:,} windows (K={K}, D={args.d}, {gb:.2f} GB .npy dir, memory-mapped)\n")
        print("| method | seconds | windows/s | peak RssAnon above imports | VmHWM | notes |\n|---|---|---|---|---|---|")
        for method in args.methods.split(","):
            r = run_child(method, data, out, args.seed)
            notes = ""
            if method.startswith("resplit"):
                notes = ("with the report's bias/divergence/leakage analyses (200 resamples); " if method != "resplit" else "") + ( (f"achieved {', '.join(f'{x:.4f}' for x in r['achieved'])} (tol {r['tolerance']:.4f}); "
                         f"{r['strata']} strata, worst stratum dev {r['max_stratum_dev']:.4f}; guarantees "
                         f"{'PASS' if r['passed'] else 'FAIL'}"))
            else:
                notes = "no stratification, no verification, whole arrays in memory"
            print(f"| {method} | {r['seconds']:.1f} | {args.n / r['seconds']:,.0f} | {r['anon_peak_mb']:,.0f} MB | "
                  f"{r['vmhwm_mb']:,.0f} MB | {notes} |")
    finally:
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
