"""Benchmarks of the product, beside it: ``python -m benchmarks model|service|training|hostile|load|all``.

They reach the product through its public interfaces only (``python -m app`` over HTTP, the
bundle's files, ``model``'s tokenizer and ``training``'s functions); nothing in ``app``,
``model`` or ``training`` imports them. Each writes one result file, ``results/<name>.json``,
that ``render.markdown`` turns into the tables of the benchmarks page. Their figures are never
asserted by the tests, only that each runs end to end and its arithmetic holds.
"""
