"""Detector time per epoch of ``lvmdiag.monitor.RunMonitor`` on a 100-epoch run (run by hand).

    python benchmarks/bench_monitor.py [--epochs 100] [--repeats 3]

Logs a synthetic run that learns, with the keys ``lvmdiag train`` writes (5 loss/gate terms, lr, 9 metrics
for each of val and train), into a temporary run directory, and times per epoch: the detector pass
(``EpochCheck.detector_seconds``: read ``metrics.jsonl`` back, schedule events, the 5 per-epoch detectors),
and the whole ``log_epoch`` (+ the atomic append). No detector fires on this run, so no report is drawn;
the cost of writing one (when a detector fires, and at ``close()``) is timed once at the end.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from lvmdiag.monitor import RunMonitor


def _epoch_metrics(e: int, rng: np.random.Generator) -> dict:
    """A learning run: cosines rise, losses fall, with noise."""
    t = 1 - np.exp(-e / 20)
    noise = lambda: float(rng.normal(0, 0.003))  # noqa: E731
    out = {"train_loss": 2.0 - t + noise(), "loss_rank": 1.8 - t + noise(), "loss_margin": 0.1 - 0.05 * t + noise(),
           "gate_weight_mean": 0.6 + noise(), "grad_norm": 1.0 + noise(), "lr": 5e-4}
    for split in ("val", "train"):
        nxt, prev = 0.3 + 0.3 * t + noise(), 0.35 + 0.1 * t + noise()
        out.update({f"{split}/cos_next": nxt, f"{split}/cos_prev": prev, f"{split}/margin": nxt - prev,
                    f"{split}/cos_anchor": 0.5 + 0.2 * t + noise(), f"{split}/raw_cos_next": nxt - 0.05,
                    f"{split}/raw_cos_prev": prev - 0.05, f"{split}/raw_margin": nxt - prev,
                    f"{split}/rank_mean": 10 - 5 * t + noise(), f"{split}/recall_at_1": 0.2 + 0.3 * t + noise()})
    return out


def run(epochs: int, seed: int) -> tuple[list[float], list[float], float]:
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        monitor = RunMonitor(Path(tmp) / "run", config={"epochs": epochs, "lr": 5e-4, "batch_size": 64, "w_rank": 1.0,
                                                          "w_margin": 0.5, "warmup_epochs": 2}, figures=True)
        detect, total = [], []
        for e in range(1, epochs + 1):
            t0 = time.perf_counter()
            check = monitor.log_epoch(e, _epoch_metrics(e, rng))
            total.append(time.perf_counter() - t0)
            detect.append(check.detector_seconds)
            assert not check.findings, [f.title for f in check.findings]
        t0 = time.perf_counter()
        monitor.close()
        return detect, total, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for r in range(args.repeats):
        detect, total, close = run(args.epochs, r)
        ms = lambda xs: 1000 * statistics.median(xs)  # noqa: E731
        rows.append(f"| {r} | {args.epochs} | {ms(detect[:10]):.1f} | {ms(detect[-10:]):.1f} | {1000 * max(detect):.1f} | "
                    f"{ms(total[-10:]):.1f} | {1000 * sum(total) / 1000:.2f} | {close:.2f} |")
    print("| repeat | epochs | detectors, median of epochs 1-10 (ms) | detectors, median of the last 10 (ms) | "
          "detectors, slowest epoch (ms) | whole log_epoch, last 10 (ms) | all log_epoch calls (s) | close() with PNG (s) |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
