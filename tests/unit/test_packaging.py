"""The built distribution holds every package of the source tree.

``pyproject.toml`` lists the packages explicitly (two source roots), so a new subpackage that is
not listed would work in the editable checkout and be missing from the wheel and the image.
"""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT

ROOTS = {"fairpath": ROOT / "service" / "fairpath", "fairpath_client": ROOT / "clients" / "python" / "fairpath_client"}


def test_every_source_package_is_listed_for_the_wheel() -> None:
    """Each directory with an ``__init__.py`` under the two package roots is in [tool.setuptools] packages."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {
        ".".join((name, *init.parent.relative_to(root).parts))
        for name, root in ROOTS.items()
        for init in root.rglob("__init__.py")
        if "static" not in init.parts
    }
    assert sorted(found - listed) == []
    assert sorted(listed - found) == []
