"""The review console: web pages for compliance reviewers and policy authors, over the gRPC API.

``fairpath serve`` runs it on ``127.0.0.1:8080`` (``--console-port``; 0 turns it
off); ``fairpath console --target HOST:PORT`` runs it against a service elsewhere.
It is a client of the API: every page calls the same RPCs with the signed-in
user's token (:mod:`fairpath.console.app`). Its look is the NHS.UK design
system, vendored in ``static/nhsuk`` (:mod:`fairpath.console.refresh_assets`).

Nothing is imported here on purpose: ``fairpath`` mounts the ``console`` command
(:mod:`fairpath.console.command`) for every invocation, and the web stack
(Starlette, uvicorn, Jinja2) should load only when a console actually runs. Import
:class:`~fairpath.console.runner.ConsoleServer` and
:func:`~fairpath.console.app.build_app` from their modules.
"""
