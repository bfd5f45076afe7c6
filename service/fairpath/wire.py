"""The contract form of a decision: its ``fairpath.v1.Decision`` bytes, made once.

A decision goes back to the caller as a ``fairpath.v1.Decision`` message. Building
that message field by field, ~40 trace entries each with its facts as
``google.protobuf.Value`` messages, and serialising it again costs more than deciding.
So the bytes are *composed*: protobuf lets a message be the concatenation of
its fields' encodings (a repeated field may be appended field by field), so a
decision's bytes are its header (every field but the trace and the decisions
it required) followed by its trace entries' encodings. The explainer hands out
the same :class:`~fairpath.decisions.TraceEntry` objects for the same rule
outcome and values, so a :class:`DecisionWire` encodes each entry once and
remembers it by identity; one lives with each served policy version
(:class:`fairpath.serving.state.ServedVersion`), so it goes when the version goes, and
encodes both ``Evaluate``'s reply and the record of it. Three more are not a version's, and
are bounded like every other: ``EvaluateIncident``'s replies (the service's), records read
back for the review API (the decision service's; read back, one entry is one object), and the
store's own, for a decision appended without its version's.

:func:`decision_to_proto` parses those bytes into a message for callers that
need one (records, incidents); ``Evaluate`` sends them as they are.
"""

from __future__ import annotations

import hashlib
import operator
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor

from fairpath import decisions
from fairpath.policy.conditions import Value
from fairpath.v1 import decision_pb2 as pb

_STATUS = {
    decisions.Status.DECIDED: pb.DECIDED,
    decisions.Status.NEEDS_INFORMATION: pb.NEEDS_INFORMATION,
}
_RESULT = {
    decisions.RuleResult.FIRED: pb.FIRED,
    decisions.RuleResult.NOT_FIRED: pb.NOT_FIRED,
    decisions.RuleResult.NOT_REACHED: pb.NOT_REACHED,
    decisions.RuleResult.UNANSWERED: pb.UNANSWERED,
}
_KIND = {
    decisions.RuleKind.QUESTION: pb.QUESTION,
    decisions.RuleKind.ADVICE: pb.ADVICE,
    decisions.RuleKind.CHECK: pb.CHECK,
}

#: Entries a :class:`DecisionWire` remembers before starting afresh (a version's distinct entries are far fewer).
ENTRY_MEMO_LIMIT = 50_000
#: Distinct headers' shared parts it remembers (a version has one per outcome, advice and warnings met).
RECURRING_MEMO_LIMIT = 4_096


def field_key(descriptor: Descriptor, name: str) -> bytes:
    """Return the key of a length-delimited field of a message type: its number and wire type, as a varint."""
    return _varint(descriptor.fields_by_name[name].number << 3 | 2)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_TRACE_KEY = field_key(pb.Decision.DESCRIPTOR, "trace")
_REQUIRED_KEY = field_key(pb.Decision.DESCRIPTOR, "required")
_REQUIRED_DECISION_KEY = field_key(pb.RequiredDecision.DESCRIPTOR, "decision")


def length_delimited(key: bytes, body: bytes) -> bytes:
    """Return one length-delimited field: its key, the body's length as a varint, the body."""
    return key + _varint(len(body)) + body


#: Hex digits of sha256 kept in an entry digest: 128 bits, beyond any collision or second preimage.
DIGEST_HEX = 32


def entry_digest(body: bytes) -> str:
    """Return the digest an encoded trace entry is stored under: the first 128 bits of its sha256, hex."""
    return hashlib.sha256(body).hexdigest()[:DIGEST_HEX]


@dataclass(frozen=True, slots=True)
class EncodedEntry:
    """One trace entry encoded.

    Attributes:
        field: As one ``trace`` field of a ``Decision`` message: key, length, body.
        body: Its ``TraceEntry`` message.
        digest: :func:`entry_digest` of ``body``.

    """

    field: bytes
    body: bytes
    digest: str


