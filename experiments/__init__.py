"""The course's experiments, beside the product: commands that train, measure and write their
results and plots for the docs (``python -m experiments.variants``, ``python -m
experiments.long_range``). Nothing in app/, model/ or training/ imports them."""
