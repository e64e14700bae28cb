"""Leakage analyzer: what every non-train split shares with train (articles, chunks, windows, near-duplicates).

Four kinds of sharing, each counted and turned into the share of the split's windows it touches:

- shared articles: article labels common to train and the split (given ids, or ids recovered by the
  data layer from shared chunk vectors across files; unknown when only contiguous blocks exist). A
  shared id counts as leakage only when the article also shares content under that id (an exact chunk
  or a near-duplicate found in a train window with the same id): two files whose ids each start at 0
  share every id and no content, an id-numbering problem reported as a warning, not as leakage. An
  article-level nearest-chunk test (:func:`_same_article_test`) adds evidence on whether such ids name
  the same articles (an article cut between the splits by position); it assumes ids are numbered
  independently of content (two files both sorted by topic and numbered break it), so its outcome is
  a warning and a ``shared-ids`` finding of the data report, never counted as content leakage;
- shared chunks: chunk vectors (any of the K contexts or the target) whose exact bytes occur in train;
- shared windows: whole K+1 windows that occur in train;
- near-duplicate chunks: chunks with no exact copy in train whose nearest train chunk has cosine >=
  ``threshold`` (e.g. a paper ingested twice with small edits), found by a blocked matrix product
  over de-duplicated, normalised vectors with a running maximum per chunk (never the full matrix).
  Exact copies are reported as shared chunks, never as near-duplicates.

Zero and non-finite vectors are never shared (failed encoder batches are stored as all-zero rows).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import numpy as np

from lvmdiag.analyzers.leakage_index import SplitKeys, gather_queries, hash_split, search_train
from lvmdiag.data.sequences import SequenceSet
from lvmdiag._validate import COSINE_THRESHOLD, check
from lvmdiag.data.texts import one_line, window_text
from lvmdiag.errors import InputError
from lvmdiag.results import Result, fmt, md_table

ProgressCallback = Callable[[int, int], None]

#: fixed edges of the nearest-train-cosine histogram (distinct chunks without an exact copy)
COS_EDGES = (-1.0, 0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 1.0)
#: level of the global nearest-chunk test that content-free shared ids name the same articles (articles cut
#: between the splits): strict, since a rejection words the id warning as "may not be article-disjoint" and
#: adds the data report's shared-ids finding
SAME_ARTICLE_P = 1e-3
#: random injections of that test: its p-value cannot go below 1/(B + 1) = 5e-4, so it can reach
#: SAME_ARTICLE_P with one exceedance to spare (B = 999 could reach it only with none)
SAME_ARTICLE_PERMUTATIONS = 1999
#: BH false discovery rate for singling out the articles (only once the global test rejects); an article's
#: exact p-value cannot go below 1/(train articles in the pool), so a strict level like SAME_ARTICLE_P
#: could never flag an article of a split with fewer than 1000 train articles
SAME_ARTICLE_FDR = 0.05


@dataclass(frozen=True)
class SameArticleTest:
    """Internal outcome of :func:`_same_article_test` (the public fields are on :class:`SplitLeakage`)."""

    n_chunks: int
    same: int
    chance: float
    pvalue: float
    n_perm: int
    n_pool: int
    flagged: np.ndarray  # article labels (the split's own) singled out as the same articles


@dataclass(frozen=True)
class ChunkPair(Result):
    """One example: a chunk slot of the split and the train slot it matches.

    ``pos`` is the slot in the window: 0..K-1 context chunks (K-1 = c_last), K = the target;
    ``pos = -1`` means the whole window. ``cosine`` is 1 for exact copies. ``text`` / ``train_text``
    are the two chunks' texts when known (a texts file beside the store, see :mod:`lvmdiag.data.texts`).
    """

    row: int
    pos: int
    train_row: int
    train_pos: int
    cosine: float
    text: str | None = None
    train_text: str | None = None

    def to_markdown(self) -> str:
        return f"{self.row}[{self.pos}] ~ train {self.train_row}[{self.train_pos}] ({fmt(self.cosine, 4)})"


@dataclass(frozen=True)
class SplitLeakage(Result):
    """What one split shares with train.

    Attributes
    ----------
    split, n_windows : the split and its window count
    n_chunks : distinct non-null chunk vectors in the split
    n_null_slots : chunk slots holding a zero or non-finite vector (never shared)
    n_articles, n_shared_articles, windows_shared_article, share_shared_article : article ids also in
        train and the windows of those articles (None when articles are unknown, i.e. only contiguous blocks)
    n_content_articles : shared ids whose windows share content (an exact chunk or a near-duplicate)
        with a train window of the same id: the same article in both splits
    n_id_only_articles, windows_id_only_article : shared ids with no such content, and their windows:
        ids that may be numbered per file (a warning, not leakage; see :meth:`LeakageResult.verdict`)
    id_only_chunks, id_only_same_nearest, id_only_expected, id_only_pvalue, id_only_permutations,
    id_only_pool : the article-level test of whether those ids name the same articles (e.g. articles cut
        by position, first part in train, the rest here): of the ``id_only_chunks`` distinct chunks of their
        windows, ``id_only_same_nearest`` (T) have their nearest train chunk in the train article with the
        same id; ``id_only_expected`` is T's mean under the null that ids are numbered independently of
        content (each id-only article's same-id train article a uniformly random one of the
        ``id_only_pool`` train articles not shared with content, distinct across articles);
        ``id_only_pvalue`` the Monte Carlo p-value over ``id_only_permutations`` random such injections
        (>= 1/(permutations + 1)). Articles, not chunks, are the units: chunks of one article share a topic.
    n_same_articles, windows_same_article : id-only articles singled out as the same article as their
        same-id train article (exact per-article p-value, BH at :data:`SAME_ARTICLE_FDR` across the id-only
        articles, only when the global test rejects at :data:`SAME_ARTICLE_P`; a few may be false
        discoveries), and their windows; ``same_article_ids`` the first ``max_examples`` of their ids
        (sorted). Evidence for the warning, not counted in ``windows_affected``
    n_shared_chunks : distinct chunk vectors with an exact copy in train
    windows_shared_chunk, share_shared_chunk : windows holding at least one such chunk
    n_shared_windows, share_shared_window : windows whose whole K+1 content occurs in train
    n_near_chunks : distinct chunks without an exact copy whose nearest train chunk has cosine >= threshold
    windows_near_chunk, share_near_chunk : windows holding at least one near-duplicate chunk
    windows_affected, share_affected : windows holding a shared chunk, a shared window or a near-duplicate,
        or lying in a shared article that shares content (``n_content_articles``); never a window whose only
        link to train is its id (see ``n_same_articles`` for the evidence on those)
    max_near_cosine : highest nearest-train cosine among chunks without an exact copy (NaN if none)
    cos_hist : counts of those chunks' nearest-train cosine over :data:`COS_EDGES`
    near_examples : the highest-cosine non-exact pairs (worst first), whether or not above threshold
    shared_chunk_examples, shared_window_examples : exact matches (first in row order)
    """

    split: str
    n_windows: int
    n_chunks: int
    n_null_slots: int
    n_articles: int | None
    n_shared_articles: int | None
    windows_shared_article: int | None
    share_shared_article: float | None
    n_shared_chunks: int
    windows_shared_chunk: int
    share_shared_chunk: float
    n_shared_windows: int
    share_shared_window: float
    n_near_chunks: int
    windows_near_chunk: int
    share_near_chunk: float
    windows_affected: int
    share_affected: float
    max_near_cosine: float
    cos_hist: tuple[int, ...]
    near_examples: tuple[ChunkPair, ...]
    shared_chunk_examples: tuple[ChunkPair, ...]
    shared_window_examples: tuple[ChunkPair, ...]
    n_content_articles: int | None = None
    n_id_only_articles: int | None = None
    windows_id_only_article: int | None = None
    id_only_chunks: int | None = None
    id_only_same_nearest: int | None = None
    id_only_expected: float | None = None
    id_only_pvalue: float | None = None
    id_only_permutations: int | None = None
    id_only_pool: int | None = None
    n_same_articles: int | None = None
    windows_same_article: int | None = None
    same_article_ids: tuple = ()

    @property
    def leaks(self) -> bool:
        """True when the split shares content with train (ids without content never count)."""
        return self.windows_affected > 0

    @property
    def shares_ids_only(self) -> bool:
        """True when some article ids are shared with train without any content under them."""
        return bool(self.n_id_only_articles)

    @property
    def ids_look_same(self) -> bool | None:
        """Whether the global nearest-chunk test shows that at least some content-free shared ids name the
        same articles (permutation p <= SAME_ARTICLE_P); None when untested (no such ids)."""
        if not self.shares_ids_only or self.id_only_pvalue is None:
            return None
        return bool(self.id_only_pvalue <= SAME_ARTICLE_P)

    def _nearest_evidence(self, reference: str) -> str:
        if self.ids_look_same is None:
            return ""
        counts = (f"the nearest {reference} chunk of {self.id_only_same_nearest} of their {self.id_only_chunks} chunks "
                  f"lies in the {reference} article with the same id (chance ≈ {self.id_only_expected:.1f}; "
                  f"permutation p = {self.id_only_pvalue:.2g} over {self.id_only_permutations} random id assignments)")
        if not self.ids_look_same:
            return f"; {counts}: not significant at {SAME_ARTICLE_P:g}, so these ids are not shown to name the same articles"
        assumption = ("the test assumes ids are numbered independently of content: files sorted by topic and "
                      "numbered in that order also score high")
        if self.n_same_articles:
            return (f"; {counts}, which suggests some of these ids name the same articles: {self.n_same_articles} "
                    f"article{'' if self.n_same_articles == 1 else 's'} singled out at FDR {SAME_ARTICLE_FDR:g} (that rate "
                    f"holds only if ids are numbered independently of content), {self.windows_same_article} windows; "
                    f"{assumption}")
        if self.id_only_pool and 1.0 / self.id_only_pool > SAME_ARTICLE_FDR:
            none = (f"though no article can be singled out with {self.id_only_pool} {reference} articles (an article's "
                    f"p is at least 1/{self.id_only_pool})")
        else:
            none = f"though none is singled out after the per-article correction (BH across {self.n_id_only_articles} articles)"
        return f"; {counts}, which suggests some of these ids name the same articles, {none}; {assumption}"

    def id_warning(self, reference: str, threshold: float | None = None) -> str:
        """The plain-language warning for ids shared without content ("" when there are none)."""
        if not self.shares_ids_only:
            return ""
        near = "near-duplicate" if threshold is None else f"near-duplicate (cos ≥ {threshold:g})"
        text = (f"{self.split} and {reference} share {_ids(self.n_id_only_articles)} but no chunk content under them "
                f"({self.windows_id_only_article} of {self.n_windows} {self.split} windows){self._nearest_evidence(reference)}. ")
        if self.ids_look_same:
            return text + (f"If these ids do name the same articles, the split is not article-disjoint (e.g. articles "
                           f"cut by position, one part in each "
                           f"split), although no chunk, window or {near} is shared: check how the split was made; if "
                           "the ids are numbered per file, give each file its own ids (e.g. prefix them with the file "
                           "name)")
        return text + (f"Ids may be numbered per file: give each file its own ids (e.g. prefix them with the file "
                       f"name) so that resampling and leakage checks do not treat different articles as one; if these "
                       f"ids do name the same articles, the split is not article-disjoint, although no chunk, window "
                       f"or {near} is shared")

    def to_markdown(self) -> str:
        return f"{self.split}: {self.windows_affected}/{self.n_windows} windows affected"


@dataclass(frozen=True)
class LeakageResult(Result):
    """Output of :func:`analyze_leakage`.

    Attributes
    ----------
    reference : the split compared against ("train")
    n_reference_windows, n_reference_chunks : its windows and distinct non-null chunk vectors
    threshold : near-duplicate cosine threshold
    group_method, group_note : how articles were identified
    splits : one :class:`SplitLeakage` per non-train split
    search : how nearest train chunks were found: "exact" (blocked products) or "ann" (lvmdiag.stats.ann)
    search_note : for "ann", the recall measured against the exact search on a sample of queries
    """

    reference: str
    n_reference_windows: int
    n_reference_chunks: int
    threshold: float
    group_method: str
    group_note: str
    splits: tuple[SplitLeakage, ...]
    cos_edges: tuple[float, ...] = COS_EDGES
    search: str = "exact"
    search_note: str = ""

    def split(self, name: str) -> SplitLeakage:
        for s in self.splits:
            if s.split == name:
                return s
        raise KeyError(name)

    def found(self, name: str | None = None) -> bool:
        """True when any (or the named) split shares anything with the reference."""
        chosen = self.splits if name is None else (self.split(name),)
        return any(s.leaks for s in chosen)

    def id_warnings(self) -> list[str]:
        """One warning per split sharing article ids with the reference but no content under them."""
        return [s.id_warning(self.reference, self.threshold) for s in self.splits if s.shares_ids_only]

    def verdict(self) -> str:
        """One line: content leakage per split, and any ids shared without content (a warning, not leakage)."""
        warn = [f"{s.split} shares {_ids(s.n_id_only_articles)} with {self.reference} but no chunk content under them: "
                + _id_verdict(s) for s in self.splits if s.shares_ids_only]
        if not self.found():
            if warn:
                return (f"no content leakage (no chunk, window or near-duplicate shared with {self.reference}); "
                        "warning: " + "; ".join(warn))
            return f"no leakage: no split shares articles, chunks, windows or near-duplicates with {self.reference}"
        parts = [f"{s.split}: {100 * s.share_affected:.1f}% of windows share content with {self.reference} or lie in "
                 "an article that does"
                 for s in self.splits if s.leaks]
        return "LEAKAGE — " + "; ".join(parts) + ("; warning: " + "; ".join(warn) if warn else "")

    def to_markdown(self) -> str:
        pct = lambda x: "—" if x is None else f"{100 * x:.1f}%"  # noqa: E731
        lines = ["## Leakage", "", f"**Verdict:** {self.verdict()}.", ""]
        rows = []
        for s in self.splits:
            art = "—" if s.n_shared_articles is None else f"{s.n_shared_articles}/{s.n_articles}"
            rows.append([s.split, s.n_windows, art, pct(s.share_shared_article),
                         s.n_shared_chunks, pct(s.share_shared_chunk), s.n_shared_windows, pct(s.share_shared_window),
                         s.n_near_chunks, pct(s.share_near_chunk), fmt(s.max_near_cosine, 4), pct(s.share_affected)])
        lines.append(md_table(
            ["split", "windows", "shared article ids", "windows under shared ids", "shared chunks",
             "windows w/ shared chunk", "shared windows", "windows shared whole", f"near chunks (cos ≥ {self.threshold})",
             "windows w/ near chunk", "max non-exact cos", "windows affected"], rows))
        lines += [
            "",
            f"Compared with {self.reference}: {self.n_reference_windows} windows, {self.n_reference_chunks} distinct "
            f"chunk vectors. Articles: {self.group_method}. {self.group_note}".rstrip(),
            "Chunks are compared by exact bytes (the K contexts and the target); near-duplicates are chunks without "
            f"an exact copy whose nearest {self.reference} chunk reaches the threshold. Zero vectors are never counted. "
            "Shares are of the split's windows; 'windows affected' counts a window once if it shares content or lies "
            "in an article (id) that shares content; an id shared without content is not counted (see the warning).",
        ]
        if self.search_note:
            lines.append(self.search_note)
        for w in self.id_warnings():
            lines += ["", f"**Warning:** {w}."]
        for s in self.splits:
            bins = zip(self.cos_edges[:-1], self.cos_edges[1:], s.cos_hist)
            hist = ", ".join(f"[{a:g}, {b:g}): {c}" for a, b, c in bins)
            lines += ["", f"### {s.split}", "", f"Nearest-train cosine of its {sum(s.cos_hist)} chunks without an "
                      f"exact copy: {hist}."]
            if s.near_examples:
                with_text = any(e.text or e.train_text for e in s.near_examples)
                lines += ["", "Closest non-exact pairs (row[slot]; slot K = target):", "",
                          md_table(["row", "slot", "train row", "train slot", "cosine", "near-dup"]
                                   + (["text", f"{self.reference} text"] if with_text else []),
                                   [[e.row, e.pos, e.train_row, e.train_pos, fmt(e.cosine, 4),
                                     "yes" if e.cosine >= self.threshold else "no"]
                                    + ([one_line(e.text), one_line(e.train_text)] if with_text else [])
                                    for e in s.near_examples])]
            if s.shared_window_examples:
                lines += ["", "Shared whole windows (row → train row): "
                          + ", ".join(f"{e.row} → {e.train_row}" for e in s.shared_window_examples)]
            if s.shared_chunk_examples:
                shown = ", ".join(e.to_markdown() for e in s.shared_chunk_examples)
                lines += ["", "Shared chunks (one per window): " + shown]
        return "\n".join(lines) + "\n"


def _id_verdict(s: SplitLeakage) -> str:
    """The verdict's clause for ids shared without content: what the nearest-chunk test shows, no more."""
    if not s.ids_look_same:
        return "ids may be numbered per file (the nearest-chunk test finds no sign that they name the same articles)"
    singled = (f"{s.n_same_articles} singled out at FDR {SAME_ARTICLE_FDR:g}" if s.n_same_articles
               else "none singled out")
    return (f"the nearest-chunk test suggests some name the same articles (p = {s.id_only_pvalue:.2g}; {singled}; "
            "it assumes ids numbered independently of content), so the split may not be article-disjoint")


