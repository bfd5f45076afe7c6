"""Request ids: each caller's own, and a repeat answered only when it repeats the same request.

A request id is scoped to the authenticated caller: ``(caller, request_id)``
is unique in the trail, so one caller's id can never return another caller's
decision. Under that key a repeat gets the first decision back only when it
is the *same request*: same policy, same requested version, same facts, same
subject (references and equality group). Anything else is refused
(:class:`~fairpath.errors.RequestIdReusedError`), so a caller's new facts are
never silently answered with an old decision.

Sameness is decided without storing anything that could reveal a masked fact:

* :func:`request_digest` hashes what the record already holds in clear (policy,
  subject references, the facts *as masked*, the names masked) plus the
  requested version; it is stored beside the record (``request_digest``);
* the true values of masked facts and the equality group, which the record
  holds only as salted commitments, are compared with their side-table rows.
  When such a row has been purged the repeat cannot be confirmed, so it is refused.

A record written before request digests existed (schema version 1) has an empty
digest: a repeat of its request id is refused for the same reason.

An incident (``EvaluateIncident``) records one decision per action, each under
its own id derived from the incident's. Each action's digest also covers the
:func:`incident_digest` of the whole request, so a retry is the same request
only when every action (and their number) is: one changed action, one more or
one fewer, and every action's digest differs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fairpath.audit.records import NewDecision


@dataclass(frozen=True)
class RecordedRequest:
    """What is known of the request a recorded decision answered, enough to tell a repeat from a reuse.

    Attributes:
        decision_id: The decision recorded for it.
        digest: Its :func:`request_digest` ("" for a record older than request digests).
        sensitive: The true values of its masked facts; None when it had none, or they were purged.
        has_sensitive: Whether the record committed to masked values (even if since purged).
        equality_group: Its equality group; None when it had none, or it was purged.
        has_equality: Whether the record committed to an equality group.

    """

    decision_id: str
    digest: str
    sensitive: Mapping[str, object] | None
    has_sensitive: bool
    equality_group: str | None
    has_equality: bool


def request_digest(item: NewDecision) -> str:
    """Return the hex sha256 of the parts of ``item``'s request that the record keeps in clear.

    Masked values stay masked here: the digest reveals nothing the record does not.
    """
    d = item.decision
    request: dict[str, object] = {
        "policy": d.policy.name,
        "version": item.requested_version,
        "subject": [d.subject.incident_ref, d.subject.staff_ref, d.subject.action_ref],
        "facts": dict(item.facts),
        "masked": list(item.masked_facts),
    }
    if item.incident_digest:  # only then: digests recorded before incidents existed stay valid
        request["incident"] = item.incident_digest
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def incident_digest(items: Sequence[NewDecision]) -> str:
    """Return the hex sha256 of an incident's actions, in order: each one's :func:`request_digest`.

    Like those, it reveals nothing the records do not hold in clear.
    """
    listed = json.dumps([request_digest(item) for item in items], separators=(",", ":"))
    return hashlib.sha256(listed.encode("utf-8")).hexdigest()


def recorded(item: NewDecision, digest: str) -> RecordedRequest:
    """Return the :class:`RecordedRequest` of ``item`` as it is about to be recorded."""
    return RecordedRequest(
        item.decision.decision_id, digest,
        dict(item.sensitive_facts) if item.sensitive_facts else None, bool(item.sensitive_facts),
        item.equality_group or None, bool(item.equality_group),
    )


def is_repeat(earlier: RecordedRequest, item: NewDecision, digest: str) -> bool:
    """Return True when ``item`` (whose :func:`request_digest` is ``digest``) repeats ``earlier``'s request."""
    if not earlier.digest or earlier.digest != digest:
        return False
    if earlier.has_sensitive != bool(item.sensitive_facts) or earlier.has_equality != bool(item.equality_group):
        return False
    if earlier.has_sensitive and (earlier.sensitive is None or dict(earlier.sensitive) != dict(item.sensitive_facts)):
        return False
    return not earlier.has_equality or earlier.equality_group == item.equality_group
