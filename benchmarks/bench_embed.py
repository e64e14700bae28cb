"""Chunks/s of ``embed_text`` against a bare ``SentenceTransformer.encode`` loop on the same chunks.

Run by hand: ``python benchmarks/bench_embed.py [--articles 6] [--reps 3] [--threads 2]``.

Both sides use one model loaded once (the bundled all-MiniLM-L6-v2, CPU, ``--threads`` torch
threads) and the same chunk texts: the bare side is one ``model.encode(chunks, batch_size=32,
normalize_embeddings=True)`` call; the lvmdiag side is ``embed_text`` on the JSONL text with that
encoder (reading, chunking, fingerprinting, checkpoint writes, assembling and writing the store,
texts and provenance). The two alternate, ``--reps`` times each, in one process; the table gives
the median and best wall time of each and the overhead of the medians, in wall and in CPU seconds
(all threads; less disturbed by other jobs on a shared machine). One-time costs that ``lvmdiag embed``
pays per run (importing sentence-transformers, loading the model, hashing the model files) are
timed separately. Input: the first ``--articles`` pages of fixtures/python_docs/text/val_articles.jsonl.
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

    def encode(self, texts):  # noqa: ANN001, ANN201
        import numpy as np

        return np.zeros((len(texts), self.dim), np.float32)

    def n_truncated(self, texts) -> int:  # noqa: ANN001
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=6, help="pages of the bundled text to embed")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
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

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "text.jsonl"
        lines = TEXT.read_text(encoding="utf-8").splitlines()[: args.articles]
        src.write_text("\n".join(lines) + "\n", encoding="utf-8")
        texts = build_plan(read_records(src), ChunkParams(), 6, "bench").texts
        enc.encode(texts[:64])  # warm-up (first-call allocations), same for both sides
        bare, ours, bare_cpu, ours_cpu = [], [], [], []
        for rep in range(args.reps):
            t, c = time.perf_counter(), time.process_time()
            enc.model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True, normalize_embeddings=True,
                             show_progress_bar=False)
            bare.append(time.perf_counter() - t)
            bare_cpu.append(time.process_time() - c)
            t, c = time.perf_counter(), time.process_time()
            res = embed_text(src, Path(tmp) / f"out{rep}.npz", encoder=enc)
            ours.append(time.perf_counter() - t)
            ours_cpu.append(time.process_time() - c)
            assert res.n_chunks == len(texts)
        # everything but the model: the same call with an encoder that returns zeros (no contention noise
        # from the forward passes), and the extra tokenization that counts truncated chunks
        null = _NullEncoder(enc)
        t, c = time.perf_counter(), time.process_time()
        for rep in range(args.reps):
            embed_text(src, Path(tmp) / f"null{rep}.npz", encoder=null)
        null_wall, null_cpu = (time.perf_counter() - t) / args.reps, (time.process_time() - c) / args.reps
        t = time.process_time()
        enc.n_truncated(texts)
        tok_cpu = time.process_time() - t
    n = len(texts)
    mb, mo = statistics.median(bare), statistics.median(ours)
    print(f"{n} chunks of {args.articles} pages, {args.threads} torch threads, batch {args.batch_size}, "
          f"{args.reps} alternating reps\n")
    print("| method | median s | best s | chunks/s (median) | chunks/s (best) |")
    print("|---|---|---|---|---|")
    print(f"| bare `SentenceTransformer.encode` | {mb:.2f} | {min(bare):.2f} | {n / mb:.1f} | {n / min(bare):.1f} |")
    print(f"| lvmdiag `embed_text` (chunk, checkpoint, write store + texts + provenance) | {mo:.2f} | {min(ours):.2f} "
          f"| {n / mo:.1f} | {n / min(ours):.1f} |")
    cb, co = statistics.median(bare_cpu), statistics.median(ours_cpu)
    print(f"\noverhead of the medians: {100 * (mo / mb - 1):+.1f}% wall (best: {100 * (min(ours) / min(bare) - 1):+.1f}%); "
          f"CPU seconds (all threads, less sensitive to other jobs): bare {cb:.2f}, lvmdiag {co:.2f}, "
          f"{100 * (co / cb - 1):+.1f}%")
    print(f"everything but the forward passes (zero encoder, same call): {null_wall:.3f} s wall, {null_cpu:.3f} s CPU "
          f"+ truncation count {tok_cpu:.3f} s CPU = {100 * (null_wall + tok_cpu) / mb:.1f}% of the bare encode's "
          f"median wall, {100 * (null_cpu + tok_cpu) / cb:.1f}% of its CPU")
    print(f"one-time per run: import torch + sentence-transformers {t_import:.1f} s, load model {t_load:.1f} s, "
          f"hash model files {t_hash:.2f} s")
    print(json.dumps({"n_chunks": n, "bare_s": bare, "lvmdiag_s": ours, "bare_cpu_s": bare_cpu,
                      "lvmdiag_cpu_s": ours_cpu}))


if __name__ == "__main__":
    main()
