"""Step-level log rows -> one row per finished epoch, with the global step at each epoch's end kept.

Rule per epoch and per mapped name: the *last* value logged in that epoch wins (Lightning writes its
epoch aggregates after the step rows; Hugging Face logs its epoch-end evaluation last). An epoch is
*finished* once an evaluation metric was logged in it; epochs after the last evaluated one are dropped
(the run stopped before evaluating them) and named in a note, with the last step seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from lvmdiag.report.history import RunHistory, _Builder, _to_float
from lvmdiag.report.logs.names import map_names


@dataclass(frozen=True)
class LogRow:
    """One logged value: ``epoch`` (1-based, the lvmdiag convention), optional global ``step``, name, value."""

    epoch: int
    step: float | None
    name: str
    value: Any


def build_history(rows: Iterable[LogRow], *, config: dict[str, Any], source_format: str,
                  source_files: tuple[str, ...], run_dir: Path, notes: Iterable[str] = ()) -> RunHistory:
    """Aggregate ``rows`` (in log order) into a :class:`RunHistory` (see the module docstring)."""
    rows = list(rows)
    mapping = map_names(r.name for r in rows)
    builder = _Builder()
    last_step: dict[int, float] = {}
    for row in rows:
        if row.step is not None and np.isfinite(row.step):
            last_step[row.epoch] = max(last_step.get(row.epoch, -np.inf), float(row.step))
        key = mapping.get(row.name)
        if key is None:
            continue
        value = _to_float(row.value)
        if value is None and isinstance(row.value, str) and not row.value.strip():
            continue
        builder.rows.setdefault(row.epoch, {}).pop(key, None)  # the last value in the epoch wins
        builder.put(row.epoch, key, row.value, row.name)
    notes = list(notes)
    evaluated = [e for e, vals in builder.rows.items() if any(not k.startswith("train_log.") for k in vals)]
    if evaluated:
        last = max(evaluated)
        cut = sorted(e for e in set(builder.rows) | set(last_step) if e > last)
        for e in cut:
            builder.rows.pop(e, None)
        if cut:
            where = f" (last step logged: {int(last_step[cut[-1]])})" if cut[-1] in last_step else ""
            notes.append(f"epoch(s) {', '.join(map(str, cut))} did not finish: no evaluation metric was logged"
                         f"{where}; only the {len(evaluated)} evaluated epoch(s) are in the tables.")
    builder.steps = {e: s for e, s in last_step.items() if e in builder.rows}
    return builder.build(config=config, source_format=source_format, source_files=source_files,
                         run_dir=str(run_dir), notes=tuple(notes))
