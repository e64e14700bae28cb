"""Chunks/s of ``embed_text`` against a bare ``SentenceTransformer.encode`` loop on the same chunks.

Run by hand: ``python benchmarks/bench_embed.py [--chunks 10000] [--reps 2] [--threads 2]``.

Text: the paragraphs of the 14 bundled pages (fixtures/python_docs/text/val_articles.jsonl; each
paragraph is one source chunk of 40-120 words) dealt into synthetic articles of ``--per-article``
paragraphs by a seeded shuffle (no downloads, deterministic), as many articles as it takes for the
default 40-120-word chunking to give at least ``--chunks`` chunks. ``--chunks 0`` uses the first
``--articles`` real pages as they are instead.

Both sides use one model loaded once (the bundled all-MiniLM-L6-v2, CPU, ``--threads`` torch
threads, batch ``--batch-size``) and the same chunk texts. The bare side is a loop of
``model.encode(chunks[i:i + 1024], batch_size=32, normalize_embeddings=True)`` over the same
1024-chunk slices the pipeline checkpoints (so both sort and pad identically); the lvmdiag side is
``embed_text`` on the JSONL with that encoder (reading, chunking, fingerprinting, checkpoint writes,
assembling and writing the store, texts and provenance). They alternate bare, lvmdiag, bare,
lvmdiag, ... (``--reps`` each) in one process; each pass prints its wall and CPU seconds (all
threads of the process, ``time.process_time``: less disturbed by other jobs on a shared machine)
as it ends. The same ``embed_text`` call with an encoder that returns zeros times everything but
the forward passes. One-time costs that ``lvmdiag embed`` pays per run (importing
sentence-transformers, loading the model, hashing the model files) are timed separately.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TEXT = ROOT / "fixtures" / "python_docs" / "text" / "val_articles.jsonl"


class _NullEncoder:
    """The real encoder's identity and settings, but encode returns zeros (times the pipeline alone)."""

    def __init__(self, enc):  # noqa: ANN001
        self.spec, self.device, self.batch_size, self.normalize = enc.spec, enc.device, enc.batch_size, enc.normalize
        self.dim = 384

    def encode_counted(self, texts):  # noqa: ANN001, ANN201
        import numpy as np

        return np.zeros((len(texts), self.dim), np.float32), 0


