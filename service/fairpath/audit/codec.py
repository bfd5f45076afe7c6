"""The stored forms of a decision: its record plus content-addressed trace entries.

A decision row says which **record format** it is in (the ``format`` column, hashed into its link
as the layout of :mod:`fairpath.audit.chain`):

* **2** (:data:`WIRE_RECORD`, written from schema version 5 on): the decision's own
  ``fairpath.v1.Decision`` bytes, made once by :class:`fairpath.wire.DecisionWire` for the reply
  and the record alike: the ``record`` column holds every field but the trace (and the decisions it
  required, each its own record), the ``trace`` column the digests of its entries in order
  (32 hex digits each), and each entry's ``TraceEntry`` bytes are stored once in
  ``trace_entries.body`` under the first 128 bits of their sha256 (:func:`fairpath.wire.entry_digest`).
  Read it with ``fairpath decisions show``; ``protoc --decode=fairpath.v1.Decision`` reads it too.
* **1** (:data:`JSON_DOCUMENT`, every record written before schema version 5): the JSON document
  below. Such records are still read and verified as they were written; the rest of this
  docstring describes them.

The document mirrors the ``fairpath.v1.Decision`` message with its proto
field names (``decision_id``, ``policy``, ``pathway`` …), enums as their names
and times as ISO 8601, so a record read with ``sqlite3`` or ``psql`` reads
like the API's JSON. One field differs: ``trace`` lists *entry digests*, and
each trace entry's JSON is stored once in the ``trace_entries`` table under
its digest (:func:`entry_digest`). A full trace is ~35 entries and ~14 KB, and
the same entries recur across decisions (answers are mostly YES/NO), so
storing each once keeps a decision row near 4 KB; that is what keeps
recording cheap. The digest is a hash of the entry, so the chain, which
covers the document, covers the entries too (:mod:`fairpath.audit.chain`).

A document is written once and its text hashed verbatim, so it never needs
to be re-serialised identically; decoding ignores keys it does not know.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fairpath.decisions import (
    AdviceItem,
    Decision,
    MissingFact,
    PathwayResult,
    PolicyRef,
    RequiredDecision,
    RuleKind,
    RuleResult,
    Status,
    Subject,
    TraceEntry,
    Warning,
)
from fairpath.policy.conditions import Value
from fairpath.wire import DIGEST_HEX

#: Record format 1: a JSON document, trace entries as JSON (every record written before schema version 5).
JSON_DOCUMENT = 1
#: Record format 2: the decision's ``fairpath.v1.Decision`` bytes, trace entries as ``TraceEntry`` bytes.
WIRE_RECORD = 2
#: The format new records are written in.
RECORD_FORMAT = WIRE_RECORD

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_CACHE_LIMIT = 20_000  # encoded trace entries remembered before starting afresh


def to_micros(moment: datetime) -> int:
    """Return an aware datetime as whole microseconds since the Unix epoch (how times are indexed)."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """Return the aware UTC datetime of :func:`to_micros`."""
    return _EPOCH + timedelta(microseconds=micros)


def dumps(value: object) -> str:
    """Serialise facts, lists and documents compactly, keeping non-ASCII text readable."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def entry_digest(entry_json: str) -> str:
    """Return the digest a trace entry's JSON is stored under: the first 128 bits of its sha256, hex."""
    return hashlib.sha256(entry_json.encode("utf-8")).hexdigest()[:DIGEST_HEX]


@dataclass(frozen=True)
class EncodedDecision:
    """A decision document and the trace entries it refers to (digest -> entry JSON)."""

    document: str
    entries: dict[str, str]


