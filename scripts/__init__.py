"""Reproduction and report scripts. Run them from the repository's folder: python -m scripts.NAME."""
