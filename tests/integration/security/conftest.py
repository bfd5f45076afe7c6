"""Certificates, tokens and an auth config shared by the TLS and role tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fairpath.api.auth import hash_token

from tests.support.certs import Pki, make_pki

# Client certificate subjects; "unlisted" is signed by the right CA but holds no role.
SUBJECTS = {"hr-system": ["evaluator"], "policy-desk": ["author"], "audit-portal": ["auditor"]}
# Token name -> (token, roles). The auth config stores only each token's SHA-256.
TOKENS = {
    "case-system": ("t0k-evaluator-3f9a", ["evaluator"]),
    "policy-team": ("t0k-author-81cc", ["author"]),
    "review-board": ("t0k-auditor-77d0", ["auditor"]),
}


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Create a CA, a localhost server certificate, and client certificates for SUBJECTS and 'unlisted'."""
    return make_pki(tmp_path_factory.mktemp("pki"), (*SUBJECTS, "unlisted"))


@pytest.fixture(scope="session")
def auth_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write the auth config file giving SUBJECTS and TOKENS their roles."""
    path = tmp_path_factory.mktemp("auth") / "auth.yaml"
    document = {
        "subjects": SUBJECTS,
        "tokens": {name: {"sha256": hash_token(t), "roles": roles} for name, (t, roles) in TOKENS.items()},
    }
    path.write_text(yaml.safe_dump(document))
    return path