def _ids(n: int | None) -> str:
    return f"{n} article id{'' if n == 1 else 's'}"


# --------------------------------------------------------------------------------------------------


def _analyze_leakage_iv(splits: Mapping[str, SequenceSet], reference: str, threshold: float,
                        max_examples: int, block_rows: int) -> None:
    if not isinstance(splits, Mapping):
        raise TypeError("analyze_leakage needs a dict of split name -> SequenceSet.")
    if reference not in splits:
        raise InputError(f"analyze_leakage needs a {reference!r} split to compare against; got {list(splits)}.")
    if len(splits) < 2:
        raise InputError(f"analyze_leakage needs at least one split besides {reference!r} (e.g. --val).")
    ref = splits[reference]
    for name, s in splits.items():
        if not isinstance(s, SequenceSet):
            raise TypeError(f"split {name!r} must be a SequenceSet; got {type(s).__name__}.")
        if (s.k, s.d) != (ref.k, ref.d):
            raise InputError(f"split {name!r} ({s.source}) has K={s.k}, D={s.d}; {reference} has K={ref.k}, D={ref.d}.")
    check("threshold (a cosine)", threshold, COSINE_THRESHOLD)
    if max_examples < 0 or block_rows < 1:
        raise InputError(f"max_examples must be >= 0 and block_rows >= 1; got {max_examples}, {block_rows}.")


