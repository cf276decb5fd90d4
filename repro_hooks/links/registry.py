"""The MLflow model-registry adapter: run links carried onto model versions and logged models,
and every registry call `check-model` makes.

Imported only where the registry is needed (check-model, the delivery process): never by a
commit-stage command. MlflowClient only; the fluent API creates experiments as a side effect.

`propagate_link(client, run_id, tags)` is the one entry point the link delivery calls after it
writes a run link: every model version whose `run_id` is the run and every MLflow 3 logged model
whose `source_run_id` is the run get the same `git.commit`, `git.branch`, `git.repo_url` and
`dvc.fingerprint` (the per-output `dvc.*` tags stay on the run: a version points at its run).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from repro_hooks.errors import ReproHooksError
from repro_hooks.links.core import BRANCH_TAG, COMMIT_TAG, FINGERPRINT_TAG, REPO_URL_TAG

PROPAGATED_TAGS = (COMMIT_TAG, BRANCH_TAG, REPO_URL_TAG, FINGERPRINT_TAG)
PAGE = 200
MAX_PAGES = 50


def link_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The part of a run's tags that a model version or logged model carries."""
    return {k: tags[k] for k in PROPAGATED_TAGS if tags.get(k)}


@dataclass(frozen=True)
class Propagation:
    """What `propagate_link` changed: (name, version) pairs and logged-model ids."""

    versions: tuple[tuple[str, str], ...] = ()
    logged_models: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"models:/{n}/{v}" for n, v in self.versions] + [
            f"logged model {m}" for m in self.logged_models
        ]
        return ", ".join(parts) if parts else "no model version or logged model to tag"


def _quoted(value: str) -> str:
    if not re.fullmatch(r"[0-9A-Za-z_-]+", value):
        raise ReproHooksError(f"run id {value!r}: not an MLflow run id")
    return f"'{value}'"


def versions_of_run(client: Any, run_id: str) -> list[Any]:
    """Every model version registered from the run (all registered models, all pages)."""
    found: list[Any] = []
    token = None
    for _ in range(MAX_PAGES):
        page = client.search_model_versions(
            f"run_id = {_quoted(run_id)}", max_results=PAGE, page_token=token
        )
        found.extend(page)
        token = page.token
        if not token:
            break
    return found


def logged_models_of_run(client: Any, run_id: str, experiment_id: str) -> list[Any]:
    """Every MLflow 3 logged model whose source run is the run (empty before MLflow 3)."""
    search = getattr(client, "search_logged_models", None)
    if search is None:
        return []
    found: list[Any] = []
    token = None
    for _ in range(MAX_PAGES):
        page = search(
            [experiment_id],
            filter_string=f"source_run_id = {_quoted(run_id)}",
            max_results=PAGE,
            page_token=token,
        )
        found.extend(m for m in page if m.source_run_id == run_id)
        token = page.token
        if not token:
            break
    return found


def propagate_link(client: Any, run_id: str, tags: Mapping[str, str]) -> Propagation:
    """Put the run link's commit and data tags on every model version and logged model made from
    the run. Idempotent: only differing tags are written. A propagated key the new link lacks
    (a relink to a detached HEAD drops `git.branch`) is deleted, so a version never shows a mix
    of two links. Does nothing when `tags` carries no `git.commit`."""
    wanted = link_tags(tags)
    if COMMIT_TAG not in wanted:
        return Propagation()
    stale = [k for k in PROPAGATED_TAGS if k not in wanted]
    versions: list[tuple[str, str]] = []
    for mv in versions_of_run(client, run_id):
        have = dict(mv.tags or {})
        for key, value in wanted.items():
            if have.get(key) != value:
                client.set_model_version_tag(mv.name, str(mv.version), key, value)
        for key in stale:
            if key in have:
                client.delete_model_version_tag(mv.name, str(mv.version), key)
        versions.append((mv.name, str(mv.version)))
    models: list[str] = []
    experiment_id = client.get_run(run_id).info.experiment_id
    for model in logged_models_of_run(client, run_id, experiment_id):
        have = dict(model.tags or {})
        changes = {k: v for k, v in wanted.items() if have.get(k) != v}
        if changes:
            client.set_logged_model_tags(model.model_id, changes)
        for key in stale:
            if key in have:
                client.delete_logged_model_tag(model.model_id, key)
        models.append(model.model_id)
    return Propagation(tuple(sorted(versions)), tuple(sorted(models)))


