"""Readers, validation, window building and article recovery for sequence files and article stores.

Public API: :func:`load_sequences`, :func:`load_split_files`, :func:`load_article_store`,
:func:`check_compatible`, :func:`resolve_groups`, :func:`recover_articles`, :func:`hash_rows`,
:func:`save_sequences`, :func:`save_split_files`, and the types :class:`SequenceSet`,
:class:`ArticleStore`, :class:`ArticleRecovery`, :class:`GroupAssignment`.
"""

from lvmdiag.data.groups import GroupAssignment, resolve_groups
from lvmdiag.data.hashing import hash_rows, row_keys
from lvmdiag.data.readers import load_article_store, load_sequences, load_split_files
from lvmdiag.data.recover import ArticleRecovery, recover_articles
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.data.store import ArticleStore
from lvmdiag.data.validate import check_compatible
from lvmdiag.data.windows import window_indices
from lvmdiag.data.writers import save_sequences, save_split_files

__all__ = [
    "ArticleRecovery",
    "ArticleStore",
    "GroupAssignment",
    "SequenceSet",
    "check_compatible",
    "hash_rows",
    "load_article_store",
    "load_sequences",
    "load_split_files",
    "recover_articles",
    "resolve_groups",
    "row_keys",
    "save_sequences",
    "save_split_files",
    "window_indices",
]

from lvmdiag._callable import make_callable as _make_callable

_make_callable(__name__)  # lvmdiag.data(...) runs lvmdiag.api.data
