"""Authoring page (author role): ``/policies/validate``, a draft policy checked by ``ValidatePolicy``.

The author pastes or uploads a policy file and its tests; the service lints and
tests them on a throwaway engine and loads nothing. The page shows the
problems with their line numbers, the test results and the flowchart, which
this page draws from the pasted text with the same loader the service uses
(the text stays in this process; nothing is written anywhere).
"""

from __future__ import annotations

import contextlib

from markupsafe import Markup
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fairpath.console.sessions import Session
from fairpath.console.web import Console, form_of, requires
from fairpath.errors import FairpathError
from fairpath.flowchart import policy_flowchart
from fairpath.policy.loader import MAX_POLICY_BYTES, load_bytes


@requires("author")
async def validate_form(console: Console, request: Request, session: Session) -> Response:
    """GET /policies/validate: the paste-or-upload form."""
    return console.render(request, "validate.html", {
        "title": "Validate a policy", "report": None, "policy_text": "", "tests_text": "", "errors": [], "svg": None,
    })


async def _text(form: FormData, name: str) -> str:
    """The uploaded file ``<name>_file`` if one was chosen, else the pasted ``<name>_text`` (at most the cap)."""
    upload = form.get(f"{name}_file")
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(MAX_POLICY_BYTES + 1)
        return data.decode("utf-8", "replace")
    return str(form.get(f"{name}_text", ""))


@requires("author")
async def validate(console: Console, request: Request, session: Session) -> Response:
    """POST /policies/validate: lint and test the text through the API; draw its flowchart if it loads."""
    form = form_of(request)
    policy_text, tests_text = await _text(form, "policy"), await _text(form, "tests")
    if not policy_text.strip():
        return console.render(request, "validate.html", {
            "title": "Validate a policy", "report": None, "policy_text": "", "tests_text": tests_text, "svg": None,
            "errors": [{"field": "policy_text", "text": "Paste the policy file or choose it to upload"}],
        }, status=400)
    report = await console.call(session, lambda c: c.validate_policy(policy_text, tests_text, "draft.yaml"))
    svg = None
    with contextlib.suppress(FairpathError):  # the report says why the text does not load
        svg = Markup(policy_flowchart(load_bytes(policy_text.encode(), "draft.yaml")).to_svg(  # noqa: S704
            label="Flowchart of the draft"))
    return console.render(request, "validate.html", {
        "title": "Validate a policy", "report": report, "policy_text": policy_text, "tests_text": tests_text,
        "errors": [], "svg": svg,
    })


ROUTES = [
    Route("/policies/validate", validate_form, methods=["GET"]),
    Route("/policies/validate", validate, methods=["POST"]),
]
