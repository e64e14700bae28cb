"""The name mapping from other tools' metric names to :class:`RunHistory` keys (one table for all readers).

| logged name (examples) | history key | notes |
|---|---|---|
| ``val_loss``, ``val/loss``, ``eval_loss``, ``eval/loss``, ``validation_loss`` | ``val.loss`` | ``eval`` is Hugging Face's prefix for the evaluation split |
| ``val/cos_next``, ``val_cos_next``, ``eval_cos_next``, ``eval/cos_next`` | ``val.cos_next`` | same for ``cos_prev``, ``margin``, ``cos_anchor``, any metric |
| ``train/cos_next``, ``train_cos_next`` | ``train.cos_next`` | an evaluation of the train split |
| ``loss`` (HF), ``train_loss``, ``train/loss``, ``train_loss_epoch`` | ``train_log.loss`` | the loss the training loop reports |
| ``loss_rank``, ``train/loss_teacher``, ``train_loss_margin`` | ``train_log.loss_rank`` ... | loss terms |
| ``lr``, ``lr-Adam``, ``lr-AdamW/pg1``, ``learning_rate``, ``train/learning_rate`` | ``train_log.lr`` | the first parameter group when several are logged |
| ``test_*``, ``ood_*`` | ``test.*``, ``ood.*`` | |
| ``grad_norm``, anything else | ``train_log.<name>`` | logged by the training loop |
| ``<name>_step`` beside ``<name>_epoch`` | (skipped) | Lightning's per-step twin of an epoch aggregate; ``<name>_epoch`` is read as ``<name>`` (a lone ``<name>_step`` too: its last value in the epoch) |
| ``epoch``, ``step``, ``global_step``, ``train/epoch``, ``hp_metric``, ``*runtime``, ``*_per_second``, ``total_flos`` | (skipped) | axes and timing |
"""

from __future__ import annotations

import re
from typing import Iterable

from lvmdiag.report.history import _column_key

_SKIP = {"epoch", "step", "global_step", "train/epoch", "eval/epoch", "hp_metric", "total_flos", "train/total_flos",
         "train/global_step", "train/train_loss"}  # HF: the end-of-training summary, not an epoch value
_SKIP_RE = re.compile(r"(runtime|_per_second|/steps_per_second|/samples_per_second)$")
_LR_RE = re.compile(r"^(train[/_])?(lr|learning_rate)([-/_].*)?$", re.IGNORECASE)


def history_key(name: str) -> str | None:
    """The :class:`RunHistory` key of one logged name (``"val.cos_next"``, ``"train_log.loss"``), None to skip."""
    raw = name.strip()
    if raw.lower() in _SKIP or _SKIP_RE.search(raw.lower()):
        return None
    if _LR_RE.match(raw):
        return "train_log.lr"
    if raw.lower() == "loss":
        return "train_log.loss"
    m = re.match(r"^eval([/_.])(.+)$", raw, re.IGNORECASE)
    if m:
        raw = f"val{m.group(1)}{m.group(2)}"
    return _column_key(raw)


def map_names(names: Iterable[str]) -> dict[str, str]:
    """Logged name -> history key for every name that is read; skipped names are left out.

    Lightning's ``<name>_step`` is dropped when ``<name>_epoch`` is logged too (the epoch aggregate is the
    per-epoch number); ``<name>_epoch`` and a lone ``<name>_step`` are read as ``<name>``. When two names map to one key (``lr-Adam``
    and ``lr-Adam/pg2``), the first in sorted order wins.
    """
    names = list(dict.fromkeys(names))
    present = set(names)
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in sorted(names, key=lambda n: (len(n), n)):
        base = name
        if name.endswith("_step") and name != "_step":
            if name[:-5] + "_epoch" in present:
                continue
            base = name[:-5]  # logged per step only: its last value in the epoch is read
        if name.endswith("_epoch") and name != "_epoch":
            base = name[:-6]
        key = history_key(base)
        if key is None or key in taken:
            continue
        out[name] = key
        taken.add(key)
    return out
