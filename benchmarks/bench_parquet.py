"""Benchmark `lvmdiag bias` streaming a Parquet article store against a bare pyarrow read of it.

Usage (run by hand, never in tests)::

    python benchmarks/bench_parquet.py --n 100000                 # 0.3 GB corpus
    python benchmarks/bench_parquet.py --n 1000000                # 3.1 GB corpus (the issue's scale)
    python benchmarks/bench_parquet.py --n 1000000 --cache cold   # the file dropped from the page cache before each run
    python benchmarks/bench_parquet.py --layout windows --n 20000 # 0.37 GB window file

``--layout windows`` writes a window file instead (``contexts`` K x D and ``targets`` D per row,
``article_id``) with lvmdiag's own Parquet writer (row groups of ~64 MiB); the floor then reads
both vector columns, and ``npz-cli-path`` is skipped.

It writes an article store as one Parquet file under ``benchmarks/_data/`` (``embedding`` as
``fixed_size_list<float32, D>``, ``article_id`` int64, ``chunk_index`` int64, a ``text`` column that
the reader ignores; 30 chunks per article; row groups of ``--row-group-rows`` rows), generated and
written one row group at a time, then runs the methods interleaved (floor, cli-path, floor,
cli-path, ... for ``--rounds``), each in a fresh subprocess, and prints one markdown row per run with
its ratio to the floor run just before it. The data is deleted afterwards unless ``--keep``.

Methods
-------
floor      bare pyarrow: ``ParquetFile.read_row_group(i, columns=["embedding"])`` for every row
           group, values to numpy (zero-copy) and ``.sum()`` (decodes and touches every vector once)
load       ``load_sequences(path, k=5)``: opens the file lazily, builds the stride-1 windows' row
           indices and validates every window from one read of each chunk (NaN / zero rows, norms,
           duplicates), keeping each chunk's dot products with its K successors
cli-path   what ``lvmdiag bias --train FILE --no-direction`` runs: ``load`` + ``analyze_bias`` (the
           pass over the windows, from the kept dot products, and a 1000-resample article
           bootstrap); its load / pass / bootstrap seconds are shown
cli-path-sampled  ``cli-path`` with ``scan="sample"``: the window-level sampled validation, after
           which the bias pass reads the vectors again (the path before the one-read scan)
npz-cli-path  the same corpus as an ``.npz`` article store (``vectors``, ``article_ids``,
           ``chunk_index``; written once from the Parquet file): the npz reader, then ``analyze_bias``

Page cache: ``--cache warm`` (default) reads the file once untimed, so every run finds it cached;
``--cache cold`` calls ``posix_fadvise(DONTNEED)`` on it before every run. The share of the file's
pages cached just before each run (``mincore``) is printed beside it.
Time: wall-clock seconds and the process's CPU seconds (user + sys; less sensitive to other jobs on
a shared machine, but it counts pyarrow's decoding threads, so it can exceed wall time).
Memory: each method runs in its own process; a background thread samples ``RssAnon`` every 2 ms
and we report the peak minus the value after imports, and that peak minus one decoded row group
("beyond one row group"). ``VmHWM`` (peak total RSS including file-backed pages) is shown beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import AnonPeak, drop_from_page_cache, meminfo_kb, status_kb  # noqa: E402

HERE = Path(__file__).resolve().parent
CHUNKS_PER_ARTICLE = 30


def generate(path: Path, n: int, d: int, row_group_rows: int, seed: int = 0) -> None:
    """Random-walk articles (adjacent cosine ~0.7), written one row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    schema = pa.schema([("embedding", pa.list_(pa.float32(), d)), ("article_id", pa.int64()),
                        ("chunk_index", pa.int64()), ("text", pa.string())])
    rho = np.float32(0.7)
    prev = None
    with pq.ParquetWriter(str(path), schema, compression="none", use_dictionary=False, write_statistics=False) as w:
        for start in range(0, n, row_group_rows):
            b = min(row_group_rows, n - start)
            rows = np.arange(start, start + b)
            pos = rows % CHUNKS_PER_ARTICLE
            x = rng.standard_normal((b, d), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            for i in range(b):  # AR(1) within an article
                if pos[i] and (i or prev is not None):
                    p = x[i - 1] if i else prev
                    v = rho * p + np.sqrt(1 - rho**2) * x[i]
                    x[i] = v / np.linalg.norm(v)
            prev = x[-1].copy()
            table = pa.table({
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), d),
                "article_id": pa.array(rows // CHUNKS_PER_ARTICLE),
                "chunk_index": pa.array(pos),
                "text": pa.array([""] * b),
            }, schema=schema)
            w.write_table(table, row_group_size=row_group_rows)


