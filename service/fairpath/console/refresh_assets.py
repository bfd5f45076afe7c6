"""Refresh the vendored NHS.UK frontend in ``static/nhsuk/`` (maintainers only; needs npm).

Run ``python -m fairpath.console.refresh_assets [VERSION]`` from the repository
root, review the diff, update :data:`NHSUK_FRONTEND_VERSION` and commit. Users
never need npm: the console serves the committed copies, so it works on trust
networks that block CDNs.

What it takes from ``npm pack nhsuk-frontend@VERSION``: the compiled, minified
CSS and JS and the images the CSS points at. The CSS is rewritten on the way:
the ``@font-face`` rules go (they load Frutiger from assets.nhs.uk; Frutiger is
licensed to NHS England, not redistributable, so no font file is shipped and
the styles fall back to Arial and the system sans-serif), and ``/assets/``
URLs become relative to the stylesheet.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

#: The nhsuk-frontend release vendored in ``static/nhsuk/``.
NHSUK_FRONTEND_VERSION = "10.6.1"

_TARGET = Path(__file__).parent / "static" / "nhsuk"
_FONT_FACE = re.compile(r"@font-face\{[^}]*\}")
_ASSETS = re.compile(r"url\(/assets/")
_MIT = """MIT License

Copyright (c) 2019 NHS.UK

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def strip_css(css: str) -> str:
    """Drop the web-font rules and point asset URLs next to the stylesheet."""
    return _ASSETS.sub("url(assets/", _FONT_FACE.sub("", css))


def refresh(version: str) -> None:
    """Replace ``static/nhsuk/`` with the files of nhsuk-frontend ``version``."""
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(["npm", "pack", f"nhsuk-frontend@{version}"], cwd=scratch, check=True)
        with tarfile.open(next(Path(scratch).glob("nhsuk-frontend-*.tgz"))) as archive:
            archive.extractall(scratch, filter="data")
        dist = Path(scratch) / "package" / "dist" / "nhsuk"
        shutil.rmtree(_TARGET, ignore_errors=True)
        (_TARGET / "assets" / "images").mkdir(parents=True)
        css = (dist / "nhsuk-frontend.min.css").read_text(encoding="utf-8")
        (_TARGET / "nhsuk-frontend.min.css").write_text(strip_css(css), encoding="utf-8")
        shutil.copy(dist / "nhsuk-frontend.min.js", _TARGET / "nhsuk-frontend.min.js")
        for image in (dist / "assets" / "images").iterdir():
            shutil.copy(image, _TARGET / "assets" / "images" / image.name)
        (_TARGET / "VERSION").write_text(f"nhsuk-frontend {version} (npm), MIT licence\n", encoding="utf-8")
        # The npm package ships no licence file: this is the LICENSE of github.com/nhsuk/nhsuk-frontend.
        (_TARGET / "LICENCE").write_text(_MIT, encoding="utf-8")


if __name__ == "__main__":
    refresh(sys.argv[1] if len(sys.argv) > 1 else NHSUK_FRONTEND_VERSION)
