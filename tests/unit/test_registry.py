"""The policy registry: which versions are loaded, and the explicit "current version" rule."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from fairpath.errors import PolicyFileError, PolicyNotFoundError
from fairpath.policy.registry import PolicyRegistry, policy_files, semver_key

from tests.conftest import GUIDE, POLICIES
from tests.support.policy_builder import minimal_policy, write_policy

TODAY = date(2024, 6, 15)
NAME = "mini-policy"


def put(root: Path, version: str, status: str = "active", effective_from: str | None = "2020-01-01",
        name: str = NAME) -> Path:
    """Write a minimal policy version to ``root/<name>/<version>.yaml``."""
    document = minimal_policy(name=name, version=version, status=status)
    if effective_from is None:
        document.pop("effective_from")
    else:
        document["effective_from"] = effective_from
    return write_policy(root / name / f"{version}.yaml", document)


def current(root: Path, today: date = TODAY) -> str:
    """Return the version an unpinned request gets."""
    return PolicyRegistry.from_directory(root, today=today).get(NAME).version


class TestCurrentVersion:
    """Current = highest semver among active versions whose effective_from is not in the future."""

    def test_highest_semver_not_file_order(self, tmp_path: Path) -> None:
        """1.10.0 beats 1.9.0 (numeric, not text, comparison), whatever the file order."""
        for version in ("1.9.0", "1.10.0", "1.2.0"):
            put(tmp_path, version)
        assert current(tmp_path) == "1.10.0"

    def test_major_beats_minor_and_patch(self, tmp_path: Path) -> None:
        """2.0.0 beats 1.99.99."""
        put(tmp_path, "1.99.99")
        put(tmp_path, "2.0.0")
        assert current(tmp_path) == "2.0.0"

    def test_future_version_is_not_current_yet(self, tmp_path: Path) -> None:
        """A higher version effective tomorrow leaves today's current in place."""
        put(tmp_path, "1.0.0")
        put(tmp_path, "2.0.0", effective_from="2024-06-16")
        assert current(tmp_path) == "1.0.0"
        assert current(tmp_path, today=date(2024, 6, 16)) == "2.0.0"

    def test_effective_today_is_current(self, tmp_path: Path) -> None:
        """effective_from equal to today counts as in effect."""
        put(tmp_path, "1.0.0")
        put(tmp_path, "1.1.0", effective_from=TODAY.isoformat())
        assert current(tmp_path) == "1.1.0"

    def test_no_effective_from_is_always_in_effect(self, tmp_path: Path) -> None:
        """A version without effective_from is in effect from the start."""
        put(tmp_path, "1.0.0")
        put(tmp_path, "1.1.0", effective_from=None)
        assert current(tmp_path, today=date(1990, 1, 1)) == "1.1.0"

    @pytest.mark.parametrize("status", ["draft", "retired"])
    def test_draft_and_retired_are_never_current(self, tmp_path: Path, status: str) -> None:
        """A higher draft or retired version does not become current."""
        put(tmp_path, "1.0.0")
        put(tmp_path, "3.0.0", status=status)
        assert current(tmp_path) == "1.0.0"

    @pytest.mark.parametrize("status", ["draft", "retired"])
    def test_draft_and_retired_can_be_pinned(self, tmp_path: Path, status: str) -> None:
        """A request pinning a draft or retired version gets it."""
        put(tmp_path, "1.0.0")
        put(tmp_path, "3.0.0", status=status)
        registry = PolicyRegistry.from_directory(tmp_path, today=TODAY)
        pinned = registry.get(NAME, "3.0.0")
        assert (pinned.version, pinned.status) == ("3.0.0", status)
        assert not registry.is_current(pinned)

    def test_future_version_can_be_pinned(self, tmp_path: Path) -> None:
        """A version not yet in effect is evaluable when pinned."""
        put(tmp_path, "1.0.0")
        put(tmp_path, "2.0.0", effective_from="2030-01-01")
        assert PolicyRegistry.from_directory(tmp_path, today=TODAY).get(NAME, "2.0.0").version == "2.0.0"

    def test_no_current_version(self, tmp_path: Path) -> None:
        """With only drafts, an unpinned request is NOT_FOUND and says to pin a version."""
        put(tmp_path, "1.0.0", status="draft")
        registry = PolicyRegistry.from_directory(tmp_path, today=TODAY)
        with pytest.raises(PolicyNotFoundError) as caught:
            registry.get(NAME)
        assert caught.value.name == NAME
        assert caught.value.version == "(no current version: pin one)"
        assert registry.get(NAME, "1.0.0").status == "draft"

    def test_is_current(self, tmp_path: Path) -> None:
        """is_current is true for exactly the version an unpinned request gets."""
        put(tmp_path, "1.0.0")
        put(tmp_path, "1.1.0")
        registry = PolicyRegistry.from_directory(tmp_path, today=TODAY)
        assert registry.is_current(registry.get(NAME))
        assert registry.get(NAME) is registry.get(NAME, "1.1.0")
        assert not registry.is_current(registry.get(NAME, "1.0.0"))

    def test_each_name_has_its_own_current(self, tmp_path: Path) -> None:
        """Current versions are chosen per policy name."""
        put(tmp_path, "1.0.0")
        put(tmp_path, "4.0.0", name="other-policy")
        put(tmp_path, "5.0.0", name="other-policy", status="draft")
        registry = PolicyRegistry.from_directory(tmp_path, today=TODAY)
        assert registry.get(NAME).version == "1.0.0"
        assert registry.get("other-policy").version == "4.0.0"

    def test_default_today_is_the_real_date(self, tmp_path: Path) -> None:
        """Without ``today``, a version effective in the far future is not current."""
        put(tmp_path, "1.0.0")
        put(tmp_path, "2.0.0", effective_from="9999-12-31")
        assert PolicyRegistry.from_directory(tmp_path).get(NAME).version == "1.0.0"


