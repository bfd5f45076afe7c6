"""fairpath: triage and just-culture policies as code, served over gRPC."""

__version__ = "0.1.0"
