"""The behavioural test suite (CheckList-style templates and perturbations) and its runner.

``python -m behaviour run --bundle models/default`` writes ``behaviour/results/suite.json``;
``python -m behaviour ablation`` compares bundles on the suite and the counterfactual dev pairs.
Like ``benchmarks/``, it reaches the model only through a bundle; nothing in app/, model/ or
training/ imports it.
"""
