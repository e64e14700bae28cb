"""Grouped, stratified re-splitting: whole articles to splits, window shares matched per stratum, verified on disk."""

from lvmdiag.resplit.assign import Assignment, assign_groups, plain_group_split
from lvmdiag.resplit.dataset import ResplitResult, resplit
from lvmdiag.resplit.splitter import StratifiedGroupRatioSplit
from lvmdiag.resplit.verify import GuaranteeError, Verification, verify_outputs

__all__ = [
    "Assignment",
    "GuaranteeError",
    "ResplitResult",
    "StratifiedGroupRatioSplit",
    "Verification",
    "assign_groups",
    "plain_group_split",
    "resplit",
    "verify_outputs",
]

from lvmdiag._callable import make_callable as _make_callable

_make_callable(__name__)  # lvmdiag.resplit(...) runs lvmdiag.api.resplit
