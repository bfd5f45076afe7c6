"""The policy file format: conditions, the loader, the model, request facts and versions."""
