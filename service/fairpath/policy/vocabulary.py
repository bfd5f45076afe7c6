"""The advice codes the systems that read decisions know: domain data kept beside the policies.

``policies/advice-codes.yaml`` lists them (docs/domain.md §10). It is not a policy: the policy scan
skips it by name, and no decision depends on it. The author tools read it to warn about an advice
code outside it (new vocabulary for every system that reads decisions).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from fairpath.errors import PolicyFileError

#: The file's name, in the policy directory (beside the policies' own directories).
ADVICE_CODES_FILE = "advice-codes.yaml"
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


def advice_codes_file(policy_path: str | Path) -> Path | None:
    """The advice-codes file that applies to a policy file, if there is one.

    A policy file lies in ``<policy directory>/<name>/<version>.yaml``, or directly in a
    directory of drafts: the file is looked for beside its directory, then beside it.
    """
    path = Path(policy_path).resolve()
    for directory in (path.parent.parent, path.parent):
        candidate = directory / ADVICE_CODES_FILE
        if candidate.is_file():
            return candidate
    return None


def load_advice_codes(path: str | Path) -> frozenset[str]:
    """The codes listed in an advice-codes file.

    Raises:
        PolicyFileError: The file cannot be read, is not YAML, or is not a mapping with a list
            ``advice_codes`` of upper-case codes.

    """
    try:
        document = yaml.safe_load(Path(path).read_bytes())
    except OSError as error:
        raise PolicyFileError(f"cannot read: {error.strerror}", path=str(path)) from None
    except yaml.YAMLError as error:
        raise PolicyFileError(f"not valid YAML: {error}", path=str(path)) from None
    codes = document.get("advice_codes") if isinstance(document, dict) else None
    if not isinstance(codes, list) or not all(isinstance(code, str) and _CODE.match(code) for code in codes):
        raise PolicyFileError("expected 'advice_codes': a list of upper-case codes such as PROVISIONAL", path=str(path))
    return frozenset(codes)
