"""The plain-loop example in the README runs as written (with a tiny torch model around it) and catches
the planted collapse at the end of the warmup."""

import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from ._task import BATCH, JUMP, LR, loss_fn, make_model, windows  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_plain_loop(tmp_path, monkeypatch):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Live diagnostics in your own training loop"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 12
    trc, trt, vc, vt = (torch.from_numpy(a) for a in windows(0))
    model = make_model(0)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    done = {"epochs": 0}

    def train_one_epoch(model, opt):
        done["epochs"] += 1
        if done["epochs"] == 3:  # the planted failure: lr x50 when the 2-epoch warmup ends
            opt.param_groups[0]["lr"] = LR * JUMP
        total = 0.0
        for i in range(0, len(trc), BATCH):
            loss = loss_fn(model(trc[i:i + BATCH]), trt[i:i + BATCH])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        return total / -(-len(trc) // BATCH)

    monkeypatch.chdir(tmp_path)
    scope = {"train_one_epoch": train_one_epoch, "model": model, "opt": opt, "val_ctx": vc, "val_tgt": vt}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example (the helper detaches)
    assert done["epochs"] == 3 and scope["check"].should_stop
    assert (tmp_path / "runs" / "mine" / "REPORT.md").is_file() and (tmp_path / "runs" / "mine" / "baselines.json").is_file()
