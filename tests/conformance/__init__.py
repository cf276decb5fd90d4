"""Differential conformance harness: check-dvc against `dvc status` (see shapes.py)."""
