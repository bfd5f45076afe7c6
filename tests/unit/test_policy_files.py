"""Finding policy files in a Kubernetes ConfigMap volume, where kubelet stores each file twice."""

from __future__ import annotations

import shutil
from pathlib import Path

from fairpath.policy.registry import PolicyRegistry, policy_files

from tests.conftest import POLICIES

POLICY = POLICIES / "reason-culpability" / "1.0.0.yaml"
# What kubelet names the real directory; ..data links to it and the visible names link through ..data.
SNAPSHOT = "..2026_01_31_12_00_00.123456789"


def _configmap_flat(root: Path) -> Path:
    """Lay out a ConfigMap volume without items: flat keys, each a symlink through ..data."""
    (root / SNAPSHOT).mkdir(parents=True)
    shutil.copy(POLICY, root / SNAPSHOT / "reason-culpability-1.0.0.yaml")
    (root / "..data").symlink_to(SNAPSHOT)
    (root / "reason-culpability-1.0.0.yaml").symlink_to("..data/reason-culpability-1.0.0.yaml")
    return root


def _configmap_items(root: Path) -> Path:
    """Lay out a ConfigMap volume whose items map keys to <name>/<version>.yaml: directory symlinks."""
    (root / SNAPSHOT / "reason-culpability").mkdir(parents=True)
    shutil.copy(POLICY, root / SNAPSHOT / "reason-culpability" / "1.0.0.yaml")
    (root / "..data").symlink_to(SNAPSHOT)
    (root / "reason-culpability").symlink_to("..data/reason-culpability")
    return root


def test_flat_configmap_files_are_found_once(tmp_path: Path) -> None:
    """Each policy in a flat ConfigMap volume is found once, through its visible name."""
    root = _configmap_flat(tmp_path / "policies")
    assert policy_files(root) == [root / "reason-culpability-1.0.0.yaml"]
    loaded = PolicyRegistry.from_directory(root).all()
    assert [policy.key for policy in loaded] == ["reason-culpability@1.0.0"]


def test_configmap_items_are_found_through_directory_symlinks(tmp_path: Path) -> None:
    """With items paths, the linked <name>/ directory is followed and the hidden copy skipped."""
    root = _configmap_items(tmp_path / "policies")
    assert policy_files(root) == [root / "reason-culpability" / "1.0.0.yaml"]


def test_hidden_files_and_symlink_loops_are_ignored(tmp_path: Path) -> None:
    """Hidden files (editor swap files, dot-directories) are skipped and a symlink loop ends the walk."""
    root = tmp_path / "policies"
    (root / "reason-culpability").mkdir(parents=True)
    shutil.copy(POLICY, root / "reason-culpability" / "1.0.0.yaml")
    (root / "reason-culpability" / ".1.0.0.yaml").write_text("half-saved")
    (root / ".git").mkdir()
    (root / ".git" / "x.yaml").write_text("not a policy")
    (root / "reason-culpability" / "loop").symlink_to("..")
    assert policy_files(root) == [root / "reason-culpability" / "1.0.0.yaml"]


def test_the_repository_layout_is_unchanged() -> None:
    """The plain policies/ tree still yields every <name>/<version>.yaml, no tests and no accepted-findings files."""
    files = policy_files(POLICIES)
    assert POLICY in files
    assert all(not path.name.endswith((".tests.yaml", ".accepted.yaml")) for path in files)
    assert any(POLICIES.rglob("*.accepted.yaml"))
    skipped = (".tests.yaml", ".accepted.yaml")
    assert files == sorted(
        p for p in POLICIES.rglob("*.yaml") if not p.name.endswith(skipped) and p.name != "advice-codes.yaml"
    )
