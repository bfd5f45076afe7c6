"""Signed checkpoints of the hash chain: an anchor for the trail kept outside its database.

The chain (:mod:`fairpath.audit.chain`) shows that no record was edited, removed
or inserted *unless every later hash and the chain head were rewritten too*,
which anyone who can write the database can do: truncate the newest records and
move the head back, or rewrite an old record and recompute everything after it.
A checkpoint closes that gap the way Certificate Transparency logs publish signed
tree heads: the service signs the head it sees, ``(sequence, head hash, time)``,
with an Ed25519 key the database administrator does not hold, and the signed
line is kept somewhere else. Later, :func:`check_trail` proves the trail still
contains that record with that hash and that the chain from it to today's head
is intact, so the trail as it stood then is a prefix of the trail now.

One checkpoint is one line of JSON, so a file of them can be appended to and
shipped line by line::

    {"fairpath_checkpoint": 1, "sequence": 6, "head": "<64 hex>",
     "signed_at": "2026-12-06T21:04:05.123456Z", "key_id": "<16 hex>", "signature": "<base64>"}

The signature covers :meth:`Checkpoint.message`, a fixed text layout of every
field but the signature (so it does not depend on how JSON is spelled).
``key_id`` is the first 16 hex digits of the sha256 of the raw public key: it
names the key in messages, the signature is what proves it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fairpath.audit.chain import GENESIS
from fairpath.audit.records import ChainReport
from fairpath.audit.store import DecisionStore
from fairpath.errors import CredentialsError, FieldViolation, InvalidRequestError

#: Version of the checkpoint layout; a reader refuses any other.
FORMAT = 1
#: The most bad lines named one by one in a refusal (a file signed by another key would name every line).
MAX_VIOLATIONS = 20
_FIELDS = ("fairpath_checkpoint", "sequence", "head", "signed_at", "key_id", "signature")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class Checkpoint:
    """The chain head at one moment, signed.

    Attributes:
        sequence: The head's last sequence (0 for an empty trail).
        head: The hash of record ``sequence`` (:data:`~fairpath.audit.chain.GENESIS` when empty).
        signed_at: When it was signed (UTC, microseconds).
        key_id: Names the signing key (see the module docstring).
        signature: The Ed25519 signature of :meth:`message`.

    """

    sequence: int
    head: str
    signed_at: datetime
    key_id: str
    signature: bytes

    def message(self) -> bytes:
        """Return the bytes the signature covers."""
        return (
            f"fairpath checkpoint v{FORMAT}\nsequence {self.sequence}\nhead {self.head}\n"
            f"signed_at {_time(self.signed_at)}\nkey_id {self.key_id}\n"
        ).encode()

    def to_line(self) -> str:
        """Return the checkpoint as one line of JSON (no newline), as files and logs carry it."""
        return json.dumps({
            "fairpath_checkpoint": FORMAT, "sequence": self.sequence, "head": self.head,
            "signed_at": _time(self.signed_at), "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        })

    def describe(self) -> str:
        """Name the checkpoint in a sentence: which record, when, by which key."""
        return f"checkpoint of record {self.sequence} signed at {_time(self.signed_at)} by key {self.key_id}"


class CheckpointSigner:
    """Signs checkpoints with one Ed25519 private key."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        #: The public half, to hand to whoever verifies.
        self.public_key = key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def generate(cls) -> CheckpointSigner:
        """Return a signer with a new random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str) -> CheckpointSigner:
        """Read an unencrypted PEM (PKCS#8) Ed25519 private key.

        Raises:
            CredentialsError: The file cannot be read or holds no Ed25519 private key.

        """
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise CredentialsError(f"checkpoint key {path}: cannot be read ({error.strerror})") from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise CredentialsError(f"checkpoint key {path}: not an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise CredentialsError(f"checkpoint key {path}: not an Ed25519 key") from None
        return cls(key)

    def sign(self, sequence: int, head: str, signed_at: datetime | None = None) -> Checkpoint:
        """Return the signed checkpoint of head ``(sequence, head)`` at ``signed_at`` (default: now)."""
        # Rounded to the microsecond and made UTC so the signed text and the JSON say the same instant.
        moment = (signed_at or datetime.now(UTC)).astimezone(UTC)
        unsigned = Checkpoint(sequence, head, moment, self.key_id, b"")
        return Checkpoint(sequence, head, moment, self.key_id, self._key.sign(unsigned.message()))

    def checkpoint(self, store: DecisionStore) -> Checkpoint:
        """Sign the store's chain head as it is now."""
        sequence, head = store.chain_head()
        return self.sign(sequence, head)

    def private_pem(self) -> bytes:
        """Return the private key as unencrypted PKCS#8 PEM (keep it off the database host)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def key_id(public_key: Ed25519PublicKey) -> str:
    """Return the id of ``public_key``: 16 hex digits of the sha256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    """Return ``public_key`` as PEM (SubjectPublicKeyInfo), the form ``--public-key`` reads."""
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: str) -> Ed25519PublicKey:
    """Parse a PEM Ed25519 public key.

    Raises:
        ValueError: It is not one (the message says why).

    """
    try:
        key = serialization.load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("is not an Ed25519 public key")
    return key