@dataclass(frozen=True, slots=True)
class StoredForm:
    """A decision as the trail keeps it (record format 2, :mod:`fairpath.audit.codec`).

    Attributes:
        record: Its ``Decision`` message without the trace and without the decisions it required
            (the links to them stay).
        trace: The digests of its trace entries, in order, each :data:`DIGEST_HEX` characters.
        entries: Digest -> ``TraceEntry`` message of each entry.

    """

    record: bytes
    trace: str
    entries: dict[str, bytes]


class DecisionWire:
    """Encodes decisions as ``fairpath.v1.Decision`` bytes; safe to share between threads.

    Each trace entry object is encoded once and remembered by identity (the entry is held
    too, so its id cannot be reused while remembered), and the fields decisions share by
    value; at most :data:`ENTRY_MEMO_LIMIT` entries and :data:`RECURRING_MEMO_LIMIT` headers' parts.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[decisions.TraceEntry, EncodedEntry]] = {}
        # Policy, outcome, advice and warnings recur verbatim: their encoding by value.
        self._recurring: dict[tuple[object, ...], bytes] = {}
        self._recurring_by_id: dict[tuple[object, ...], tuple[tuple[object, ...], bytes]] = {}
        self._lock = threading.Lock()

    def encode(self, decision: decisions.Decision) -> bytes:
        """Return the bytes of ``decision``'s message, trace and decisions it required included."""
        parts = [self.header(decision)]
        parts += [self.entry(entry).field for entry in decision.trace]
        for link in decision.requires:
            body = required_header(link)
            if link.decision is not None:
                body += length_delimited(_REQUIRED_DECISION_KEY, self.encode(link.decision))
            parts.append(length_delimited(_REQUIRED_KEY, body))
        return b"".join(parts)

    def header(self, decision: decisions.Decision) -> bytes:
        """Return :func:`header`'s bytes, the parts many decisions share made once."""
        d = decision
        # The explainer hands out the same policy, outcome, advice and warnings objects for one path:
        # found by identity first (cheap), else by value (records read back are new objects).
        parts = (d.policy, d.pathway, d.missing_facts, d.advice, d.warnings)
        ids = (*map(id, parts), d.status, d.engine_name, d.engine_version)
        known = self._recurring_by_id.get(ids)
        if known is not None and all(map(operator.is_, known[0], parts)):
            return known[1] + _own(d)
        key = _recurring_key(d)
        recurring = self._recurring.get(key)
        if recurring is None:
            # Remembered by identity only when new by value too: records read back bring new objects
            # every time, which the value table answers; remembering each would grow without end.
            recurring = _recurring(d)
            with self._lock:
                if len(self._recurring) >= RECURRING_MEMO_LIMIT:
                    self._recurring, self._recurring_by_id = {}, {}
                self._recurring[key] = recurring
                self._recurring_by_id[ids] = (parts, recurring)  # the parts are held: their ids stay theirs
        return recurring + _own(d)

    def stored(self, decision: decisions.Decision) -> StoredForm:
        """Return the form the trail keeps ``decision`` in: its header and links, and its trace by digest.

        The links to decisions it required are kept without those decisions: each is its own record.
        """
        links = [length_delimited(_REQUIRED_KEY, required_header(link)) for link in decision.requires]
        entries = [self.entry(entry) for entry in decision.trace]
        return StoredForm(
            b"".join([self.header(decision), *links]),
            "".join(entry.digest for entry in entries),
            {entry.digest: entry.body for entry in entries},
        )

    def entry(self, entry: decisions.TraceEntry) -> EncodedEntry:
        """Return ``entry`` encoded: its message, its digest and its ``trace`` field of a ``Decision``."""
        cached = self._entries.get(id(entry))
        if cached is not None and cached[0] is entry:
            return cached[1]
        # Deterministic: map entries (facts_seen) sorted, so equal entries are equal bytes in every process.
        body = trace_entry_to_proto(entry).SerializeToString(deterministic=True)
        encoded = EncodedEntry(length_delimited(_TRACE_KEY, body), body, entry_digest(body))
        with self._lock:
            if len(self._entries) >= ENTRY_MEMO_LIMIT:
                self._entries = {}
            self._entries[id(entry)] = (entry, encoded)
        return encoded


