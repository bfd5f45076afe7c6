"""Every error fairpath raises, in one place.

The tree::

    FairpathError
    ├── PolicyNotFoundError        unknown policy name or version      -> NOT_FOUND
    ├── InvalidFactsError          facts fail the policy's declarations -> INVALID_ARGUMENT
    ├── PolicyFileError            a policy file cannot be loaded       (startup / lint)
    ├── EngineBusyError            no engine session free in time       -> RESOURCE_EXHAUSTED
    └── EngineError                durable_rules misbehaved             -> INTERNAL

The gRPC status each maps to is decided in one place,
:mod:`fairpath.api.status`; the client maps statuses back to its own typed
exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass


class FairpathError(Exception):
    """Base class: catch this to catch everything fairpath raises on purpose."""


class PolicyNotFoundError(FairpathError):
    """No policy of that name, or no such version of it, is loaded."""

    def __init__(self, name: str, version: str = "") -> None:
        self.name = name
        self.version = version
        what = f"{name}@{version}" if version else name
        super().__init__(f"policy {what!r} is not loaded")


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, in ``google.rpc.BadRequest`` terms."""

    field: str
    description: str


class InvalidFactsError(FairpathError):
    """The facts of a request break the policy's fact declarations."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        super().__init__(f"{len(violations)} invalid fact(s): " + "; ".join(v.description for v in violations))


class PolicyFileError(FairpathError):
    """A policy file is malformed; names the file, the rule and the line where known."""

    def __init__(self, message: str, *, path: str = "", rule_id: str = "", line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.rule_id = rule_id
        self.line = line
        where = path or "<policy>"
        if line is not None:
            where += f":{line}"
        if rule_id:
            where += f" rule {rule_id}"
        super().__init__(f"{where}: {message}")


class EngineBusyError(FairpathError):
    """Every engine session is in use; the caller should retry later."""


class EngineError(FairpathError):
    """The rules engine failed or returned something impossible; a defect, never the caller's fault."""