def propagation_note(client: Any, run_id: str, tags: Mapping[str, str]) -> str:
    """For the link delivery: propagate, and say so in a few words ("" when the run has no
    model). A registry error never fails the run link (links come first; check-model --record
    propagates again), it only becomes a note."""
    try:
        done = propagate_link(client, run_id, tags)
    except Exception as exc:
        return f"; model registry not updated: {one_line(exc)}"
    if not done.versions and not done.logged_models:
        return ""
    return f"; tagged {done.describe()}"


# ---- reads and writes of check-model ------------------------------------------------------------


@dataclass(frozen=True)
class VersionRecord:
    """A model version as the registry has it."""

    name: str
    version: str
    run_id: str | None
    tags: Mapping[str, str]
    aliases: tuple[str, ...]
    source: str = ""  # what the version serves (runs:/..., models:/m-..., s3://...)


@dataclass(frozen=True)
class RunRecord:
    """A run as the tracking store has it; `state` is active, deleted or missing."""

    run_id: str
    state: str
    experiment_id: str | None
    tags: Mapping[str, str]
    artifact_uri: str = ""


class Registry:
    """check-model's view of one tracking server and its model registry."""

    def __init__(self, tracking_uri: str, registry_uri: str | None = None) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)

    def _version(self, mv: Any) -> VersionRecord:
        return VersionRecord(
            name=mv.name,
            version=str(mv.version),
            run_id=mv.run_id or None,
            tags=dict(mv.tags or {}),
            aliases=tuple(getattr(mv, "aliases", None) or ()),
            source=str(mv.source or ""),
        )

    def _missing_model(self, name: str, uri: str) -> ReproHooksError | None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return ReproHooksError(f"{uri}: no registered model named {name!r}")
            raise
        return None

    def version(self, name: str, version: str, uri: str) -> VersionRecord:
        from mlflow.exceptions import MlflowException

        try:
            return self._version(self.client.get_model_version(name, version))
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
        raise self._missing_model(name, uri) or ReproHooksError(
            f"{uri}: model {name!r} has no version {version}"
        )

    def by_alias(self, name: str, alias: str, uri: str) -> VersionRecord:
        from mlflow.exceptions import MlflowException

        try:
            return self._version(self.client.get_model_version_by_alias(name, alias))
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
        raise self._missing_model(name, uri) or ReproHooksError(
            f"{uri}: model {name!r} has no alias {alias!r}"
        )

    def run(self, run_id: str) -> RunRecord:
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return RunRecord(run_id, "missing", None, {})
            raise
        state = "active" if run.info.lifecycle_stage == "active" else "deleted"
        return RunRecord(
            run_id, state, run.info.experiment_id, dict(run.data.tags), run.info.artifact_uri or ""
        )

    def runs_with_stamp(self, stamp: str, limit: int = 10) -> tuple[str, ...]:
        """Ids of the active runs that carry the stamp id `stamp` (links.store.runs_with_stamp)."""
        from repro_hooks.links.store import runs_with_stamp

        return tuple(runs_with_stamp(self.client, stamp, limit))

    def tag_version(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        for key, value in sorted(tags.items()):
            self.client.set_model_version_tag(name, version, key, value)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)


# ---- bounded time ---------------------------------------------------------------------------


class RegistryTimeout(BaseException):
    """The deadline passed (BaseException: no library may swallow it)."""


@contextmanager
def bounded(env: MutableMapping[str, str], seconds: float) -> Iterator[None]:
    """MLflow's HTTP client told to give up fast and a SIGALRM deadline over the whole block
    (main thread only): the link delivery's bounds (links/delivery.py). The knobs are restored
    afterwards."""
    from repro_hooks.links.delivery import HTTP_KNOBS, deadline, set_http_bounds

    saved = {k: env.get(k) for k in HTTP_KNOBS}
    set_http_bounds(env, seconds)
    try:
        with deadline(seconds, RegistryTimeout):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value


def one_line(exc: BaseException) -> str:
    """An MLflow client error as a few words (its messages run over several long lines)."""
    from repro_hooks.links.delivery import NOT_JSON, error_text, request_failure

    text = error_text(exc)
    failed = request_failure(text, "tracking server")
    if failed:
        return failed[1]
    if NOT_JSON in text:
        return "the tracking server answered with something that is not JSON (a proxy?)"
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:300]
