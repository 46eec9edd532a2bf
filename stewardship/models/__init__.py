from .match_runs import KeysState, MatchRun, MatchRunStatus
from .merges import MergeDecision, MergeMove, MergeReference, ReferenceVia
from .not_a_match import NotAMatch
from .review_tasks import PENDING_REVIEW, ReviewStatus, ReviewTask

__all__ = [
    "PENDING_REVIEW",
    "KeysState",
    "MatchRun",
    "MatchRunStatus",
    "MergeDecision",
    "MergeMove",
    "MergeReference",
    "NotAMatch",
    "ReferenceVia",
    "ReviewStatus",
    "ReviewTask",
]
