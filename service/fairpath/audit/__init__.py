"""The decision audit trail: every decision recorded, tamper-evident, reviewable.

The store and the review features live here; recording a decision as it is made is
:mod:`fairpath.recording`, which uses this package.

* :class:`DecisionStore` is where records go: :func:`open_store` opens SQLite
  (``sqlite:///file``, the default) or PostgreSQL (``postgresql://…``);
* :mod:`fairpath.audit.chain` describes the hash chain and
  :mod:`fairpath.serving.masking` what is masked;
* :mod:`fairpath.audit.records` holds the values read and written.
"""

from fairpath.audit.records import (
    ChainReport,
    DecisionFilter,
    DecisionSummary,
    NewDecision,
    NewOutcome,
    OutcomeRecord,
    StoredDecision,
)
from fairpath.audit.store import DecisionStore, check_url, open_store

__all__ = [
    "ChainReport",
    "DecisionFilter",
    "DecisionStore",
    "DecisionSummary",
    "NewDecision",
    "NewOutcome",
    "OutcomeRecord",
    "StoredDecision",
    "check_url",
    "open_store",
]
