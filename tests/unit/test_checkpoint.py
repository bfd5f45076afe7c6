"""Signed checkpoints (fairpath.audit.checkpoint): the line format, signing, and every way a line is refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fairpath.audit import checkpoint
from fairpath.audit.checkpoint import CheckpointSigner
from fairpath.errors import CredentialsError, InvalidRequestError

HEAD = "ab" * 32
MOMENT = datetime(2026, 12, 6, 21, 4, 5, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def signer() -> CheckpointSigner:
    return CheckpointSigner.generate()


def _pem(signer: CheckpointSigner) -> str:
    return checkpoint.public_pem(signer.public_key).decode("ascii")


def _edited(line: str, **changes: object) -> str:
    document = json.loads(line)
    document.update(changes)
    return json.dumps(document)


def test_a_signed_line_reads_back_and_verifies(signer: CheckpointSigner) -> None:
    """A signed line parses back to the same checkpoint, and its signature verifies with the public key."""
    signed = signer.sign(7, HEAD, MOMENT)

    parsed = checkpoint.parse(signed.to_line())

    assert parsed == signed
    assert (parsed.sequence, parsed.head, parsed.signed_at, parsed.key_id) == (7, HEAD, MOMENT, signer.key_id)
    checkpoint.verify_signature(parsed, signer.public_key)
    assert json.loads(signed.to_line())["signed_at"] == "2026-12-06T21:04:05.123456Z"


@pytest.mark.parametrize(
    ("field", "value"),
    [("sequence", 8), ("head", "cd" * 32), ("signed_at", "2026-12-06T21:04:06.123456Z")],
)
def test_a_field_changed_after_signing_fails_verification(
    signer: CheckpointSigner, field: str, value: object
) -> None:
    """Every signed field is covered: moving the sequence, head or time breaks the signature."""
    forged = checkpoint.parse(_edited(signer.sign(7, HEAD, MOMENT).to_line(), **{field: value}))

    with pytest.raises(ValueError, match="does not verify"):
        checkpoint.verify_signature(forged, signer.public_key)


def test_a_tampered_signature_fails_verification(signer: CheckpointSigner) -> None:
    """One flipped bit in the signature is refused."""
    signed = signer.sign(7, HEAD, MOMENT)
    flipped = bytes([signed.signature[0] ^ 1]) + signed.signature[1:]
    line = _edited(signed.to_line(), signature=base64.b64encode(flipped).decode())

    with pytest.raises(ValueError, match="does not verify"):
        checkpoint.verify_signature(checkpoint.parse(line), signer.public_key)


def test_another_key_is_named_and_refused(signer: CheckpointSigner) -> None:
    """A checkpoint from another key names both key ids; relabelling it with ours still fails the signature."""
    other = CheckpointSigner.generate()
    theirs = other.sign(7, HEAD, MOMENT)

    with pytest.raises(ValueError, match=f"signed by key {other.key_id}, not by the public key given"):
        checkpoint.verify_signature(theirs, signer.public_key)
    relabelled = checkpoint.parse(_edited(theirs.to_line(), key_id=signer.key_id))
    with pytest.raises(ValueError, match="does not verify"):
        checkpoint.verify_signature(relabelled, signer.public_key)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "exactly fairpath_checkpoint"),
        ('{"sequence": 1}', "exactly fairpath_checkpoint"),
        ("EXTRA", "exactly fairpath_checkpoint"),
        ("FORMAT", "format 2; this fairpath reads 1"),
        ("NEGATIVE", "sequence that is not a whole number"),
        ("BOOLEAN", "sequence that is not a whole number"),
        ("SHORT_HEAD", "malformed head"),
        ("UPPER_KEY", "malformed key_id"),
        ("BAD_TIME", "malformed signed_at or signature"),
        ("BAD_BASE64", "malformed signed_at or signature"),
    ],
)
def test_malformed_lines_are_refused_with_a_reason(signer: CheckpointSigner, line: str, message: str) -> None:
    """Anything but a well-formed version-1 line is refused before any signature is checked."""
    good = signer.sign(7, HEAD, MOMENT).to_line()
    variants = {
        "EXTRA": _edited(good, comment="x"),
        "FORMAT": _edited(good, fairpath_checkpoint=2),
        "NEGATIVE": _edited(good, sequence=-1),
        "BOOLEAN": _edited(good, sequence=True),
        "SHORT_HEAD": _edited(good, head="ab"),
        "UPPER_KEY": _edited(good, key_id=signer.key_id.upper()),
        "BAD_TIME": _edited(good, signed_at="yesterday"),
        "BAD_BASE64": _edited(good, signature="***"),
    }

    with pytest.raises(ValueError, match=message):
        checkpoint.parse(variants.get(line, line))


def test_read_signed_names_each_bad_line_and_uses_the_given_key(signer: CheckpointSigner) -> None:
    """A verification request's lines are refused as checkpoints[i]; good lines come back parsed."""
    good = signer.sign(3, HEAD, MOMENT)
    forged = _edited(good.to_line(), sequence=4)

    assert checkpoint.read_signed([good.to_line()], _pem(signer), None) == [good]
    with pytest.raises(InvalidRequestError) as refused:
        checkpoint.read_signed([good.to_line(), forged, "{}"], _pem(signer), None)

    assert [v.field for v in refused.value.violations] == ["checkpoints[1]", "checkpoints[2]"]