def decision_to_proto(decision: decisions.Decision, wire: DecisionWire | None = None) -> pb.Decision:
    """Return the message of a decision, trace and required decisions included.

    Args:
        decision: The decision.
        wire: Encodes it, remembering its trace entries; a fresh one (remembering nothing) if None.

    """
    return pb.Decision.FromString((wire or DecisionWire()).encode(decision))


def header(decision: decisions.Decision) -> bytes:
    """Return every field of ``decision``'s message but its trace and the decisions it required, encoded."""
    return _recurring(decision) + _own(decision)


def _recurring(decision: decisions.Decision) -> bytes:
    """The fields many decisions of one version share: policy, outcome, advice, warnings, engine."""
    message = pb.Decision(
        policy=pb.PolicyRef(
            name=decision.policy.name, version=decision.policy.version, digest=decision.policy.digest
        ),
        status=_STATUS[decision.status],
        missing_facts=[
            pb.MissingFact(fact=m.fact, question=m.question, rule_id=m.rule_id)
            for m in decision.missing_facts
        ],
        advice=[pb.Advice(code=a.code, text=a.text, rule_id=a.rule_id) for a in decision.advice],
        warnings=[pb.Warning(code=w.code, text=w.text, facts=w.facts) for w in decision.warnings],
        engine=pb.Engine(name=decision.engine_name, version=decision.engine_version),
    )
    if decision.pathway is not None:
        p = decision.pathway
        message.pathway.CopyFrom(
            pb.Pathway(
                code=p.code, title=p.title, recommendation=p.recommendation,
                individual_directed=p.individual_directed, sub_reason=p.sub_reason, category=p.category,
            )
        )
    return message.SerializeToString()


def _recurring_key(decision: decisions.Decision) -> tuple[object, ...]:
    d = decision
    return (d.policy, d.status, d.pathway, d.missing_facts, d.advice, d.warnings, d.engine_name, d.engine_version)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _own(decision: decisions.Decision) -> bytes:
    """The fields that are this decision's own: ids, time, subject, caller, links."""
    # Timestamp.FromDatetime goes through calendar.timegm; the arithmetic is the same, cheaper.
    since = decision.evaluated_at - _EPOCH
    return pb.Decision(
        decision_id=decision.decision_id,
        evaluated_at=timestamp_pb2.Timestamp(
            seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000
        ),
        subject=pb.Subject(
            incident_ref=decision.subject.incident_ref,
            staff_ref=decision.subject.staff_ref,
            action_ref=decision.subject.action_ref,
        ),
        request_id=decision.request_id,
        dry_run=decision.dry_run,
        caller=decision.caller,
        required_by=decision.required_by,
    ).SerializeToString()


def required_header(link: decisions.RequiredDecision) -> bytes:
    """Return a ``RequiredDecision`` link's fields but the decision itself, encoded."""
    return pb.RequiredDecision(
        policy=link.policy, version=link.version, facts=dict(link.facts), decision_id=link.decision_id
    ).SerializeToString(deterministic=True)


def trace_entry_to_proto(entry: decisions.TraceEntry) -> pb.TraceEntry:
    """Return the message of one trace entry."""
    return pb.TraceEntry(
        rule_id=entry.rule_id,
        title=entry.title,
        condition=entry.condition,
        facts_seen=value_map(entry.facts_seen),
        result=_RESULT[entry.result],
        reason=entry.reason,
        kind=_KIND[entry.kind],
        question=entry.question,
        leads_to=entry.leads_to,
    )


