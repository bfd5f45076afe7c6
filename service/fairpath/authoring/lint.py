"""``fairpath policy lint``: find what is wrong or suspicious in a policy file, with file, rule and line.

Checks (``check`` code → severity):

====================== ======== ===============================================================
``load``               error    the loader refused the file (YAML, types, targets, …)
``compile``            error    the compiler or durable_rules refused it (e.g. too many paths)
``undeclared-fact``    error    a condition reads a fact that is not declared (a load error)
``unreachable-rule``   error    no combination of answers reaches the rule
``dead-branch``        error    a rule's ``then`` or ``else`` is never taken by the answers that
                                reach it
``gap``                error    answers for which the engine reaches neither a pathway nor
                                ``NEEDS_INFORMATION`` (or disagrees with the walk); a warning
                                when there are too many combinations to enumerate
``unused-fact``        warning  a declared fact no rule, advice or check reads
``unknown-code``       warning  an advice code outside ``policies/advice-codes.yaml`` (``policy/vocabulary.py``)
``unreachable-pathway`` warning a pathway no rule leads to, or only dead branches do
``answer-leads-nowhere`` warning a rule asks for a fact (it stops the walk while unanswered) but
                                no answer to it changes where the rule leads
``overlapping-conditions`` warning two advice rules with one code that can hold together; two
                                checks that hold for exactly the same answers
``never-fires``        warning  advice or a check that no reachable combination makes hold
====================== ======== ===============================================================

Findings are the shared :class:`fairpath.problems.Problem` values (the reload
reports its own the same way), so ``ValidatePolicy`` returns them as
``PolicyProblem`` messages. The checks that need the answers are in :mod:`fairpath.authoring.analysis`;
they enumerate the fact space (:mod:`fairpath.authoring.space`) and, for
``gap``, run every class of answers through the real engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from fairpath.authoring import analysis
from fairpath.errors import PolicyFileError
from fairpath.policy.loader import load_bytes
from fairpath.policy.model import DECISION_FIELDS, AdviceRule, CheckRule, Policy, Rule
from fairpath.policy.vocabulary import ADVICE_CODES_FILE, advice_codes_file, load_advice_codes
from fairpath.problems import LOAD, Problem, finding
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.gate import trial_evaluator

__all__ = [
    "LintReport", "Problem", "lint_file", "lint_policy", "lint_text",
]

@dataclass(frozen=True)
class LintReport:
    """Everything lint found in one file; ``policy`` is ``None`` when the file did not load."""

    path: str
    policy: Policy | None
    problems: tuple[Problem, ...]
    notes: tuple[str, ...] = ()  # what was enumerated, in words (for the command's output)

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The problems of severity ``error``."""
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """The problems of severity ``warning``."""
        return tuple(p for p in self.problems if p.severity == "warning")


