"""Trainer throughput and memory on CPU: sequences/second for training and validation, peak RSS.

Usage (run by hand, not in tests)::

    .venv/bin/python benchmarks/bench_train.py --n 2000 --threads 2

Each configuration runs in its own subprocess (so peak RSS is its own): the real ``lvmdiag.train.train``
for one epoch on synthetic 768-d random-walk windows (K=5, adjacent cosine 0.8), timing the training
batches from the first to the last progress callback (the first batch, which includes lazy
allocation, is excluded), then ``evaluate_model`` over the validation rows. Prints a markdown table
comparing with the upstream trainer's numbers from ANCHOR_BENCHMARKS.md (271 seq/s training,
1,420 seq/s validation, 1.12 GB peak RSS, on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {
    "upstream default (transformer d_model 512, 4 layers, nhead 8, batch 64)":
        dict(model_type="transformer", d_model=512, num_layers=4, nhead=8, batch_size=64),
    "small (transformer d_model 128, 2 layers, nhead 4, batch 64)":
        dict(model_type="transformer", d_model=128, num_layers=2, nhead=4, batch_size=64),
    "lstm (d_model 512, 2 layers, batch 64)":
        dict(model_type="lstm", d_model=512, num_layers=2, batch_size=64),
}
UPSTREAM = {"train": 271, "val": 1420, "rss_gb": 1.12}
DATA = Path(__file__).resolve().parent / "_data" / "bench_train"


def _worker(name: str, n: int, threads: int) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from lvmdiag.synthetic import make_splits, make_store
    from lvmdiag.train import TrainConfig, train
    from lvmdiag.train.data import prepare_split
    from lvmdiag.train.models import build_model, count_parameters
    from lvmdiag.train.trainer import evaluate_model

    # ~n windows in each split: articles of 30 chunks give 25 windows each
    store = make_store(n_articles=2 * max(n // 25, 2), d=768, rho=0.8, length=30, rng=0)
    sp = make_splits(store, k=5, ratios=(0.5, 0.5), rng=0)
    cfg = TrainConfig(epochs=1, warmup_epochs=1, train_eval_size=min(n, 2000), **CONFIGS[name])
    stamps: dict[int, tuple[float, float]] = {}

    def progress(done: int, total: int) -> None:
        if done in (1, total):
            stamps[done] = (time.perf_counter(), time.process_time())

    out = DATA / f"run_{abs(hash(name)) % 10**8}"
    t0 = time.perf_counter()
    train(cfg, sp["train"], sp["val"], out_dir=out, force=True, write_report=False, progress=progress)
    total_s = time.perf_counter() - t0
    n_batches = max(stamps)
    train_rows = sp["train"].n - cfg.batch_size  # rows in batches 2..n (the last batch may be short)
    train_sps = train_rows / (stamps[n_batches][0] - stamps[1][0])
    train_cpu = train_rows / (stamps[n_batches][1] - stamps[1][1])
    model = build_model(cfg, 768)
    val = prepare_split(sp["val"], "val")
    evaluate_model(model, val.rows(np.arange(min(256, val.n))), cfg, torch.device("cpu"))  # warm-up
    t1, c1 = time.perf_counter(), time.process_time()
    evaluate_model(model, val, cfg, torch.device("cpu"))
    val_sps = val.n / (time.perf_counter() - t1)
    val_cpu = val.n / (time.process_time() - c1)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: kB
    # Floor measured in the same process and moment (the machine is shared, so compare ratios): a bare
    # loop over the same batches with the same model and AdamW, loss = 1 - cos(q', t), nothing logged.
    tr = prepare_split(sp["train"], "train")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    ctx_t, tgt_t = torch.from_numpy(tr.contexts), torch.from_numpy(tr.targets)
    model.train()
    t2 = None
    for b, start in enumerate(range(0, tr.n, cfg.batch_size)):
        if b == 1:
            t2, c2 = time.perf_counter(), time.process_time()
        q, _ = model(ctx_t[start:start + cfg.batch_size])
        loss = (1 - (q * tgt_t[start:start + cfg.batch_size]).sum(-1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    bare_sps = (tr.n - cfg.batch_size) / (time.perf_counter() - t2)
    bare_cpu = (tr.n - cfg.batch_size) / (time.process_time() - c2)
    return {"config": name, "params": count_parameters(model), "n_train": sp["train"].n, "n_val": val.n,
            "train_seq_s": train_sps, "val_seq_s": val_sps, "rss_gb": rss_gb, "epoch_total_s": total_s,
            "bare_train_seq_s": bare_sps, "train_seq_cpu_s": train_cpu, "val_seq_cpu_s": val_cpu,
            "bare_train_seq_cpu_s": bare_cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="windows per split (train and val)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--configs", default="all", help="comma-separated indices into CONFIGS, or 'all'")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        print(json.dumps(_worker(args.worker, args.n, args.threads)))
        return
    names = list(CONFIGS) if args.configs == "all" else [list(CONFIGS)[int(i)] for i in args.configs.split(",")]
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = []
    try:
        for name in names:
            proc = subprocess.run([sys.executable, __file__, "--worker", name, "--n", str(args.n),
                                   "--threads", str(args.threads)], capture_output=True, text=True, check=True,
                                  env={**os.environ, "OMP_NUM_THREADS": str(args.threads),
                                       "OPENBLAS_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)})
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(DATA, ignore_errors=True)
    # wall-clock rates, and in brackets rates per CPU-second of this process (less sensitive to other
    # processes on a shared machine; with 1 thread close to the rate of an idle core)
    print(f"| trainer config ({args.threads} CPU thread(s), {args.n} windows/split, 768-d, K=5) | parameters | "
          "training seq/s [per CPU-s] | bare torch loop seq/s [per CPU-s] | validation seq/s, all metrics "
          "[per CPU-s] | peak RSS |")
    print("|---|---|---|---|---|---|")
    print(f"| upstream P7 trainer, default config (ANCHOR_BENCHMARKS.md, 2 threads) | 13.7M | {UPSTREAM['train']} | — | "
          f"{UPSTREAM['val']:,} | {UPSTREAM['rss_gb']:.2f} GB |")
    for r in rows:
        print(f"| lvmdiag train: {r['config']} | {r['params'] / 1e6:.1f}M | {r['train_seq_s']:,.0f} "
              f"[{r['train_seq_cpu_s']:,.0f}] | {r['bare_train_seq_s']:,.0f} [{r['bare_train_seq_cpu_s']:,.0f}] | "
              f"{r['val_seq_s']:,.0f} [{r['val_seq_cpu_s']:,.0f}] | {r['rss_gb']:.2f} GB |")
    print(f"\n(load average before the run: {load_before})")


if __name__ == "__main__":
    main()
