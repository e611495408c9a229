"""Import paths documented before the 0.2 layout keep working for one release, with a warning."""

from __future__ import annotations

import importlib

import pytest

DOCUMENTED = [
    ("optieval.bench.detection_compare", "compare_detection"),
    ("optieval.bench.detection_results", "DetectionBudget"),
    ("optieval.bench.detection_results", "DetectionReport"),
    ("optieval.export.nms", "append_nms"),
    ("optieval.bench.executors", "RayExecutor"),
    ("optieval.bench.executors", "LocalExecutor"),
    ("optieval.export.precision", "artifact_for"),
    ("optieval.export.precision", "convert"),
    ("optieval.export.census", "census"),
    ("optieval.bench.data", "load_dataset"),
    ("optieval.bench.parity_results", "ParityReport"),
    ("optieval.runtime.isolation", "run_isolated"),
    ("optieval.export", "load_model"),
    ("optieval.export", "load_model_from_manifest"),
    ("optieval.export", "convert"),
]


@pytest.mark.parametrize(("module", "name"), DOCUMENTED)
def test_old_path_warns_and_resolves(module: str, name: str) -> None:
    old = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match="moved to"):
        value = getattr(old, name)
    assert value is not None and getattr(value, "__name__", name) == name


def test_unknown_name_on_an_alias_is_an_attribute_error() -> None:
    old = importlib.import_module("optieval.bench.data")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = old.nope


def test_new_paths_do_not_warn(recwarn: pytest.WarningsChecker) -> None:
    import optieval

    for name in ("export_model", "convert", "benchmark", "compare", "gate"):
        assert callable(getattr(optieval, name))
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
