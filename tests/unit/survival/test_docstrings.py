"""The runnable examples in the survival docstrings run and give what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["__init__", "kaplan_meier", "logrank", "cox", "competing", "rates", "plots"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    mod = importlib.import_module("cohort.survival" if name == "__init__" else f"cohort.survival.{name}")
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0
