"""Self-contained HTML for any result: verdict first, collapsible method notes, embedded PNG figures.

The page needs no network and no JavaScript: figures are base64 ``data:`` images, the style sheet is
inline, wide tables scroll inside their own box so nothing overflows a laptop screen. The body is
the result's markdown, converted by :func:`markdown_to_html`, a small converter of exactly the
subset our reports use (headings, pipe tables, lists, block quotes, fenced code, ``**bold**``,
```code```, images, links). Everything is escaped; an image is shown only when it is embedded
(``data:image/png;base64``) or named in ``images``, and links are printed, never followed, so the
page never fetches anything.
"""

from __future__ import annotations

import base64
import html
import io
import re
from typing import Any, Mapping

_DATA_PNG = re.compile(r"^data:image/png;base64,[A-Za-z0-9+/=]+$")
_NOTE_TITLE = re.compile(r"method|notes?\b|how to read|detectors", re.IGNORECASE)

CSS = """
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232a;margin:0;background:#f6f7f9}
main{max-width:72rem;margin:0 auto;padding:1.5rem 1.25rem 3rem;background:#fff;min-height:100vh}
h1{font-size:1.6rem;margin:.2rem 0 1rem}h2{font-size:1.3rem;border-bottom:1px solid #dde1e6;padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1.12rem;margin-top:1.6rem}h4,h5,h6{font-size:1rem;margin-top:1.2rem}
p,li,td,summary{overflow-wrap:anywhere}
.verdict{border-left:5px solid #2563eb;background:#eef4ff;padding:.6rem 1rem;margin:0 0 1.5rem;border-radius:4px}
.verdict h2{border:0;margin:.1rem 0 .3rem;font-size:1.1rem}
.table-wrap{max-width:100%;overflow-x:auto;margin:.6rem 0 1rem;border:1px solid #e3e6ea;border-radius:4px}
table{border-collapse:collapse;font-size:.85rem;min-width:100%}
th,td{padding:.3rem .55rem;border-bottom:1px solid #eceef1;text-align:left;vertical-align:top}
th{background:#f3f5f8;font-weight:600;min-width:4.5rem;overflow-wrap:normal}
td{font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafbfc}
code{font:.85em/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f3f5;padding:.05rem .25rem;border-radius:3px}
pre{background:#f1f3f5;padding:.7rem;border-radius:4px;white-space:pre-wrap;overflow-wrap:anywhere;font-size:.8rem}
pre code{background:none;padding:0}
img{max-width:100%;height:auto;display:block;margin:.6rem 0}
details{border:1px solid #e3e6ea;border-radius:4px;padding:.3rem .8rem;margin:.6rem 0;background:#fcfcfd}
summary{cursor:pointer;font-weight:600;color:#394452}
.missing-figure{color:#6b7280;font-style:italic}
footer{color:#6b7280;font-size:.8rem;margin-top:2rem}
"""


