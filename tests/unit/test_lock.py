"""policies.lock: what it refuses, how it is read and written, and `fairpath policy lock`."""

from __future__ import annotations

from pathlib import Path

import pytest
from fairpath.cli import main
from fairpath.errors import PolicyFileError
from fairpath.policy.loader import load_file
from fairpath.policy.lock import (
    LOCK_FILE,
    PolicyLock,
    lock_path,
    plan_lock,
    read_lock,
    render_lock,
    write_lock,
)

from tests.conftest import POLICIES
from tests.support.policy_dirs import NAME, lock, write_version

DIGEST_A = "a" * 64
DIGEST_B = "b" * 64


class TestVerify:
    """The lock's verdict on one loaded version."""

    def test_matching_digest_passes(self, tmp_path: Path) -> None:
        """A version whose file digest equals its lock line may serve."""
        policy = load_file(write_version(tmp_path, "1.0.0"))
        assert PolicyLock("lock", {policy.key: policy.digest}).verify(policy) is None

    def test_different_digest_is_refused_naming_both_digests(self, tmp_path: Path) -> None:
        """An edited published file is an error naming the locked and the actual digest prefixes."""
        policy = load_file(write_version(tmp_path, "1.0.0"))
        problem = PolicyLock("lock", {policy.key: DIGEST_A}).verify(policy, allow_unlocked=True)
        assert problem is not None
        assert problem.is_error
        assert problem.check == "lock"
        assert "a" * 12 in problem.message
        assert policy.digest[:12] in problem.message
        assert f"--update {policy.key}" in problem.message

    @pytest.mark.parametrize("status", ["active", "retired"])
    def test_unlocked_published_version_is_refused(self, tmp_path: Path, status: str) -> None:
        """An active or retired version missing from the lock is an error by default."""
        policy = load_file(write_version(tmp_path, "1.0.0", status=status))
        problem = PolicyLock("lock", {}).verify(policy)
        assert problem is not None
        assert problem.is_error
        assert "fairpath policy lock" in problem.message

    def test_allow_unlocked_turns_the_refusal_into_a_warning(self, tmp_path: Path) -> None:
        """--allow-unlocked serves an unlocked active version, with a warning."""
        policy = load_file(write_version(tmp_path, "1.0.0"))
        problem = PolicyLock("lock", {}).verify(policy, allow_unlocked=True)
        assert problem is not None
        assert problem.severity == "warning"

    def test_unlocked_draft_passes(self, tmp_path: Path) -> None:
        """A draft needs no lock line: authors may iterate on it."""
        policy = load_file(write_version(tmp_path, "1.0.0", status="draft"))
        assert PolicyLock("lock", {}).verify(policy) is None

    def test_locked_draft_is_held_to_its_digest(self, tmp_path: Path) -> None:
        """Once a draft is locked, a change to it is refused like any other."""
        policy = load_file(write_version(tmp_path, "1.0.0", status="draft"))
        assert PolicyLock("lock", {policy.key: DIGEST_A}).verify(policy) is not None