def _article_overlap(groups: Any, names: list[str]) -> tuple[dict[str, np.ndarray] | None, str, str]:
    if hasattr(groups, "labels"):
        method, note = str(groups.method), str(getattr(groups, "note", ""))
        labels = list(groups.labels)
    else:
        method, note, labels = "given", "", list(groups)
    if len(labels) != len(names):
        raise InputError(f"groups has {len(labels)} label arrays for {len(names)} splits.")
    if method == "contiguous-blocks":
        return None, method, (note + " Shared articles cannot be counted without article ids.").strip()
    return {n: np.asarray(lab) for n, lab in zip(names, labels)}, method, note


def _split_report(name: str, seq: SequenceSet, keys: SplitKeys, train_keys: SplitKeys,
                  train_uniq: np.ndarray, train_first: np.ndarray, win_uniq: np.ndarray, win_first: np.ndarray,
                  q_keys: np.ndarray, q_slot: np.ndarray, q_cos: np.ndarray, q_id: np.ndarray,
                  labels: dict[str, np.ndarray] | None, reference: str, threshold: float,
                  max_examples: int) -> SplitLeakage:
    n, k1 = seq.n, seq.k + 1
    live = ~keys.null
    exact = np.isin(keys.chunk, train_uniq) & live  # (n, K+1)
    uniq, _ = keys.unique_chunks()
    n_shared = int(np.isin(uniq, train_uniq, assume_unique=True).sum())
    # near: map each live, non-exact slot to its query
    near_q = q_cos >= threshold
    near = np.zeros_like(exact)
    idx = np.searchsorted(q_keys, keys.chunk)
    cand = live & ~exact
    found = cand & (idx < q_keys.size)
    found[found] = q_keys[idx[found]] == keys.chunk[found]
    near[found] = near_q[idx[found]]
    win_shared = np.isin(keys.window, win_uniq) & ~keys.window_null
    w_chunk, w_near = exact.any(axis=1), near.any(axis=1)
    affected = w_chunk | w_near | win_shared
    n_art = n_shared_art = w_art = n_content_art = n_id_only = w_id_only = None
    test: SameArticleTest | None = None
    w_same = None
    if labels is not None:
        lab, tlab = labels[name], labels[reference]
        shared_art = np.intersect1d(lab, tlab)
        in_shared = np.isin(lab, shared_art)
        n_art, n_shared_art, w_art = int(np.unique(lab).size), int(shared_art.size), int(in_shared.sum())
        codes = _ArticleCodes.of(lab, tlab)  # one coding of both splits' labels for the two id checks
        content_ids = _ids_sharing_content(codes, keys, train_keys, exact, near, idx, q_id)
        in_content = np.isin(lab, content_ids)
        n_content_art = int(np.intersect1d(content_ids, shared_art).size)
        id_only = in_shared & ~in_content
        n_id_only, w_id_only = n_shared_art - n_content_art, int(id_only.sum())
        affected |= in_content
        if w_id_only:
            from lvmdiag.stats.resampling import named_stream

            # a fixed stream per split: the same data give the same p-value, one-shot or engine
            test = _same_article_test(codes, id_only, content_ids, q_slot, q_id, k1,
                                      train_keys.chunk.shape[1], named_stream(0, "leakage-same-id", name))
            w_same = int((id_only & np.isin(lab, test.flagged)).sum())  # evidence for the warning, not "affected"
    # examples
    order = np.argsort(-np.nan_to_num(q_cos, nan=-np.inf), kind="stable")[:max_examples]
    near_ex = tuple(ChunkPair(int(q_slot[i] // k1), int(q_slot[i] % k1), int(q_id[i] // k1), int(q_id[i] % k1),
                              float(q_cos[i])) for i in order if q_id[i] >= 0)
    tk1 = train_keys.chunk.shape[1]
    chunk_ex = []  # one example per window: its first shared slot
    for rr in np.flatnonzero(w_chunk)[:max_examples]:
        pp = int(np.argmax(exact[rr]))
        ts = int(train_first[np.searchsorted(train_uniq, keys.chunk[rr, pp])])
        chunk_ex.append(ChunkPair(int(rr), int(pp), ts // tk1, ts % tk1, 1.0))
    win_ex = [ChunkPair(int(rr), -1, int(win_first[np.searchsorted(win_uniq, keys.window[rr])]), -1, 1.0)
              for rr in np.flatnonzero(win_shared)[:max_examples]]
    hist = np.histogram(q_cos[np.isfinite(q_cos)], bins=np.asarray(COS_EDGES))[0]
    share = lambda c: float(c) / n if n else float("nan")  # noqa: E731
    return SplitLeakage(
        split=name, n_windows=n, n_chunks=int(uniq.size), n_null_slots=int(keys.null.sum()),
        n_articles=n_art, n_shared_articles=n_shared_art, windows_shared_article=w_art,
        share_shared_article=None if w_art is None else share(w_art),
        n_shared_chunks=n_shared, windows_shared_chunk=int(w_chunk.sum()), share_shared_chunk=share(w_chunk.sum()),
        n_shared_windows=int(win_shared.sum()), share_shared_window=share(win_shared.sum()),
        n_near_chunks=int(near_q.sum()), windows_near_chunk=int(w_near.sum()), share_near_chunk=share(w_near.sum()),
        windows_affected=int(affected.sum()), share_affected=share(affected.sum()),
        max_near_cosine=float(np.nanmax(q_cos)) if np.isfinite(q_cos).any() else float("nan"),
        cos_hist=tuple(int(c) for c in hist), near_examples=near_ex,
        shared_chunk_examples=tuple(chunk_ex), shared_window_examples=tuple(win_ex),
        n_content_articles=n_content_art, n_id_only_articles=n_id_only, windows_id_only_article=w_id_only,
        **({} if test is None else dict(
            id_only_chunks=test.n_chunks, id_only_same_nearest=test.same, id_only_expected=test.chance,
            id_only_pvalue=test.pvalue, id_only_permutations=test.n_perm, id_only_pool=test.n_pool,
            n_same_articles=int(test.flagged.size), windows_same_article=w_same,
            same_article_ids=tuple(np.sort(test.flagged)[:max_examples].tolist()))),
    )


@dataclass(frozen=True)
class _ArticleCodes:
    """Dense codes of the article labels of a split and of train, numbered over both (one ``np.unique``)."""

    labels: np.ndarray  # the distinct labels, sorted; a code indexes them
    code: np.ndarray  # (N,) code of each window of the split
    tcode: np.ndarray  # (N_train,) code of each train window

    @classmethod
    def of(cls, lab: np.ndarray, tlab: np.ndarray) -> "_ArticleCodes":
        labels, inv = np.unique(np.concatenate([np.asarray(lab), np.asarray(tlab)]), return_inverse=True)
        inv = inv.ravel()
        return cls(labels, inv[: np.asarray(lab).size], inv[np.asarray(lab).size :])


def _same_article_test(codes: _ArticleCodes, id_only: np.ndarray, content_ids: np.ndarray,
                       q_slot: np.ndarray, q_id: np.ndarray, k1: int, tk1: int,
                       rng: np.random.Generator, n_perm: int = SAME_ARTICLE_PERMUTATIONS) -> SameArticleTest:
    """Article-level nearest-chunk test: do content-free shared ids name the same articles?

    The unit is the article, not the chunk (chunks of one article share a topic, so they tend to pick
    the same nearest train article: they are not independent trials). ``H[a, b]`` counts the distinct
    chunks of id-only val article ``a`` whose nearest train chunk lies in train article ``b``.

    Attribution rule (one for both sides): a distinct val chunk belongs to the window of its first
    occurrence in the split (row-major; overlapping windows repeat chunks), and is tested when that
    window is id-only; its nearest train chunk belongs to the train article of that chunk's first
    occurrence in train. So each distinct chunk is counted once, in one cell of ``H``.

    Null: ids are numbered independently of content. Then the train article sharing ``a``'s id is a
    uniformly random member of the pool (train articles whose id is not shared with content), distinct
    across val articles: a uniform injection ``sigma``. Global statistic ``T = sum_a H[a, same(a)]``,
    its chance ``E[T] = sum_a mean_b H[a, b]`` over the pool, and the Monte Carlo p-value
    ``(1 + #{T_sigma >= T}) / (n_perm + 1)`` over ``n_perm`` random injections (exact under the null).
    Per article: ``p_a = #{b in pool : H[a, b] >= H[a, same(a)]} / n_pool`` (exact, >= 1/n_pool; 1 when
    ``H[a, same(a)] = 0``), BH-adjusted across every id-only article; an article is flagged as the same
    article when the global test rejects at :data:`SAME_ARTICLE_P` and its adjusted p is <= :data:`SAME_ARTICLE_FDR`.
    The p_a depend on each other only through the injection (sampling without replacement), which BH is
    not proven for; the global test gates them (weak family-wise control under the global null).
    An "article" is an id label (val windows sharing one id are one unit, as train windows are).
    """
    from lvmdiag.stats.resampling import benjamini_hochberg

    code, tcode = codes.code, codes.tcode
    content = np.isin(codes.labels, content_ids)
    pool_codes = np.setdiff1d(np.unique(tcode), np.flatnonzero(content))  # train articles that may carry an id-only id
    n_pool = int(pool_codes.size)
    art_codes = np.unique(code[id_only])  # the id-only val articles (each has a same-id train article in the pool)
    m = int(art_codes.size)
    rows = q_slot // k1
    use = (q_id >= 0) & id_only[rows]
    n_chunks = int(use.sum())
    va = np.searchsorted(art_codes, code[rows[use]])  # val article index 0..m-1
    tb_code = tcode[q_id[use] // tk1]
    in_pool = np.isin(tb_code, pool_codes)  # a nearest chunk in a content-sharing train article: never any sigma(a)
    va, tb = va[in_pool], np.searchsorted(pool_codes, tb_code[in_pool])
    key, h = np.unique(va.astype(np.int64) * n_pool + tb, return_counts=True)  # sparse H over (val article, pool article)
    same_b = np.searchsorted(pool_codes, art_codes)  # same(a): the pool index of a's id
    h_same = _lookup(key, h, np.arange(m, dtype=np.int64) * n_pool + same_b)
    t_obs = int(h_same.sum())
    chance = float(h.sum()) / n_pool if n_pool else 0.0
    # per article: how many pool articles take at least as many of a's chunks as its same-id article
    ka = key // max(n_pool, 1)
    at_least = np.bincount(ka[h >= h_same[ka]], minlength=m)
    p_art = np.where(h_same > 0, at_least / max(n_pool, 1), 1.0)
    if t_obs == 0:  # every T_sigma >= 0 = T: p = (B + 1) / (B + 1) whatever the draws
        return SameArticleTest(n_chunks, t_obs, chance, 1.0, n_perm, n_pool, codes.labels[:0])
    hit_rows = np.unique(ka)  # articles with no tested chunk add 0 under every sigma: inject only the others
    local = np.full(m, -1, np.int64)
    local[hit_rows] = np.arange(hit_rows.size)
    key2 = local[ka] * n_pool + key % n_pool
    order = np.argsort(key2)
    key2, h2 = key2[order], h[order]
    r = hit_rows.size
    batch = max(1, (1 << 21) // max(r, 1))
    exceed, done = 0, 0
    while done < n_perm:
        nb = min(batch, n_perm - done)
        sig = np.stack([rng.choice(n_pool, size=r, replace=False) for _ in range(nb)])
        t_null = _lookup(key2, h2, np.arange(r, dtype=np.int64)[None, :] * n_pool + sig).sum(axis=1)
        exceed += int((t_null >= t_obs).sum())
        done += nb
    pvalue = (1 + exceed) / (n_perm + 1)
    flagged = (benjamini_hochberg(p_art) <= SAME_ARTICLE_FDR) & (h_same > 0) if pvalue <= SAME_ARTICLE_P else np.zeros(m, bool)
    return SameArticleTest(n_chunks, t_obs, chance, float(pvalue), n_perm, n_pool, codes.labels[art_codes[flagged]])


def _lookup(keys: np.ndarray, values: np.ndarray, want: np.ndarray) -> np.ndarray:
    """``values`` at ``want`` in the sorted ``keys`` (0 where absent)."""
    if keys.size == 0:
        return np.zeros(want.shape, np.int64)
    pos = np.minimum(np.searchsorted(keys, want), keys.size - 1)
    return np.where(keys[pos] == want, values[pos], 0)


def _ids_sharing_content(codes: _ArticleCodes, keys: SplitKeys, train_keys: SplitKeys,
                         exact: np.ndarray, near: np.ndarray, idx: np.ndarray, q_id: np.ndarray) -> np.ndarray:
    """The split's article ids under which some chunk also occurs in a train window with the same id.

    A slot counts when its chunk is an exact copy of a chunk in a train window of the same id, or a
    near-duplicate whose nearest train chunk (by content: any train window holding that vector) has
    the same id. Pairs (chunk key, id) are compared as exact hashes of the two words, so one chunk in
    several train articles is matched under each of their ids.
    """
    code, tcode = codes.code.astype(np.uint64), codes.tcode.astype(np.uint64)
    tlive = ~train_keys.null
    train_pairs = np.unique(_pair_keys(train_keys.chunk[tlive], np.broadcast_to(tcode[:, None], tlive.shape)[tlive]))
    hit = np.zeros(code.size, bool)
    rows, cols = np.nonzero(exact)
    if rows.size:
        hit[rows[np.isin(_pair_keys(keys.chunk[rows, cols], code[rows]), train_pairs)]] = True
    rows, cols = np.nonzero(near)
    if rows.size:  # the nearest train chunk's content key, paired with this window's id
        slot = q_id[idx[rows, cols]]
        nearest = train_keys.chunk.reshape(-1)[slot]
        hit[rows[np.isin(_pair_keys(nearest, code[rows]), train_pairs)]] = True
    return codes.labels[np.unique(codes.code[hit])]


def _pair_keys(chunk_keys: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Exact-content hash of each (chunk key, article code) pair."""
    from lvmdiag.data.hashing import hash_rows

    return hash_rows(np.stack([np.asarray(chunk_keys, np.uint64), np.asarray(codes, np.uint64)], axis=1))


def analyze_leakage(
    splits: Mapping[str, SequenceSet],
    *,
    threshold: float = 0.98,
    max_examples: int = 10,
    block_rows: int = 4096,
    groups: Any = None,
    reference: str = "train",
    tile_elems: int = 1 << 23,
    progress: ProgressCallback | None = None,
) -> LeakageResult:
    """Find what each non-train split shares with train: articles, exact chunks, whole windows, near-duplicates.

    Parameters
    ----------
    splits : dict of split name -> SequenceSet; must hold ``reference`` ("train") and at least one other
    threshold : cosine at or above which a chunk without an exact copy is a near-duplicate
    max_examples : examples kept per kind and split
    block_rows : windows read per block (memory: keys of every window, the split's distinct non-exact
        chunk vectors, and one train block)
    groups : optional ``GroupAssignment`` over ``list(splits.values())`` (resolved here when None)
    reference : the split compared against
    tile_elems : largest similarity tile of the blocked search, in float32 elements
    progress : optional ``callback(done, total)`` in rows read

    Returns
    -------
    LeakageResult
        ``reference``, ``n_reference_windows``, ``n_reference_chunks``, ``threshold``, ``group_method``,
        ``group_note`` and one :class:`SplitLeakage` per other split (counts, shares of windows, examples).
    """
    _analyze_leakage_iv(splits, reference, threshold, max_examples, block_rows)
    names = list(splits)
    train = splits[reference]
    others = [n for n in names if n != reference]
    if groups is None:
        from lvmdiag.data.groups import resolve_groups

        groups = resolve_groups([splits[n] for n in names])
    labels, method, note = _article_overlap(groups, names)
    total = 2 * train.n + 2 * sum(splits[n].n for n in others)
    done = [0]

    def tick(b: int) -> None:
        done[0] += b
        if progress is not None:
            progress(min(done[0], total), total)

    train_keys = hash_split(train, block_rows, tick)
    train_uniq, train_first = train_keys.unique_chunks()
    live_w = ~train_keys.window_null
    win_uniq, win_idx = np.unique(train_keys.window[live_w], return_index=True)
    win_first = np.flatnonzero(live_w)[win_idx]
    keys, queries = {}, []
    for n in others:
        keys[n] = hash_split(splits[n], block_rows, tick)
        queries.append(gather_queries(splits[n], keys[n], train_uniq, block_rows))
        tick(splits[n].n)
    states = search_train(train, train_keys, train_first, queries, block_rows, tile_elems, tick)
    out = []
    for n, q, st in zip(others, queries, states):
        q_cos, q_id = st.result()
        rep = _split_report(n, splits[n], keys[n], train_keys, train_uniq, train_first, win_uniq, win_first,
                            q.keys, q.slot, q_cos, q_id, labels, reference, threshold, max_examples)
        out.append(rep)
    return with_texts(LeakageResult(reference=reference, n_reference_windows=train.n, n_reference_chunks=int(train_uniq.size),
                         threshold=float(threshold), group_method=method, group_note=note, splits=tuple(out)),
                      splits)


def with_texts(result: LeakageResult, splits: Mapping[str, Any]) -> LeakageResult:
    """``result`` with the chunk texts of every split's near-duplicate pairs attached, where known.

    ``splits`` are the sequence sets the result was computed from (any streaming pass, local or
    engine); texts come from a texts file beside a store (:func:`lvmdiag.data.texts.window_text`).
    """
    train = splits.get(result.reference)
    if train is None:
        return result
    return replace(result, splits=tuple(_with_texts(rep, splits[rep.split], train) if rep.split in splits else rep
                                        for rep in result.splits))


def _with_texts(rep: SplitLeakage, seq: SequenceSet, train: SequenceSet) -> SplitLeakage:
    """Attach the chunk texts of the near-duplicate pairs when a texts file is known (else unchanged)."""
    near = tuple(replace(e, text=window_text(seq, e.row, e.pos), train_text=window_text(train, e.train_row, e.train_pos))
                 for e in rep.near_examples)
    return replace(rep, near_examples=near)
