"""Benchmark the single data commands one-shot vs through the local engine (issue 9, item 3).

Decides the default of ``lvmdiag bias|direction|diverge|leakage`` without ``--engine``: the engine
would become the default only if its results were identical (the same JSON, bit for bit) at equal or
better speed. Run by hand, never in the tests (data under ``benchmarks/_data/engine/``, deleted
afterwards unless ``--keep``):

    python benchmarks/bench_engine_commands.py --n 20000 --d 256 --repeats 2

Each command runs with its CLI defaults on memory-mapped ``.npy`` directories (train N windows,
val N/4, K = 5, article ids given; data as in bench_engine.py), one-shot (``engine=None``: the load
scan, then the analyzer's own passes) and ``engine="local"`` (validation fused into one pass),
alternating, page cache warm. Reported: median wall seconds of each, their ratio, and whether the
JSON is identical / equal under the engine tests' tolerance (tests/engine/shards.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_engine import DATA, gen  # noqa: E402

COMMANDS = ("bias", "direction", "diverge", "leakage")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--commands", default=",".join(COMMANDS))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    from lvmdiag.engine import commands
    from tests.engine.shards import assert_same_report

    warnings.simplefilter("ignore")
    paths = {n: p[0] for n, p in gen(args.n, args.d).items()}
    print(f"| command | one-shot (s) | engine local (s) | engine / one-shot | JSON identical | equal (tolerance) |")
    print("|---|---|---|---|---|---|")
    try:
        for cmd in args.commands.split(","):
            run = getattr(commands, f"run_{cmd}")
            times: dict[str, list[float]] = {"one": [], "eng": []}
            out = {}
            for _ in range(args.repeats):
                for key, engine in (("one", None), ("eng", "local")):
                    t0 = time.perf_counter()
                    res, _ = run(paths, engine=engine)
                    times[key].append(time.perf_counter() - t0)
                    out[key] = json.loads(json.dumps(res.to_dict()))
            one, eng = statistics.median(times["one"]), statistics.median(times["eng"])
            same = out["one"] == out["eng"]
            try:
                assert_same_report(out["eng"], out["one"])
                close = "yes"
            except AssertionError as exc:
                close = f"no ({str(exc)[:80]})"
            print(f"| {cmd} | {one:.1f} | {eng:.1f} | {eng / one:.2f}x | {'yes' if same else 'no'} | {close} |",
                  flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    main()
