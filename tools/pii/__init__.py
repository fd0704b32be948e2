"""Generators of the labelled PII sets the recognizers are measured on, and their span-overlap scoring.

The dev set in four parts (``data/pii_eval``: :mod:`tools.pii.evalset`, :mod:`tools.pii.devshapes`,
:mod:`tools.pii.devformats`, :mod:`tools.pii.devwritten`) and the locked test set (``data/pii_test``:
:mod:`tools.pii.testset`). The committed files are what these generators write (``tests/unit/test_pii_testset.py``);
``benchmarks/bench_pii.py`` scores the shipped anonymiser on them. Not part of the installed package: the anonymiser
does not depend on them, so editing a generator re-runs no pipeline stage.
"""
