"""The command line's credential options: ``--tls``, ``--ca``, ``--cert``, ``--key`` and ``--token``.

Each falls back to an environment variable (``FAIRPATH_TLS``, ``FAIRPATH_CA``,
``FAIRPATH_CERT``, ``FAIRPATH_KEY``, ``FAIRPATH_TOKEN``). Prefer the variable for
the token: a command line is visible to every user of the machine (``ps``).
TLS is on when ``--tls``, ``--ca`` or ``--cert`` is given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from fairpath_client._security import TlsConfig

#: Exit code for unusable credential options, as argparse uses for usage errors.
EXIT_USAGE = 2

_ENV = {"tls": "FAIRPATH_TLS", "ca": "FAIRPATH_CA", "cert": "FAIRPATH_CERT", "key": "FAIRPATH_KEY"}
TOKEN_ENV = "FAIRPATH_TOKEN"  # noqa: S105 - a variable name, not a secret
_TRUE = frozenset({"1", "true", "yes", "on"})


def add_credential_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the credential options to ``parser`` (the options every client command shares)."""
    group = parser.add_argument_group("credentials")
    tls, ca, cert, key = (f"(${_ENV[name]})" for name in ("tls", "ca", "cert", "key"))
    group.add_argument("--tls", action="store_true", default=None, help=f"speak TLS, trust system CAs {tls}")
    group.add_argument("--ca", metavar="FILE", help=f"PEM CA that signed the server's certificate {ca}")
    group.add_argument("--cert", metavar="FILE", help=f"PEM client certificate, for mutual TLS {cert}")
    group.add_argument("--key", metavar="FILE", help=f"PEM private key of --cert {key}")
    group.add_argument("--token", metavar="TOKEN", help=f"bearer token; prefer ${TOKEN_ENV}")


def credentials_from_args(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[TlsConfig | None, str | None]:
    """Return the TLS settings and token the options and environment ask for.

    Exits with :data:`EXIT_USAGE` and a one-line message when a file cannot be
    read or only one of ``--cert`` and ``--key`` is given.
    """
    ca = getattr(args, "ca", None) or environ.get(_ENV["ca"])
    cert = getattr(args, "cert", None) or environ.get(_ENV["cert"])
    key = getattr(args, "key", None) or environ.get(_ENV["key"])
    tls_flag = getattr(args, "tls", None) or environ.get(_ENV["tls"], "").strip().lower() in _TRUE
    token = getattr(args, "token", None) or environ.get(TOKEN_ENV) or None
    if (cert is None) != (key is None):
        _usage("--cert and --key go together: give both or neither")
    for flag, path in (("--ca", ca), ("--cert", cert), ("--key", key)):
        if path is not None and not Path(path).is_file():
            _usage(f"{flag} {path}: no such file")
    if token is not None and (not token.strip() or any(c.isspace() for c in token.strip())):
        _usage("--token must be one word without spaces")
    tls = TlsConfig(ca=ca, cert=cert, key=key) if tls_flag or ca or cert else None
    return tls, token.strip() if token else None


def _usage(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(EXIT_USAGE)