def parse(line: str) -> Checkpoint:
    """Read one checkpoint line (signature not yet checked: see :func:`verify_signature`).

    Raises:
        ValueError: The line is not a checkpoint of this format (the message says what is wrong).

    """
    try:
        document = json.loads(line)
    except ValueError:
        raise ValueError("is not a checkpoint: not JSON") from None
    if not isinstance(document, dict) or set(document) != set(_FIELDS):
        raise ValueError(f"is not a checkpoint: expected a JSON object with exactly {', '.join(_FIELDS)}")
    if document["fairpath_checkpoint"] != FORMAT:
        raise ValueError(f"has checkpoint format {document['fairpath_checkpoint']!r}; this fairpath reads {FORMAT}")
    sequence = document["sequence"]
    if type(sequence) is not int or sequence < 0:
        raise ValueError("has a sequence that is not a whole number >= 0")
    for name, pattern in (("head", _HEX64), ("key_id", _HEX16)):
        if not isinstance(document[name], str) or not pattern.fullmatch(document[name]):
            raise ValueError(f"has a malformed {name}")
    try:
        signed_at = datetime.strptime(str(document["signed_at"]), _TIME_FORMAT).replace(tzinfo=UTC)
        signature = base64.b64decode(str(document["signature"]), validate=True)
    except (ValueError, binascii.Error):
        raise ValueError("has a malformed signed_at or signature") from None
    return Checkpoint(sequence, document["head"], signed_at, document["key_id"], signature)


def verify_signature(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> None:
    """Check that ``public_key`` signed ``checkpoint``.

    Raises:
        ValueError: It did not: another key signed it, or a field was changed after signing.

    """
    expected = key_id(public_key)
    if checkpoint.key_id != expected:
        raise ValueError(f"was signed by key {checkpoint.key_id}, not by the public key given ({expected})")
    try:
        public_key.verify(checkpoint.signature, checkpoint.message())
    except InvalidSignature:
        raise ValueError("has a signature that does not verify: it was altered after signing") from None


def read_signed(lines: Sequence[str], public_key_pem: str, fallback: Ed25519PublicKey | None) -> list[Checkpoint]:
    """Parse ``lines`` and check each one's signature, for a verification request.

    How many lines one request may carry, and how long each may be, is bounded before this
    runs (:mod:`fairpath.api.field_limits`).

    Args:
        lines: Checkpoint lines, as a request carries them.
        public_key_pem: The verifier's copy of the public key; "" to use ``fallback``.
        fallback: The public half of the server's own checkpoint key, if it has one.

    Raises:
        InvalidRequestError: No usable public key, or a line that is malformed or not signed by
            that key; one field violation per bad line (the first :data:`MAX_VIOLATIONS`).

    """
    if not lines:
        return []
    if public_key_pem:
        try:
            public_key = load_public_key(public_key_pem)
        except ValueError as error:
            raise InvalidRequestError([FieldViolation("public_key", str(error))]) from None
    elif fallback is not None:
        public_key = fallback
    else:
        raise InvalidRequestError(
            [FieldViolation("public_key", "is required: this server has no checkpoint key of its own")]
        )
    checkpoints, violations = [], []
    for index, line in enumerate(lines):
        try:
            checkpoint = parse(line)
            verify_signature(checkpoint, public_key)
        except ValueError as error:
            violations.append(FieldViolation(f"checkpoints[{index}]", str(error)))
        else:
            checkpoints.append(checkpoint)
    if len(violations) > MAX_VIOLATIONS:
        more = len(violations) - MAX_VIOLATIONS
        violations = [*violations[:MAX_VIOLATIONS], FieldViolation("checkpoints", f"{more} more are refused too")]
    if violations:
        raise InvalidRequestError(violations)
    return checkpoints


def check_trail(store: DecisionStore, checkpoints: Sequence[Checkpoint]) -> ChainReport:
    """Walk the chain, then prove the trail still contains every checkpoint's record with its hash.

    With the chain intact, a record at a checkpoint's sequence with the checkpoint's hash
    means every record up to it is what the checkpoint's signer saw, and the head now is
    at or beyond it. A trail that ends before a checkpoint lost its tail; a record whose
    hash differs was rewritten, with the chain recomputed after it.
    """
    report = store.verify_chain()
    if not report.intact or not checkpoints:
        return report
    # records_checked is the head's sequence: an intact walk checks every record up to it.
    last = report.records_checked
    found = store.chain_hashes(sorted({c.sequence for c in checkpoints if 0 < c.sequence <= last}))
    for checkpoint in sorted(checkpoints, key=lambda c: (c.sequence, c.signed_at)):
        problem = contradiction(checkpoint, last, found)
        if problem:
            return ChainReport(False, report.records_checked, checkpoint.sequence, problem)
    return report


def contradiction(checkpoint: Checkpoint, last: int, found: dict[int, str]) -> str:
    """Say how a trail contradicts ``checkpoint``, or return "" when it agrees.

    Args:
        checkpoint: A checkpoint whose signature was checked.
        last: The trail's head sequence now.
        found: The trail's hash at ``checkpoint.sequence``, if it has that record
            (:meth:`~fairpath.audit.store.DecisionStore.chain_hashes`).

    """
    if checkpoint.sequence > last:
        return (
            f"the trail ends at record {last} but the {checkpoint.describe()} covers records up to "
            f"{checkpoint.sequence}: records were removed after it was signed"
        )
    recorded = found.get(checkpoint.sequence, GENESIS)
    if recorded != checkpoint.head:
        return (
            f"record {checkpoint.sequence} does not have the hash in the {checkpoint.describe()}: "
            "the trail up to it was rewritten after the checkpoint was signed"
        )
    return ""


def append_line(path: str, checkpoint: Checkpoint) -> None:
    """Append ``checkpoint`` to the file ``path`` as one line, on disk before this returns.

    Raises:
        OSError: The file cannot be written.

    """
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(checkpoint.to_line() + "\n")
        out.flush()
        os.fsync(out.fileno())


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)
