"""Benchmark the engine (issue 9): one pass vs the old per-section passes, Dask vs local, ANN vs exact search.

Run by hand, never in the tests (each part in its own process; generated data under
``benchmarks/_data/engine/``, deleted afterwards unless ``--keep``):

    python benchmarks/bench_engine.py single --n 20000 --d 768     # lvmdiag data: engine vs old path
    python benchmarks/bench_engine.py dask --n 20000 --d 768 --shards 8
    python benchmarks/bench_engine.py ann --n-train 200000 --n-val 20000 --d 768
    python benchmarks/bench_engine.py plan --shards 100 --n-per-shard 1000000   # the simulated 10^8 plan
    python benchmarks/bench_engine.py recover --n 2000000 --d 16 --shards 16   # id-less: client vs Dask join

Full scale (issue 9): ``single``/``dask`` at --n 1000000 (18 GB memory-mapped, not in page cache),
``ann`` at --n-train 1000000 --n-val 100000. Data: random-walk articles (adjacent cosine ~0.71,
25 windows each, K = 5), val = other articles (train/val 80/20), article ids given.

- single: ``bare read`` = every block of every split read once through ``iter_blocks``; ``old`` =
  ``load_sequences`` (full validation scan) then the four one-shot analyzers as ``analyze_data`` ran
  them before the engine; ``engine`` = today's ``analyze_data`` (validation fused into the one pass);
  the streaming phase is timed apart from finalize (resampling). Rows read are counted by wrapping
  the memory maps.
- dask: the same splits cut into ``--shards`` .npy shards per split; local runner vs a
  ``LocalCluster(2 workers x 1 thread, processes)``; streaming phase only; bytes of each analyzer's
  merged state (pickled) = what the client receives.
- ann: planted near-duplicates (10% of val chunks are a train chunk plus noise, cos ~0.99); exact
  ``BlockedNearest`` vs ``IVFNearest`` (k-means cells on the queries, BLAS per cell); recall of pairs with
  exact cos >= 0.98 over all queries, both in one run.

- plan: a corpus that exists only as a seed (``_lazy_corpus.py``): ``--shards`` train shards of
  ``--n-per-shard`` windows (val a quarter of that), generated block by block on the Dask workers;
  bias + divergence states through ``run_dask`` on a ``LocalCluster(2 x 1 thread)``, tree-merged on the
  workers, finalized on the client. Reports the client's peak memory (it holds the article labels, 8 bytes
  per window, never a vector), the state each analyzer ships, and the windows counted per split.

- recover: the same splits without ``article_ids.npy``; ``recover_articles`` on the client vs
  ``recover_on_workers`` (the two-round join) on a ``LocalCluster(2 x 1 thread)``: wall time, the
  client's peak memory, and whether labels and diagnostics are identical.

Cold cache: ``--cold`` evicts every data file from the page cache (``posix_fadvise(DONTNEED)``, no root
needed) before the bare read and again before the engine, so both read from disk.

Memory: peak RssAnon above the value after imports (page cache of the maps excluded).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import AnonPeak, drop_from_page_cache  # noqa: E402

DATA = Path(__file__).resolve().parent / "_data" / "engine"
K = 5
ART = 25  # windows per article


def write_split(root: Path, n: int, d: int, first_article: int, seed: int, shards: int = 1) -> list[Path]:
    """Stride-1 windows of random-walk articles, ``shards`` .npy directories (articles may straddle shards)."""
    rng = np.random.default_rng(seed)
    cuts = np.linspace(0, n, shards + 1).astype(int)
    paths = []
    for s, (lo, hi) in enumerate(zip(cuts[:-1].tolist(), cuts[1:].tolist())):
        p = root / (f"shard-{s:03d}" if shards > 1 else "")
        p.mkdir(parents=True, exist_ok=True)
        c = np.lib.format.open_memmap(p / "contexts.npy", "w+", np.float32, (hi - lo, K, d))
        t = np.lib.format.open_memmap(p / "targets.npy", "w+", np.float32, (hi - lo, d))
        ids = (first_article + np.arange(lo, hi) // ART).astype(np.int64)
        for b0 in range(lo, hi, 4096):  # each article is a random walk of ART + K chunks
            b1 = min(b0 + 4096, hi)
            arts = np.unique(ids[b0 - lo : b1 - lo])
            for a in arts:
                rows = np.flatnonzero(ids[b0 - lo : b1 - lo] == a) + b0
                a_rng = np.random.default_rng(int(a) * 7919 + seed)
                walk = np.empty((ART + K, d), np.float32)
                v = a_rng.standard_normal(d).astype(np.float32)
                walk[0] = v / np.linalg.norm(v)
                e = a_rng.standard_normal((ART + K, d)).astype(np.float32)
                for j in range(1, ART + K):
                    step = e[j] - (e[j] @ walk[j - 1]) * walk[j - 1]
                    walk[j] = 0.71 * walk[j - 1] + np.sqrt(1 - 0.71**2) * step / np.linalg.norm(step)
                pos = (rows - int(a - first_article) * ART)  # window index within the article
                for r, w in zip(rows, pos):
                    c[r - lo] = walk[w : w + K]
                    t[r - lo] = walk[w + K]
        c.flush()
        t.flush()
        np.save(p / "article_ids.npy", ids)
        del c, t
        paths.append(p)
    return paths


def gen(n: int, d: int, shards: int = 1) -> dict[str, list[Path]]:
    n_val = n // 4
    out = {"train": write_split(DATA / "train", n, d, 0, 1, shards),
           "val": write_split(DATA / "val", n_val, d, 10**7, 2, max(1, shards // 4))}
    return out


def evict(paths: dict[str, list[Path]]) -> None:
    """Drop the data files from the page cache (a cold read follows)."""
    drop_from_page_cache(f for ps in paths.values() for d_ in ps for f in d_.glob("*.npy"))


def bare_read(paths: dict[str, list[Path]]) -> float:
    from lvmdiag.engine.sources import open_sharded

    t0 = time.perf_counter()
    for name, ps in paths.items():
        for _, c, t in open_sharded(ps, name).iter_blocks(4096):
            float(c.sum()) + float(t.sum())  # iter_blocks returns views of a float32 map: read every byte
    return time.perf_counter() - t0


def single(args: argparse.Namespace) -> None:
    from lvmdiag.analyzers import data_report
    from lvmdiag.analyzers.data_report import analyze_data
    from lvmdiag.data.groups import resolve_groups
    from lvmdiag.data.readers import load_sequences

    paths = gen(args.n, args.d)
    kw = dict(n_permutations=args.perms, n_bootstrap=args.perms)
    if args.cold:
        evict(paths)
    read_s = bare_read(paths)
    if args.cold:
        evict(paths)
    with AnonPeak() as peak:
        c0, t0 = time.process_time(), time.perf_counter()
        rep = analyze_data({n: p[0] for n, p in paths.items()}, **kw)
        eng_total, eng_cpu = time.perf_counter() - t0, time.process_time() - c0
    eng_mem = peak.peak_mb
    stream = rep.engine.stream_seconds
    old = "not run (--skip-old)"
    if not args.skip_old:
        with AnonPeak() as peak:
            t0 = time.perf_counter()
            loaded = {n: load_sequences(p[0], split=n, scan="full") for n, p in paths.items()}
            groups = resolve_groups(list(loaded.values()))
            data_report._run_bias(loaded, groups, "train", args.perms, args.perms, 0.05, 1, None)
            data_report._run_direction(loaded, groups, "train", args.perms, args.perms, 0.05, 2, None)
            data_report._run_divergence(loaded, groups, "train", args.perms, args.perms, 0.05, 3, None)
            data_report._run_leakage(loaded, groups, "train", 0.98, None)
            old = f"total {time.perf_counter() - t0:.1f} s, peak anon {peak.peak_mb:.0f} MB"
    gb = (args.n + args.n // 4) * ((K + 1) * args.d * 4 + 8) / 2**30  # contexts, targets, ids
    arts = -(-args.n // ART) + -(-(args.n // 4) // ART)  # ART windows per article
    print(f"| {args.n:,} + {args.n // 4:,} windows ({arts:,} articles), {args.d}-d ({gb:.2f} GB, "
          f"{'cold: evicted from page cache' if args.cold else 'page cache warm'}) | bare read {read_s:.1f} s "
          f"| engine: stream {stream:.1f} s ({stream / read_s:.2f}x read), finalize {eng_total - stream:.1f} s, total "
          f"{eng_total:.1f} s (process CPU {eng_cpu:.1f} s), peak anon {eng_mem:.0f} MB | old path {old} |")


def dask_vs_local(args: argparse.Namespace) -> None:
    import pickle

    import distributed

    from lvmdiag.analyzers.data_report import SECTIONS, _load_all
    from lvmdiag.data.groups import resolve_groups
    from lvmdiag.engine.data import BLOCK_ROWS, parts_of, plan_sections
    from lvmdiag.engine.dask_runner import run_dask
    from lvmdiag.engine.runner import run_local

    paths = gen(args.n, args.d, args.shards)
    loaded = _load_all(paths, K, False)
    groups = resolve_groups(list(loaded.values()))
    seeds = {s: i for i, s in enumerate(SECTIONS)}
    plan = lambda: plan_sections(loaded, groups, SECTIONS, "train", n_permutations=args.perms,  # noqa: E731
                                 n_bootstrap=args.perms, threshold=0.98, alpha=0.05, seeds=seeds)[0]
    parts = parts_of(loaded, groups, "train")
    if args.cold:  # both runs read from disk (else the second finds what the first left cached)
        evict(paths)
    _, states, local = run_local(parts, plan(), block_rows=BLOCK_ROWS)
    sizes = {k: len(pickle.dumps(v)) for k, v in states.items()}
    del states
    if args.cold:
        evict(paths)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        _, _, dsk = run_dask(parts, plan(), block_rows=BLOCK_ROWS, scheduler=cl.scheduler_address)
    print(f"| {args.n:,} + {args.n // 4:,} windows, {args.d}-d, {len(parts)} parts"
          f"{', cold: evicted before each run' if args.cold else ''} | local stream {local.stream_seconds:.1f} s "
          f"| dask 2 workers stream {dsk.stream_seconds:.1f} s ({dsk.stream_seconds / local.stream_seconds:.2f}x) | "
          + ", ".join(f"{k} {v / 2**20:.1f} MB" for k, v in sizes.items()) + " |")


def ann(args: argparse.Namespace) -> None:
    from lvmdiag.stats.ann import IVFNearest
    from lvmdiag.stats.near_duplicates import BlockedNearest, normalize_rows

    rng = np.random.default_rng(0)
    refs = normalize_rows(rng.standard_normal((args.n_train, args.d), dtype=np.float32))[0]
    q = normalize_rows(rng.standard_normal((args.n_val, args.d), dtype=np.float32))[0]
    near = rng.choice(args.n_val, args.n_val // 10, replace=False)
    q[near] = normalize_rows(refs[rng.integers(0, args.n_train, near.size)]
                             + 0.12 / np.sqrt(args.d) * rng.standard_normal((near.size, args.d), dtype=np.float32))[0]
    # the exact search is one BLAS product per reference block, linear in the queries: at full scale
    # (10^6 x 10^5: ~1.5e14 flops, over an hour on 2 cores) it is timed on --exact-queries random queries
    # and scaled by n_val / exact_queries; recall is measured on those queries (all of them when equal)
    sub = (np.sort(rng.choice(args.n_val, args.exact_queries, replace=False))
           if 0 < args.exact_queries < args.n_val else np.arange(args.n_val))
    t0 = time.perf_counter()
    ex = BlockedNearest(q[sub])
    for s in range(0, args.n_train, 8192):
        ex.update(refs[s : s + 8192], np.arange(s, min(s + 8192, args.n_train)))
    e_cos, _ = ex.result()
    t_exact = (time.perf_counter() - t0) * args.n_val / sub.size
    t0 = time.perf_counter()
    ivf = IVFNearest(q)
    for s in range(0, args.n_train, 8192):
        ivf.update(refs[s : s + 8192], np.arange(s, min(s + 8192, args.n_train)))
    a_cos, _ = ivf.result()
    t_ann = time.perf_counter() - t0
    a_cos = a_cos[sub]
    pairs = e_cos >= 0.98
    rec = float((a_cos[pairs] >= 0.98).mean()) if pairs.any() else float("nan")
    how = ("" if sub.size == args.n_val else
           f" (timed on {sub.size:,} random queries x {args.n_val / sub.size:g}: linear in the queries)")
    print(f"| {args.n_train:,} train x {args.n_val:,} val chunks, {args.d}-d | exact {t_exact:.1f} s{how} | ann (cells "
          f"{ivf.nprobe}/{ivf.nlist}, incl. k-means and the 2000-query exact sample) {t_ann:.1f} s ({t_exact / t_ann:.1f}x faster) | recall at cos >= 0.98"
          f"{'' if sub.size == args.n_val else ' (those queries)'}: "
          f"{int((a_cos[pairs] >= 0.98).sum())} of {int(pairs.sum())} = {rec:.4f} |")


def plan(args: argparse.Namespace) -> None:
    import distributed

    from _lazy_corpus import LazySplit
    from lvmdiag.data.groups import resolve_groups
    from lvmdiag.engine.block import Part
    from lvmdiag.engine.dask_runner import run_dask
    from lvmdiag.engine.data import BLOCK_ROWS, plan_sections
    from lvmdiag.engine.runner import finalize_all

    n_train = args.shards * args.n_per_shard
    splits = {"train": LazySplit("train", 1, n_train, K, args.d),
              "val": LazySplit("val", 2, n_train // 4, K, args.d, first_article=10**9)}
    with AnonPeak() as client:
        t0 = time.perf_counter()
        groups = resolve_groups(list(splits.values()))
        analyzers, skipped = plan_sections(splits, groups, ["bias", "divergence"], "train", n_permutations=args.perms,
                                           n_bootstrap=args.perms, threshold=0.98, alpha=0.05,
                                           seeds={"bias": 0, "divergence": 1})
        assert not skipped, skipped
        parts = []
        for (name, sp), lab in zip(splits.items(), groups.labels):
            for sh in sp.shards(args.shards if name == "train" else max(1, args.shards // 4)):
                parts.append(Part(name, sh.start, sh, lab[sh.start : sh.start + sh.n], None))
        t_plan = time.perf_counter() - t0
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cl:
            prepared, states, summ = run_dask(parts, analyzers, block_rows=BLOCK_ROWS, scheduler=cl.scheduler_address)
        t0 = time.perf_counter()
        results, failed = finalize_all(prepared, states, splits)
        t_fin = time.perf_counter() - t0
    assert not failed, failed
    rows = ", ".join(f"{k} {v:,}" for k, v in summ.rows_read.items())
    sizes = ", ".join(f"{k} {v / 2**20:.1f} MB" for k, v in summ.state_bytes.items())
    print(f"| {len(parts)} lazy shards, {n_train + n_train // 4:,} windows, {args.d}-d "
          f"({(n_train + n_train // 4) * (K + 1) * args.d * 4 / 2**30:.1f} GB if stored) | plan {t_plan:.1f} s, stream "
          f"(Dask, 2 workers) {summ.stream_seconds:.1f} s, finalize {t_fin:.1f} s | windows read: {rows} | "
          f"states shipped: {sizes} | client peak anon {client.peak_mb:.0f} MB |")


def recover(args: argparse.Namespace) -> None:
    """Id-less shards: article recovery on the client (``recover_articles``) vs the two-round join on Dask."""
    import distributed

    from lvmdiag.data.recover import recover_articles
    from lvmdiag.engine.dask_recovery import recover_on_workers
    from lvmdiag.engine.sources import open_sharded

    paths = gen(args.n, args.d, args.shards)
    rng = np.random.default_rng(0)
    for ps in paths.values():
        if args.shuffle:  # every article's windows spread over the split's shards (a shuffled training set)
            c = np.concatenate([np.load(p / "contexts.npy") for p in ps])
            t = np.concatenate([np.load(p / "targets.npy") for p in ps])
            order = rng.permutation(len(c))
            cuts = np.linspace(0, len(c), len(ps) + 1).astype(int)
            for p, lo, hi in zip(ps, cuts[:-1], cuts[1:]):
                np.save(p / "contexts.npy", c[order[lo:hi]])
                np.save(p / "targets.npy", t[order[lo:hi]])
            del c, t
        for p in ps:
            (p / "article_ids.npy").unlink()
    sources = [open_sharded(ps, name) for name, ps in paths.items()]
    with AnonPeak() as one:
        t0 = time.perf_counter()
        want = recover_articles(sources)
        t_one = time.perf_counter() - t0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            distributed.Client(cl) as client:
        with AnonPeak() as dist:
            t0 = time.perf_counter()
            got = recover_on_workers(sources, client)
            t_dist = time.perf_counter() - t0
    same = got.to_dict() == want.to_dict() and all(np.array_equal(a, b) for a, b in zip(got.labels, want.labels))
    n = sum(s.n for s in sources)
    print(f"| {n:,} windows, {args.d}-d, {sum(len(ps) for ps in paths.values())} shards"
          f"{' (windows shuffled across shards)' if args.shuffle else ' (article order)'}, {want.n_articles:,} articles | "
          f"client-side: {t_one:.1f} s, peak anon {one.peak_mb:.0f} MB | two-round join on Dask (2 workers): "
          f"{t_dist:.1f} s, client peak anon {dist.peak_mb:.0f} MB | identical: {same} |")
    assert same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["single", "dask", "ann", "plan", "recover"])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--perms", type=int, default=50)
    ap.add_argument("--n-train", type=int, default=200_000)
    ap.add_argument("--n-val", type=int, default=20_000)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--cold", action="store_true", help="evict the data files from the page cache before reads")
    ap.add_argument("--shuffle", action="store_true", help="recover: spread each article's windows over the shards")
    ap.add_argument("--skip-old", action="store_true", help="single: do not time the pre-engine path")
    ap.add_argument("--n-per-shard", type=int, default=10_000)
    ap.add_argument("--exact-queries", type=int, default=0, help="ann: time the exact search on this many queries (0 = all)")
    args = ap.parse_args()
    shutil.rmtree(DATA, ignore_errors=True)
    try:
        {"single": single, "dask": dask_vs_local, "ann": ann, "plan": plan, "recover": recover}[args.what](args)
    finally:
        if not args.keep:
            shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    main()
