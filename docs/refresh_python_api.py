"""Rerun the worked example of docs/PYTHON_API.md and paste its real outputs into the page.

Every ```python block of the "Worked example" section that is followed by a ```text block runs, in
order, in one fresh Python process (so ``import lvmdiag`` is timed cold); each text block is replaced
by what its code printed. The process runs in a temporary folder that links the repository's
``fixtures`` (the example's relative paths work, and the HTML it writes lands there, not in the
repository). Run from anywhere: ``python docs/refresh_python_api.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "PYTHON_API.md"
SECTION = "## Worked example"
PAIR = re.compile(r"```python\n(.*?)```\n```text\n(.*?)```\n", re.S)
MARK = "----8<---- lvmdiag example block {} ----8<----"


def _next_heading(text: str, pos: int) -> int:
    """Offset of the first level-2 heading after ``pos`` outside code fences (printed markdown has its own)."""
    fenced, offset = False, pos
    for line in text[pos:].splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            return offset
        offset += len(line)
    return len(text)


def refresh(text: str) -> str:
    """The page with every (python, text) pair of the worked example rerun and its output pasted."""
    start = text.index(SECTION)
    end = _next_heading(text, start + len(SECTION))
    section = text[start:end]
    blocks = [m.group(1) for m in PAIR.finditer(section)]
    program = "".join(f"print({MARK.format(i)!r})\n{code}" for i, code in enumerate(blocks))
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(REPO / "fixtures", Path(tmp) / "fixtures")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "cli")])}
        run = subprocess.run([sys.executable, "-c", program], cwd=tmp, env=env, capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"the worked example failed:\n{run.stderr}")
    outputs = re.split("|".join(re.escape(MARK.format(i)) + r"\n" for i in range(len(blocks))), run.stdout)[1:]
    pieces = iter(outputs)
    new_section = PAIR.sub(lambda m: f"```python\n{m.group(1)}```\n```text\n{next(pieces)}```\n", section)
    return text[:start] + new_section + text[end:]


if __name__ == "__main__":
    new = refresh(PAGE.read_text(encoding="utf-8"))
    tmp = PAGE.with_name(PAGE.name + ".tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, PAGE)  # the page is never left half written
    print(f"refreshed {PAGE.relative_to(REPO)}")
