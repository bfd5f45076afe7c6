"""Models built from hand-made fairpath.v1 messages, and the text the CLI prints for them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fairpath.v1 import decision_pb2
from fairpath_client import (
    Decision,
    PolicyDetail,
    PolicySummary,
    render_decision,
    render_policies,
    render_walk,
)
from google.protobuf import struct_pb2


def value(python: Any) -> struct_pb2.Value:
    wrapper = struct_pb2.Struct()
    wrapper.update({"v": python})
    return wrapper.fields["v"]


def question(
    rule_id: str,
    text: str,
    result: decision_pb2.RuleResult.ValueType,
    leads_to: str = "",
    **seen: object,
) -> decision_pb2.TraceEntry:
    return decision_pb2.TraceEntry(
        rule_id=rule_id,
        title=f"rule {rule_id}",
        condition="...",
        kind=decision_pb2.QUESTION,
        question=text,
        result=result,
        leads_to=leads_to,
        facts_seen={name: value(v) for name, v in seen.items()},
    )


def decided_message() -> decision_pb2.Decision:
    message = decision_pb2.Decision(
        decision_id="dec-1",
        policy=decision_pb2.PolicyRef(name="nhs-just-culture-guide", version="2.0.0", digest="ab" * 32),
        status=decision_pb2.DECIDED,
        pathway=decision_pb2.Pathway(
            code="JCG_D_SUBSTITUTION",
            title="Substitution test: others would have acted the same",
            recommendation="Look at system failures; support the individual.",
            individual_directed=False,
            sub_reason="3b",
            category="SYSTEM_LEARNING",
        ),
        advice=[decision_pb2.Advice(code="SUPPORT", text="Offer staff support.", rule_id="A1")],
        warnings=[
            decision_pb2.Warning(
                code="CONTRADICTION",
                text="Unwell but fit for work.",
                facts=["unwell", "fit_for_work"],
            )
        ],
        trace=[
            question("G1", "Is this a patient safety incident?", decision_pb2.FIRED, "rule 1a", psi="YES"),
            question(
                "1a", "Was there any intention to cause harm?", decision_pb2.NOT_FIRED, "rule 2a", intent="NO"
            ),
            question(
                "3b",
                "Would another individual with similar experience have acted the same way?",
                decision_pb2.FIRED,
                "pathway JCG_D_SUBSTITUTION",
                substitution="YES",
                hours=13.0,
            ),
            question("4a", "Never asked?", decision_pb2.NOT_REACHED),
            decision_pb2.TraceEntry(
                rule_id="A1", kind=decision_pb2.ADVICE, result=decision_pb2.FIRED, leads_to="advice SUPPORT"
            ),
            decision_pb2.TraceEntry(rule_id="C1", kind=decision_pb2.CHECK, result=decision_pb2.FIRED),
        ],
        engine=decision_pb2.Engine(name="durable_rules", version="2.0.28"),
        subject=decision_pb2.Subject(incident_ref="INC-1", staff_ref="STAFF-7", action_ref="ACT-2"),
        request_id="req-1",
    )
    message.evaluated_at.FromDatetime(datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
    return message


def needs_information_message() -> decision_pb2.Decision:
    return decision_pb2.Decision(
        decision_id="dec-2",
        policy=decision_pb2.PolicyRef(name="nhs-just-culture-guide", version="2.0.0", digest="cd" * 32),
        status=decision_pb2.NEEDS_INFORMATION,
        missing_facts=[
            decision_pb2.MissingFact(
                fact="intent", question="Was there any intention to cause harm?", rule_id="1a"
            )
        ],
        trace=[
            question("G1", "Is this a patient safety incident?", decision_pb2.FIRED, "rule 1a", psi="YES"),
            question("1a", "Was there any intention to cause harm?", decision_pb2.UNANSWERED),
        ],
    )


class TestFromProto:
    def test_enums_become_names_and_values_become_python(self) -> None:
        """Status, kind and result are strings; facts_seen holds str, float and bool values."""
        decision = Decision.from_proto(decided_message())

        assert decision.status == "DECIDED"
        assert [entry.kind for entry in decision.trace][-2:] == ["ADVICE", "CHECK"]
        results = [entry.result for entry in decision.trace]
        assert results[:4] == ["FIRED", "NOT_FIRED", "FIRED", "NOT_REACHED"]
        assert decision.trace[2].facts_seen == {"hours": 13.0, "substitution": "YES"}
        flag = decision_pb2.TraceEntry(facts_seen={"flag": value(True)})
        assert Decision.from_proto(decision_pb2.Decision(trace=[flag])).trace[0].facts_seen == {"flag": True}

    def test_null_facts_seen_are_dropped_as_unanswered(self) -> None:
        """A null in facts_seen is treated like an absent fact, not passed on as None."""
        entry = decision_pb2.TraceEntry(facts_seen={"a": value(None), "b": value("NO")})

        decision = Decision.from_proto(decision_pb2.Decision(trace=[entry]))

        assert decision.trace[0].facts_seen == {"b": "NO"}

    def test_scalar_fields_and_nested_values_are_copied(self) -> None:
        """Pathway, advice, warnings, policy, engine, subject and timestamp arrive intact."""
        decision = Decision.from_proto(decided_message())

        assert decision.pathway is not None
        assert decision.pathway.code == "JCG_D_SUBSTITUTION"
        assert decision.pathway.sub_reason == "3b"
        assert decision.pathway.category == "SYSTEM_LEARNING"
        assert decision.advice[0].rule_id == "A1"
        assert decision.warnings[0].facts == ("unwell", "fit_for_work")
        assert decision.policy.version == "2.0.0"
        assert (decision.engine_name, decision.engine_version) == ("durable_rules", "2.0.28")
        assert decision.subject.staff_ref == "STAFF-7"
        assert decision.evaluated_at == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
        assert decision.evaluated_at.tzinfo is not None

    def test_needs_information_has_no_pathway(self) -> None:
        """NEEDS_INFORMATION decisions have pathway None and list the missing facts."""
        decision = Decision.from_proto(needs_information_message())

        assert decision.status == "NEEDS_INFORMATION"
        assert decision.pathway is None
        assert decision.missing_facts[0].fact == "intent"

    def test_unknown_enum_values_degrade_to_unspecified(self) -> None:
        """Enum values from a newer server become "UNSPECIFIED" instead of raising."""
        message = decision_pb2.Decision(trace=[decision_pb2.TraceEntry(rule_id="x")])
        message.status = 42  # type: ignore[assignment]
        message.trace[0].result = 42  # type: ignore[assignment]

        decision = Decision.from_proto(message)

        assert decision.status == "UNSPECIFIED"
        assert decision.trace[0].result == "UNSPECIFIED"
        assert decision.trace[0].kind == "UNSPECIFIED"

    def test_to_dict_is_json_ready(self) -> None:
        """to_dict() survives json.dumps: datetimes as ISO strings, tuples as lists, no pathway as null."""
        decided = json.loads(json.dumps(Decision.from_proto(decided_message()).to_dict()))
        pending = json.loads(json.dumps(Decision.from_proto(needs_information_message()).to_dict()))

        assert decided["evaluated_at"] == "2026-03-01T09:30:00+00:00"
        assert decided["pathway"]["code"] == "JCG_D_SUBSTITUTION"
        assert decided["trace"][2]["facts_seen"] == {"hours": 13.0, "substitution": "YES"}
        assert decided["warnings"][0]["facts"] == ["unwell", "fit_for_work"]
        assert pending["pathway"] is None
        assert pending["status"] == "NEEDS_INFORMATION"

    def test_policy_detail_from_proto(self) -> None:
        """PolicyDetail carries the summary and every fact, pathway, advice and rule spec."""
        message = decision_pb2.PolicyDetail(
            summary=decision_pb2.PolicySummary(name="p", version="1.0.0", status="active", current=True),
            description="d",
            facts=[
                decision_pb2.FactSpec(
                    name="intent", type=decision_pb2.ANSWER, allowed_values=["YES", "NO", "UNKNOWN"]
                )
            ],
            pathways=[decision_pb2.PathwaySpec(code="JCG_A", individual_directed=True)],
            advice=[decision_pb2.AdviceSpec(rule_id="A1", code="SUPPORT")],
            rules=[
                decision_pb2.RuleSpec(rule_id="1a", then_target="pathway JCG_A", kind=decision_pb2.QUESTION)
            ],
        )

        detail = PolicyDetail.from_proto(message)

        assert detail.summary.current is True
        assert detail.facts[0].type == "ANSWER"
        assert detail.facts[0].allowed_values == ("YES", "NO", "UNKNOWN")
        assert detail.pathways[0].individual_directed is True
        assert detail.advice[0].code == "SUPPORT"
        assert detail.rules[0].kind == "QUESTION"


class TestRenderWalk:
    def test_walk_lists_reached_questions_with_answers_and_targets(self) -> None:
        """Each reached question shows rule id, question, answer(s) and where it led, aligned."""
        trace = Decision.from_proto(decided_message()).trace

        assert render_walk(trace).splitlines() == [
            "G1  Is this a patient safety incident?                     YES"
            "                         -> rule 1a",
            "1a  Was there any intention to cause harm?                 NO "
            "                         -> rule 2a",
            "3b  Would another individual with similar experience have  hours=13, substitution=YES"
            "  -> pathway JCG_D_SUBSTITUTION",
            "    acted the same way?",
        ]

    def test_walk_skips_unreached_advice_and_check_rules(self) -> None:
        """NOT_REACHED questions, advice rules and checks are not part of the walk."""
        text = render_walk(Decision.from_proto(decided_message()).trace)

        assert "4a" not in text
        assert "A1" not in text
        assert "C1" not in text

    def test_unanswered_question_says_unanswered(self) -> None:
        """A question whose fact is unanswered shows "unanswered" and no target."""
        lines = render_walk(Decision.from_proto(needs_information_message()).trace).splitlines()

        assert lines[1] == "1a  Was there any intention to cause harm?  unanswered"

    def test_question_without_facts_shows_whether_it_held(self) -> None:
        """A gate that reads no fact shows "held" or "not held" rather than an empty answer."""
        entry = question("G0", "Always asked?", decision_pb2.FIRED, "rule G1")

        assert render_walk(Decision.from_proto(decision_pb2.Decision(trace=[entry])).trace) == (
            "G0  Always asked?  held  -> rule G1\n"
        )

    def test_no_question_reached_renders_nothing(self) -> None:
        """An empty trace gives an empty walk."""
        assert render_walk(()) == ""


class TestRenderDecision:
    def test_decided_text_has_every_section(self) -> None:
        """The text shows pathway, branch, recommendation, advice, warnings, walk, policy and ids."""
        text = render_decision(Decision.from_proto(decided_message()))

        assert text.startswith(
            "DECIDED  JCG_D_SUBSTITUTION  Substitution test: others would have acted the same  (branch 3b)\n"
            "  Recommendation: Look at system failures; support the individual.\n"
            "  category SYSTEM_LEARNING; not individual-directed\n"
        )
        assert "Advice\n  - SUPPORT: Offer staff support.  (rule A1)\n" in text
        assert "Warnings\n  - CONTRADICTION: Unwell but fit for work.  (facts: unwell, fit_for_work)" in text
        assert "Walk\n  G1  Is this a patient safety incident?" in text
        assert "Missing information" not in text
        assert f"Policy nhs-just-culture-guide 2.0.0 (sha256 {'ab' * 6}); engine durable_rules 2.0.28" in text
        assert "request req-1; subject INC-1/STAFF-7/ACT-2" in text
        assert text.endswith("\n")
        assert all(line == line.rstrip() for line in text.splitlines())

    def test_needs_information_text_lists_missing_questions(self) -> None:
        """NEEDS_INFORMATION says so and lists each missing fact with its question and rule."""
        text = render_decision(Decision.from_proto(needs_information_message()))

        assert text.startswith("NEEDS INFORMATION")
        assert "Missing information\n  - intent: Was there any intention to cause harm?  (rule 1a)\n" in text
        assert "1a  Was there any intention to cause harm?  unanswered" in text


class TestRenderPolicies:
    def test_table_has_header_current_marker_and_digest_prefix(self) -> None:
        """Policies render as an aligned table with a 12-character digest prefix."""
        policies = [
            PolicySummary(
                name="nhs-just-culture-guide",
                version="2.0.0",
                title="Just culture guide",
                digest="0123456789abcdef" * 4,
                status="active",
                current=True,
            ),
            PolicySummary(
                name="triage", version="0.1.0", title="Triage", digest="f" * 64, status="draft", current=False,
                effective_from="2027-01-01", not_current_reason="draft",
            ),
        ]

        assert render_policies(policies).splitlines() == [
            "NAME                    VERSION  STATUS  EFFECTIVE   CURRENT     DIGEST        TITLE",
            "nhs-just-culture-guide  2.0.0    active  -           yes         0123456789ab  Just culture guide",
            "triage                  0.1.0    draft   2027-01-01  no (draft)  ffffffffffff  Triage",
        ]

    def test_a_long_table_fits_100_columns_when_piped_without_breaking_an_identifier(self) -> None:
        """Piped output is at most 100 wide: titles wrap between words; names, versions and digests never wrap."""
        policies = [
            PolicySummary(
                name=f"a-rather-long-policy-name-{n}", version="10.20.30", digest="0123456789abcdef" * 4,
                status="active", current=False, effective_from="2027-01-01",
                not_current_reason="not yet effective (from 2027-01-01)",
                title="A title long enough that it has to wrap onto several lines at one hundred columns " * 2,
            )
            for n in range(3)
        ]
        lines = render_policies(policies).splitlines()
        assert max(len(line) for line in lines) <= 100
        assert sum(f"a-rather-long-policy-name-{n}" in line for n in range(3) for line in lines) == 3
        assert sum("0123456789ab" in line for line in lines) == 3
        words = " ".join(" ".join(lines).split())
        assert "A title long enough that it has to wrap onto several lines" in words

    def test_no_policies_says_so(self) -> None:
        """An empty list renders a sentence, not an empty table."""
        assert render_policies([]) == "No policies loaded.\n"
