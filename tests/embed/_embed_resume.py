"""Shared by the embed tests: the small real text's settings, and a run killed by SIGKILL then resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

from lvmdiag.embed import embed_text
from lvmdiag.embed.pipeline import DELAY_ENV, work_dir_for

SETTINGS = dict(checkpoint_chunks=8, batch_size=8, device="cpu")
N_CHUNKS = 29  # 10 + 10 + 9 (tests/embed/test_chunking pins the rule; this pins the real text)


def _kill_9_after_first_checkpoint(small_text: Path, out: Path) -> None:
    """Run embed_text in a subprocess and SIGKILL it once its first checkpoint is on disk."""
    work = work_dir_for(out)
    code = ("import sys; from lvmdiag.embed import embed_text; "
            f"embed_text(sys.argv[1], sys.argv[2], **{SETTINGS!r})")
    env = dict(os.environ, **{DELAY_ENV: "30"})  # sleep after each checkpoint: the kill lands mid-run
    proc = subprocess.Popen([sys.executable, "-c", code, str(small_text), str(out)], env=env)
    try:
        deadline = time.monotonic() + 240
        while not (work / "batch_000000.npy").exists():
            assert proc.poll() is None, "the embedding process ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    done = sorted(p.name for p in work.glob("batch_*.npy"))
    assert done == ["batch_000000.npy"]


def _resumed_run_gives_the_same_bytes(small_text: Path, ref: Path, out: Path) -> None:
    _kill_9_after_first_checkpoint(small_text, out)
    res = embed_text(small_text, out, **SETTINGS)
    assert res.chunks_reused == 8 and res.chunks_encoded == N_CHUNKS - 8
    for name in (out.name, "store.texts.jsonl", "store.provenance.json"):
        assert out.with_name(name).read_bytes() == ref.with_name(name).read_bytes(), name
    assert not work_dir_for(out).exists()


@lru_cache(maxsize=1)
def shared_encoder():  # noqa: ANN201
    """The bundled model loaded once per session with the SETTINGS of _embed_resume (same bytes as a fresh load)."""
    from lvmdiag.embed.encoder import Encoder, resolve_model

    return Encoder(resolve_model(None), device=SETTINGS["device"], batch_size=SETTINGS["batch_size"])