class TestFile:
    """Reading and writing the lock file."""

    def test_missing_file_is_an_empty_lock(self, tmp_path: Path) -> None:
        """No lock file reads as no lines (so every published version is unlocked)."""
        found = read_lock(tmp_path)
        assert (dict(found.digests), found.exists) == ({}, False)

    def test_written_file_is_sorted_and_reads_back(self, tmp_path: Path) -> None:
        """The file lists versions sorted, one quoted line each, and reads back to the same mapping."""
        digests = {"zeta-policy@1.0.0": DIGEST_A, "alpha@2.0.0": DIGEST_B, "alpha@10.0.0": DIGEST_A}
        write_lock(tmp_path, digests)
        lines = [line for line in lock_path(tmp_path).read_text().splitlines() if line.startswith('"')]
        assert lines == [f'"{key}": "{digests[key]}"' for key in sorted(digests)]
        assert dict(read_lock(tmp_path).digests) == digests

    def test_only_comments_is_an_empty_lock(self, tmp_path: Path) -> None:
        """A lock file with its header and no lines holds nothing."""
        lock_path(tmp_path).write_text(render_lock({}))
        assert dict(read_lock(tmp_path).digests) == {}

    @pytest.mark.parametrize(
        ("text", "complaint"),
        [
            ("- a\n- b\n", "mapping"),
            (f'"not a key": "{DIGEST_A}"\n', "name@MAJOR.MINOR.PATCH"),
            ('"x-policy@1.0.0": "abc"\n', "SHA-256"),
            ('"x-policy@1.0.0": [unclosed\n', "YAML"),
        ],
    )
    def test_malformed_file_is_a_policy_file_error(self, tmp_path: Path, text: str, complaint: str) -> None:
        """A lock file that is not a mapping of name@version to hex digest is refused, naming the file."""
        lock_path(tmp_path).write_text(text)
        with pytest.raises(PolicyFileError, match=complaint) as raised:
            read_lock(tmp_path)
        assert raised.value.path.endswith(LOCK_FILE)

    def test_repository_lock_matches_every_policy_file(self) -> None:
        """policies/policies.lock is up to date: every version locked, every digest current."""
        plan = plan_lock(POLICIES)
        assert (plan.added, plan.mismatched, plan.problems) == ([], [], [])


class TestPlan:
    """What `fairpath policy lock` decides to write."""

    def test_new_versions_are_added(self, tmp_path: Path) -> None:
        """Versions not yet locked are added with their file digest."""
        path = write_version(tmp_path, "1.0.0")
        plan = plan_lock(tmp_path)
        assert plan.added == [(f"{NAME}@1.0.0", load_file(path).digest)]
        assert plan.changed
        assert plan.ok

    def test_a_changed_file_is_never_relocked_silently(self, tmp_path: Path) -> None:
        """A locked version whose file changed is reported and its line kept."""
        write_version(tmp_path, "1.0.0")
        lock(tmp_path)
        locked = dict(read_lock(tmp_path).digests)
        path = write_version(tmp_path, "1.0.0", title="Edited")
        plan = plan_lock(tmp_path)
        assert plan.mismatched == [(f"{NAME}@1.0.0", locked[f"{NAME}@1.0.0"], load_file(path).digest)]
        assert plan.digests == locked
        assert not plan.ok

    def test_update_relocks_the_named_version_only(self, tmp_path: Path) -> None:
        """--update NAME@VERSION re-locks that version and leaves another changed one alone."""
        write_version(tmp_path, "1.0.0")
        write_version(tmp_path, "2.0.0", threshold=5)
        lock(tmp_path)
        old = dict(read_lock(tmp_path).digests)
        write_version(tmp_path, "1.0.0", title="Edited")
        write_version(tmp_path, "2.0.0", threshold=5, title="Edited too")
        plan = plan_lock(tmp_path, [f"{NAME}@1.0.0"])
        assert [key for key, _, _ in plan.updated] == [f"{NAME}@1.0.0"]
        assert [key for key, _, _ in plan.mismatched] == [f"{NAME}@2.0.0"]
        assert plan.updated[0][1] == old[f"{NAME}@1.0.0"]

    def test_lines_without_a_file_are_kept(self, tmp_path: Path) -> None:
        """A locked version whose file is gone keeps its line (deleting history is not lock's job)."""
        write_lock(tmp_path, {"gone-policy@1.0.0": DIGEST_A})
        plan = plan_lock(tmp_path)
        assert plan.missing == ["gone-policy@1.0.0"]
        assert plan.digests == {"gone-policy@1.0.0": DIGEST_A}

    def test_a_broken_file_is_reported_not_locked(self, tmp_path: Path) -> None:
        """A file that does not load cannot be locked; the problem names it."""
        broken = tmp_path / "broken" / "1.0.0.yaml"
        broken.parent.mkdir()
        broken.write_text("policy: [unclosed\n")
        plan = plan_lock(tmp_path)
        assert plan.added == []
        assert [problem.path for problem in plan.problems] == [str(broken)]

    def test_update_of_an_unknown_version_is_an_error(self, tmp_path: Path) -> None:
        """--update naming no policy file fails rather than doing nothing quietly."""
        write_version(tmp_path, "1.0.0")
        plan = plan_lock(tmp_path, ["other-policy@1.0.0"])
        assert not plan.ok
        assert "other-policy@1.0.0" in plan.problems[0].message


