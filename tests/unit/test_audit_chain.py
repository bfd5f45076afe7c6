"""The hash chain's link format and the verifier's verdicts, on links made in memory."""

from __future__ import annotations

import hashlib

from fairpath.audit import chain


def _links(count: int) -> list[chain.Link]:
    links, previous = [], chain.GENESIS
    for sequence in range(1, count + 1):
        values = (f"decision-{sequence}", sequence * 10)
        digest = chain.link_hash(sequence, previous, chain.DECISION, values)
        links.append(chain.Link(sequence, chain.DECISION, previous, digest, values))
        previous = digest
    return links


def test_the_link_hash_frames_fields_so_moving_a_boundary_changes_it() -> None:
    """Netstring framing: ("ab", "c") and ("a", "bc") never hash alike, nor do kinds or sequences."""
    base = chain.link_hash(1, chain.GENESIS, chain.DECISION, ("ab", "c"))

    assert base != chain.link_hash(1, chain.GENESIS, chain.DECISION, ("a", "bc"))
    assert base != chain.link_hash(1, chain.GENESIS, chain.OUTCOME, ("ab", "c"))
    assert base != chain.link_hash(2, chain.GENESIS, chain.DECISION, ("ab", "c"))
    assert base == chain.link_hash(1, chain.GENESIS, chain.DECISION, ("ab", "c"))
    assert len(base) == 64


def test_an_intact_chain_reports_every_record_checked() -> None:
    """Links that follow one another and match their hashes are intact."""
    links = _links(5)

    report = chain.verify(links, 5, links[-1].hash)

    assert (report.intact, report.records_checked, report.first_broken_sequence) == (True, 5, 0)


def test_an_empty_trail_is_intact() -> None:
    """No records and a head at its genesis state verify."""
    assert chain.verify([], 0, chain.GENESIS).intact


def test_a_changed_value_is_reported_at_its_own_sequence() -> None:
    """Editing a hashed value breaks that link, and the walk stops there."""
    links = _links(5)
    links[2] = chain.Link(3, chain.DECISION, links[2].previous_hash, links[2].hash, ("forged", 30))

    report = chain.verify(links, 5, links[-1].hash)

    assert (report.intact, report.first_broken_sequence, report.records_checked) == (False, 3, 3)
    assert "changed after it was written" in report.problem


def test_a_gap_is_reported_as_the_missing_sequence() -> None:
    """A deleted record is the first broken link, named by the sequence that should have been there."""
    links = _links(5)
    del links[1]

    report = chain.verify(links, 5, links[-1].hash)

    assert report.first_broken_sequence == 2
    assert "record 2 is missing" in report.problem


def test_a_head_beyond_the_last_record_reports_a_lost_tail() -> None:
    """Records removed from the end are caught by the chain head."""
    links = _links(5)

    report = chain.verify(links[:3], 5, links[-1].hash)

    assert (report.intact, report.records_checked, report.first_broken_sequence) == (False, 3, 4)
    assert report.problem == "the chain head records 5 record(s) but 3 were found: records are missing"


def test_a_side_value_must_match_the_commitment_in_its_record() -> None:
    """A salted commitment binds a value kept outside the hashed row; another value fails it."""
    salt = chain.new_salt()
    committed = chain.commitment(salt, "G1")
    good = chain.SideValue("equality group", committed, salt, "G1")
    bad = chain.SideValue("equality group", committed, salt, "G2")
    values = ("d", committed)
    digest = chain.link_hash(1, chain.GENESIS, chain.DECISION, values)

    def check(side: chain.SideValue) -> bool:
        link = chain.Link(1, chain.DECISION, chain.GENESIS, digest, values, (side,))
        return chain.verify([link], 1, digest).intact

    assert check(good)
    assert not check(bad)
    assert committed != chain.commitment(chain.new_salt(), "G1")  # a fresh salt: nothing to guess from


def test_a_side_value_whose_salt_was_edited_to_non_hex_fails_its_commitment() -> None:
    """The salt sits outside the hashed columns: one edited to text that is not hex is a broken link, not a crash."""
    salt = chain.new_salt()
    committed = chain.commitment(salt, "G1")
    values = ("d", committed)
    digest = chain.link_hash(1, chain.GENESIS, chain.DECISION, values)
    edited = chain.SideValue("equality group", committed, "not hex", "G1")
    report = chain.verify([chain.Link(1, chain.DECISION, chain.GENESIS, digest, values, (edited,))], 1, digest)
    assert not report.intact
    assert report.first_broken_sequence == 1
    assert report.problem == "the equality group of record 1 does not match the commitment in the record"


def test_a_problem_found_outside_the_row_breaks_its_link() -> None:
    """A link carrying an external problem (e.g. a missing trace entry) is reported as broken."""
    links = _links(2)
    links[1] = chain.Link(
        2,
        chain.DECISION,
        links[1].previous_hash,
        links[1].hash,
        links[1].values,
        problem="trace entry abc is missing",
    )

    report = chain.verify(links, 2, links[-1].hash)

    assert report.first_broken_sequence == 2
    assert report.problem == "record 2: trace entry abc is missing"


