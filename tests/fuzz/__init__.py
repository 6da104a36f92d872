"""Fuzz targets for every parser, driven by hypothesis (``make fuzz``).

``python -m tests.fuzz [--target NAME]... [--examples N]`` runs them; ``--list`` names them.
tests/fuzz/test_quick.py runs each briefly as part of the normal test suite.
"""