class TestCommand:
    """`fairpath policy lock [DIR]` end to end."""

    def test_lock_writes_then_reports_up_to_date(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The first run writes the new lines and exits 0; the second finds nothing to do."""
        write_version(tmp_path, "1.0.0")
        assert main(["policy", "lock", str(tmp_path)]) == 0
        first = capsys.readouterr().out
        assert f"locked     {NAME}@1.0.0" in first
        assert f"wrote {lock_path(tmp_path)}" in first
        assert main(["policy", "lock", str(tmp_path)]) == 0
        assert "is up to date" in capsys.readouterr().out

    def test_a_changed_file_exits_1_and_the_lock_is_untouched(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An edited locked version is reported as DIFFERS, exit 1, lock file byte for byte the same."""
        write_version(tmp_path, "1.0.0")
        lock(tmp_path)
        before = lock_path(tmp_path).read_bytes()
        write_version(tmp_path, "1.0.0", title="Edited")
        assert main(["policy", "lock", str(tmp_path)]) == 1
        assert f"DIFFERS    {NAME}@1.0.0" in capsys.readouterr().out
        assert lock_path(tmp_path).read_bytes() == before

    def test_update_prints_the_old_and_new_digest(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--update re-locks deliberately and prints what changed."""
        write_version(tmp_path, "1.0.0")
        lock(tmp_path)
        old = read_lock(tmp_path).digests[f"{NAME}@1.0.0"]
        new = load_file(write_version(tmp_path, "1.0.0", title="Edited")).digest
        assert main(["policy", "lock", str(tmp_path), "--update", f"{NAME}@1.0.0"]) == 0
        assert f"re-locked  {NAME}@1.0.0  sha256 {old[:12]} -> {new[:12]}" in capsys.readouterr().out
        assert read_lock(tmp_path).digests[f"{NAME}@1.0.0"] == new

    def test_check_says_what_it_would_lock_not_that_it_locked(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--check reports "would lock" and "1 would lock" (nothing was written), never "locked"."""
        write_version(tmp_path, "1.0.0")
        assert main(["policy", "lock", "--check", str(tmp_path)]) == 1
        out = capsys.readouterr().out
        assert out.startswith(f"would lock     {NAME}@1.0.0  sha256 ")
        assert "1 would lock, 0 would re-lock, 0 unchanged" in out
        assert "\nlocked" not in out
        assert not (tmp_path / "policies.lock").exists()

    def test_check_writes_nothing_and_fails_when_out_of_date(self, tmp_path: Path) -> None:
        """--check exits 1 when a version is not locked yet, and writes no lock file."""
        write_version(tmp_path, "1.0.0")
        assert main(["policy", "lock", "--check", str(tmp_path)]) == 1
        assert not lock_path(tmp_path).exists()

    def test_directory_defaults_to_the_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without DIR the command locks $FAIRPATH_POLICIES."""
        write_version(tmp_path, "1.0.0")
        monkeypatch.setenv("FAIRPATH_POLICIES", str(tmp_path))
        assert main(["policy", "lock"]) == 0
        assert f"{NAME}@1.0.0" in read_lock(tmp_path).digests
        capsys.readouterr()

    def test_a_missing_directory_is_a_usage_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A DIR that does not exist exits 2 with one line on stderr."""
        assert main(["policy", "lock", str(tmp_path / "nope")]) == 2
        assert capsys.readouterr().err.startswith("fairpath policy lock: error:")
