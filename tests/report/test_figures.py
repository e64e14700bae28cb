"""PNG curves with schedule events."""

from lvmdiag.report.events import schedule_events
from lvmdiag.report.figures import plot_run
from lvmdiag.report.history import read_run_history

from .conftest import RUNS


def test_png_is_written_small(tmp_path):
    h = read_run_history(RUNS / "p7_baseline")
    path = plot_run(h, schedule_events(h), tmp_path / "c.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 200_000


def test_history_with_only_losses(tmp_path):
    h = read_run_history(RUNS / "legacy_list")
    assert plot_run(h, (), tmp_path / "c.png").stat().st_size > 0
