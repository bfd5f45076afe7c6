"""Which policy versions may serve, given what they require of each other (chained policies).

A policy file may require another policy's decision (``requires:``, read by
:mod:`fairpath.policy.loader`): evaluating it evaluates the required policy
first and takes some of its facts from that decision. What one file cannot
show is checked here, over every version that would serve together:

* the required policy, and a pinned version of it, is served (a requirement of
  ``current`` needs at least one ``active`` version, the only kind that can be current);
* every value the required decision can feed in is one the chained fact accepts
  (each pathway code of an enum fact, each category, both statuses), so a caller
  is never refused for a value it did not send;
* a fact the caller sends goes to every policy of the chain that declares it, so
  the policies must declare it alike, and a fact one policy takes from a decision
  must not be one another policy of the chain asks the caller for;
* no cycle: ``A`` requires ``B`` requires ``A`` (through any versions: a
  requirement of ``current`` may lead to any active version of the policy), and
  no chain deeper than :data:`MAX_DEPTH`.

A version that fails any of these is refused, with a problem naming its file and
the line of its requirement; a version requiring a refused one is then refused
too, until nothing changes. Everything else keeps serving. Pure functions over
:class:`~fairpath.policy.model.Policy` values: the reload (:mod:`fairpath.serving.staging`),
``fairpath policy test`` and the offline evaluation use the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from fairpath.errors import PolicyFileError
from fairpath.policy.loader import load_file
from fairpath.policy.model import FactSpec, FactType, Policy, Requirement
from fairpath.policy.registry import policy_files

#: Longest chain of requirements (a policy requiring one requiring one …), counting the first.
MAX_DEPTH = 4
_STATUSES = ("DECIDED", "NEEDS_INFORMATION")


def targets(requirement: Requirement, versions: Mapping[str, Sequence[Policy]]) -> list[Policy]:
    """The versions ``requirement`` may be answered by: the pinned one, or every active one for ``current``."""
    found = versions.get(requirement.policy, ())
    if requirement.pinned:
        return [policy for policy in found if policy.version == requirement.pinned]
    return [policy for policy in found if policy.status == "active"]


def requirement_problems(
    policies: Iterable[Policy], *, blame: Callable[[Policy], bool] | None = None, once: bool = False
) -> dict[str, PolicyFileError]:
    """Return ``name@version`` -> why, for every version that may not serve alongside the others.

    Args:
        policies: The versions that would serve together (unique ``name@version``).
        blame: Of the versions on a cycle, those for which this is true are refused, when there are
            any (a reload blames the files that changed, so what was serving keeps serving); else
            every version on the cycle is.
        once: Return the first round of refusals only. A reload then puts back what a refused file
            served before and asks again, instead of refusing what required the refused version.

    """
    remaining = {policy.key: policy for policy in policies}
    refused: dict[str, PolicyFileError] = {}
    while True:
        found = _direct_problems(remaining) or _cycle_problems(remaining, blame) or _depth_problems(remaining)
        if not found:
            return refused
        for key, error in found.items():
            refused[key] = error
            del remaining[key]
        if once:
            return refused


def _by_name(policies: Mapping[str, Policy]) -> dict[str, list[Policy]]:
    versions: dict[str, list[Policy]] = {}
    for policy in policies.values():
        versions.setdefault(policy.name, []).append(policy)
    return versions


def _error(policy: Policy, requirement: Requirement, message: str) -> PolicyFileError:
    return PolicyFileError(f"requires {requirement.label}: {message}", path=policy.path, line=requirement.line)


def _direct_problems(policies: Mapping[str, Policy]) -> dict[str, PolicyFileError]:
    versions = _by_name(policies)
    problems: dict[str, PolicyFileError] = {}
    for key, policy in policies.items():
        for requirement in policy.requires:
            answered = targets(requirement, versions)
            if not answered:
                if requirement.policy not in versions:
                    message = f"no version of {requirement.policy} is served"
                elif requirement.pinned:
                    message = f"version {requirement.pinned} of {requirement.policy} is not served"
                else:
                    message = f"{requirement.policy} has no active version served, so none can be current"
                problems[key] = _error(policy, requirement, message)
                break
            problem = next((p for target in answered if (p := _fit(policy, requirement, target))), "")
            if problem:
                problems[key] = _error(policy, requirement, problem)
                break
    return problems


def _fit(policy: Policy, requirement: Requirement, target: Policy) -> str:
    """Why ``target``'s decision cannot feed ``policy`` through ``requirement`` ("" when it can)."""
    for fact, source in requirement.facts:
        spec = policy.facts[fact]
        if spec.type is not FactType.ENUM:
            continue
        if source == "pathway":
            values: Iterable[str] = target.pathways
        elif source == "category":
            values = {p.category for p in target.pathways.values() if p.category}
        else:  # status; individual_directed is a bool fact
            values = _STATUSES
        missing = sorted(set(values) - set(spec.values))
        if missing:
            return (f"{target.key} can give {source} {', '.join(missing[:5])}"
                    f"{' …' if len(missing) > 5 else ''}, which fact {fact!r} does not accept")
    mine = {name: spec for name, spec in policy.facts.items() if name not in policy.chained}
    for name, spec in _caller_facts(target).items():
        if name in policy.chained:
            return f"fact {name!r} is taken from a decision here, but {target.key} asks the caller for it"
        if name in mine and not _alike(mine[name], spec):
            return f"fact {name!r} is declared differently here and in {target.key} (the caller sends it once)"
    return ""


