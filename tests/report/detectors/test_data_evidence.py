"""Data evidence: analyzer signals become findings or ruled-out hypotheses."""

from lvmdiag.report.detectors import data_evidence
from lvmdiag.report.detectors.data_evidence import DataSignal
from lvmdiag.report.findings import Evidence


def test_detected_signals_are_findings_and_others_ruled_out(make_history):
    h = make_history(val={"cos_next": [0.3, 0.3]})
    signals = [DataSignal("leakage", True, "95.0% of val windows share chunks with train", (Evidence("share", 0.95),)),
               DataSignal("divergence", False, "0 of 12 tests significant", (Evidence("tests", "0/12"),))]
    result = data_evidence.detect(h, signals=signals)
    (f,) = result.findings
    assert f.code == "data_leakage" and f.severity == "critical" and f.cause == "data_split"
    (r,) = result.ruled_out
    assert "differently distributed" in r.hypothesis


def test_skipped_without_signals(make_history):
    assert data_evidence.detect(make_history(val={"cos_next": [0.3]})).skipped