def test_read_signed_falls_back_to_the_servers_key_only_when_it_has_one(signer: CheckpointSigner) -> None:
    """Without a public key in the request the server's own is used; with neither, public_key is required."""
    line = signer.sign(3, HEAD, MOMENT).to_line()

    assert checkpoint.read_signed([line], "", signer.public_key)[0].sequence == 3
    with pytest.raises(InvalidRequestError) as refused:
        checkpoint.read_signed([line], "", None)
    assert refused.value.violations[0].field == "public_key"
    assert "no checkpoint key of its own" in refused.value.violations[0].description


def test_read_signed_refuses_a_public_key_that_is_not_ed25519(signer: CheckpointSigner) -> None:
    """Garbage or another algorithm's PEM key is a bad public_key, not a crash."""
    ec_pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    line = signer.sign(3, HEAD, MOMENT).to_line()

    for pem, message in (("garbage", "is not a PEM public key"), (ec_pem, "is not an Ed25519 public key")):
        with pytest.raises(InvalidRequestError) as refused:
            checkpoint.read_signed([line], pem, None)
        assert (refused.value.violations[0].field, refused.value.violations[0].description) == ("public_key", message)


def test_read_signed_bounds_the_refusal(signer: CheckpointSigner) -> None:
    """A file of bad lines (e.g. all signed by another key) names the first few and counts the rest."""
    with pytest.raises(InvalidRequestError) as refused:
        checkpoint.read_signed(["x"] * 25, _pem(signer), None)

    violations = refused.value.violations
    assert len(violations) == checkpoint.MAX_VIOLATIONS + 1
    assert (violations[-1].field, violations[-1].description) == ("checkpoints", "5 more are refused too")


def test_keys_load_from_pem_and_unusable_files_are_credentials_errors(
    signer: CheckpointSigner, tmp_path: Path
) -> None:
    """The PEM a signer writes loads back as the same key; a missing, garbled or non-Ed25519 file is refused."""
    key = tmp_path / "key.pem"
    key.write_bytes(signer.private_pem())
    garbled = tmp_path / "garbled.pem"
    garbled.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    other = tmp_path / "ec.pem"
    other.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))

    assert CheckpointSigner.load(str(key)).key_id == signer.key_id
    for path, message in (
        (tmp_path / "missing.pem", "cannot be read"),
        (garbled, "not an unencrypted PEM private key"),
        (other, "not an Ed25519 key"),
    ):
        with pytest.raises(CredentialsError, match=message):
            CheckpointSigner.load(str(path))


def test_append_line_adds_one_line_per_checkpoint(signer: CheckpointSigner, tmp_path: Path) -> None:
    """The periodic file grows by one parseable line per checkpoint, earlier lines untouched."""
    path = tmp_path / "checkpoints.jsonl"
    first, second = signer.sign(1, HEAD, MOMENT), signer.sign(2, "cd" * 32, MOMENT)

    checkpoint.append_line(str(path), first)
    checkpoint.append_line(str(path), second)

    assert [checkpoint.parse(line) for line in path.read_text().splitlines()] == [first, second]