def test_a_head_whose_hash_differs_from_the_last_record_is_reported_at_that_record() -> None:
    """A tail rewritten with fresh hashes links up, so only the chain head's hash can give it away."""
    links = _links(5)

    report = chain.verify(links, 5, chain.link_hash(5, links[3].hash, chain.DECISION, ("forged", 50)))

    assert (report.intact, report.records_checked, report.first_broken_sequence) == (False, 5, 5)
    assert report.problem == "the chain head hash does not match record 5"


def test_an_empty_trail_whose_head_hash_is_not_genesis_is_broken() -> None:
    """Every record deleted and the count reset: the head's hash still says records existed."""
    report = chain.verify([], 0, _links(1)[0].hash)

    assert (report.intact, report.records_checked, report.first_broken_sequence) == (False, 0, 0)
    assert report.problem == "the chain head hash does not match record 0"


# --- known answers -------------------------------------------------------------------------
# The values below were computed once and written in by hand. If one of these tests fails, the
# link format changed: every trail already written stops verifying (each first record reports
# "its hash does not match"). Such a change needs LINK_FORMAT raised and a store migration that
# re-verifies old trails under the old format; never "fix" a test by pasting in the new digest.

#: A decision row: every column of DECISION_COLUMNS, in that order, as the store holds them.
DECISION_ROW = (
    "3f1c2d4e-0000-4000-8000-000000000001", "req-1", "ward-7", 1767225600000000, "nhs-just-culture-guide",
    "1.0.0", "ab" * 32, "DECIDED", "JCG_B_SUBSTANCE_ABUSE", 1, "INC-42", "STAFF-9", "", 812, '["2a","3a"]',
    '["substance_abuse_indicated"]', '{"intent_to_harm":"NO"}', '{"trace":[]}', "cd" * 32, "",
)
DECISION_HASH = "5e55d3560007f9d27bbbcbddd1b387c14928add424a8b318ae387e3c77f03082"
#: An outcome row (OUTCOME_COLUMNS), with text that is longer in UTF-8 bytes than in characters.
OUTCOME_ROW = (
    "3f1c2d4e-0000-4000-8000-000000000001", "JCG_B_SUBSTANCE_ABUSE", "reviewer-1", "agreed — records checked",
    1767229200000000, 0,
)
OUTCOME_HASH = "e6dd0942ba0aa5f04ca460bd730ce4ac0c6caec33377a645354a10c940cc9e2c"


def test_the_genesis_value_and_link_format_version_are_fixed() -> None:
    """Record 1 of every trail links to 64 zeros under link format 1; another value breaks every trail."""
    assert chain.GENESIS == "0000000000000000000000000000000000000000000000000000000000000000"
    assert chain.LINK_FORMAT == 1
    assert (chain.DECISION, chain.OUTCOME) == ("decision", "outcome")


def test_the_hashed_columns_and_their_order_are_fixed() -> None:
    """The columns a link hashes, in link order: adding, dropping or reordering one breaks every trail."""
    assert chain.DECISION_COLUMNS == (
        "decision_id", "request_id", "caller", "evaluated_us", "policy", "version", "digest", "status",
        "pathway", "individual_directed", "incident_ref", "staff_ref", "action_ref", "duration_us", "fired",
        "masked_facts", "facts", "document", "equality_commitment", "sensitive_commitment",
    )
    assert chain.OUTCOME_COLUMNS == ("decision_id", "action_taken", "reviewer", "reason", "recorded_us", "departs")
    assert len(DECISION_ROW) == len(chain.DECISION_COLUMNS)
    assert len(OUTCOME_ROW) == len(chain.OUTCOME_COLUMNS)


def test_a_fixed_decision_and_outcome_hash_to_known_digests() -> None:
    """The link encoding is pinned: a fixed decision (record 1) and its outcome (record 2) hash as written."""
    assert chain.link_hash(1, chain.GENESIS, chain.DECISION, DECISION_ROW) == DECISION_HASH
    assert chain.link_hash(2, DECISION_HASH, chain.OUTCOME, OUTCOME_ROW) == OUTCOME_HASH
    links = [
        chain.Link(1, chain.DECISION, chain.GENESIS, DECISION_HASH, DECISION_ROW),
        chain.Link(2, chain.OUTCOME, DECISION_HASH, OUTCOME_HASH, OUTCOME_ROW),
    ]
    assert chain.verify(links, 2, OUTCOME_HASH).intact


def test_the_link_is_the_sha256_of_utf8_netstrings_as_documented() -> None:
    """The module docstring's formula, spelled out byte by byte (lengths count UTF-8 bytes, not characters)."""
    spelled = b"1:1,1:2,64:" + b"0" * 64 + b",7:outcome,3:\xc3\xa9x,3:-12,"

    assert chain.link_hash(2, chain.GENESIS, chain.OUTCOME, ("éx", -12)) == hashlib.sha256(spelled).hexdigest()


def test_a_commitment_is_the_sha256_of_salt_bytes_then_value() -> None:
    """Commitments already stored in trails verify only while this stays ``sha256(bytes(salt) || utf8(value))``."""
    salt = "00112233445566778899aabbccddeeff"

    assert chain.commitment(salt, "G1") == "b4f81dbcfcfd60c82b279c8c6b4cc0e6c3da114ddfb13b5cb806319bda9eeb5b"
    assert chain.commitment(salt, "G1") == hashlib.sha256(bytes.fromhex(salt) + b"G1").hexdigest()
    assert len(chain.new_salt()) == 32
    assert bytes.fromhex(chain.new_salt())
