"""The one list of tracker adapters, and the factory that opens the one a tracking URI names.

An adapter is a module with `open_tracker(uri) -> Tracker`,
`open_registry(uri, registry_uri) -> ModelRegistry` and `CLIENT_PACKAGE` (the package its
tracker's client needs, None for none); it imports that client only when a store is opened, never
at import (the commit stage asks `client_installed` without importing it). A URI whose scheme is in ADAPTERS goes to that module; every
other URI is MLflow's (MLflow itself accepts many schemes: http(s), file, sqlite and other
databases, databricks, plugins).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Protocol, cast

from repro_hooks.tracking.port import ModelRegistry, Tracker

DEFAULT_ADAPTER = "repro_hooks.tracking.mlflow"
ADAPTERS: dict[str, str] = {}  # URI scheme -> adapter module


class Adapter(Protocol):
    CLIENT_PACKAGE: str | None

    def open_tracker(self, uri: str) -> Tracker: ...

    def open_registry(self, uri: str, registry_uri: str | None = None) -> ModelRegistry: ...


def adapter_module(uri: str) -> str:
    """The module of the adapter that opens `uri`."""
    scheme = uri.partition(":")[0].lower() if ":" in uri else ""
    return ADAPTERS.get(scheme, DEFAULT_ADAPTER)


def _adapter(uri: str) -> Adapter:
    return cast(Adapter, importlib.import_module(adapter_module(uri)))


def client_installed(uri: str) -> bool:
    """Whether the client library the adapter for `uri` needs is installed (found, not imported:
    the post-commit hook asks before it queues a link for the detached delivery)."""
    package = _adapter(uri).CLIENT_PACKAGE
    return package is None or importlib.util.find_spec(package) is not None


def open_tracker(uri: str) -> Tracker:
    """The tracking store at `uri`, through its adapter."""
    return _adapter(uri).open_tracker(uri)


def open_registry(uri: str, registry_uri: str | None = None) -> ModelRegistry:
    """The model registry of the tracking store at `uri` (or at `registry_uri` when given)."""
    return _adapter(uri).open_registry(uri, registry_uri)