def value_map(values: Mapping[str, Value]) -> dict[str, struct_pb2.Value]:
    """Return fact values as ``google.protobuf.Value`` messages, keeping booleans boolean."""
    converted: dict[str, struct_pb2.Value] = {}
    for name, value in values.items():
        # bool before number: bool is an int subclass and would otherwise become 1.0.
        if value is None:
            converted[name] = struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
        elif isinstance(value, bool):
            converted[name] = struct_pb2.Value(bool_value=value)
        elif isinstance(value, int | float):
            converted[name] = struct_pb2.Value(number_value=value)
        elif isinstance(value, tuple):  # a set fact: its codes as a list
            listed = struct_pb2.Value()
            listed.list_value.extend(value)
            converted[name] = listed
        else:
            converted[name] = struct_pb2.Value(string_value=str(value))
    return converted


# --- messages → decisions (records read back) ------------------------------------------

_STATUS_OF = {wire: domain for domain, wire in _STATUS.items()}
_RESULT_OF = {wire: domain for domain, wire in _RESULT.items()}
_KIND_OF = {wire: domain for domain, wire in _KIND.items()}


def decision_from_record(record: bytes, trace: tuple[decisions.TraceEntry, ...]) -> decisions.Decision:
    """Return the decision a :attr:`StoredForm.record` describes, with ``trace`` (its entries, decoded).

    Raises:
        google.protobuf.message.DecodeError: ``record`` is not a ``Decision`` message.
        KeyError: It names a status this fairpath does not know.

    """
    m = pb.Decision.FromString(record)
    p = m.pathway
    since = m.evaluated_at
    return decisions.Decision(
        decision_id=m.decision_id,
        policy=decisions.PolicyRef(m.policy.name, m.policy.version, m.policy.digest),
        status=_STATUS_OF[m.status],
        pathway=decisions.PathwayResult(
            code=p.code, title=p.title, recommendation=p.recommendation,
            individual_directed=p.individual_directed, sub_reason=p.sub_reason, category=p.category,
        ) if m.HasField("pathway") else None,
        missing_facts=tuple(decisions.MissingFact(f.fact, f.question, f.rule_id) for f in m.missing_facts),
        advice=tuple(decisions.AdviceItem(a.code, a.text, a.rule_id) for a in m.advice),
        trace=trace,
        warnings=tuple(decisions.Warning(w.code, w.text, tuple(w.facts)) for w in m.warnings),
        evaluated_at=_EPOCH + timedelta(seconds=since.seconds, microseconds=since.nanos // 1000),
        engine_name=m.engine.name,
        engine_version=m.engine.version,
        subject=decisions.Subject(m.subject.incident_ref, m.subject.staff_ref, m.subject.action_ref),
        request_id=m.request_id,
        caller=m.caller,
        dry_run=m.dry_run,
        # A map keeps no order: the facts taken from a required decision are kept sorted by name.
        requires=tuple(
            decisions.RequiredDecision(r.policy, r.version, tuple(sorted(r.facts.items())), r.decision_id)
            for r in m.required
        ),
        required_by=m.required_by,
    )


def trace_entry_from_body(body: bytes) -> decisions.TraceEntry:
    """Return the trace entry an :attr:`EncodedEntry.body` describes.

    Raises:
        google.protobuf.message.DecodeError: ``body`` is not a ``TraceEntry`` message.
        KeyError: It names a result or kind this fairpath does not know.

    """
    e = pb.TraceEntry.FromString(body)
    return decisions.TraceEntry(
        rule_id=e.rule_id, title=e.title, kind=_KIND_OF[e.kind], condition=e.condition,
        facts_seen={name: _value(value) for name, value in sorted(e.facts_seen.items())},
        result=_RESULT_OF[e.result], reason=e.reason, question=e.question, leads_to=e.leads_to,
    )


def _value(value: struct_pb2.Value) -> Value:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() else number  # as the request's JSON would read back
    if kind == "list_value":
        return tuple(item.string_value for item in value.list_value.values)
    return None  # type: ignore[return-value]  # null: never written, read as JSON null would be
