"""``fairpath checkpoint-key``: make the Ed25519 key pair that signs checkpoints of the decision trail.

::

    fairpath checkpoint-key generate FILE   # FILE: private key (mode 0600), FILE.pub: public key
    fairpath checkpoint-key public FILE     # print the public key of private key FILE

The private key goes to the service (``--checkpoint-key FILE``), never to the
database host; the public key goes to whoever verifies
(``fairpath decisions verify --checkpoint … --public-key FILE.pub``).
Exit codes: 0 done, 1 the file cannot be written or read as a key.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fairpath.audit.checkpoint import CheckpointSigner, public_pem
from fairpath.errors import CredentialsError

_EXIT_FAILED = 1


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``checkpoint-key`` and its subcommands on the top-level subcommands."""
    group = subparsers.add_parser(
        "checkpoint-key",
        help="make the key that signs checkpoints of the decision trail",
        description=__doc__.split("\n\n")[0].replace("``", ""),
    )
    group.set_defaults(func=lambda _: _usage(group))
    commands = group.add_subparsers(title="checkpoint-key commands", metavar="COMMAND")
    generate = commands.add_parser(
        "generate", help="write a new private key to FILE and its public key to FILE.pub"
    )
    generate.add_argument("file", metavar="FILE", help="where the private key goes (must not exist)")
    generate.set_defaults(func=_generate)
    public = commands.add_parser("public", help="print the public key of a private key file")
    public.add_argument("file", metavar="FILE", help="PEM Ed25519 private key")
    public.set_defaults(func=_public)


def _generate(args: argparse.Namespace) -> int:
    signer = CheckpointSigner.generate()
    private, public = Path(args.file), Path(f"{args.file}.pub")
    try:
        # O_EXCL: never overwrite a key, whose checkpoints could then no longer be verified; 0600 from
        # the first byte, so the key is never readable by others even for a moment.
        descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(signer.private_pem())
        public.write_bytes(public_pem(signer.public_key))
    except OSError as error:
        sys.stderr.write(f"error: cannot write {error.filename}: {error.strerror}\n")
        return _EXIT_FAILED
    sys.stdout.write(
        f"Wrote private key {private} (mode 0600) and public key {public}; key id {signer.key_id}.\n"
    )
    return 0


def _public(args: argparse.Namespace) -> int:
    try:
        signer = CheckpointSigner.load(args.file)
    except CredentialsError as error:
        sys.stderr.write(f"error: {error}\n")
        return _EXIT_FAILED
    sys.stdout.write(public_pem(signer.public_key).decode("ascii"))
    return 0


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2
