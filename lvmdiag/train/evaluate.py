"""The one evaluation function, used for every split, every epoch, the baselines and ``lvmdiag evaluate``.

A *predictor* maps a block of contexts ``(b, K, D)`` to ``(q, q_raw)``, two ``(b, D)`` arrays: the
model's anchored and raw outputs, or a baseline's prediction twice. :func:`evaluate` streams the rows
through it in blocks and accumulates additive sums, so memory does not grow with N.

Metrics (q is normalised; "prev" = c_last, the last context vector; anchor = normalize(mean of the
K context vectors)):

- ``cos_next`` mean cos(q, t); ``cos_prev`` mean cos(q, c_last); ``margin`` = cos_next - cos_prev;
  ``cos_anchor`` mean cos(q, anchor); the same four for q_raw with prefix ``raw_``;
  ``prev_above_next_share`` share of rows with cos(q, c_last) > cos(q, t).
- Retrieval: rows are put in a fixed pseudo-random order (``numpy`` seed 0, so the same file always
  gives the same pools) and cut into pools of ``pool_size`` rows (a short last pool is filled with
  targets of the first rows, which are candidates only). Row i is ranked among the targets of its pool
  plus its own c_last: ``n_candidates = pool_size + 1`` (or N + 1 when N < pool_size).
  ``rank_mean`` = mean of 1 + #{candidates scoring above t_i by more than 1e-6}; ``recall_at_1`` = share with
  rank 1. Chance: ``rank_chance = (n_candidates + 1) / 2``, ``recall_at_1_chance = 1 / n_candidates``.
  A non-finite (diverged) prediction gets the worst rank, and the cosine means become NaN.
- Dispersion: ``effective_rank`` = exp(entropy of the normalised singular values) of the N x D matrix
  of predictions (Roy & Vetterli 2007), ``target_effective_rank`` the same for the targets;
  ``mean_pairwise_cos`` / ``target_mean_pairwise_cos`` the mean cosine over pairs i != j.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from lvmdiag.results import Result, fmt, md_table

Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
ProgressCallback = Callable[[int, int], None]

POOL_ORDER_SEED = 0
_TIE = 1e-6


@dataclass(frozen=True)
class EvalMetrics(Result):
    """Metrics of one predictor on one split (field names are the ``metrics.jsonl`` keys)."""

    cos_next: float
    cos_prev: float
    margin: float
    cos_anchor: float
    raw_cos_next: float
    raw_cos_prev: float
    raw_margin: float
    raw_cos_anchor: float
    prev_above_next_share: float
    rank_mean: float
    recall_at_1: float
    n_candidates: int
    rank_chance: float
    recall_at_1_chance: float
    effective_rank: float
    target_effective_rank: float
    mean_pairwise_cos: float
    target_mean_pairwise_cos: float
    n: int

    def to_markdown(self) -> str:
        rows = [
            ["cos(q, next)", fmt(self.cos_next), fmt(self.raw_cos_next)],
            ["cos(q, prev = c_last)", fmt(self.cos_prev), fmt(self.raw_cos_prev)],
            ["margin (next - prev)", fmt(self.margin), fmt(self.raw_margin)],
            ["cos(q, context anchor)", fmt(self.cos_anchor), fmt(self.raw_cos_anchor)],
        ]
        table = md_table(["metric", "anchored q'", "raw q"], rows)
        return (
            f"{table}\n\nRetrieval among {self.n_candidates} candidates (pool targets + c_last): mean rank "
            f"{fmt(self.rank_mean, 2)} (chance {fmt(self.rank_chance, 2)}), recall@1 {fmt(self.recall_at_1)} "
            f"(chance {fmt(self.recall_at_1_chance)}). Effective rank of predictions {fmt(self.effective_rank, 1)} "
            f"vs targets {fmt(self.target_effective_rank, 1)}; prev scored above next for "
            f"{fmt(100 * self.prev_above_next_share, 1)}% of {self.n} windows."
        )


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def effective_rank_from_gram(gram: np.ndarray) -> float:
    """exp(entropy of normalised singular values) of X, from the Gram matrix X^T X (eigenvalues = sigma^2).

    NaN when the Gram matrix is not finite (a diverged model): eigvalsh would raise instead.
    """
    if not np.isfinite(gram).all():
        return float("nan")
    sigma = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None))
    total = sigma.sum()
    if total <= 0:
        return 0.0
    p = sigma[sigma > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def _pool_plan(n: int, pool_size: int) -> tuple[np.ndarray, int]:
    """Fixed row order and pool size actually used (``min(pool_size, n)``)."""
    order = np.random.default_rng(POOL_ORDER_SEED).permutation(n)
    return order, min(pool_size, n)


def evaluate(predict: Predictor, contexts: np.ndarray, targets: np.ndarray, *, pool_size: int = 64,
             batch_size: int = 512, progress: ProgressCallback | None = None) -> EvalMetrics:
    """Evaluate ``predict`` on windows ``contexts`` ``(N, K, D)`` -> ``targets`` ``(N, D)``.

    Parameters
    ----------
    predict : block of contexts -> (q, q_raw), each ``(b, D)``.
    contexts, targets : the usable rows of one split (see :func:`lvmdiag.train.data.prepare_split`).
    pool_size : targets per retrieval pool (see the module docstring for the candidate set).
    batch_size : rows per call of ``predict`` (rounded to whole pools).
    progress : optional ``callback(done_rows, total_rows)``.

    Returns
    -------
    EvalMetrics
        Every metric named in the module docstring, and ``n`` the number of rows.
    """
    n, _, d = contexts.shape
    if n == 0:
        raise ValueError("evaluate needs at least one row")
    order, pool = _pool_plan(n, pool_size)
    n_pools = -(-n // pool)
    pools_per_block = max(1, batch_size // pool)
    s = {k: 0.0 for k in ("next", "prev", "anchor", "rnext", "rprev", "ranchor", "prev_above", "rank", "top1")}
    gram_q = np.zeros((d, d))
    gram_t = np.zeros((d, d))
    sum_q = np.zeros(d)
    sum_t = np.zeros(d)
    done = 0
    for p0 in range(0, n_pools, pools_per_block):
        p1 = min(p0 + pools_per_block, n_pools)
        rows = order[p0 * pool: min(p1 * pool, n)]
        ctx = np.asarray(contexts[rows], dtype=np.float32)  # (b, K, D)
        tgt = _unit(targets[rows])  # (b, D)
        q, q_raw = predict(ctx)
        q, q_raw = _unit(q), _unit(q_raw)
        c_last = _unit(ctx[:, -1])
        anchor = _unit(ctx.mean(axis=1))
        cn, cp = (q * tgt).sum(1), (q * c_last).sum(1)
        s["next"] += float(cn.sum(dtype=np.float64))
        s["prev"] += float(cp.sum(dtype=np.float64))
        s["anchor"] += float((q * anchor).sum(1).sum(dtype=np.float64))
        s["rnext"] += float((q_raw * tgt).sum(1).sum(dtype=np.float64))
        s["rprev"] += float((q_raw * c_last).sum(1).sum(dtype=np.float64))
        s["ranchor"] += float((q_raw * anchor).sum(1).sum(dtype=np.float64))
        s["prev_above"] += float((cp > cn).sum())
        # retrieval, pool by pool: pool members' targets (+ filler targets for a short last pool)
        for j in range(p1 - p0):
            lo, hi = j * pool, min((j + 1) * pool, len(rows))
            pool_t = tgt[lo:hi]
            if hi - lo < pool:
                pool_t = np.concatenate([pool_t, _unit(targets[order[: pool - (hi - lo)]])])
            scores = q[lo:hi] @ pool_t.T  # (m, pool); row r's own target is column r
            own = np.diagonal(scores).copy()
            # "above" means by more than _TIE (float rounding between a matmul and a dot product must
            # not turn the target, or an exact duplicate of it, into its own competitor). Written as
            # "not <=" so a NaN score counts as above: a diverged (NaN) prediction gets the worst rank,
            # never rank 1 (a plain ">" is False for NaN and would score it recall@1 = 1).
            beats = ~(scores <= own[:, None] + _TIE)
            np.fill_diagonal(beats, False)  # a row's own target is not its competitor (even when NaN)
            above = beats.sum(1) + ~(cp[lo:hi] <= own + _TIE)
            s["rank"] += float((1 + above).sum())
            s["top1"] += float((above == 0).sum())
        # float32 products per block (fast), float64 running totals (no drift over many blocks)
        gram_q += q.T @ q
        gram_t += tgt.T @ tgt
        sum_q += q.sum(0, dtype=np.float64)
        sum_t += tgt.sum(0, dtype=np.float64)
        done += len(rows)
        if progress is not None:
            progress(done, n)
    n_cand = pool + 1
    pair = n * (n - 1)

    def mean_pair(total: np.ndarray) -> float:
        return float((total @ total - n) / pair) if pair else float("nan")

    return EvalMetrics(
        cos_next=s["next"] / n, cos_prev=s["prev"] / n, margin=(s["next"] - s["prev"]) / n,
        cos_anchor=s["anchor"] / n, raw_cos_next=s["rnext"] / n, raw_cos_prev=s["rprev"] / n,
        raw_margin=(s["rnext"] - s["rprev"]) / n, raw_cos_anchor=s["ranchor"] / n,
        prev_above_next_share=s["prev_above"] / n, rank_mean=s["rank"] / n, recall_at_1=s["top1"] / n,
        n_candidates=int(n_cand), rank_chance=(n_cand + 1) / 2, recall_at_1_chance=1.0 / n_cand,
        effective_rank=effective_rank_from_gram(gram_q), target_effective_rank=effective_rank_from_gram(gram_t),
        mean_pairwise_cos=mean_pair(sum_q), target_mean_pairwise_cos=mean_pair(sum_t), n=int(n),
    )
