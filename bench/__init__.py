"""Benchmarks against the tutorial pipeline. Run them from the repository's folder: python -m bench.NAME."""
