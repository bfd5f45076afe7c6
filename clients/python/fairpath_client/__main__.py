"""Run the client commands: ``python -m fairpath_client evaluate|policies …``."""

from fairpath_client.cli import main

raise SystemExit(main())
