"""Benchmark `lvmdiag bias` against the physical floor (one bare pass over every byte) and a hand-written einsum.

Usage (run by hand, never in tests)::

    python benchmarks/bench_bias.py --n 100000            # 1.8 GB, fits in the page cache
    python benchmarks/bench_bias.py --n 1000000 --repeats 1   # 18.4 GB; mind the disk (df -h)

It writes a memory-mapped ``.npy`` directory (``contexts.npy`` (N, K, D), ``targets.npy`` (N, D),
``article_ids.npy``, ~30 windows per article) under ``benchmarks/_data/`` in blocks, then runs each
method in a fresh subprocess and prints a markdown table. The data is deleted afterwards unless
``--keep``.

Methods
-------
floor        bare numpy: ``block.sum()`` over every block of both memory maps (reads each byte once)
analyze      ``analyze_bias`` on a SequenceSet built directly on the memory maps, ids given
             (the analyzer's own pass plus the article bootstrap, 1000 resamples)
cli-path     what ``lvmdiag bias --train DIR`` runs: ``load_sequences(DIR)`` (validation scan of
             every row: NaN/zero/norm/duplicates) + ``analyze_bias`` (groups resolved from the ids)
einsum       the hand-written numpy users would write: per block, normalise with ``np.linalg.norm``
             then ``einsum('nkd,nd->nk')`` (position profile only; no CI, no lags, no baselines)

Memory "beyond the map": each method runs in its own process; a background thread samples
``RssAnon`` from ``/proc/self/status`` every 2 ms and we report the peak minus the value just
before the method starts (after imports). File-backed pages of the memory map (``RssFile``) are
excluded on purpose: the kernel can drop them at any time, they are the page cache, not the
program's memory. ``VmHWM`` (peak total RSS, map included) is reported beside it.

Cache: the page cache cannot be dropped on this machine (no root), so the state is reported as
measured: ``Cached`` from /proc/meminfo before each run, and whether the data fits in it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import AnonPeak, drop_from_page_cache, meminfo_kb, status_kb  # noqa: E402

HERE = Path(__file__).resolve().parent
WINDOWS_PER_ARTICLE = 30


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def generate(path: Path, n: int, k: int, d: int, block: int = 16384, seed: int = 0) -> None:
    """Write random-walk windows (adjacent cosine ~0.7) as .npy memory maps, one block at a time."""
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ctx = np.lib.format.open_memmap(path / "contexts.npy", mode="w+", dtype=np.float32, shape=(n, k, d))
    tgt = np.lib.format.open_memmap(path / "targets.npy", mode="w+", dtype=np.float32, shape=(n, d))
    rho = 0.7
    for start in range(0, n, block):
        b = min(block, n - start)
        x = rng.standard_normal((b, k + 1, d), dtype=np.float32)  # (B, K+1, D)
        x[:, 0] /= np.linalg.norm(x[:, 0], axis=-1, keepdims=True)
        for i in range(1, k + 1):
            e = x[:, i] / np.linalg.norm(x[:, i], axis=-1, keepdims=True)
            step = rho * x[:, i - 1] + np.sqrt(1 - rho**2) * e
            x[:, i] = step / np.linalg.norm(step, axis=-1, keepdims=True)
        ctx[start : start + b] = x[:, :k]
        tgt[start : start + b] = x[:, k]
    ctx.flush()
    tgt.flush()
    del ctx, tgt
    np.save(path / "article_ids.npy", np.arange(n, dtype=np.int64) // WINDOWS_PER_ARTICLE)


# ---------------------------------------------------------------------------------------------
# measurement (runs in a child process)
# ---------------------------------------------------------------------------------------------




def _floor(path: Path, block_rows: int) -> float:
    ctx = np.load(path / "contexts.npy", mmap_mode="r")
    tgt = np.load(path / "targets.npy", mmap_mode="r")
    total = 0.0
    for s in range(0, ctx.shape[0], block_rows):
        total += float(ctx[s : s + block_rows].sum()) + float(tgt[s : s + block_rows].sum())
    return total


def _einsum(path: Path, block_rows: int) -> np.ndarray:
    ctx = np.load(path / "contexts.npy", mmap_mode="r")
    tgt = np.load(path / "targets.npy", mmap_mode="r")
    acc = np.zeros(ctx.shape[1])
    for s in range(0, ctx.shape[0], block_rows):
        c = np.asarray(ctx[s : s + block_rows])
        t = np.asarray(tgt[s : s + block_rows])
        cn = c / np.linalg.norm(c, axis=-1, keepdims=True)
        tn = t / np.linalg.norm(t, axis=-1, keepdims=True)
        acc += np.einsum("nkd,nd->nk", cn, tn).sum(0, dtype=np.float64)
    return acc / ctx.shape[0]


def _analyze(path: Path, block_rows: int, n_resamples: int) -> float:
    from lvmdiag.analyzers.temporal_bias import analyze_bias
    from lvmdiag.data.sequences import SequenceSet

    seqs = SequenceSet(
        np.load(path / "contexts.npy", mmap_mode="r"),
        np.load(path / "targets.npy", mmap_mode="r"),
        article_ids=np.load(path / "article_ids.npy"),
        id_source="given",
        source=str(path),
        fmt="npy_dir",
    )
    return analyze_bias(seqs, groups=seqs.article_ids, block_rows=block_rows, n_resamples=n_resamples).delta.value


def _cli_path(path: Path, block_rows: int, n_resamples: int) -> float:
    import warnings

    from lvmdiag.analyzers.temporal_bias import analyze_bias
    from lvmdiag.data.readers import load_sequences

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seqs = load_sequences(path, split="train")
        return analyze_bias(seqs, block_rows=block_rows, n_resamples=n_resamples).delta.value


def child(method: str, path: Path, block_rows: int, n_resamples: int) -> None:
    import lvmdiag.analyzers.temporal_bias  # noqa: F401  imports before the baseline sample
    import lvmdiag.data.readers  # noqa: F401

    cached_before = meminfo_kb("Cached") / 1024**2
    with AnonPeak() as mem:
        t0 = time.perf_counter()
        if method == "floor":
            _floor(path, block_rows)
        elif method == "einsum":
            _einsum(path, block_rows)
        elif method == "analyze":
            _analyze(path, block_rows, n_resamples)
        elif method == "cli-path":
            _cli_path(path, block_rows, n_resamples)
        else:
            raise SystemExit(f"unknown method {method}")
        seconds = time.perf_counter() - t0
    print(json.dumps({"method": method, "seconds": seconds, "anon_peak_mb": mem.peak_mb,
                      "vmhwm_mb": status_kb("VmHWM") / 1024, "cached_gb_before": cached_before}))


# ---------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------
def evict(path: Path) -> None:
    """Drop this data's pages from the page cache (a cold read follows)."""
    drop_from_page_cache(path.glob("*.npy"))


