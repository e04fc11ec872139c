"""Benchmarks (`make bench`): each ``bench_*.py`` module's ``run()`` returns a JSON-able
result written to ``bench/results/<name>.json``."""