def lint_file(path: str | Path, *, limit: int | None = None) -> LintReport:
    """Lint one policy file."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        problem = finding(str(path), "", None, f"cannot read: {error.strerror}", "error", LOAD)
        return LintReport(str(path), None, (problem,))
    codes_file = advice_codes_file(path)
    if codes_file is None:
        report = lint_text(data, str(path), limit=limit)
        note = f"advice codes not checked: no {ADVICE_CODES_FILE} beside the policies"
        return dataclasses.replace(report, notes=(*report.notes, note))
    try:
        known = load_advice_codes(codes_file)
    except PolicyFileError as error:
        report = lint_text(data, str(path), limit=limit)
        return dataclasses.replace(report, problems=(*report.problems, Problem.from_error(error, check="advice-codes")))
    return lint_text(data, str(path), limit=limit, known_codes=known)


def lint_text(
    text: str | bytes,
    path: str = "<policy>",
    *,
    evaluator: Evaluator | None = None,
    limit: int | None = None,
    known_codes: frozenset[str] | None = None,
) -> LintReport:
    """Load ``text`` and lint it; a load error is reported, never raised.

    Args:
        text: The policy file's content.
        path: Names the file in problems.
        evaluator: Evaluates the policy for the ``gap`` check; by default a throwaway one is built.
        limit: At most this many classes of answers are enumerated
            (default :data:`fairpath.authoring.space.MAX_COMBINATIONS`).
        known_codes: The advice codes systems know (:mod:`fairpath.policy.vocabulary`); without
            them advice codes are not checked.

    """
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        policy = load_bytes(data, path=path)
    except PolicyFileError as error:
        return LintReport(path, None, (Problem.from_error(error, path=path),))
    return lint_policy(policy, data.decode("utf-8"), evaluator=evaluator, limit=limit, known_codes=known_codes)


def lint_policy(
    policy: Policy,
    text: str,
    *,
    evaluator: Evaluator | None = None,
    limit: int | None = None,
    known_codes: frozenset[str] | None = None,
) -> LintReport:
    """Lint a loaded policy; ``text`` is its file's content (for the lines of facts and pathways)."""
    from fairpath.authoring.space import MAX_COMBINATIONS  # noqa: PLC0415

    lines = _entry_lines(text)
    problems = [*unused_facts(policy, lines), *(unknown_codes(policy, known_codes) if known_codes is not None else ())]
    own = evaluator is None
    if evaluator is None:
        trial = trial_evaluator(policy)
        if isinstance(trial, Problem):
            problems.append(trial)
            return LintReport(policy.path, policy, tuple(problems))
        evaluator = trial
    try:
        found = analysis.analyse(policy, evaluator, lines, limit or MAX_COMBINATIONS)
    finally:
        if own:
            evaluator.close()  # unloads the throwaway ruleset (durable_rules keeps ~300 KB per ruleset)
    problems.extend(found.problems)
    return LintReport(policy.path, policy, tuple(sorted(problems, key=_order)), found.notes)


def _order(problem: Problem) -> tuple[int, int, str]:
    return (problem.severity != "error", problem.line or 0, problem.check)


def unused_facts(policy: Policy, lines: dict[tuple[str, str], int]) -> Iterable[Problem]:
    """Report declared facts that no walk rule, advice or check reads."""
    rules: tuple[Rule | AdviceRule | CheckRule, ...] = (*policy.rules, *policy.advice, *policy.checks)
    read = {fact for rule in rules for fact in rule.reads}
    for name in policy.facts:
        if name not in read and name not in DECISION_FIELDS:
            yield finding(policy.path, "", lines.get(("facts", name)),
                          f"fact {name!r} is declared but no rule, advice or check reads it",
                          "warning", "unused-fact")


def unknown_codes(policy: Policy, known: frozenset[str]) -> Iterable[Problem]:
    """Report advice codes outside ``known`` (``policies/advice-codes.yaml``)."""
    for rule in policy.advice:
        if rule.code not in known:
            yield finding(policy.path, rule.id, rule.line,
                          f"advice code {rule.code!r} is not in {ADVICE_CODES_FILE} (domain reference §10): "
                          "check the spelling, or agree it with the systems that read decisions and add it there",
                          "warning", "unknown-code")


def _entry_lines(text: str) -> dict[tuple[str, str], int]:
    """Lines of the ``facts`` (by name) and ``pathways`` (by code) entries: the model does not keep them."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    found: dict[tuple[str, str], int] = {}
    if not isinstance(root, yaml.MappingNode):
        return found
    for key, section in root.value:
        if key.value not in ("facts", "pathways") or not isinstance(section, yaml.SequenceNode):
            continue
        field = "name" if key.value == "facts" else "code"
        for entry in section.value:
            if isinstance(entry, yaml.MappingNode):
                for entry_key, value in entry.value:
                    if entry_key.value == field and isinstance(value, yaml.ScalarNode):
                        found[(key.value, str(value.value))] = entry.start_mark.line + 1
    return found
