"""Benchmark `analyze_leakage` at scale: 10^5 train vs 10^4 val windows of 768-d (run by hand, not in tests).

    .venv/bin/python benchmarks/bench_leakage.py                      # both split modes, both paths
    .venv/bin/python benchmarks/bench_leakage.py --n-train 20000 --n-val 2000   # quick look

Data: random-walk articles (adjacent cosine ~0.71, ~25 windows per article), written block by block
as memory-mapped ``.npy`` directories under ``benchmarks/_data/leakage/`` (no article ids: the arXiv
form), deleted afterwards unless ``--keep``. Two split modes:

- ``article``: train and val hold different articles (no leakage; every val chunk enters the
  blocked near-duplicate search, the expensive case);
- ``window``: one pool of stride-1 windows assigned to train/val at random by window (the upstream
  mistake; almost every val chunk is an exact copy, so few chunks reach the search).

Paths, each in a fresh subprocess:

- ``analyzer``: ``analyze_leakage`` with the groups already known (one label per window), i.e. the
  analyzer's own passes: hashing, de-duplication, blocked search;
- ``cli-path``: what ``lvmdiag leakage --train DIR --val DIR`` runs: ``load_sequences`` (validation
  scan) + article recovery by the data layer + ``analyze_leakage``.

Floor: the blocked search must multiply every searched val chunk with every distinct train chunk
(2 x queries x train chunks x D flops); the "exact-search floor" column divides that by the float32
matrix-product rate measured in the same process just before the run (the machine is shared, so
absolute seconds vary; the ratio time / floor does not).

Memory: a background thread samples ``RssAnon`` (anonymous memory, i.e. the program's own, not the
page cache of the memory maps) every 5 ms; the table reports its peak minus the value after imports,
and ``VmHWM`` (peak total RSS, mapped file pages included). Prints markdown table rows.
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

import numpy as np

DATA = Path(__file__).resolve().parent / "_data" / "leakage"
K = 5


def _article(length: int, d: int, rng: np.random.Generator, rho: float = 0.71) -> np.ndarray:
    x = np.empty((length, d), np.float32)
    v = rng.standard_normal(d)
    x[0] = v / np.linalg.norm(v)
    e = rng.standard_normal((length, d)).astype(np.float32)
    for t in range(1, length):
        step = e[t] - (e[t] @ x[t - 1]) * x[t - 1]
        x[t] = rho * x[t - 1] + np.sqrt(1 - rho**2) * step / np.linalg.norm(step)
    return x


def generate(mode: str, n_train: int, n_val: int, d: int, seed: int = 0) -> tuple[Path, Path]:
    """Write train/ and val/ .npy directories for ``mode`` ("article" or "window")."""
    rng = np.random.default_rng(seed)
    total = n_train + n_val
    lengths, w = [], 0
    while w < total:
        length = int(rng.integers(12, 40)) + K + 1
        lengths.append(length)
        w += length - K
    starts = np.cumsum([0] + [n - K for n in lengths])
    if mode == "window":
        which = np.zeros(w, bool)
        which[rng.choice(w, size=n_val, replace=False)] = True
    else:  # whole articles to val until n_val windows
        art_val = np.zeros(len(lengths), bool)
        taken = 0
        for a in rng.permutation(len(lengths)):
            if starts[a + 1] - starts[a] + taken <= n_val:
                art_val[a] = True
                taken += int(starts[a + 1] - starts[a])
        which = np.repeat(art_val, np.diff(starts))
    out = {}
    for name, mask in (("train", ~which), ("val", which)):
        p = DATA / mode / name
        p.mkdir(parents=True, exist_ok=True)
        n = int(mask.sum())
        out[name] = (np.lib.format.open_memmap(p / "contexts.npy", "w+", np.float32, (n, K, d)),
                     np.lib.format.open_memmap(p / "targets.npy", "w+", np.float32, (n, d)), [0])
    for a, length in enumerate(lengths):
        x = _article(length, d, rng)
        win = np.lib.stride_tricks.sliding_window_view(x, (K + 1, d))[:, 0]  # (length-K, K+1, d)
        m = which[starts[a]:starts[a + 1]]
        for name, sel in (("train", ~m), ("val", m)):
            ctx, tgt, row = out[name]
            b = int(sel.sum())
            ctx[row[0]:row[0] + b] = win[sel, :K]
            tgt[row[0]:row[0] + b] = win[sel, K]
            row[0] += b
    for ctx, tgt, _ in out.values():
        ctx.flush()
        tgt.flush()
    return DATA / mode / "train", DATA / mode / "val"


# ---------------------------------------------------------------------------------------------
def _rss_anon() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def _hwm() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def run_one(path: str, train: str, val: str) -> dict:
    """Inside the subprocess: time one path and sample anonymous memory."""
    from lvmdiag.analyzers.leakage import analyze_leakage
    from lvmdiag.data.groups import resolve_groups
    from lvmdiag.data.readers import load_sequences
    from lvmdiag.data.sequences import SequenceSet

    base = _rss_anon()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_anon())
            time.sleep(0.005)

    # the machine's float32 matrix-product rate right now (the machine is shared: compare ratios)
    a = np.ones((2048, 768), np.float32)
    b = np.ones((768, 4096), np.float32)
    t0 = time.perf_counter()
    for _ in range(5):
        a @ b
    gflops = 5 * 2 * 2048 * 768 * 4096 / (time.perf_counter() - t0) / 1e9
    del a, b
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    if path == "analyzer":
        sets = {n: SequenceSet(np.load(Path(p) / "contexts.npy", mmap_mode="r"),
                               np.load(Path(p) / "targets.npy", mmap_mode="r"), split=n)
                for n, p in (("train", train), ("val", val))}
        # groups already known: one label per window (the analyzer's own cost only)
        groups = [np.arange(sets["train"].n), sets["train"].n + np.arange(sets["val"].n)]
        res = analyze_leakage(sets, groups=groups)
        t_groups = 0.0
    else:
        sets = {"train": load_sequences(train, split="train"), "val": load_sequences(val, split="val")}
        t1 = time.perf_counter()
        groups = resolve_groups(list(sets.values()))
        t_groups = time.perf_counter() - t1
        res = analyze_leakage(sets, groups=groups)
    elapsed = time.perf_counter() - t0
    stop.set()
    th.join()
    v = res.split("val")
    search_flops = 2.0 * sum(v.cos_hist) * res.n_reference_chunks * sets["train"].d
    return {"seconds": elapsed, "gflops": gflops, "floor": search_flops / (gflops * 1e9), "groups_seconds": t_groups, "peak_anon": peak[0] - base, "hwm": _hwm(),
            "n_train": sets["train"].n, "n_val": v.n_windows, "share_shared_chunk": v.share_shared_chunk,
            "n_near": v.n_near_chunks, "n_queries": sum(v.cos_hist), "group_method": res.group_method}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=100_000)
    ap.add_argument("--n-val", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--modes", default="article,window")
    ap.add_argument("--paths", default="analyzer,cli-path")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--_run", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._run:
        print(json.dumps(run_one(*args._run)))
        return
    gb = lambda b: f"{b / 2**30:.2f} GB"  # noqa: E731
    print("| split mode | path | train × val windows | D | time | of which groups | exact-search floor | peak anon RSS | "
          "VmHWM (maps incl.) | val windows with shared chunk | val chunks searched |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    try:
        for mode in args.modes.split(","):
            t0 = time.perf_counter()
            tr, va = generate(mode, args.n_train, args.n_val, args.d)
            gen = time.perf_counter() - t0
            print(f"<!-- generated {mode} data in {gen:.0f} s -->", file=sys.stderr)
            for path in args.paths.split(","):
                cmd = [sys.executable, __file__, "--_run", path, str(tr), str(va)]
                r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                print(f"| {mode} | {path} | {r['n_train']:,} × {r['n_val']:,} | {args.d} | {r['seconds']:.1f} s | "
                      f"{r['groups_seconds']:.1f} s ({r['group_method']}) | {r['floor']:.1f} s at {r['gflops']:.0f} GFLOP/s | "
                      f"{gb(r['peak_anon'])} | {gb(r['hwm'])} | "
                      f"{100 * r['share_shared_chunk']:.1f}% | {r['n_queries']:,} |", flush=True)
            if not args.keep:
                shutil.rmtree(DATA / mode, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    main()
