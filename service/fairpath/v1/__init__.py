"""Generated from proto/fairpath/v1 by proto/generate.py. Do not edit."""
