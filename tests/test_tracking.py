"""The tracker port: which adapter a tracking URI opens, and that choosing one imports no tracker."""

from __future__ import annotations

import subprocess
import sys

import pytest

from repro_hooks.tracking import adapters
from repro_hooks.tracking.adapters import adapter_module


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:5000",
        "https://user:pw@mlflow.example/",
        "sqlite:///mlflow.db",
        "file:///tmp/mlruns",
        "mlruns",
        "databricks",
        "databricks-uc",
        "postgresql://db/mlflow",
    ],
)
def test_every_uri_mlflow_accepts_opens_the_mlflow_adapter(uri: str) -> None:
    assert adapter_module(uri) == "repro_hooks.tracking.mlflow"


def test_a_registered_scheme_opens_its_own_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(adapters.ADAPTERS, "other", "some.module")
    assert adapter_module("other:///x") == "some.module"
    assert adapter_module("OTHER:///x") == "some.module"
    assert adapter_module("http://other/") == "repro_hooks.tracking.mlflow"


def test_the_port_and_store_resolution_import_no_tracker() -> None:
    code = (
        "import sys\n"
        "import repro_hooks.tracking.adapters, repro_hooks.tracking.mlflow\n"
        "import repro_hooks.links.enqueue, repro_hooks.links.rules, repro_hooks.links.head\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'dvc')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_post_commit_hook_asks_the_adapter_for_its_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import types

    from repro_hooks.tracking.adapters import client_installed

    fake = types.ModuleType("repro_hooks_test_adapter")
    fake.CLIENT_PACKAGE = "no_such_tracker_client"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "repro_hooks_test_adapter", fake)
    monkeypatch.setitem(adapters.ADAPTERS, "fake", "repro_hooks_test_adapter")
    assert not client_installed("fake:///runs")
    fake.CLIENT_PACKAGE = None  # type: ignore[attr-defined]
    assert client_installed("fake:///runs")
    assert client_installed("http://127.0.0.1:5000")  # mlflow: installed in the dev environment