def _make_text(path: Path, chunks: int, per_article: int, articles: int, seed: int) -> None:
    """Write the benchmark's JSONL: the real pages (``chunks == 0``) or shuffled-paragraph articles."""
    import random

    from lvmdiag.embed.chunking import ChunkParams, chunk_article

    lines = TEXT.read_text(encoding="utf-8").splitlines()
    if chunks <= 0:
        path.write_text("\n".join(lines[:articles]) + "\n", encoding="utf-8")
        return
    paragraphs = [p for line in lines for p in json.loads(line)["text"].split("\n\n") if p.strip()]
    params = ChunkParams()
    rng = random.Random(seed)
    rows: list[str] = []
    n = 0
    deck: list[str] = []
    while n < chunks:
        if len(deck) < per_article:
            deck = paragraphs[:]
            rng.shuffle(deck)
        body, deck = "\n\n".join(deck[:per_article]), deck[per_article:]
        rows.append(json.dumps({"article_id": f"bench/{len(rows):05d}", "text": body}))
        n += len(chunk_article(body, params))  # the pipeline's own chunking (articles of >= 6 chunks are all kept)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000, help="at least this many chunks (0: real pages only)")
    parser.add_argument("--per-article", type=int, default=25, help="paragraphs per synthetic article")
    parser.add_argument("--articles", type=int, default=6, help="real pages to embed with --chunks 0")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t = time.perf_counter()
    import torch
    import sentence_transformers  # noqa: F401

    t_import = time.perf_counter() - t
    torch.set_num_threads(args.threads)
    from lvmdiag.embed.chunking import ChunkParams
    from lvmdiag.embed.encoder import Encoder, resolve_model
    from lvmdiag.embed.inputs import read_records
    from lvmdiag.embed.pipeline import embed_text
    from lvmdiag.embed.plan import build_plan

    t = time.perf_counter()
    spec = resolve_model(None)
    t_hash = time.perf_counter() - t
    t = time.perf_counter()
    enc = Encoder(spec, device="cpu", batch_size=args.batch_size, normalize=True)
    t_load = time.perf_counter() - t
    step = 1024  # embed_text's default checkpoint size: the bare loop encodes the same slices

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "text.jsonl"
        _make_text(src, args.chunks, args.per_article, args.articles, args.seed)
        plan = build_plan(read_records(src), ChunkParams(), 6, "bench")
        texts = plan.texts
        n = len(texts)
        print(f"{n} chunks of {len(plan.article_names)} articles ({src.stat().st_size / 1e6:.1f} MB of text), "
              f"{args.threads} torch threads, batch {args.batch_size}, {args.reps} alternating reps", flush=True)
        enc.encode(texts[:64])  # warm-up (first-call allocations), same for both sides
        bare, ours, bare_cpu, ours_cpu = [], [], [], []
        for rep in range(args.reps):
            t, c = time.perf_counter(), time.process_time()
            for lo in range(0, n, step):
                enc.model.encode(texts[lo : lo + step], batch_size=args.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False)
            bare.append(time.perf_counter() - t)
            bare_cpu.append(time.process_time() - c)
            print(f"  bare    rep {rep}: {bare[-1]:.1f} s wall, {bare_cpu[-1]:.1f} s CPU", flush=True)
            t, c = time.perf_counter(), time.process_time()
            res = embed_text(src, Path(tmp) / f"out{rep}.npz", encoder=enc)
            ours.append(time.perf_counter() - t)
            ours_cpu.append(time.process_time() - c)
            print(f"  lvmdiag rep {rep}: {ours[-1]:.1f} s wall, {ours_cpu[-1]:.1f} s CPU", flush=True)
            assert res.n_chunks == n
            (Path(tmp) / f"out{rep}.npz").unlink()
        # everything but the model: the same call with an encoder that returns zeros (no contention noise
        # from the forward passes)
        null = _NullEncoder(enc)
        t, c = time.perf_counter(), time.process_time()
        for rep in range(args.reps):
            embed_text(src, Path(tmp) / f"null{rep}.npz", encoder=null)
        null_wall, null_cpu = (time.perf_counter() - t) / args.reps, (time.process_time() - c) / args.reps
    mb, mo = statistics.median(bare), statistics.median(ours)
    cb, co = statistics.median(bare_cpu), statistics.median(ours_cpu)
    print()
    print("| method | median wall s | best wall s | median CPU s | chunks/s (median wall) | chunks/s (best wall) |")
    print("|---|---|---|---|---|---|")
    print(f"| bare `SentenceTransformer.encode` loop | {mb:.1f} | {min(bare):.1f} | {cb:.1f} | {n / mb:.1f} "
          f"| {n / min(bare):.1f} |")
    print(f"| lvmdiag `embed_text` (chunk, checkpoint, write store + texts + provenance) | {mo:.1f} | "
          f"{min(ours):.1f} | {co:.1f} | {n / mo:.1f} | {n / min(ours):.1f} |")
    print(f"\noverhead of the medians: {100 * (mo / mb - 1):+.1f}% wall (best: {100 * (min(ours) / min(bare) - 1):+.1f}%); "
          f"CPU seconds (all threads): {100 * (co / cb - 1):+.1f}%")
    print(f"everything but the forward passes (zero encoder, same call): {null_wall:.2f} s wall, {null_cpu:.2f} s CPU "
          f"= {100 * null_wall / mb:.1f}% of the bare loop's median wall, {100 * null_cpu / cb:.1f}% of its CPU")
    print(f"one-time per run: import torch + sentence-transformers {t_import:.1f} s, load model {t_load:.1f} s, "
          f"hash model files {t_hash:.2f} s")
    print(json.dumps({"n_chunks": n, "bare_s": bare, "lvmdiag_s": ours, "bare_cpu_s": bare_cpu,
                      "lvmdiag_cpu_s": ours_cpu, "null_wall_s": null_wall, "null_cpu_s": null_cpu}))


if __name__ == "__main__":
    main()
