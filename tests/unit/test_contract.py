"""The gRPC contract is guarded by buf.

``buf lint`` (STANDARD rules, exceptions in proto/buf.yaml) is clean, and ``buf breaking`` finds no
change from the contract as last released (proto/released/fairpath-v1.binpb), under the FILE rules
that protect the wire format, the JSON names and existing clients' generated code.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

BUF = Path(sys.executable).parent / "buf"
PROTO = ROOT / "proto"
RELEASED = PROTO / "released" / "fairpath-v1.binpb"


def _buf(*args: str, cwd: Path = PROTO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUF), *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


def _copy_of_proto(tmp_path: Path) -> Path:
    """A scratch copy of the module (buf.yaml and the .proto files) to change without touching the tree."""
    copy = tmp_path / "proto"
    shutil.copytree(PROTO / "fairpath", copy / "fairpath")
    shutil.copy(PROTO / "buf.yaml", copy / "buf.yaml")
    return copy


def test_buf_lint_is_clean() -> None:
    """Every .proto file passes buf's STANDARD lint rules, with only the exceptions buf.yaml explains."""
    result = _buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_breaking_change_since_the_released_contract() -> None:
    """Today's contract is wire-, JSON- and source-compatible with the released one."""
    result = _buf("breaking", "--against", str(RELEASED))
    assert result.returncode == 0, result.stdout + result.stderr


def test_breaking_check_catches_a_renumbered_field(tmp_path: Path) -> None:
    """The check can fail: moving a field to another number (a silent wire break) is reported."""
    copy = _copy_of_proto(tmp_path)
    decision = copy / "fairpath" / "v1" / "decision.proto"
    text = decision.read_text(encoding="utf-8")
    changed = text.replace("string digest = 3;", "string digest = 30;", 1)
    assert changed != text, "decision.proto no longer declares `string digest = 3;`: update this test"
    decision.write_text(changed, encoding="utf-8")
    result = _buf("breaking", "--against", str(RELEASED), cwd=copy)
    assert result.returncode != 0
    assert "digest" in result.stdout


def test_lint_still_applies_to_new_enums_elsewhere(tmp_path: Path) -> None:
    """The enum-prefix exception covers v1's published names only.

    A new unprefixed enum value in a service file is reported.
    """
    copy = _copy_of_proto(tmp_path)
    target = copy / "fairpath" / "v1" / "policy_service.proto"
    with target.open("a", encoding="utf-8") as file:
        file.write("\nenum Colour {\n  COLOUR_UNSPECIFIED = 0;\n  RED = 1;\n}\n")
    result = _buf("lint", cwd=copy)
    assert result.returncode != 0
    assert 'Enum value name "RED" should be prefixed with "COLOUR_"' in result.stdout