class TestLookup:
    """Unknown names and versions are PolicyNotFoundError."""

    @pytest.fixture
    def registry(self, tmp_path: Path) -> PolicyRegistry:
        """One policy with one version, 1.0.0."""
        put(tmp_path, "1.0.0")
        return PolicyRegistry.from_directory(tmp_path, today=TODAY)

    def test_unknown_name(self, registry: PolicyRegistry) -> None:
        """An unknown policy name is not found, with or without a version."""
        with pytest.raises(PolicyNotFoundError, match="policy 'nope' is not loaded"):
            registry.get("nope")
        with pytest.raises(PolicyNotFoundError, match=r"policy 'nope@1\.0\.0' is not loaded"):
            registry.get("nope", "1.0.0")

    def test_misspelt_name_suggests_the_loaded_one(self, registry: PolicyRegistry) -> None:
        """A name close to a loaded policy's says which one was probably meant; an unlike one does not."""
        with pytest.raises(PolicyNotFoundError) as caught:
            registry.get("mini-polcy")
        assert str(caught.value) == "policy 'mini-polcy' is not loaded; did you mean `mini-policy`?"

    def test_unknown_version(self, registry: PolicyRegistry) -> None:
        """An unknown version of a known policy is not found, naming both."""
        with pytest.raises(PolicyNotFoundError) as caught:
            registry.get(NAME, "1.0.1")
        assert (caught.value.name, caught.value.version) == (NAME, "1.0.1")
        assert str(caught.value) == "policy 'mini-policy@1.0.1' is not loaded"

    def test_version_is_matched_exactly(self, registry: PolicyRegistry) -> None:
        """``1.0`` or ``v1.0.0`` does not match 1.0.0."""
        for version in ("1.0", "v1.0.0", "1.0.0 "):
            with pytest.raises(PolicyNotFoundError):
                registry.get(NAME, version)

    def test_all_sorted_by_name_then_semver(self, tmp_path: Path) -> None:
        """all() lists every version, by name then numeric semver."""
        for version in ("1.10.0", "1.2.0", "1.9.0"):
            put(tmp_path, version, name="zed-policy")
        put(tmp_path, "2.0.0", status="draft", name="alpha-policy")
        registry = PolicyRegistry.from_directory(tmp_path, today=TODAY)
        assert [p.key for p in registry.all()] == [
            "alpha-policy@2.0.0", "zed-policy@1.2.0", "zed-policy@1.9.0", "zed-policy@1.10.0",
        ]


