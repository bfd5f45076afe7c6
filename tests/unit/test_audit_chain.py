"""The hash chain's link format and the verifier's verdicts, on links made in memory."""

from __future__ import annotations

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

    assert (report.intact, report.first_broken_sequence) == (False, 4)


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
