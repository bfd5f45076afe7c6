"""Masking the facts a policy marks ``sensitive: true`` before a decision is recorded.

A sensitive fact's value (health, substance use, intent: special-category or
criminal-offence data) is replaced by :data:`MASK` wherever the record would
hold it: in the facts, in each trace entry's ``facts_seen``, and in the words
of each trace entry's ``reason``. The record lists the masked names. What
masking cannot hide is the decision itself: that rule 2a *fired* (or that
the pathway is "substance abuse") says which way the question went, and that
is exactly what a reviewer must be able to see.

The true values are handed back separately (:attr:`Masked.sensitive_facts`)
so the store can keep them apart from the record, for replay only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from fairpath.decisions import Decision, TraceEntry
from fairpath.policy.conditions import Value, format_value
from fairpath.policy.model import Policy

#: What a masked value is replaced by.
MASK = "***"
# Masked copies of the explainer's (shared, memoised) trace entries; cleared when this large.
_CACHE_LIMIT = 20_000


@dataclass(frozen=True)
class Masked:
    """A decision and its facts ready to record, and what was taken out of them."""

    decision: Decision
    facts: dict[str, object]
    masked_facts: tuple[str, ...]
    sensitive_facts: dict[str, object]


class Masker:
    """Masks the sensitive facts of one policy version; safe to share between threads.

    Built once per served version (:class:`fairpath.serving.state.ServedVersion`), which hands it
    to the recorder with each decision.

    Args:
        sensitive: Names of the facts to mask.

    """

    def __init__(self, sensitive: frozenset[str]) -> None:
        self.sensitive = sensitive
        # id(entry) -> (entry, masked entry); the entry is kept so its id cannot be reused.
        self._entries: dict[int, tuple[TraceEntry, TraceEntry]] = {}

    @classmethod
    def for_policy(cls, policy: Policy) -> Masker:
        """Return the masker for the facts ``policy`` declares sensitive."""
        return cls(frozenset(name for name, spec in policy.facts.items() if spec.sensitive))

    def _is_sensitive(self, name: str) -> bool:
        return name in self.sensitive

    def mask(self, facts: Mapping[str, object], decision: Decision) -> Masked:
        """Return ``decision`` and the request's ``facts`` with every sensitive value masked."""
        names = self.sensitive.intersection(facts)
        hidden = {name: facts[name] for name in names if facts[name] is not None}
        if not hidden:  # facts_seen only holds request facts, so the trace has nothing to mask either
            return Masked(decision, dict(facts), (), {})
        masked_facts = {name: MASK if name in hidden else value for name, value in facts.items()}
        trace = tuple(self._entry(entry) for entry in decision.trace)
        return Masked(
            dataclasses.replace(decision, trace=trace), masked_facts, tuple(sorted(hidden)), hidden
        )

    def _entry(self, entry: TraceEntry) -> TraceEntry:
        cached = self._entries.get(id(entry))
        if cached is not None and cached[0] is entry:
            return cached[1]
        masked = self._mask_entry(entry)
        if len(self._entries) >= _CACHE_LIMIT:
            self._entries.clear()
        self._entries[id(entry)] = (entry, masked)
        return masked

    def _mask_entry(self, entry: TraceEntry) -> TraceEntry:
        names = [name for name in entry.facts_seen if self._is_sensitive(name)]
        if not names:
            return entry
        seen: dict[str, Value] = {
            name: MASK if name in names else value for name, value in entry.facts_seen.items()
        }
        reason = entry.reason
        for name in names:
            # The explainer words values as "name = value" (conditions.describe_facts).
            reason = reason.replace(f"{name} = {format_value(entry.facts_seen[name])}", f"{name} = {MASK}")
        return dataclasses.replace(entry, facts_seen=seen, reason=reason)
