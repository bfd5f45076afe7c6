"""Serving policy versions: the evaluator, the served state, staging, hot reload and the watcher.

* :mod:`~fairpath.serving.state` is the immutable set of compiled versions a server evaluates against;
* :mod:`~fairpath.serving.evaluator` evaluates a request against it (the decision, not its record);
* :mod:`~fairpath.serving.staging` compiles and tests a new set of versions before it serves;
* :mod:`~fairpath.serving.reload` swaps a staged set in, and :mod:`~fairpath.serving.watch` asks for
  reloads on file changes and SIGHUP;
* :mod:`~fairpath.serving.incidents` merges an incident's facts and adds its incident-level advice;
* :mod:`~fairpath.serving.gate` runs a version's own test cases (the reload gate, ValidatePolicy,
  ``policy test``);
* :mod:`~fairpath.serving.masking` is what of a version's decisions is sensitive, for the record.
"""
