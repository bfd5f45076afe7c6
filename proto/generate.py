"""Regenerate the Python code for ``proto/fairpath/v1`` into ``service/fairpath/v1``.

Run ``python proto/generate.py`` after editing a ``.proto`` file; ``--check``
regenerates into a temporary folder and exits non-zero if the committed files
differ (the drift check the test suite runs). Generated files are never edited
by hand.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_PACKAGE = ROOT / "service" / "fairpath" / "v1"
_INIT = '"""Generated from proto/fairpath/v1 by proto/generate.py. Do not edit."""\n'


def _plugin(name: str) -> str:
    """Find a protoc plugin installed beside this interpreter."""
    found = shutil.which(name) or shutil.which(name, path=sysconfig.get_path("scripts"))
    if not found:
        sys.exit(f"{name} not found: pip install mypy-protobuf")
    return found


def generate(out_root: Path) -> Path:
    """Generate into ``out_root/fairpath/v1`` and return that folder."""
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "fairpath" / "v1").glob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    package = out_root / "fairpath" / "v1"
    (package / "__init__.py").write_text(_INIT)
    (package / "py.typed").write_text("")
    return package


def main() -> int:
    """Regenerate, or with ``--check`` compare; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        names = sorted(p.name for p in fresh.iterdir())
        if options.check:
            committed = sorted(p.name for p in OUT_PACKAGE.iterdir() if p.name != "__pycache__")
            _, mismatch, errors = filecmp.cmpfiles(fresh, OUT_PACKAGE, names, shallow=False)
            if committed != names or mismatch or errors:
                print(f"generated code is stale: {mismatch + errors or committed}; run python proto/generate.py")
                return 1
            return 0
        if OUT_PACKAGE.exists():
            shutil.rmtree(OUT_PACKAGE)
        shutil.copytree(fresh, OUT_PACKAGE)
    print(f"generated {len(names)} files into {OUT_PACKAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
