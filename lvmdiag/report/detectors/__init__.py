"""Detectors over a run's per-epoch history: one module per detector, each with a documented rule.

Every detector is ``detect(history, events, [inputs], params=None) -> DetectorResult``; thresholds are
fields of its ``*Params`` dataclass. :data:`HISTORY_DETECTORS` run on logs alone; ``baselines`` and
``data_evidence`` take extra inputs (reference predictors, data-analysis signals).
"""

from lvmdiag.report.detectors import (
    accounting,
    baselines,
    chance,
    collapse,
    context_drift,
    data_evidence,
    divergence,
    imbalance,
    inert,
    mismatch,
    overfitting,
)

HISTORY_DETECTORS = (collapse, context_drift, mismatch, inert, imbalance, accounting, overfitting, divergence, chance)

__all__ = ["HISTORY_DETECTORS", "accounting", "baselines", "chance", "collapse", "context_drift", "data_evidence",
           "divergence", "imbalance", "inert", "mismatch", "overfitting"]
