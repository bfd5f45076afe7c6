"""A problem found in a policy file, as a plain value (the domain side of ``PolicyProblem``).

Loading, the lock check, the compiler and a version's own test cases all report
what is wrong with a file as :class:`Problem` values, so a reload can refuse a
file, keep serving, and still say exactly why in ``GetStatus``, in the log and on
the command line. :mod:`fairpath.api.policy_convert` turns them into protobuf.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from fairpath.errors import PolicyFileError

Severity = Literal["error", "warning"]

#: Which stage of a reload found the problem (``PolicyProblem.check``).
LOAD = "load"  # unreadable, not YAML, or not a valid policy
LOCK = "lock"  # digest differs from policies.lock, or the version is not locked
COMPILE = "compile"  # the compiler or durable_rules refused it
TESTS = "tests"  # its own test cases are missing, malformed or failing
DUPLICATE = "duplicate"  # another file defines the same name@version
REQUIRES = "requires"  # a chained policy's requirement: not served, a cycle, values it cannot take
LIMITS = "limits"  # ValidatePolicy ran out of its time or memory


# Loader messages that a dedicated check code describes better than "load".
_LOAD_CHECKS = ((re.compile(r"fact '[^']*' is not declared"), "undeclared-fact"),
                (re.compile(r"^no answer leads to this rule$"), "unreachable-rule"))

@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy file; ``error`` refuses the file, ``warning`` does not.

    Attributes:
        path: The file (policy, tests or lock file) the problem is in.
        message: What is wrong, in words an author can act on.
        rule_id: The rule concerned, when there is one.
        line: The 1-based line, when known.
        severity: ``error`` or ``warning``.
        check: The stage that found it: :data:`LOAD`, :data:`LOCK`, ...

    """

    path: str
    message: str
    rule_id: str = ""
    line: int | None = None
    severity: Severity = "error"
    check: str = LOAD

    @classmethod
    def from_error(cls, error: PolicyFileError, check: str = "", path: str = "") -> Problem:
        """Return the problem a :class:`~fairpath.errors.PolicyFileError` describes.

        Without ``check``, a loader message a dedicated check describes better (an undeclared
        fact, an unreachable rule) gets that check's code, any other ``load``. ``path`` names
        the file when the error does not.
        """
        if not check:
            check = next((code for pattern, code in _LOAD_CHECKS if pattern.search(error.message)), LOAD)
        return cls(error.path or path, error.message, rule_id=error.rule_id, line=error.line, check=check)

    @property
    def is_error(self) -> bool:
        """Whether this problem refuses the file."""
        return self.severity == "error"

    def __str__(self) -> str:
        """The problem as a compiler message: ``path:line: severity: rule R: message [check]``."""
        where = (self.path or "<policy>") + (f":{self.line}" if self.line else "")
        rule = f"rule {self.rule_id}: " if self.rule_id else ""
        return f"{where}: {self.severity}: {rule}{self.message} [{self.check}]"


def finding(  # noqa: PLR0917 - one call per finding reads best positionally
    path: str, rule_id: str, line: int | None, message: str, severity: Severity, check: str
) -> Problem:
    """Return a :class:`Problem` from positional fields (the author tools' shorthand)."""
    return Problem(path, message, rule_id=rule_id, line=line, severity=severity, check=check)