def _caller_facts(policy: Policy) -> dict[str, FactSpec]:
    """The facts ``policy`` itself takes from the caller (its chained facts excluded)."""
    return {name: spec for name, spec in policy.facts.items() if name not in policy.chained}


def _alike(one: FactSpec, other: FactSpec) -> bool:
    return one.type is other.type and set(one.values) == set(other.values)


def _edges(policies: Mapping[str, Policy]) -> dict[str, list[tuple[str, Requirement]]]:
    versions = _by_name(policies)
    return {
        key: [(target.key, requirement) for requirement in policy.requires
              for target in targets(requirement, versions)]
        for key, policy in policies.items()
    }


def find_cycles(policies: Mapping[str, Policy]) -> list[list[str]]:
    """Every elementary cycle's first discovery, as ``name@version`` keys from a version back to itself.

    One cycle per strongly connected part is enough to refuse it: the caller removes versions
    and asks again.
    """
    edges = _edges(policies)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the path, 2 finished
    path: list[str] = []

    def visit(key: str) -> None:
        state[key] = 1
        path.append(key)
        for target, _ in edges.get(key, ()):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[key] = 2

    for key in sorted(policies):
        if key not in state:
            visit(key)
    return cycles


def _cycle_problems(
    policies: Mapping[str, Policy], blame: Callable[[Policy], bool] | None
) -> dict[str, PolicyFileError]:
    problems: dict[str, PolicyFileError] = {}
    edges = _edges(policies)
    for cycle in find_cycles(policies):
        members = cycle[:-1]
        blamed = [key for key in members if blame is not None and blame(policies[key])] or members
        shown = " -> ".join(cycle)
        for key in blamed:
            following = cycle[cycle.index(key) + 1]
            requirement = next(req for target, req in edges[key] if target == following)
            problems.setdefault(key, _error(policies[key], requirement, f"requirement cycle: {shown}"))
    return problems


def _depth_problems(policies: Mapping[str, Policy]) -> dict[str, PolicyFileError]:
    # Only called once there are no cycles, so the depth is finite.
    edges = _edges(policies)
    depth: dict[str, int] = {}

    def depth_of(key: str) -> int:
        if key not in depth:
            depth[key] = 1 + max((depth_of(target) for target, _ in edges[key]), default=0)
        return depth[key]

    problems: dict[str, PolicyFileError] = {}
    for key, policy in policies.items():
        if depth_of(key) > MAX_DEPTH and policy.requires:
            message = f"a chain of requirements at most {MAX_DEPTH} policies deep; this one is {depth_of(key)}"
            problems[key] = _error(policy, policy.requires[0], message)
    return problems


def closure(policy: Policy, candidates: Iterable[Policy]) -> list[Policy]:
    """``policy`` and every version among ``candidates`` its requirements may lead to, transitively.

    For author tools that evaluate one version with what it requires (``fairpath policy test``,
    offline evaluate): every version of each required policy is included, so ``current`` resolves
    as a server would.
    """
    by_name: dict[str, list[Policy]] = {}
    for candidate in candidates:
        by_name.setdefault(candidate.name, []).append(candidate)
    chosen = {policy.key: policy}
    pending = [policy]
    while pending:
        for requirement in pending.pop().requires:
            for found in by_name.get(requirement.policy, ()):
                if found.key not in chosen:
                    chosen[found.key] = found
                    pending.append(found)
    return list(chosen.values())


def with_required(policy: Policy, root: str | Path | None = None) -> list[Policy]:
    """``policy`` and what it requires, loaded from the policy directory ``root``, checked as a reload would.

    For author tools that evaluate one file (``fairpath policy test``): ``root`` defaults to the
    directory two levels above the file (``<root>/<name>/<version>.yaml``). A policy with no
    requirements is returned alone, and nothing else is read. Another file that does not load is
    skipped: only a required version that cannot be found refuses.

    Raises:
        PolicyFileError: What :func:`requirement_problems` says of ``policy`` (not served, a cycle, …).

    """
    if not policy.requires:
        return [policy]
    top = Path(root) if root is not None else Path(policy.path).resolve().parent.parent
    loaded: list[Policy] = []
    for path in policy_files(top) if top.is_dir() else []:
        try:
            found = load_file(path)
        except PolicyFileError:
            continue
        if found.key != policy.key:
            loaded.append(found)
    chosen = closure(policy, loaded)
    problem = requirement_problems(chosen).get(policy.key)
    if problem is not None:
        raise problem
    return chosen