class TestFiles:
    """Which files are read, and what stops the registry from loading."""

    def test_tests_files_are_ignored(self, tmp_path: Path) -> None:
        """``<version>.tests.yaml`` scenario files beside a policy are not loaded as policies."""
        put(tmp_path, "1.0.0")
        (tmp_path / NAME / "1.0.0.tests.yaml").write_text("policy: mini-policy\nversion: 1.0.0\ncases: []\n")
        assert policy_files(tmp_path) == [tmp_path / NAME / "1.0.0.yaml"]
        registry = PolicyRegistry.from_directory(tmp_path, today=TODAY)
        assert [p.key for p in registry.all()] == ["mini-policy@1.0.0"]

    def test_non_yaml_files_are_ignored(self, tmp_path: Path) -> None:
        """Only ``*.yaml`` files are policies (READMEs and ``.yml`` are not read)."""
        put(tmp_path, "1.0.0")
        (tmp_path / NAME / "README.md").write_text("# notes\n")
        (tmp_path / NAME / "2.0.0.yml").write_text("not: [valid\n")
        assert len(PolicyRegistry.from_directory(tmp_path, today=TODAY).all()) == 1

    def test_duplicate_version(self, tmp_path: Path) -> None:
        """Two files defining the same name and version are refused, naming both files."""
        first = put(tmp_path, "1.0.0")
        second = write_policy(tmp_path / "copies" / "again.yaml", minimal_policy(version="1.0.0"))
        with pytest.raises(PolicyFileError) as caught:
            PolicyRegistry.from_directory(tmp_path, today=TODAY)
        error = caught.value
        loaded_first, loaded_second = sorted([first, second])
        assert error.path == str(loaded_second)
        assert error.message == f"mini-policy@1.0.0 is also defined in {loaded_first}"

    def test_missing_directory(self, tmp_path: Path) -> None:
        """A policy directory that does not exist is a PolicyFileError naming it."""
        missing = tmp_path / "nowhere"
        with pytest.raises(PolicyFileError) as caught:
            PolicyRegistry.from_directory(missing)
        assert (caught.value.message, caught.value.path) == ("policy directory does not exist", str(missing))

    def test_file_instead_of_directory(self, tmp_path: Path) -> None:
        """A path to a file is not a policy directory."""
        path = put(tmp_path, "1.0.0")
        with pytest.raises(PolicyFileError, match="policy directory does not exist"):
            PolicyRegistry.from_directory(path)

    def test_empty_directory(self, tmp_path: Path) -> None:
        """An empty directory gives an empty registry."""
        registry = PolicyRegistry.from_directory(tmp_path)
        assert registry.all() == []
        with pytest.raises(PolicyNotFoundError):
            registry.get(NAME)

    def test_broken_file_stops_loading(self, tmp_path: Path) -> None:
        """A broken policy file raises its own PolicyFileError, naming that file."""
        put(tmp_path, "1.0.0")
        bad = tmp_path / NAME / "1.1.0.yaml"
        bad.write_text("policy: mini-policy\n")
        with pytest.raises(PolicyFileError) as caught:
            PolicyRegistry.from_directory(tmp_path, today=TODAY)
        assert (caught.value.path, caught.value.message) == (str(bad), "missing 'version'")

    def test_real_policies_directory(self) -> None:
        """The repository's policies/ directory loads and has a current guide version."""
        registry = PolicyRegistry.from_directory(POLICIES)
        guide = registry.get(GUIDE)
        assert registry.is_current(guide)
        assert guide.status == "active"


class TestSemverKey:
    """semver_key orders versions numerically."""

    def test_numeric_order(self) -> None:
        """Components compare as integers, left to right."""
        versions = ["1.10.0", "1.2.10", "0.9.9", "1.2.9", "10.0.0"]
        assert sorted(versions, key=semver_key) == ["0.9.9", "1.2.9", "1.2.10", "1.10.0", "10.0.0"]
