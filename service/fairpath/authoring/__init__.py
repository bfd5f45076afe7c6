"""Tools for policy authors: test cases with coverage, lint, version diff (``fairpath policy ...``)."""