def _inline(text: str, images: Mapping[str, str]) -> str:
    """Escape ``text`` and render `code`, **bold**, images and links (code spans are left verbatim)."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if len(part) >= 2 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        pieces = []
        pos = 0
        for m in re.finditer(r"(!?)\[([^\]]*)\]\(([^)\s]*)\)", part):
            pieces.append(_bold(html.escape(part[pos:m.start()])))
            pieces.append(_image(m.group(2), m.group(3), images) if m.group(1) else
                          f"{_bold(html.escape(m.group(2)))} (<code>{html.escape(m.group(3))}</code>)")
            pos = m.end()
        pieces.append(_bold(html.escape(part[pos:])))
        out.append("".join(pieces))
    return "".join(out)


def _bold(escaped: str) -> str:
    """**bold** and ~~struck out~~ (ruled-out hypotheses) on already escaped text."""
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"~~(.+?)~~", r"<del>\1</del>", escaped)


def _image(alt: str, src: str, images: Mapping[str, str]) -> str:
    src = images.get(src, src)
    if _DATA_PNG.match(src):
        return f'<img alt="{html.escape(alt)}" src="{src}">'
    return f'<span class="missing-figure">[figure not embedded: {html.escape(alt)}]</span>'


def _table(lines: list[str], images: Mapping[str, str]) -> str:
    def cells(line: str) -> list[str]:
        line = line.strip()
        if line.startswith("|"):
            line = line[1:]
        if line.endswith("|"):
            line = line[:-1]
        return [c.strip() for c in line.split("|")]

    head = cells(lines[0])
    body = [cells(x) for x in lines[2:]] if len(lines) > 1 and re.match(r"^\|?\s*:?-{3,}", lines[1]) else [cells(x) for x in lines[1:]]
    th = "".join(f"<th>{_inline(c, images)}</th>" for c in head)
    rows = "".join("<tr>" + "".join(f"<td>{_inline(c, images)}</td>" for c in r) + "</tr>" for r in body)
    return f'<div class="table-wrap"><table><thead><tr>{th}</tr></thead><tbody>{rows}</tbody></table></div>'


def _blocks(md: str, images: Mapping[str, str]) -> list[tuple[str, int, str]]:
    """``(kind, level, html)`` blocks; kind is heading / note-title / other (level: heading depth)."""
    lines = md.splitlines()
    out: list[tuple[str, int, str]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        m = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        if m:
            level = len(m.group(1))
            out.append(("heading", level, f"<h{level}>{_inline(m.group(2), images)}</h{level}>"))
            i += 1
            continue
        if stripped.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            code = "\n".join(lines[i + 1 : j])
            out.append(("other", 0, f"<pre><code>{html.escape(code)}</code></pre>"))
            i = j + 1
            continue
        if stripped.startswith("|"):
            j = i
            while j < len(lines) and lines[j].strip().startswith("|"):
                j += 1
            out.append(("other", 0, _table(lines[i:j], images)))
            i = j
            continue
        if stripped.startswith(">"):
            j = i
            quote = []
            while j < len(lines) and lines[j].strip().startswith(">"):
                quote.append(lines[j].strip()[1:].strip())
                j += 1
            body = "".join(f"<p>{_inline(q, images)}</p>" for q in " ".join(quote).split("\n") if q)
            out.append(("other", 0, f"<details><summary>Note</summary>{body}</details>"))
            i = j
            continue
        if re.match(r"^\s*([-*]|\d+\.)\s+", line):
            ordered = bool(re.match(r"^\s*\d+\.", line))
            j = i
            items: list[str] = []
            while j < len(lines) and lines[j].strip():
                item = re.match(r"^\s*([-*]|\d+\.)\s+(.*)$", lines[j])
                if item:
                    items.append(item.group(2))
                elif items:
                    items[-1] += " " + lines[j].strip()  # continuation line
                j += 1
            tag = "ol" if ordered else "ul"
            out.append(("other", 0, f"<{tag}>" + "".join(f"<li>{_inline(t, images)}</li>" for t in items) + f"</{tag}>"))
            i = j
            continue
        j = i
        para = []
        while j < len(lines) and lines[j].strip() and not re.match(r"^(#{1,6}\s|\||>|```|\s*([-*]|\d+\.)\s)", lines[j].strip()):
            para.append(lines[j].strip())
            j += 1
        text = " ".join(para)
        kind = "note-title" if re.fullmatch(r"\*\*[^*]+\*\*:?", text) and _NOTE_TITLE.search(text) else "other"
        out.append((kind, 0, f"<p>{_inline(text, images)}</p>"))
        i = j
    return out


def markdown_to_html(md: str, images: Mapping[str, str] | None = None) -> str:
    """HTML of report markdown; method/notes sections fold into ``<details>`` (closed by default).

    ``images`` maps an image's markdown target (e.g. a PNG file name) to a ``data:image/png`` URI.
    """
    images = dict(images or {})
    html_parts: list[str] = []
    open_fold: int | None = None  # heading level that opened the fold (7: a bold note title)
    verdict_level: int | None = None  # a "Verdict" section is boxed so the reader finds it first
    for kind, level, chunk in _blocks(md, images):
        if open_fold is not None and (kind == "heading" and level <= open_fold or
                                      open_fold == 7 and kind in ("heading", "note-title")):
            html_parts.append("</details>")
            open_fold = None
        if verdict_level is not None and kind == "heading":  # the verdict box ends at the next heading
            html_parts.append("</section>")
            verdict_level = None
        if kind == "heading" and re.fullmatch(r"<h\d>Verdict</h\d>", chunk):
            html_parts.append(f'<section class="verdict">{chunk}')
            verdict_level = level
            continue
        if chunk.startswith("<p><strong>Status:"):
            html_parts.append(f'<section class="verdict">{chunk}</section>')
            continue
        if kind == "heading" and level >= 2 and _NOTE_TITLE.search(re.sub(r"<[^>]+>", "", chunk)):
            title = re.sub(r"^<h\d>|</h\d>$", "", chunk)
            html_parts.append(f"<details><summary>{title}</summary>")
            open_fold = level
            continue
        if kind == "note-title":
            title = re.sub(r"^<p>|</p>$", "", chunk)
            html_parts.append(f"<details><summary>{title}</summary>")
            open_fold = 7
            continue
        html_parts.append(chunk)
    if open_fold is not None:
        html_parts.append("</details>")
    if verdict_level is not None:
        html_parts.append("</section>")
    return "\n".join(html_parts)


def png_data_uri(fig: Any, dpi: int = 100) -> str:
    """A matplotlib Figure as a ``data:image/png;base64`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def render_page(title: str, body_html: str, verdict_html: str = "") -> str:
    """The whole HTML document: title, verdict box, then the body; inline CSS, no scripts, no external URLs."""
    verdict = f'<section class="verdict"><h2>Verdict</h2>{verdict_html}</section>' if verdict_html else ""
    body_html = re.sub(r"^\s*<h1>.*?</h1>", "", body_html, count=1)  # the title is shown above the verdict
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body><main>\n<h1>{html.escape(title)}</h1>\n"
        f"{verdict}\n{body_html}\n"
        "<footer>Written by lvmdiag. Self-contained: figures are embedded, nothing is fetched.</footer>"
        "</main></body></html>\n"
    )


def _verdict_of(result: Any, markdown: str) -> str:
    """The result's verdict as HTML (its ``verdict`` field/method, else the markdown's first verdict line)."""
    verdict = getattr(result, "verdict", None)
    if callable(verdict):
        verdict = verdict()
    if isinstance(verdict, str) and verdict.strip():
        return f"<p>{_inline(verdict, {})}</p>"
    if isinstance(verdict, (list, tuple)) and verdict:
        return "<ul>" + "".join(f"<li>{_inline(str(v), {})}</li>" for v in verdict) + "</ul>"
    for line in markdown.splitlines():
        if "verdict" in line.lower() and not line.lstrip().startswith("#"):
            return f"<p>{_inline(line.strip(), {})}</p>"
    return ""


def _title_of(markdown: str, result: Any) -> str:
    for line in markdown.splitlines():
        m = re.match(r"^#\s+(.*)$", line.strip())
        if m:
            return re.sub(r"[*`]", "", m.group(1))
    return f"lvmdiag: {type(result).__name__}"