class DecisionEncoder:
    """Writes decision documents; safe to share between threads.

    The explainer shares trace-entry objects between decisions, so each entry's
    JSON and digest are made once and remembered by identity.
    """

    def __init__(self) -> None:
        # id(entry) -> (entry, digest, JSON); the entry is kept so its id cannot be reused.
        self._entries: dict[int, tuple[TraceEntry, str, str]] = {}
        # Policy, pathway, advice, warnings and missing facts recur verbatim: their JSON by value.
        self._parts: dict[tuple[str, object], str] = {}

    def encode(self, decision: Decision) -> EncodedDecision:
        """Return the document of ``decision`` and its trace entries (mask the decision first)."""
        d = decision
        entries = [self._entry(entry) for entry in d.trace]
        fields: tuple[tuple[str, str], ...] = (
            ("decision_id", dumps(d.decision_id)),
            ("policy", self._part("policy", d.policy)),
            ("status", dumps(d.status.value)),
            ("pathway", self._part("pathway", d.pathway)),
            ("missing_facts", self._part("missing_facts", d.missing_facts)),
            ("advice", self._part("advice", d.advice)),
            ("trace", dumps([digest for digest, _ in entries])),
            ("warnings", self._part("warnings", d.warnings)),
            ("evaluated_at", dumps(d.evaluated_at.isoformat())),
            ("engine", self._part("engine", (d.engine_name, d.engine_version))),
            ("subject", dumps({"incident_ref": d.subject.incident_ref, "staff_ref": d.subject.staff_ref,
                               "action_ref": d.subject.action_ref})),
            ("request_id", dumps(d.request_id)),
            ("caller", dumps(d.caller)),
        )
        # Chained policies' links, only when there are some: every other document stays as it was.
        if d.requires:
            fields += (("requires", dumps([
                {"policy": r.policy, "version": r.version, "facts": dict(r.facts), "decision_id": r.decision_id}
                for r in d.requires
            ])),)
        if d.required_by:
            fields += (("required_by", dumps(d.required_by)),)
        document = "{" + ",".join(f'"{name}":{text}' for name, text in fields) + "}"
        return EncodedDecision(document, dict(entries))

    def _part(self, kind: str, value: object) -> str:
        text = self._parts.get((kind, value))
        if text is None:
            text = dumps(_plain(kind, value))
            if len(self._parts) >= _CACHE_LIMIT:
                self._parts.clear()
            self._parts[(kind, value)] = text
        return text

    def _entry(self, entry: TraceEntry) -> tuple[str, str]:
        cached = self._entries.get(id(entry))
        if cached is not None and cached[0] is entry:
            return cached[1], cached[2]
        text = dumps({
            "rule_id": entry.rule_id, "title": entry.title, "kind": entry.kind.value,
            "condition": entry.condition,
            "facts_seen": {n: list(v) if isinstance(v, tuple) else v for n, v in entry.facts_seen.items()},
            "result": entry.result.value, "reason": entry.reason, "question": entry.question,
            "leads_to": entry.leads_to,
        })
        digest = entry_digest(text)
        if len(self._entries) >= _CACHE_LIMIT:
            self._entries.clear()
        self._entries[id(entry)] = (entry, digest, text)
        return digest, text


def _plain(kind: str, value: Any) -> object:
    """Return the JSON-ready form of one recurring part of a decision document."""
    if kind == "policy":
        return {"name": value.name, "version": value.version, "digest": value.digest}
    if kind == "pathway":
        return None if value is None else {
            "code": value.code, "title": value.title, "recommendation": value.recommendation,
            "individual_directed": value.individual_directed, "sub_reason": value.sub_reason,
            "category": value.category,
        }
    if kind == "missing_facts":
        return [{"fact": m.fact, "question": m.question, "rule_id": m.rule_id} for m in value]
    if kind == "advice":
        return [{"code": a.code, "text": a.text, "rule_id": a.rule_id} for a in value]
    if kind == "warnings":
        return [{"code": w.code, "text": w.text, "facts": list(w.facts)} for w in value]
    name, version = value  # engine
    return {"name": name, "version": version}


def trace_digests(document: Mapping[str, Any]) -> list[str]:
    """Return the entry digests a parsed document refers to, in trace order."""
    return [str(digest) for digest in document.get("trace", ())]


def decode_decision(document: Mapping[str, Any], entries: Mapping[str, TraceEntry]) -> Decision:
    """Return the decision a parsed document describes, its trace taken from ``entries`` by digest.

    Raises:
        KeyError: An entry the document refers to is not in ``entries``.

    """
    d = document
    p = d.get("pathway")
    engine = d.get("engine") or {}
    subject = d.get("subject") or {}
    return Decision(
        decision_id=d["decision_id"],
        policy=PolicyRef(d["policy"]["name"], d["policy"]["version"], d["policy"]["digest"]),
        status=Status(d["status"]),
        pathway=None if p is None else PathwayResult(
            code=p["code"], title=p["title"], recommendation=p["recommendation"],
            individual_directed=p["individual_directed"], sub_reason=p.get("sub_reason", ""),
            category=p.get("category", ""),
        ),
        missing_facts=tuple(MissingFact(m["fact"], m["question"], m["rule_id"]) for m in d["missing_facts"]),
        advice=tuple(AdviceItem(a["code"], a["text"], a["rule_id"]) for a in d["advice"]),
        trace=tuple(entries[digest] for digest in trace_digests(d)),
        warnings=tuple(Warning(w["code"], w["text"], tuple(w["facts"])) for w in d["warnings"]),
        evaluated_at=datetime.fromisoformat(d["evaluated_at"]),
        engine_name=engine.get("name", ""),
        engine_version=engine.get("version", ""),
        subject=Subject(subject.get("incident_ref", ""), subject.get("staff_ref", ""),
                        subject.get("action_ref", "")),
        request_id=d.get("request_id", ""),
        caller=d.get("caller", ""),
        requires=tuple(
            RequiredDecision(r["policy"], r["version"], tuple(r["facts"].items()), r["decision_id"])
            for r in d.get("requires", ())
        ),
        required_by=d.get("required_by", ""),
    )


def decode_entry(text: str) -> TraceEntry:
    """Return the trace entry stored as ``text``."""
    e = json.loads(text)
    seen: dict[str, Value] = {
        name: tuple(v) if isinstance(v, list) else v for name, v in e["facts_seen"].items()
    }
    return TraceEntry(
        rule_id=e["rule_id"], title=e["title"], kind=RuleKind(e["kind"]), condition=e["condition"],
        facts_seen=seen, result=RuleResult(e["result"]), reason=e["reason"],
        question=e.get("question", ""), leads_to=e.get("leads_to", ""),
    )
