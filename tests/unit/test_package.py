"""The package surface: lazy submodule attributes (PEP 562) and the py.typed marker (PEP 561)."""

from __future__ import annotations

import importlib.resources
import subprocess
import sys
import textwrap


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, so no earlier test has imported a submodule."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, check=False)


def test_submodules_are_attributes_after_import_cohort_and_not_imported_eagerly():
    run = _fresh("""
        import sys
        import cohort
        # cohort.validate is imported by cohort.settings (its config keys); the rest must wait
        lazy = ["derive", "describe", "export", "ingest", "longitudinal", "report", "simulate", "survival"]
        eager = [m for m in lazy if f"cohort.{m}" in sys.modules]
        assert eager == [], f"imported by `import cohort`: {eager}"
        assert callable(cohort.survival.kaplan_meier)
        assert callable(cohort.longitudinal.lmm)
        assert callable(cohort.simulate.simulate)
        assert {"survival", "longitudinal", "describe", "report", "simulate", "validate"} <= set(dir(cohort))
        print("ok")
    """)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"


def test_unknown_attribute_is_an_attribute_error_naming_the_module():
    run = _fresh("""
        import cohort
        try:
            cohort.nonexistent
        except AttributeError as exc:
            print(exc)
    """)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "module 'cohort' has no attribute 'nonexistent'"


def test_py_typed_marker_is_package_data():
    marker = importlib.resources.files("cohort") / "py.typed"
    assert marker.is_file()