def generate_windows(path: Path, n: int, d: int, k: int = 5, seed: int = 0) -> None:
    """Window-form Parquet (``contexts`` K x D, ``targets`` D, ``article_id``) via lvmdiag's own
    writer (row groups of ~64 MiB), random walks of 30 windows per article, one block at a time."""
    from lvmdiag.data.parquet_writer import ParquetSink

    rng = np.random.default_rng(seed)
    rho = np.float32(0.7)
    with ParquetSink(path, k, d, np.dtype(np.float32), with_ids=True) as sink:
        for start in range(0, n, 8192):
            b = min(8192, n - start)
            x = rng.standard_normal((b, k + 1, d), dtype=np.float32)
            x[:, 0] /= np.linalg.norm(x[:, 0], axis=-1, keepdims=True)
            for i in range(1, k + 1):
                e = x[:, i] / np.linalg.norm(x[:, i], axis=-1, keepdims=True)
                step = rho * x[:, i - 1] + np.sqrt(1 - rho**2) * e
                x[:, i] = step / np.linalg.norm(step, axis=-1, keepdims=True)
            sink.write(x[:, :k], x[:, k], np.arange(start, start + b) // CHUNKS_PER_ARTICLE)


def _floor(path: Path) -> float:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path, memory_map=True)
    names = pf.schema_arrow.names
    columns = ["embedding"] if "embedding" in names else ["contexts", "targets"]
    total = 0.0
    for i in range(pf.metadata.num_row_groups):
        table = pf.read_row_group(i, columns=columns)
        for col in table.columns:
            for chunk in col.chunks:
                values = chunk.flatten()
                while values.type.num_fields:  # nested lists down to the float values
                    values = values.flatten()
                # float32 values, no nulls: view the buffer (to_numpy would import pandas)
                total += float(np.frombuffer(values.buffers()[1], np.float32, len(values), values.offset * 4).sum())
    return total


def _load(path: Path, scan: str = "auto"):
    import warnings

    from lvmdiag.data.readers import load_sequences

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_sequences(path, split="train", k=5, scan=scan)


def to_npz(path: Path) -> Path:
    """The Parquet store as an uncompressed .npz store (for the npz-cli-path comparison)."""
    import pyarrow.parquet as pq

    out = path.with_suffix(".npz")
    if not out.exists():
        t = pq.read_table(path, columns=["embedding", "article_id", "chunk_index"])
        d = t.schema.field("embedding").type.list_size
        vec = t.column("embedding").combine_chunks().flatten()
        vectors = np.frombuffer(vec.buffers()[1], np.float32, len(vec), vec.offset * 4).reshape(-1, d)
        np.savez(out, vectors=vectors, article_ids=np.asarray(t.column("article_id")),
                 chunk_index=np.asarray(t.column("chunk_index")))
    return out


def _cli_path(path: Path, block_rows: int, n_resamples: int, scan: str = "auto", phases: dict | None = None) -> float:
    """``load`` + ``analyze_bias``; ``phases`` gets the CPU / wall seconds of the load and of the
    bootstrap (``TemporalBiasState.compute``), the rest of ``analyze_bias`` being the streaming pass."""
    from lvmdiag.analyzers.bias_state import TemporalBiasState
    from lvmdiag.analyzers.temporal_bias import analyze_bias

    phases = {} if phases is None else phases
    t0, c0 = time.perf_counter(), time.process_time()
    seqs = _load(path, scan)
    phases["load"] = (time.perf_counter() - t0, time.process_time() - c0)
    compute = TemporalBiasState.compute

    def timed(self, **kw):
        t1, c1 = time.perf_counter(), time.process_time()
        out = compute(self, **kw)
        phases["bootstrap"] = (time.perf_counter() - t1, time.process_time() - c1)
        return out

    TemporalBiasState.compute = timed  # type: ignore[method-assign]
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        value = analyze_bias(seqs, block_rows=block_rows, n_resamples=n_resamples).delta.value
        total = (time.perf_counter() - t0, time.process_time() - c0)
    finally:
        TemporalBiasState.compute = compute  # type: ignore[method-assign]
    phases["pass"] = tuple(a - b for a, b in zip(total, phases["bootstrap"]))
    return value


def child(method: str, path: Path, block_rows: int, n_resamples: int) -> None:
    import pyarrow.parquet  # noqa: F401  imports before the baseline sample

    import lvmdiag.analyzers.temporal_bias  # noqa: F401
    import lvmdiag.data.arrow_formats  # noqa: F401
    import lvmdiag.data.readers  # noqa: F401

    cached_before = meminfo_kb("Cached") / 1024**2
    phases: dict = {}
    with AnonPeak() as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        if method == "floor":
            _floor(path)
        elif method == "load":
            _load(path)
        elif method == "cli-path":
            _cli_path(path, block_rows, n_resamples, phases=phases)
        elif method == "cli-path-sampled":
            _cli_path(path, block_rows, n_resamples, scan="sample", phases=phases)
        elif method == "npz-cli-path":
            _cli_path(path.with_suffix(".npz"), block_rows, n_resamples, phases=phases)
        else:
            raise SystemExit(f"unknown method {method}")
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"method": method, "seconds": seconds, "cpu_seconds": cpu, "anon_peak_mb": mem.peak_mb,
                      "vmhwm_mb": status_kb("VmHWM") / 1024, "cached_gb_before": cached_before, "phases": phases}))