def run_child(method: str, path: Path, block_rows: int, n_resamples: int, cold: bool = False) -> dict:
    if cold:
        evict(path)
    out = subprocess.run(
        [sys.executable, __file__, "--child", method, "--data-dir", str(path), "--block-rows", str(block_rows),
         "--n-resamples", str(n_resamples)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="windows (1e6 = 18.4 GB at K=5, D=768)")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--block-rows", type=int, default=8192)
    ap.add_argument("--n-resamples", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3, help="runs per method (median reported)")
    ap.add_argument("--methods", default="floor,analyze,cli-path,einsum")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    ap.add_argument("--cold", action="store_true",
                    help="evict the data from the page cache before every run (posix_fadvise DONTNEED)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data_dir, args.block_rows, args.n_resamples)
        return

    path = args.data_dir or HERE / "_data" / f"bias_{args.n}"
    nbytes = args.n * (args.k + 1) * args.d * 4
    if not (path / "contexts.npy").exists():
        free = shutil.disk_usage(HERE).free
        if free < nbytes * 1.1:
            raise SystemExit(f"need {nbytes / 1e9:.1f} GB free for the data; {free / 1e9:.1f} GB free.")
        t0 = time.perf_counter()
        generate(path, args.n, args.k, args.d)
        print(f"generated {nbytes / 1e9:.2f} GB in {time.perf_counter() - t0:.0f} s at {path}", file=sys.stderr)
    mem_total = meminfo_kb("MemTotal") / 1024**2
    methods = args.methods.split(",")
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    try:
        for rep in range(args.repeats):  # interleaved, so cache state drifts evenly over methods
            for m in methods:
                r = run_child(m, path, args.block_rows, args.n_resamples, args.cold)
                runs[m].append(r)
                print(f"rep {rep} {m}: {r}", file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(path, ignore_errors=True)

    floor_t = statistics.median(r["seconds"] for r in runs["floor"]) if "floor" in runs else float("nan")
    print(f"\n{args.n:,} windows × K={args.k} × D={args.d} float32 = {nbytes / 1e9:.2f} GB as memory-mapped .npy; "
          f"block_rows={args.block_rows}, n_resamples={args.n_resamples}; median of {args.repeats}; "
          f"RAM {mem_total:.0f} GB, page cache before the first run {runs[methods[0]][0]['cached_gb_before']:.1f} GB; "
          f"{'cold: the data was evicted from the page cache before every run' if args.cold else 'warm: the data stays in the page cache between runs when it fits'}.\n")
    print("| method | seconds | windows/s | GB/s | × floor time | peak RssAnon beyond the map | peak RSS incl. map |")
    print("|---|---|---|---|---|---|---|")
    for m in methods:
        t = statistics.median(r["seconds"] for r in runs[m])
        anon = max(r["anon_peak_mb"] for r in runs[m])
        hwm = max(r["vmhwm_mb"] for r in runs[m])
        print(f"| {m} | {t:.2f} | {args.n / t:,.0f} | {nbytes / t / 1e9:.2f} | {t / floor_t:.2f} | "
              f"{anon:.0f} MB | {hwm / 1024:.2f} GB |")


if __name__ == "__main__":
    main()