def result_html(result: Any, *, figures: bool = True, note: str = "") -> str:
    """A self-contained HTML page for any lvmdiag result (figures drawn now and embedded); ``note`` is a
    markdown line placed under the result's title (e.g. the engine that read the data)."""
    figs: dict[str, str] = {}
    if figures:
        from lvmdiag.plots import figures_of

        figs = {name: png_data_uri(fig) for name, fig in figures_of(result).items()}
    kind = type(result).__name__
    if kind == "DataReport":
        markdown = result.to_markdown(figs)  # each section links its own figure
        figs = {}
    elif kind == "RunReport":
        import dataclasses

        markdown = dataclasses.replace(result, figure_files=tuple(figs.values())).to_markdown() if figs else result.to_markdown()
        figs = {}
    else:
        markdown = result.to_markdown()
    if note:
        from lvmdiag.engine.commands import insert_after_title

        markdown = insert_after_title(markdown, note)
    for name, uri in figs.items():
        markdown = markdown.rstrip("\n") + f"\n\n![{name}]({uri})\n"
    verdict = _verdict_of(result, markdown)
    head = "\n".join(markdown.splitlines()[:12])
    if re.search(r"^#+\s+Verdict", head, re.MULTILINE) or "**Status:" in head:
        verdict = ""  # the report already opens with its verdict: do not print it twice
    return render_page(_title_of(markdown, result), markdown_to_html(markdown), verdict)