def cached_fraction(path: Path) -> float | None:
    """Share of the file's pages in the page cache (mincore via a memory map), or None if unknown."""
    try:
        import ctypes
        import mmap

        size = path.stat().st_size
        page = mmap.PAGESIZE
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        fd = os.open(path, os.O_RDONLY)
        try:
            addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr in (None, ctypes.c_void_p(-1).value):
                return None
            n_pages = (size + page - 1) // page
            vec = (ctypes.c_ubyte * n_pages)()
            ok = libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), vec) == 0
            libc.munmap(ctypes.c_void_p(addr), ctypes.c_size_t(size))
        finally:
            os.close(fd)
        return sum(b & 1 for b in vec) / n_pages if ok else None
    except (OSError, AttributeError, ValueError):
        return None


def run_child(method: str, path: Path, block_rows: int, n_resamples: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", method, "--data", str(path), "--block-rows", str(block_rows),
         "--n-resamples", str(n_resamples)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="chunks (1e6 x 768 = 3.1 GB), or windows with --layout windows")
    ap.add_argument("--layout", choices=("store", "windows"), default="store",
                    help="article store (one row per chunk) or window file (contexts/targets columns)")
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--row-group-rows", type=int, default=16384)
    ap.add_argument("--block-rows", type=int, default=8192)
    ap.add_argument("--n-resamples", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2, help="times the method list is run, interleaved (floor, bias, floor, bias)")
    ap.add_argument("--methods", default="floor,cli-path")
    ap.add_argument("--cache", choices=("warm", "cold"), default="warm",
                    help="warm: one untimed read first, every run finds the file cached; cold: the file's pages "
                         "are dropped (posix_fadvise DONTNEED) before every run")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data, args.block_rows, args.n_resamples)
        return

    path = args.data or HERE / "_data" / f"{args.layout}_{args.n}x{args.d}.parquet"
    generated = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        if args.layout == "store":
            generate(path, args.n, args.d, args.row_group_rows)
        else:
            generate_windows(path, args.n, args.d)
        generated = True
        print(f"generated {path} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    try:
        size_gb = path.stat().st_size / 1e9
        import pyarrow.parquet as pq

        rg_rows = pq.ParquetFile(path).metadata.row_group(0).num_rows
        row_floats = args.d * (6 if args.layout == "windows" else 1)
        rg_mb = rg_rows * row_floats * 4 / 2**20
        methods = args.methods.split(",")
        if "npz-cli-path" in methods and args.layout == "store":
            to_npz(path)
        if args.cache == "warm":
            run_child("floor", path, args.block_rows, args.n_resamples)  # untimed: brings the file into the cache
        rows = []
        floor = None
        for _ in range(args.rounds):
            for method in methods:
                if method == "npz-cli-path" and args.layout != "store":
                    continue
                if args.cache == "cold":
                    drop_from_page_cache([path])
                    if method == "npz-cli-path":
                        drop_from_page_cache([path.with_suffix(".npz")])
                cached = cached_fraction(path.with_suffix(".npz") if method == "npz-cli-path" else path)
                r = run_child(method, path, args.block_rows, args.n_resamples)
                if method == "floor":
                    floor = r
                ratio = f"{r['seconds'] / floor['seconds']:.2f}x" if floor else ""
                cratio = f"{r['cpu_seconds'] / floor['cpu_seconds']:.2f}x" if floor else ""
                ph = r.get("phases") or {}
                split = " / ".join(f"{ph[k][0]:.2f} ({ph[k][1]:.2f})" for k in ("load", "pass", "bootstrap") if k in ph)
                rows.append(
                    f"| {args.n:,} x {args.d} ({size_gb:.2f} GB) | {method} | "
                    f"{'?' if cached is None else f'{cached:.0%}'} | {r['seconds']:.2f} | {ratio} | {r['cpu_seconds']:.2f} | "
                    f"{cratio} | {split} | {r['anon_peak_mb']:,.0f} MB | {max(r['anon_peak_mb'] - rg_mb, 0):,.0f} MB | "
                    f"{r['vmhwm_mb']:,.0f} MB |"
                )
        print(f"{args.layout} layout; row group: {rg_rows:,} rows = {rg_mb:.0f} MB of vectors; page cache: {args.cache}; "
              f"rounds: {args.rounds}, interleaved; ratios against the floor run just before")
        print("| corpus | method | file cached before | wall s | vs floor | CPU s (user+sys) | vs floor | "
              "load / pass / bootstrap: wall (CPU) s | peak RssAnon above imports | beyond one row group | VmHWM |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        print("\n".join(rows))
    finally:
        if generated and not args.keep:
            path.unlink(missing_ok=True)
            path.with_suffix(".npz").unlink(missing_ok=True)
            shutil.rmtree(path.parent, ignore_errors=True) if not any(path.parent.iterdir()) else None


if __name__ == "__main__":
    main()
