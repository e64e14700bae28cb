"""``embed_text``: raw text -> chunks -> vectors -> an article store, resumable and byte-reproducible.

Resumability: the chunks are cut into checkpoint batches of ``checkpoint_chunks`` rows; each batch's
vectors are written atomically to ``<out>.work/batch_NNNNNN.npy`` beside the output, next to a
``plan.json`` that fingerprints the input, the chunks, the model and the settings. A run killed at
any point (even by SIGKILL) is continued by running the same command: batches already on disk are
kept, the others are encoded, and the store is assembled from the batches. A plan that does not
match (other input, model or settings) discards the old batches. The work directory is removed once
the store, its texts file and its provenance are written.

Reproducibility: batch boundaries depend only on the chunk list and ``checkpoint_chunks``, every batch
is encoded by one ``SentenceTransformer.encode`` call, and the writers fix every byte (no time
stamps), so the same input and model give byte-identical output whether or not the run was resumed
(on the same machine and device; floating-point kernels differ between CPUs and GPUs).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lvmdiag._atomic import atomic_path, write_json_atomic
from lvmdiag.embed.chunking import ChunkParams
from lvmdiag.embed.encoder import Encoder, resolve_model
from lvmdiag.embed.inputs import input_kind, input_sha256, read_records
from lvmdiag.embed.plan import ChunkPlan, build_plan
from lvmdiag.embed.store_out import STORE_FORMATS, reverse_store, store_format, write_store
from lvmdiag.errors import InputError
from lvmdiag.results import Result

ProgressCallback = Callable[[int, int], None]

#: testing hook: seconds to sleep after each checkpoint is written (lets a test kill a run mid-way)
DELAY_ENV = "LVMDIAG_EMBED_TEST_DELAY"
WORK_FORMAT = "lvmdiag-embed-work/1"


@dataclass(frozen=True)
class EmbedResult(Result):
    """Output of :func:`embed_text`.

    Attributes
    ----------
    store, texts, provenance : the files written
    reversed_store : the reversed-article control store (with ``reverse=True``), else None
    model : model name and version
    n_input_articles, n_articles, n_dropped_articles, n_dropped_chunks : articles read, kept, dropped
        (fewer than ``min_chunks`` chunks) and the chunks of the dropped ones
    n_chunks, dim : rows and vector dimension of the store
    n_truncated : chunks longer than the model reads (it embeds only their first tokens); lower the
        chunk word range when this is not 0
    words_per_chunk : min / median / max words per chunk
    chunks_reused, chunks_encoded : chunks taken from checkpoints of an earlier run, encoded now
    seconds : wall time of the whole call (reading, model loading and writing included)
    encode_seconds, chunks_per_s : time spent encoding and checkpointing, and chunks encoded per second of it
    """

    store: str
    texts: str
    provenance: str
    reversed_store: str | None
    model: str
    n_input_articles: int
    n_articles: int
    n_dropped_articles: int
    n_dropped_chunks: int
    n_chunks: int
    dim: int
    n_truncated: int
    words_per_chunk: dict[str, float]
    chunks_reused: int
    chunks_encoded: int
    seconds: float
    encode_seconds: float
    chunks_per_s: float

    def to_markdown(self) -> str:
        w = self.words_per_chunk
        lines = [
            f"Embedded {self.n_chunks} chunks of {self.n_articles} articles with {self.model} (D = {self.dim}) "
            f"into {self.store}.",
            f"- words per chunk: min {w['min']}, median {w['median']:g}, max {w['max']}; chunks longer than the "
            f"model reads (truncated by the encoder): {self.n_truncated}",
            f"- articles dropped (fewer chunks than --min-chunks): {self.n_dropped_articles} of "
            f"{self.n_input_articles} ({self.n_dropped_chunks} chunks)",
            f"- texts: {self.texts}; provenance: {self.provenance}",
            f"- {self.chunks_encoded} chunks encoded at {self.chunks_per_s:.1f} chunks/s ({self.seconds:.1f} s in all, "
            "model loading included)"
            + (f"; {self.chunks_reused} taken from an interrupted run's checkpoints" if self.chunks_reused else ""),
        ]
        if self.reversed_store:
            lines.append(f"- reversed-article control store: {self.reversed_store}")
        return "\n".join(lines) + "\n"


def work_dir_for(out: str | os.PathLike[str]) -> Path:
    """The checkpoint directory of an output: ``<out>.work`` beside it."""
    p = Path(out)
    return p.with_name(p.name + ".work")


def reversed_path_for(out: str | os.PathLike[str]) -> Path:
    """``<stem>.reversed.npz`` (or ``.parquet``) beside ``out``."""
    p = Path(out)
    return p.with_name(p.name[: -len(p.suffix)] + ".reversed" + p.suffix)


def _embed_iv(input_path: Path, out: Path, chunk_words: tuple[int, int], min_chunks: int, batch_size: int,
              checkpoint_chunks: int, fmt: str | None) -> ChunkParams:
    input_kind(input_path)
    if fmt is not None and fmt not in STORE_FORMATS.values():
        raise InputError(f"--format must be npz or parquet; got {fmt!r}.")
    if fmt is not None and out.suffix.lower() != "." + fmt:
        raise InputError(f"--out {out} does not end in .{fmt} (--format {fmt}); name it e.g. {out.with_suffix('.' + fmt)}.")
    store_format(out)  # .npz or .parquet; for Parquet, pyarrow must be installed
    if out.exists() and out.is_dir():
        raise InputError(f"--out {out} is a directory; give a file path such as {out / 'store.npz'}.")
    if out.resolve() == input_path.resolve():
        raise InputError(f"--out {out} is the input; choose another path (inputs are never overwritten).")
    if len(chunk_words) != 2:
        raise InputError(f"--chunk-words must be MIN,MAX; got {chunk_words}.")
    if min_chunks < 1:
        raise InputError(f"--min-chunks must be >= 1; got {min_chunks}.")
    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1; got {batch_size}.")
    if checkpoint_chunks < 1:
        raise InputError(f"--checkpoint-every must be >= 1; got {checkpoint_chunks}.")
    return ChunkParams(int(chunk_words[0]), int(chunk_words[1]))


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def _open_work(work: Path, plan_record: dict[str, Any]) -> None:
    """Create the work directory, or keep it when its plan matches; a stale one is cleared."""
    plan_file = work / "plan.json"
    if work.exists():
        try:
            old = json.loads(plan_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if old == plan_record:
            return
        if old is None and any(work.iterdir()):
            raise InputError(f"{work} exists and is not an lvmdiag embed work directory (no plan.json); move it away.")
        shutil.rmtree(work)  # our own checkpoints of another input/model/settings: start afresh
    work.mkdir(parents=True)
    write_json_atomic(plan_file, plan_record)


def _batch_file(work: Path, b: int) -> Path:
    return work / f"batch_{b:06d}.npy"


def _load_batch(path: Path, rows: int) -> tuple[np.ndarray, int] | None:
    """A finished checkpoint of ``rows`` rows and its truncated-chunk count, or None (absent or damaged).

    The count (``batch_N.json``) is renamed in before the vectors, so a present ``.npy`` has its count.
    """
    meta = path.with_suffix(".json")
    if not path.is_file() or not meta.is_file():
        return None
    try:
        truncated = int(json.loads(meta.read_text(encoding="utf-8"))["truncated"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):  # damaged by hand or by the disk: encode that batch again
        return None
    return (arr, truncated) if arr.ndim == 2 and arr.shape[0] == rows and arr.dtype == np.float32 else None


def embed_text(
    input_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    chunk_words: tuple[int, int] = (40, 120),
    min_chunks: int = 6,
    batch_size: int = 32,
    checkpoint_chunks: int = 1024,
    device: str | None = None,
    normalize: bool = True,
    reverse: bool = False,
    fmt: str | None = None,
    id_column: str = "article_id",
    text_column: str = "text",
    encoder: Encoder | None = None,
    progress: ProgressCallback | None = None,
) -> EmbedResult:
    """Chunk and embed a text collection into an article store (resumable, byte-reproducible).

    Parameters
    ----------
    input_path : JSONL (``article_id``, ``text`` [, ``chunk_index``]), a directory of .txt/.md files,
        or a Parquet file with those columns (see :mod:`lvmdiag.embed.inputs`)
    out : the store to write (``.npz``, or ``.parquet`` with ``lvmdiag[parquet]``; see
        :mod:`lvmdiag.embed.store_out`); ``<stem>.texts.jsonl`` and ``<stem>.provenance.json`` go beside it
    model : None for the bundled all-MiniLM-L6-v2, a local model directory, or a cached Hugging Face name
    chunk_words : (min, max) words per chunk (:mod:`lvmdiag.embed.chunking`); unused for pre-chunked input
    min_chunks : articles with fewer chunks are dropped and counted (6 = one window at K = 5)
    batch_size : texts per forward pass of the encoder
    checkpoint_chunks : chunks per checkpoint written to the work directory
    device : "cpu", "cuda", ... (None: sentence-transformers' choice)
    normalize : L2-normalise the vectors
    reverse : also write the reversed-article control store ``<stem>.reversed.npz`` (``.parquet``)
    fmt : "npz" or "parquet" (None: from ``out``'s suffix); must agree with the suffix
    id_column, text_column : field / column names of the input
    encoder : an already loaded :class:`~lvmdiag.embed.encoder.Encoder` to reuse across calls (e.g. a
        train and a val text); it replaces ``model``, ``device``, ``batch_size`` and ``normalize``
    progress : optional ``callback(done, total)`` in chunks

    Returns
    -------
    EmbedResult with the paths written, counts (articles read, kept, dropped; chunks; dimension),
    words per chunk, chunks reused from checkpoints and encoded now, seconds and chunks/s.
    """
    t0 = time.perf_counter()
    src, dst = Path(input_path), Path(out)
    params = _embed_iv(src, dst, chunk_words, min_chunks, batch_size, checkpoint_chunks, fmt)
    in_sha = input_sha256(src)
    plan = build_plan(read_records(src, id_column=id_column, text_column=text_column), params, min_chunks, str(src))
    if encoder is not None:
        spec, device, batch_size, normalize = encoder.spec, encoder.device, encoder.batch_size, encoder.normalize
    else:
        spec = resolve_model(model)
    n = plan.n_chunks
    n_batches = -(-n // checkpoint_chunks)
    chunks_sha = plan.sha256()
    settings = {"normalize": bool(normalize), "batch_size": int(batch_size),
                "checkpoint_chunks": int(checkpoint_chunks), "device": device or "auto"}
    work = work_dir_for(dst)
    _open_work(work, {"format": WORK_FORMAT, "input_sha256": in_sha, "chunks_sha256": chunks_sha, "n_chunks": n,
                      "model": spec.record(), **settings})
    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    reused = encoded = truncated = 0
    encode_s = 0.0
    dim = None
    for b in range(n_batches):
        lo, hi = b * checkpoint_chunks, min(n, (b + 1) * checkpoint_chunks)
        path = _batch_file(work, b)
        have = _load_batch(path, hi - lo)
        if have is not None:
            reused += hi - lo
            dim = have[0].shape[1]
            truncated += have[1]
        else:
            if encoder is None:
                encoder = Encoder(spec, device=device, batch_size=batch_size, normalize=normalize)
            t_enc = time.perf_counter()
            vec, n_trunc = encoder.encode_counted(plan.texts[lo:hi])  # (rows, D), chunks cut by the encoder
            dim = vec.shape[1]
            truncated += n_trunc
            write_json_atomic(path.with_suffix(".json"), {"rows": hi - lo, "truncated": n_trunc})
            with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, vec)
            encoded += hi - lo
            encode_s += time.perf_counter() - t_enc
            if delay:
                time.sleep(delay)
        if progress is not None:
            progress(hi, n)
    vectors = _assemble(work, n, int(dim), checkpoint_chunks, n_batches)
    provenance = _provenance(src, in_sha, spec, plan, params, min_chunks, settings, chunks_sha, int(dim), truncated)
    store, texts, prov = write_store(dst, vectors, plan.article_ids, plan.chunk_index, plan.article_keys,
                                     plan.article_names, plan.texts, provenance)
    del vectors
    rev = reverse_store(store, reversed_path_for(store)).store if reverse else None
    shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - t0
    return EmbedResult(
        store=str(store), texts=str(texts), provenance=str(prov), reversed_store=rev,
        model=f"{spec.name} ({spec.version})", n_input_articles=plan.n_input_articles, n_articles=len(plan.article_names),
        n_dropped_articles=plan.n_dropped_articles, n_dropped_chunks=plan.n_dropped_chunks, n_chunks=n, dim=int(dim),
        n_truncated=truncated,
        words_per_chunk=plan.words_summary(), chunks_reused=reused, chunks_encoded=encoded, seconds=seconds,
        encode_seconds=encode_s, chunks_per_s=encoded / encode_s if encode_s > 0 else float("nan"),
    )


def _assemble(work: Path, n: int, dim: int, step: int, n_batches: int) -> np.ndarray:
    """All checkpoints as one (n, dim) float32 memory map in the work directory (bounded memory)."""
    vectors = np.lib.format.open_memmap(work / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    for b in range(n_batches):
        lo = b * step
        part = np.load(_batch_file(work, b), mmap_mode="r")
        if part.shape[1] != dim:
            raise InputError(f"checkpoint {_batch_file(work, b)} has dimension {part.shape[1]}, not {dim}; "
                             f"delete {work} and run again.")
        vectors[lo : lo + part.shape[0]] = part
    vectors.flush()
    return vectors


def _provenance(src: Path, in_sha: str, spec: Any, plan: ChunkPlan, params: ChunkParams, min_chunks: int,
                settings: dict[str, Any], chunks_sha: str, dim: int, truncated: int) -> dict[str, Any]:
    """Everything needed to say how the store was made (no paths or times, so reruns are byte-identical)."""
    return {
        "format": "lvmdiag-embed/1",
        "input": {"name": src.name, "kind": input_kind(src), "sha256": in_sha},
        "model": spec.record(),
        "encode": settings,
        "chunking": {"mode": plan.mode, "min_words": params.min_words, "max_words": params.max_words,
                     "min_chunks": min_chunks, "rule": "lvmdiag.embed.chunking: paragraph/sentence packing v1"},
        "counts": {"input_articles": plan.n_input_articles, "articles": len(plan.article_names),
                   "dropped_articles": plan.n_dropped_articles, "dropped_chunks": plan.n_dropped_chunks,
                   "chunks": plan.n_chunks, "dim": dim, "words_per_chunk": plan.words_summary(),
                   "truncated_chunks": truncated},
        "chunks_sha256": chunks_sha,
        "software": {name: _version(name) for name in ("lvmdiag", "sentence-transformers", "transformers", "torch")},
    }
