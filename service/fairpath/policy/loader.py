"""Read a policy file (YAML) into a validated :class:`~fairpath.policy.model.Policy`.

Every mistake becomes a :class:`~fairpath.errors.PolicyFileError` naming the
file, the rule id and the line, so an author can find it without reading Python.
The format is described in the README ("Policy files").
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from fairpath.errors import PolicyFileError
from fairpath.policy import conditions as cond
from fairpath.policy.model import (
    ANSWER_VALUES,
    CURRENT,
    DECISION_FIELDS,
    NUMBER_RANGE,
    REQUIREMENT_SOURCES,
    AdviceRule,
    CheckRule,
    FactSpec,
    FactType,
    Pathway,
    Policy,
    Requirement,
    Rule,
    Target,
    number_in_range,
)

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_FACT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,62}$")
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_TARGET = re.compile(r"^(?:go to (?P<rule>\S+)|pathway (?P<pathway>[A-Z][A-Z0-9_]*)(?: \((?P<sub>[^()]+)\))?)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

STATUSES = ("active", "draft", "retired")
# Field names the engine uses for itself, or that durable_rules treats specially.
RESERVED_FACTS = frozenset({"type", "sid", "id", *DECISION_FIELDS}) | cond.KEYWORDS
# Protected characteristics (Equality Act 2010) and equality monitoring fields are
# never rule inputs: they are for audit, kept apart from the facts.
PROTECTED_FACTS = frozenset(
    {
        "age", "date_of_birth", "disability", "gender", "gender_reassignment", "sex", "sexual_orientation",
        "marriage", "marital_status", "civil_partnership", "pregnancy", "maternity", "race", "ethnicity",
        "ethnic_group", "nationality", "religion", "belief", "religion_or_belief", "equality_group",
    }
)
MAX_FACTS = 200  # durable_rules refuses facts with more than 255 fields
# Size limits, each well above what the shipped policies use (32 KB files, 68 KB tests files, 35 rules
# counting advice and checks): a file past them is refused before it is parsed, so a reload or a
# ValidatePolicy call costs at most what a file this large costs.
MAX_POLICY_BYTES = 256 * 1024
MAX_TESTS_BYTES = 1024 * 1024
MAX_POLICY_RULES = 250  # walk rules, advice and checks together
_QUOTED = 120  # characters of a condition quoted back in an error message
_TOP_KEYS = {
    "policy", "version", "title", "status", "effective_from", "source", "description",
    "facts", "pathways", "rules", "advice", "checks", "requires",
}
_ENTRY_KEYS = {
    "facts": {"name", "type", "question", "values", "description", "sensitive"},
    "pathways": {"code", "title", "recommendation", "individual_directed", "category"},
    "rules": {"id", "title", "question", "when", "then", "else", "source"},
    "advice": {"id", "code", "title", "text", "when"},
    "checks": {"id", "title", "text", "when"},
    "requires": {"policy", "version", "facts"},
}
MAX_REQUIREMENTS = 4  # other policies' decisions one version may require
_LINE = "__line__"


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping[_LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Keep dates and times as text: effective_from is compared as ISO text.
_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_file(path: str | Path) -> Policy:
    """Load and validate one policy file."""
    return load_bytes(read_limited(path, MAX_POLICY_BYTES), path=str(path))


def read_limited(path: str | Path, limit: int) -> bytes:
    """Read a regular file of at most ``limit`` bytes; anything else is a :class:`PolicyFileError`.

    Never reads more than ``limit + 1`` bytes, and never blocks on a FIFO or device someone
    named ``*.yaml`` (it is opened non-blocking and refused for not being a regular file).
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise PolicyFileError(f"cannot read: {error.strerror}", path=str(path)) from error
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise PolicyFileError("cannot read: not a regular file", path=str(path))
        try:
            data = file.read(limit + 1)
        except OSError as error:
            raise PolicyFileError(f"cannot read: {error.strerror}", path=str(path)) from error
    check_size(len(data), limit, str(path))
    return data


