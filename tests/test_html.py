"""Results render themselves (HTML, markdown, figures, frames) and the HTML page is safe and self-contained.

The browser test loads the bundled example's data report and the P7 run report in headless Chromium
(skipped when no ``chromium`` binary exists): no console message (the page's Content-Security-Policy
turns any fetch into one), no external URL, and nothing wider than a 1280-px laptop window.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

import lvmdiag
from lvmdiag.report_html import markdown_to_html, render_page

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "fixtures" / "python_docs"
P7 = REPO / "fixtures" / "runs" / "p7_baseline"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def results():
    """The bundled example's data report (few resamples: rendering, not inference, is tested) and the P7 report."""
    data = lvmdiag.data(DOCS / "train_store.npz", DOCS / "val_store.npz", n_permutations=19, n_bootstrap=19)
    return {"data": data, "p7": lvmdiag.report(P7)}


@pytest.fixture(scope="module")
def pages(results):
    """Their HTML pages (figures drawn once for every test below)."""
    return {name: r.to_html() for name, r in results.items()}


class _Checker(HTMLParser):
    """Balanced tags; every URL-bearing attribute recorded."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href", "action", "srcset") and v]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):  # noqa: ANN001
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def _check(page: str) -> _Checker:
    c = _Checker()
    c.feed(page)
    assert not c.errors and not c.stack, (c.errors[:3], c.stack)
    assert "script" not in c.tags and not re.search(r"https?://", " ".join(c.urls))
    assert all(u.startswith("data:image/png;base64,") for u in c.urls), c.urls[:3]
    return c


def test_converter_escapes_everything_and_never_links_out():
    md = ("# T <b>\n\nplain <script>alert(1)</script> **bold** `a<b>` ~~gone~~\n\n"
          "| a | b |\n|---|---|\n| <i>x</i> | 1 |\n\n- item [site](https://example.com/x)\n\n"
          "![evil](https://example.com/x.png) ![local](fig.png)\n\n> a note\n\n```\n<raw>\n```\n")
    out = markdown_to_html(md)
    assert "<script" not in out and "&lt;script&gt;" in out and "&lt;i&gt;x&lt;/i&gt;" in out
    assert "<strong>bold</strong>" in out and "<code>a&lt;b&gt;</code>" in out and "<del>gone</del>" in out
    assert 'href=' not in out and 'src="https' not in out and "figure not embedded" in out
    assert '<div class="table-wrap"><table>' in out and "<details><summary>Note</summary>" in out
    assert "<pre><code>&lt;raw&gt;</code></pre>" in out
    boxed = markdown_to_html("# R\n\n## Verdict\n\n- fine\n\n### Leakage\n\ntext\n")
    assert '<section class="verdict"><h2>Verdict</h2>\n<ul><li>fine</li></ul>\n</section>\n<h3>' in boxed
    png = "data:image/png;base64,iVBORw0KGgo="
    assert f'src="{png}"' in markdown_to_html("![f](fig.png)", {"fig.png": png})
    _check(render_page("t", out, "<p>v</p>"))


def test_method_notes_fold_and_the_verdict_comes_first(pages):
    page = pages["data"]
    _check(page)
    main = page[page.index("<main>"):]
    assert main.index('class="verdict"') < main.index("<h2>") or main.index('class="verdict"') < 400
    assert "<details><summary><strong>Method notes</strong></summary>" in page
    assert page.count("<img") == 4  # one embedded figure per section
    p7 = pages["p7"]
    _check(p7)
    assert p7.count("<img") == 1 and '<section class="verdict"><p><strong>Status:</strong> <strong>FAILED' in p7


def test_every_result_renders_and_round_trips_to_dict(results):
    pd = pytest.importorskip("pandas")
    data = results["data"]
    objs = {"DataReport": data, "RunReport": results["p7"], "BiasComparison": data.bias,
            "DirectionResult": data.direction, "DivergenceResult": data.divergence, "LeakageResult": data.leakage}
    for name, r in objs.items():
        d = r.to_dict()
        assert json.loads(json.dumps(d, allow_nan=False)) == d, name  # the JSON twin is lossless JSON
        assert r._repr_markdown_() == r.to_markdown()
        _check(r.to_html(figures=False))  # with figures: _repr_html_ below and the tests above
        frame = r.to_frame()
        assert isinstance(frame, pd.DataFrame) and len(frame) > 0, name
    _check(data.leakage._repr_html_())
    fig = data.plot("leakage")
    assert type(fig).__name__ == "Figure" and fig.axes
    with pytest.raises(lvmdiag.InputError, match="no figure 'x'"):
        data.plot("x")
    # the tests table is the JSON's tests, row for row
    tests = data.divergence.to_frame()
    assert tests["pvalue"].tolist() == [t["pvalue"] for c in data.divergence.to_dict()["comparisons"]
                                        for t in _tests_in(c)]


def _tests_in(obj):
    if isinstance(obj, dict):
        if {"statistic", "pvalue", "effect", "n_resamples"} <= obj.keys():
            return [obj]
        return [t for v in obj.values() for t in _tests_in(v)]
    if isinstance(obj, list):
        return [t for v in obj for t in _tests_in(v)]
    return []


_PROBE = """
window.addEventListener("load", function () {
  var vw = document.documentElement.clientWidth, bad = [];
  document.querySelectorAll("main *").forEach(function (el) {
    if (el.closest(".table-wrap") && !el.classList.contains("table-wrap")) return;  // scrolls in its box
    var r = el.getBoundingClientRect();
    if (r.right > vw + 1 || r.left < -1) bad.push(el.tagName + ":" + Math.round(r.right));
  });
  var out = document.createElement("pre"); out.id = "overflow-check";
  out.textContent = JSON.stringify({scrollWidth: document.documentElement.scrollWidth, vw: vw, bad: bad.slice(0, 20)});
  document.body.appendChild(out);
});
"""


def _open(path: Path) -> tuple[list[str], dict]:
    """Load a copy of ``path`` at 1280x800 in headless Chromium: (console messages, layout).

    The copy adds one layout probe script, allowed by its hash in the page's own Content-Security-Policy
    (which otherwise forbids scripts and every fetch, so a fetch would show as a console message).
    """
    digest = base64.b64encode(hashlib.sha256(_PROBE.encode()).digest()).decode()
    page = path.read_text()
    assert "default-src 'none'" in page
    page = page.replace("default-src 'none';", f"default-src 'none'; script-src 'sha256-{digest}';", 1)
    probe = path.with_name(path.stem + "_probe.html")
    probe.write_text(page.replace("</body>", f"<script>{_PROBE}</script></body>"))
    run = subprocess.run([CHROMIUM, *FLAGS, "--window-size=1280,800", "--virtual-time-budget=3000",
                          "--enable-logging=stderr", "--v=0", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-500:]
    m = re.search(r'<pre id="overflow-check">([^<]*)</pre>', run.stdout)
    assert m, run.stdout[-500:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    return console, json.loads(m.group(1).replace("&quot;", '"'))


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
def test_reports_open_in_headless_chromium_without_errors_requests_or_overflow(pages, tmp_path):
    files = {name: tmp_path / f"{name}.html" for name in pages}
    for name, path in files.items():
        path.write_text(pages[name])
        console, layout = _open(path)
        assert not console, (name, console[:3])
        assert layout["scrollWidth"] <= layout["vw"] and not layout["bad"], (name, layout)
    # the checks can fail: an external image is a console message (CSP), a wide block an overflow
    bad = tmp_path / "bad.html"
    bad.write_text(pages["p7"].replace("</main>", '<img src="http://example.invalid/x.png">'
                                                   '<div style="width:3000px">wide</div></main>'))
    console, layout = _open(bad)
    assert any("example.invalid" in line for line in console) and layout["bad"]
