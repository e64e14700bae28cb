"""Cut an article's text into ordered chunks of a word range, preferring paragraph ends (deterministic).

The rule, in full (words are whitespace-separated tokens; whitespace inside a paragraph becomes
single spaces, paragraphs inside a chunk are joined by a blank line):

1. Paragraphs are separated by blank lines. Each paragraph is cut into sentences: a sentence ends at
   a word whose last character, after closing quotes and brackets, is ``.``, ``!`` or ``?`` (a simple
   rule: "e.g." ends a sentence too; it only moves a break, never loses a word).
2. A sentence longer than ``max_words`` is cut at word boundaries into the fewest near-equal pieces
   of at most ``max_words`` words (so no chunk is ever longer than ``max_words`` and the encoder does
   not silently truncate a run-on "sentence" such as a long code block).
3. Greedy packing: sentences are appended to the current chunk while it stays within ``max_words``;
   the chunk is closed when the next sentence would overflow it, or at the end of a paragraph once it
   holds at least ``min_words`` words (so chunks end at paragraph ends whenever the range allows).
4. Merge pass: a chunk under ``min_words`` is joined to the neighbour (previous or next, in the same
   article) that gives the smaller joined chunk, if that stays within ``max_words`` (ties: previous);
   repeated until no short chunk can be joined.

Guarantees (property-tested): the chunks' words, in order, are exactly the article's words; every
chunk has 1 to ``max_words`` words; a chunk has fewer than ``min_words`` words only when it is the
article's only chunk or joining it to either neighbour would exceed ``max_words`` (e.g. a short
sentence between two long ones, or a short paragraph after a long one). Same text and parameters,
same chunks. Chunks never cross articles because each article is chunked on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lvmdiag.errors import InputError

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")
_CLOSERS = "\"')]}»”’"
_SENTENCE_END = ".!?"


@dataclass(frozen=True)
class ChunkParams:
    """Word range of a chunk: at least ``min_words`` where the text allows, never more than ``max_words``."""

    min_words: int = 40
    max_words: int = 120

    def __post_init__(self) -> None:
        if not (1 <= self.min_words <= self.max_words):
            raise InputError(
                f"--chunk-words must be MIN,MAX with 1 <= MIN <= MAX; got {self.min_words},{self.max_words}."
            )


# a unit is (paragraph number, words) of one sentence or sentence piece
_Unit = tuple[int, list[str]]


def _sentences(words: list[str]) -> list[list[str]]:
    """Split a paragraph's words after each word that ends a sentence."""
    out, cur = [], []
    for w in words:
        cur.append(w)
        if w.rstrip(_CLOSERS)[-1:] in _SENTENCE_END:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def _pieces(words: list[str], max_words: int) -> list[list[str]]:
    """Cut a too-long sentence into the fewest near-equal pieces of at most ``max_words`` words."""
    n = len(words)
    parts = -(-n // max_words)
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [words[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _units(text: str, max_words: int) -> list[tuple[int, list[str], bool]]:
    """(paragraph number, words, ends its paragraph) of every sentence piece of ``text``."""
    units = []
    para_no = 0
    for para in _PARAGRAPH_BREAK.split(text):
        words = para.split()
        if not words:
            continue
        pieces = [p for s in _sentences(words) for p in (_pieces(s, max_words) if len(s) > max_words else [s])]
        for i, p in enumerate(pieces):
            units.append((para_no, p, i == len(pieces) - 1))
        para_no += 1
    return units


def _pack(units: list[tuple[int, list[str], bool]], params: ChunkParams) -> list[list[_Unit]]:
    """Greedy packing (rule 3)."""
    chunks: list[list[_Unit]] = []
    cur: list[_Unit] = []
    n = 0
    for para_no, words, para_end in units:
        if cur and n + len(words) > params.max_words:
            chunks.append(cur)
            cur, n = [], 0
        cur.append((para_no, words))
        n += len(words)
        if para_end and n >= params.min_words:
            chunks.append(cur)
            cur, n = [], 0
    if cur:
        chunks.append(cur)
    return chunks


def _merge_short(chunks: list[list[_Unit]], params: ChunkParams) -> list[list[_Unit]]:
    """Join short chunks to a neighbour while the join stays within ``max_words`` (rule 4)."""
    sizes = [sum(len(w) for _, w in c) for c in chunks]
    # One left-to-right sweep suffices: a join only makes a chunk larger, so a chunk that could not be
    # joined before cannot be joined after; the joined chunk is re-examined in place.
    i = 0
    while i < len(chunks):
        options = []
        if sizes[i] < params.min_words:
            if i > 0 and sizes[i - 1] + sizes[i] <= params.max_words:
                options.append((sizes[i - 1] + sizes[i], 0, i - 1))
            if i + 1 < len(chunks) and sizes[i + 1] + sizes[i] <= params.max_words:
                options.append((sizes[i + 1] + sizes[i], 1, i + 1))
        if not options:
            i += 1
            continue
        _, _, j = min(options)
        a, b = min(i, j), max(i, j)
        chunks[a:b + 1] = [chunks[a] + chunks[b]]
        sizes[a:b + 1] = [sizes[a] + sizes[b]]
        i = a
    return chunks


def _render(chunk: list[_Unit]) -> str:
    """Words joined by spaces, paragraphs by a blank line."""
    paras: list[list[str]] = []
    last = None
    for para_no, words in chunk:
        if para_no != last:
            paras.append([])
            last = para_no
        paras[-1].extend(words)
    return "\n\n".join(" ".join(p) for p in paras)


def chunk_article(text: str, params: ChunkParams = ChunkParams()) -> list[str]:
    """Cut one article into ordered chunks by the module's rule.

    Parameters
    ----------
    text : the article (paragraphs separated by blank lines)
    params : the word range

    Returns
    -------
    list of chunk texts, in article order (empty when the text has no words)
    """
    return [_render(c) for c in _merge_short(_pack(_units(text, params.max_words), params), params)]


def word_count(text: str) -> int:
    """Words of a chunk as the chunker counts them (whitespace-separated tokens)."""
    return len(text.split())