def check_size(size: int, limit: int, path: str) -> None:
    """Refuse a file (or text) of ``size`` bytes when it is larger than ``limit``."""
    if size > limit:
        raise PolicyFileError(f"larger than {limit // 1024} KiB, the most a file may hold", path=path)


def load_bytes(data: bytes, path: str = "<policy>") -> Policy:
    """Load and validate policy text; ``path`` is only used in error messages."""
    check_size(len(data), MAX_POLICY_BYTES, path)
    try:
        document = yaml.load(data.decode("utf-8"), Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except UnicodeDecodeError as error:
        raise PolicyFileError("not UTF-8 text", path=path) from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PolicyFileError(f"not valid YAML: {getattr(error, 'problem', error)}", path=path, line=line) from error
    except RecursionError:
        raise PolicyFileError("YAML nested too deeply", path=path) from None
    return _Builder(path, hashlib.sha256(data).hexdigest()).build(document)


class _Builder:
    def __init__(self, path: str, digest: str) -> None:
        self.path = path
        self.digest = digest

    def error(self, message: str, node: Any = None, rule_id: str = "") -> PolicyFileError:
        line = node.get(_LINE) if isinstance(node, dict) else None
        return PolicyFileError(message, path=self.path, rule_id=rule_id, line=line)

    def text(self, node: dict[str, Any], key: str, *, required: bool = True, rule_id: str = "") -> str:
        value = node.get(key)
        if value is None:
            if required:
                raise self.error(f"missing {key!r}", node, rule_id)
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(f"{key!r} must be text", node, rule_id)
        return " ".join(str(value).split()) if key != "recommendation" else str(value).strip()

    def items(self, document: dict[str, Any], key: str, *, required: bool) -> list[dict[str, Any]]:
        value = document.get(key)
        if value is None:
            if required:
                raise self.error(f"missing {key!r}", document)
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.error(f"{key!r} must be a list of entries", document)
        for entry in value:
            # A misspelt key is refused, never ignored: `sensitvie: true` would leave a fact unmasked.
            unknown = sorted(map(str, set(entry) - _ENTRY_KEYS[key] - {_LINE}))
            if unknown:
                rule_id = entry.get("id") if isinstance(entry.get("id"), str) else ""
                raise self.error(f"{key}: unknown key(s) {', '.join(unknown)}", entry, rule_id)
        return value

    def build(self, document: Any) -> Policy:
        if not isinstance(document, dict):
            raise PolicyFileError("a policy file must be a mapping of keys", path=self.path)
        unknown = sorted(map(str, set(document) - _TOP_KEYS - {_LINE}))
        if unknown:
            raise self.error(f"unknown key(s) {', '.join(map(str, unknown))}", document)
        name = self.text(document, "policy")
        if not _NAME.match(name):
            raise self.error(f"policy name {name!r} must be lower-case words joined by '-'", document)
        version = self.text(document, "version")
        if not _SEMVER.match(version):
            raise self.error(f"version {version!r} must be semver MAJOR.MINOR.PATCH", document)
        status = self.text(document, "status", required=False) or "active"
        if status not in STATUSES:
            raise self.error(f"status must be one of {', '.join(STATUSES)}", document)
        effective_from = self.text(document, "effective_from", required=False)
        if effective_from and not _DATE.match(effective_from):
            raise self.error("effective_from must be a date YYYY-MM-DD", document)
        entries = sum(len(v) for v in map(document.get, ("rules", "advice", "checks")) if isinstance(v, list))
        if entries > MAX_POLICY_RULES:
            raise self.error(f"{entries} rules, advice and checks; a policy may have at most {MAX_POLICY_RULES}",
                             document)
        facts = self.facts(self.items(document, "facts", required=True))
        pathways = self.pathways(self.items(document, "pathways", required=True))
        rules = self.rules(self.items(document, "rules", required=True), facts, pathways)
        advice = self.advice(self.items(document, "advice", required=False), facts, pathways, rules)
        checks = self.checks(self.items(document, "checks", required=False), facts, rules, advice)
        self.check_reachable(rules)
        requires = self.requires(self.items(document, "requires", required=False), name, facts)
        return Policy(
            name=name,
            version=version,
            title=self.text(document, "title"),
            status=status,
            effective_from=effective_from,
            source=self.text(document, "source", required=False),
            description=self.text(document, "description", required=False),
            facts=facts,
            rules=tuple(rules),
            pathways=pathways,
            advice=tuple(advice),
            checks=tuple(checks),
            digest=self.digest,
            path=self.path,
            requires=tuple(requires),
        )

    def requires(self, entries: list[dict[str, Any]], name: str, facts: dict[str, FactSpec]) -> list[Requirement]:
        """Read ``requires``: other policies' decisions this one takes facts from.

        What can be checked in one file is checked here (names, versions, the facts and their types,
        a policy requiring itself); whether the required versions are served, and cycles through
        other policies, need every file (:mod:`fairpath.policy.requirements`).
        """
        if len(entries) > MAX_REQUIREMENTS:
            raise self.error(f"at most {MAX_REQUIREMENTS} requirements per policy", entries[MAX_REQUIREMENTS])
        requirements: list[Requirement] = []
        taken: dict[str, str] = {}
        for entry in entries:
            required = self.text(entry, "policy")
            if not _NAME.match(required):
                raise self.error(f"requires: policy name {required!r} must be lower-case words joined by '-'", entry)
            if required == name:
                raise self.error(f"requires: a policy cannot require itself (requirement cycle: {name} -> {name})",
                                 entry)
            if any(r.policy == required for r in requirements):
                raise self.error(f"requires: {required!r} is required twice", entry)
            version = self.text(entry, "version")
            if version != CURRENT and not _SEMVER.match(version):
                raise self.error(
                    f"requires {required}: version {version!r} must be {CURRENT!r} or MAJOR.MINOR.PATCH", entry
                )
            mapping = entry.get("facts")
            pairs = [(k, v) for k, v in mapping.items() if k != _LINE] if isinstance(mapping, dict) else []
            if not pairs:
                raise self.error(
                    f"requires {required}: 'facts' must map this policy's facts to what of the decision they "
                    f"take ({', '.join(REQUIREMENT_SOURCES)})", entry,
                )
            for fact, source in pairs:
                self.chained_fact(entry, required, str(fact), source, facts=facts, taken=taken)
                taken[str(fact)] = required
            requirements.append(Requirement(required, version, tuple((str(f), str(v)) for f, v in pairs),
                                            entry.get(_LINE)))
        return requirements

    def chained_fact(
        self, entry: dict[str, Any], required: str, fact: str, source: object, *, facts: dict[str, FactSpec],
        taken: dict[str, str],
    ) -> None:
        """Refuse a chained fact that is undeclared, taken twice, or of a type its source cannot fill."""
        if fact not in facts:
            raise self.error(f"requires {required}: fact {fact!r} is not declared", entry)
        if fact in taken:
            raise self.error(f"requires {required}: fact {fact!r} is already taken from {taken[fact]}", entry)
        if not isinstance(source, str) or source not in REQUIREMENT_SOURCES:
            raise self.error(
                f"requires {required}: fact {fact!r} must be taken from one of {', '.join(REQUIREMENT_SOURCES)}",
                entry,
            )
        types = REQUIREMENT_SOURCES[source]
        if facts[fact].type not in types:
            allowed = " or ".join(t.value for t in types)
            raise self.error(
                f"requires {required}: fact {fact!r} takes the decision's {source}, so it must be of type {allowed}",
                entry,
            )

    def facts(self, entries: list[dict[str, Any]]) -> dict[str, FactSpec]:  # noqa: PLR0912 - one check per rule of the format
        if len(entries) > MAX_FACTS:
            raise self.error(f"at most {MAX_FACTS} facts per policy")
        facts: dict[str, FactSpec] = {}
        for entry in entries:
            name = self.text(entry, "name")
            if not _FACT.match(name):
                raise self.error(f"fact name {name!r} must be lower_snake_case", entry)
            if name in RESERVED_FACTS:
                raise self.error(f"fact name {name!r} is reserved", entry)
            if name in PROTECTED_FACTS:
                raise self.error(
                    f"fact {name!r} is a protected characteristic: those are never rule inputs", entry
                )
            if name in facts:
                raise self.error(f"fact {name!r} declared twice", entry)
            try:
                fact_type = FactType(self.text(entry, "type"))
            except ValueError:
                raise self.error(
                    f"fact {name!r}: type must be one of {', '.join(t.value for t in FactType)}", entry
                ) from None
            values: tuple[str, ...] = ()
            if fact_type in (FactType.ENUM, FactType.SET):
                raw = entry.get("values")
                if not isinstance(raw, list) or not raw:
                    raise self.error(f"{fact_type.value} fact {name!r} needs a list of values", entry)
                values = tuple(str(v) for v in raw)
                bad = [v for v in values if not _CODE.match(v) or v in cond.KEYWORDS]
                if bad or len(set(values)) != len(values):
                    message = f"{fact_type.value} fact {name!r}: values must be distinct UPPER_CASE codes"
                    raise self.error(message, entry)
            elif "values" in entry:
                raise self.error(f"fact {name!r}: only enum and set facts declare values", entry)
            elif fact_type is FactType.ANSWER:
                values = ANSWER_VALUES
            sensitive = entry.get("sensitive", False)
            if not isinstance(sensitive, bool):
                raise self.error(f"fact {name!r}: sensitive must be true or false", entry)
            facts[name] = FactSpec(
                name=name,
                type=fact_type,
                question=self.text(entry, "question"),
                values=values,
                description=self.text(entry, "description", required=False),
                sensitive=sensitive,
            )
        # The engine sees one field per fact plus one per code of a set fact.
        fields = len(facts) + sum(len(f.values) for f in facts.values() if f.type is FactType.SET)
        if fields > MAX_FACTS:
            raise self.error(f"facts and set codes add up to {fields} engine fields (at most {MAX_FACTS})")
        return facts

    def pathways(self, entries: list[dict[str, Any]]) -> dict[str, Pathway]:
        pathways: dict[str, Pathway] = {}
        for entry in entries:
            code = self.text(entry, "code")
            if not _CODE.match(code):
                raise self.error(f"pathway code {code!r} must be an UPPER_CASE code", entry)
            if code in pathways:
                raise self.error(f"pathway {code!r} declared twice", entry)
            directed = entry.get("individual_directed")
            if not isinstance(directed, bool):
                raise self.error(f"pathway {code!r}: individual_directed must be true or false", entry)
            pathways[code] = Pathway(
                code=code,
                title=self.text(entry, "title"),
                recommendation=self.text(entry, "recommendation"),
                individual_directed=directed,
                category=self.text(entry, "category", required=False),
            )
        return pathways

    def rule_id(self, entry: dict[str, Any], seen: Iterable[str]) -> str:
        rule_id = self.text(entry, "id")
        if not _RULE_ID.match(rule_id):
            raise self.error(f"rule id {rule_id!r} must be letters, digits, '.', '_' or '-'", entry)
        if rule_id in seen:
            raise self.error(f"rule id {rule_id!r} used twice", entry, rule_id)
        return rule_id

    def condition(
        self,
        entry: dict[str, Any],
        rule_id: str,
        facts: dict[str, FactSpec],
        pathways: dict[str, Pathway] | None = None,
    ) -> tuple[cond.Condition, str]:
        text = self.text(entry, "when", rule_id=rule_id)
        try:
            parsed = cond.parse(text)
        except cond.ConditionSyntaxError as error:
            raise self.error(f"condition {_quote(text)}: {error}", entry, rule_id) from None
        for atom in cond.atoms(parsed):
            problem = self.type_error(atom, facts, pathways)
            if problem:
                raise self.error(f"condition {_quote(text)}: {problem}", entry, rule_id)
        return parsed, text

    def type_error(  # noqa: PLR0912 - one check per rule of the format
        self, atom: cond.Atom, facts: dict[str, FactSpec], pathways: dict[str, Pathway] | None
    ) -> str:
        if atom.fact in DECISION_FIELDS:
            if pathways is None:
                return f"{atom.fact!r} is the walk's outcome: only advice rules may read it"
            allowed: dict[str, tuple[type, tuple[Any, ...]]] = {
                "pathway": (str, tuple(pathways)),
                "individual_directed": (bool, (True, False)),
                "status": (str, ("DECIDED", "NEEDS_INFORMATION")),
            }
            kind, values = allowed[atom.fact]
            spec = None
        elif atom.fact not in facts:
            return f"fact {atom.fact!r} is not declared"
        else:
            spec = facts[atom.fact]
            kind = {FactType.NUMBER: float, FactType.BOOL: bool}.get(spec.type, str)
            # UNKNOWN is how an answer fact is left unanswered; an enum that declares it keeps it
            # as an answer (fairpath.policy.facts), so conditions may test for it.
            values = tuple(v for v in spec.values if v != "UNKNOWN" or spec.type is FactType.ENUM)
        if isinstance(atom, cond.Answered):
            return ""
        literals = atom.values if isinstance(atom, cond.Member) else (atom.value,)
        op = atom.op if isinstance(atom, cond.Compare) else "in"
        is_set = spec is not None and spec.type is FactType.SET
        if is_set and op not in cond.SET_OPS:
            return f"{atom.fact!r} is a set: test it with 'has', 'lacks' or 'has any [..]'"
        if op in cond.SET_OPS and not is_set:
            return f"'{op}' tests set facts, and {atom.fact!r} is not one"
        if op in cond.ORDER_OPS and kind is not float:
            return f"{op!r} compares numbers, and {atom.fact!r} is not a number"
        for literal in literals:
            if type(literal) is not kind:
                return f"{cond.format_value(literal)!r} is not a value {atom.fact!r} can take"
            if isinstance(literal, float) and not number_in_range(literal):
                return f"{cond.format_value(literal)} is outside the numbers facts can take ({NUMBER_RANGE})"
            if values and literal not in values:
                hint = " (UNKNOWN counts as unanswered: test 'is unanswered')" if literal == "UNKNOWN" else ""
                return f"{literal!r} is not one of {atom.fact}'s values{hint}"
        if spec is not None and spec.type is FactType.STRING and op in ("=", "!="):
            return f"compare text with 'is' / 'is not' ({atom.fact!r})"
        return ""

    def target(self, entry: dict[str, Any], key: str, rule_id: str, pathways: dict[str, Pathway]) -> Target:
        text = self.text(entry, key, rule_id=rule_id)
        match = _TARGET.match(text)
        if match is None:
            raise self.error(f"{key} must be 'go to RULE' or 'pathway CODE [(sub-reason)]', not {text!r}",
                             entry, rule_id)
        if match["pathway"]:
            if match["pathway"] not in pathways:
                raise self.error(f"{key}: pathway {match['pathway']!r} is not declared", entry, rule_id)
            return Target(pathway=match["pathway"], sub_reason=match["sub"] or "")
        return Target(rule=match["rule"])

    def rules(
        self, entries: list[dict[str, Any]], facts: dict[str, FactSpec], pathways: dict[str, Pathway]
    ) -> list[Rule]:
        if not entries:
            raise self.error("a policy needs at least one rule")
        rules: list[Rule] = []
        ids: list[str] = []
        for entry in entries:
            rule_id = self.rule_id(entry, ids)
            ids.append(rule_id)
            condition, text = self.condition(entry, rule_id, facts)
            required = cond.required_facts(condition)
            question = self.text(entry, "question", required=False, rule_id=rule_id)
            if not question:
                if len(required) != 1:
                    raise self.error("a rule reading several facts needs its own 'question'", entry, rule_id)
                question = facts[required[0]].question
            rules.append(
                Rule(
                    id=rule_id,
                    title=self.text(entry, "title", rule_id=rule_id),
                    question=question,
                    condition=condition,
                    condition_text=text,
                    then=self.target(entry, "then", rule_id, pathways),
                    otherwise=self.target(entry, "else", rule_id, pathways),
                    source=self.text(entry, "source", required=False, rule_id=rule_id),
                    line=entry.get(_LINE),
                )
            )
        # Targets may only point forward: the walk always ends, whatever the answers.
        position = {rule.id: index for index, rule in enumerate(rules)}
        for index, (rule, entry) in enumerate(zip(rules, entries, strict=True)):
            for key, target in (("then", rule.then), ("else", rule.otherwise)):
                if target.rule and target.rule not in position:
                    raise self.error(f"{key}: there is no rule {target.rule!r}", entry, rule.id)
                if target.rule and position[target.rule] <= index:
                    raise self.error(f"{key}: 'go to {target.rule}' points back; rules may only lead forward",
                                     entry, rule.id)
        return rules

    def advice(
        self,
        entries: list[dict[str, Any]],
        facts: dict[str, FactSpec],
        pathways: dict[str, Pathway],
        rules: list[Rule],
    ) -> list[AdviceRule]:
        seen = [rule.id for rule in rules]
        advice: list[AdviceRule] = []
        for entry in entries:
            rule_id = self.rule_id(entry, seen)
            seen.append(rule_id)
            code = self.text(entry, "code", rule_id=rule_id)
            if not _CODE.match(code):
                raise self.error(f"advice code {code!r} must be an UPPER_CASE code", entry, rule_id)
            condition, text = self.condition(entry, rule_id, facts, pathways)
            advice.append(
                AdviceRule(
                    id=rule_id,
                    code=code,
                    title=self.text(entry, "title", required=False, rule_id=rule_id) or code,
                    text=self.text(entry, "text", rule_id=rule_id),
                    condition=condition,
                    condition_text=text,
                    line=entry.get(_LINE),
                )
            )
        return advice

    def checks(
        self,
        entries: list[dict[str, Any]],
        facts: dict[str, FactSpec],
        rules: list[Rule],
        advice: list[AdviceRule],
    ) -> list[CheckRule]:
        seen = [rule.id for rule in rules] + [rule.id for rule in advice]
        checks: list[CheckRule] = []
        for entry in entries:
            rule_id = self.rule_id(entry, seen)
            seen.append(rule_id)
            condition, text = self.condition(entry, rule_id, facts)
            checks.append(
                CheckRule(
                    id=rule_id,
                    title=self.text(entry, "title", required=False, rule_id=rule_id) or rule_id,
                    text=self.text(entry, "text", rule_id=rule_id),
                    condition=condition,
                    condition_text=text,
                    line=entry.get(_LINE),
                )
            )
        return checks

    def check_reachable(self, rules: list[Rule]) -> None:
        reached = {rules[0].id}
        for rule in rules:  # targets only point forward, so one pass in file order suffices
            if rule.id not in reached:
                raise PolicyFileError("no answer leads to this rule", path=self.path, rule_id=rule.id,
                                      line=rule.line)
            reached.update(target.rule for target in (rule.then, rule.otherwise) if target.rule)


def _quote(text: str) -> str:
    """``text`` quoted for an error message; a long condition is cut (its column still locates the fault)."""
    return repr(text if len(text) <= _QUOTED else text[:_QUOTED] + "…")
