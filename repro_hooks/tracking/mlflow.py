"""The MLflow adapter of the tracking ports (tracking/port.py), and where an MLflow store is.

The only module that imports mlflow, always inside a function: `import mlflow` alone costs over
a second and the commit-stage commands load this module for its store resolution. MlflowClient
only; the fluent API is avoided on purpose: `mlflow.search_runs()` creates the experiment named
by MLFLOW_EXPERIMENT_NAME when it is missing, MlflowClient never does.

Here: MLflow's search-filter syntax, its dataset inputs, its error codes, and how MLflow finds a
tracking store (MLFLOW_TRACKING_URI, `mlruns/`, `mlflow.db`), so that repro-hooks opens the
store MLflow would, and never one MLflow would create.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from repro_hooks.errors import ReproHooksError
from repro_hooks.links.record import COMMIT_TAG, DATASET_SOURCE_TYPE, MAX_DIGEST
from repro_hooks.tracking.credentials import strip_credentials
from repro_hooks.tracking.port import (
    PARENT_RUN_TAG,
    SOURCE_COMMIT_TAG,
    ArtifactEntry,
    DatasetRecord,
    LoggedModel,
    ModelRegistry,
    RecordedOutput,
    RunCandidate,
    RunRecord,
    StoreError,
    Tracker,
    VersionRecord,
)

CLIENT_PACKAGE = "mlflow"  # what this adapter imports to open a store (tracking/adapters.py)
PAGE = 50
MAX_PAGES = 20
TAGS_PER_BATCH = 100  # MLflow's limit per log-batch request
INPUTS_PER_CALL = 500
MAX_DATASET_NAME = 500
DATASET_CONTEXT_TAG = "mlflow.data.context"  # an input tag (on the run's dataset input)
DATASET_CONTEXT = "dvc"
REGISTRY_PAGE = 200
REGISTRY_MAX_PAGES = 50

# ---- where the store is -----------------------------------------------------------------------


@dataclass(frozen=True)
class TrackingStore:
    uri: str  # may carry credentials: keep it in memory only
    origin: str  # "option", "config", "environment", "default"

    @property
    def safe_uri(self) -> str:
        return strip_credentials(self.uri)


def _mlruns_has_experiments(mlruns: Path) -> bool:
    # The same test MLflow's default-URI logic uses: a numeric directory with a meta.yaml.
    try:
        with os.scandir(mlruns) as entries:
            return any(
                e.is_dir() and e.name.isdigit() and os.path.lexists(Path(e.path) / "meta.yaml")
                for e in entries
            )
    except OSError:
        return False


def resolve_tracking_store(
    root: Path, option: str | None, configured: str | None, env: Mapping[str, str]
) -> TrackingStore | None:
    """Option, then config, then MLFLOW_TRACKING_URI; else the store MLflow would use for a
    script run from the repository root, but only if it already exists (None otherwise: nothing
    is ever created)."""
    if option:
        return TrackingStore(option, "option")
    if configured:
        return TrackingStore(configured, "config")
    if env.get("MLFLOW_TRACKING_URI"):
        return TrackingStore(env["MLFLOW_TRACKING_URI"], "environment")
    if _mlruns_has_experiments(root / "mlruns"):
        return TrackingStore((root / "mlruns").as_uri(), "default")
    db = root / "mlflow.db"
    if db.is_file():
        return TrackingStore(f"sqlite:///{db}", "default")
    return None


def store_to_open(
    root: Path, option: str | None, configured: str | None, env: Mapping[str, str]
) -> tuple[str, str]:
    """(uri, uri without credentials) of the tracking store a reading command (`check-model`,
    `show`) opens: resolved as `resolve_tracking_store` does, a relative local store anchored at
    the repository root, and never one MLflow would create. Raises ReproHooksError otherwise."""
    store = resolve_tracking_store(root, option, configured, env)
    if store is None:
        raise ReproHooksError(
            "no tracking server: give --tracking-uri, set MLFLOW_TRACKING_URI, or "
            "[tool.repro-hooks.mlflow] tracking-uri"
        )
    why_not = missing_local_store(store.uri, root)
    if why_not:
        raise ReproHooksError(why_not)
    uri = anchored_uri(store.uri, root)
    allow_file_store(uri)
    return uri, store.safe_uri


def allow_file_store(uri: str) -> None:
    """MLflow 3 refuses a file store unless told: repro-hooks reads the store a user has."""
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (None for other stores)."""
    if not uri.startswith("sqlite:"):
        return None
    rest = uri[len("sqlite:") :].lstrip("/")
    if not rest or rest.startswith(":memory:"):
        return None
    # sqlite:///rel.db is relative, sqlite:////abs.db absolute
    return Path("/" + rest) if uri.startswith("sqlite:////") else Path(rest.split("?")[0])


def anchored_uri(uri: str, root: Path) -> str:
    """A local store's URI with a relative path made absolute against the repository root
    (MLflow would resolve it against the current directory, and create a database there)."""
    db = sqlite_path(uri)
    if db is not None and not db.is_absolute():
        query = uri.partition("?")[2]
        return f"sqlite:///{root / db}" + (f"?{query}" if query else "")
    if is_local_uri(uri) and not uri.startswith("file:") and not Path(uri).is_absolute():
        return (root / uri).as_uri()
    return uri


def missing_local_store(uri: str, cwd: Path) -> str | None:
    """Why a local store must not be opened (MLflow would create it), or None."""
    db = sqlite_path(uri)
    if db is not None:
        full = db if db.is_absolute() else cwd / db
        if not full.is_file():
            return f"{strip_credentials(uri)}: no such database (repro-hooks never creates one)"
        return None
    if is_local_uri(uri):
        path = Path(urlsplit(uri).path) if uri.startswith("file:") else Path(uri)
        full = path if path.is_absolute() else cwd / path
        if not full.is_dir():
            return f"{uri}: no such directory (repro-hooks never creates one)"
    return None


BARE_SCHEMES = frozenset({"databricks", "databricks-uc", "uc"})  # MLflow's own, without "://"


def is_local_uri(uri: str) -> bool:
    """Whether a tracking URI names a local path (no scheme, or file:). Every scheme MLflow
    accepts (databricks, databricks://profile, databricks-uc, http(s), sqlite and other
    SQLAlchemy URIs, plugin schemes) is a store, not a directory to check."""
    if uri.startswith("file:"):
        return True
    if uri in BARE_SCHEMES:
        return False
    scheme = urlsplit(uri).scheme if ":" in uri else ""
    return not scheme or len(scheme) == 1  # a Windows drive letter is a path


def experiment_selection(
    option: Sequence[str], configured: Sequence[str], env: Mapping[str, str]
) -> tuple[str, ...]:
    """Experiments to search (names or ids); empty means every active experiment."""
    if option:
        return tuple(option)
    if configured:
        return tuple(configured)
    if env.get("MLFLOW_EXPERIMENT_ID"):
        return (env["MLFLOW_EXPERIMENT_ID"],)
    if env.get("MLFLOW_EXPERIMENT_NAME"):
        return (env["MLFLOW_EXPERIMENT_NAME"],)
    return ()


# ---- the search syntax ------------------------------------------------------------------------


def tag_equals(key: str, value: str) -> str:
    """A search filter clause `tags.<key> = '<value>'` (values here are ids and SHAs)."""
    safe = "".join(c for c in value if c.isalnum() or c in "-_.")
    return f"tags.`{key}` = '{safe}'"


def _quoted(value: str) -> str:
    if not re.fullmatch(r"[0-9A-Za-z_-]+", value):
        raise ReproHooksError(f"run id {value!r}: not an MLflow run id")
    return f"'{value}'"


def _candidate(run: Any) -> RunCandidate:
    tags = run.data.tags
    return RunCandidate(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        start_time=int(run.info.start_time or 0),
        linked_commit=tags.get(COMMIT_TAG),
        source_commit=tags.get(SOURCE_COMMIT_TAG),
        end_time=int(run.info.end_time) if run.info.end_time else None,
        status=str(run.info.status or ""),
        tags=dict(tags),
    )


def _client(tracking_uri: str, registry_uri: str | None = None) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)


def active_experiment_ids(client: Any, limit: int | None = None) -> list[str]:
    """Ids of every active experiment of the store, all pages (one page of `limit`)."""
    from mlflow.entities import ViewType

    if limit is not None:
        return [e.experiment_id for e in client.search_experiments(max_results=limit)]
    ids: list[str] = []
    token = None
    while True:
        page = client.search_experiments(
            view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
        )
        ids.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            return ids


def runs_with_stamp(client: Any, stamp: str, limit: int = 10) -> list[str]:
    """Ids of the active runs, in any active experiment, that carry the stamp id `stamp` (at
    most about `limit`); a stamp belongs to one run, so more than one means it was copied."""
    from mlflow.entities import ViewType

    from repro_hooks.links.stamp import STAMP_TAG

    ids = active_experiment_ids(client)
    found: set[str] = set()
    for start in range(0, len(ids), 100):  # the server bounds experiments per search
        page = client.search_runs(
            ids[start : start + 100],
            filter_string=tag_equals(STAMP_TAG, stamp),
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=limit,
        )
        found.update(r.info.run_id for r in page)
        if len(found) >= limit:
            break
    return sorted(found)


# ---- the tracker ------------------------------------------------------------------------------


class MlflowTracker:
    """tracking.port.Tracker over an MlflowClient."""

    def __init__(self, uri: str, client: Any = None) -> None:
        self.client: Any = client if client is not None else _client(uri)
        self._uri = uri

    @classmethod
    def of(cls, client: Any) -> MlflowTracker:
        """The tracker of an MlflowClient already open."""
        return cls(str(getattr(client, "tracking_uri", "") or ""), client)

    @property
    def uri(self) -> str:
        return self._uri

    def registry(self) -> MlflowRegistry:
        return MlflowRegistry(self._uri, client=self.client)

    def active_experiments(self, limit: int | None = None) -> list[str]:
        return active_experiment_ids(self.client, limit)

    def experiment_ids(self, selection: Sequence[str]) -> tuple[list[str], list[str]]:
        from mlflow.exceptions import MlflowException

        if not selection:
            return active_experiment_ids(self.client), []
        ids: list[str] = []
        notes: list[str] = []
        for name in selection:
            experiment = None
            if name.isdigit():
                try:
                    experiment = self.client.get_experiment(name)
                except MlflowException as exc:
                    if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                        raise
            if experiment is None:
                experiment = self.client.get_experiment_by_name(name)
            if experiment is None or experiment.lifecycle_stage != "active":
                notes.append(f"experiment {name!r} not found")
            elif experiment.experiment_id not in ids:
                ids.append(experiment.experiment_id)
        return ids, notes

    def candidates(
        self,
        experiment_ids: Sequence[str],
        before_ms: int,
        tag: tuple[str, str] | None = None,
    ) -> Iterator[RunCandidate]:
        from mlflow.entities import ViewType

        clause = f"attributes.start_time < {int(before_ms)}"
        if tag is not None:
            clause += f" AND {tag_equals(*tag)}"
        token = None
        for _ in range(MAX_PAGES):
            page = self.client.search_runs(
                list(experiment_ids),
                filter_string=clause,
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=PAGE,
                order_by=["attributes.start_time DESC"],
                page_token=token,
            )
            for run in page:
                yield _candidate(run)
            token = page.token
            if not token:
                return

    def runs_tagged(
        self, experiment_ids: Sequence[str], key: str, value: str, limit: int
    ) -> list[str]:
        runs = self.client.search_runs(
            list(experiment_ids), filter_string=f"tags.`{key}` = '{value}'", max_results=limit
        )
        return [r.info.run_id for r in runs]

    def runs_with_stamp(self, stamp: str, limit: int = 10) -> list[str]:
        return runs_with_stamp(self.client, stamp, limit)

    def run(self, run_id: str) -> RunCandidate:
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise StoreError(f"run {run_id} does not exist") from None
            raise
        if run.info.lifecycle_stage != "active":
            raise StoreError(f"run {run_id} is deleted")
        return _candidate(run)

    def run_or_none(self, run_id: str) -> RunCandidate | None:
        try:
            return _candidate(self.client.get_run(run_id))
        except Exception:
            return None

    def children(self, run: RunCandidate) -> list[RunCandidate]:
        from mlflow.entities import ViewType

        found: list[RunCandidate] = []
        todo = [run.run_id]
        while todo and len(found) < PAGE * MAX_PAGES:
            parent = todo.pop()
            token = None
            while True:
                page = self.client.search_runs(
                    [run.experiment_id],
                    filter_string=tag_equals(PARENT_RUN_TAG, parent),
                    run_view_type=ViewType.ACTIVE_ONLY,
                    max_results=1000,
                    page_token=token,
                )
                for child in page:
                    found.append(_candidate(child))
                    todo.append(child.info.run_id)
                token = page.token
                if not token:
                    break
        return found

    def runs_linked_to(self, experiment_ids: Sequence[str], commit: str) -> list[str]:
        from mlflow.entities import ViewType

        runs = self.client.search_runs(
            list(experiment_ids),
            filter_string=f"tags.`{COMMIT_TAG}` = '{commit}'",
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
        )
        return [r.info.run_id for r in runs]

    def linked_runs(self, experiment_ids: Sequence[str], commit: str) -> list[RunCandidate]:
        from mlflow.entities import ViewType

        found: list[RunCandidate] = []
        token = None
        for _ in range(MAX_PAGES):
            page = self.client.search_runs(
                list(experiment_ids),
                filter_string=tag_equals(COMMIT_TAG, commit),
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=1000,
                order_by=["attributes.start_time DESC"],
                page_token=token,
            )
            found.extend(_candidate(r) for r in page)
            token = page.token
            if not token:
                break
        return found

    def run_inputs(self, run_id: str) -> list[DatasetRecord]:
        run = self.client.get_run(run_id)
        inputs = getattr(run, "inputs", None)
        found = []
        for item in getattr(inputs, "dataset_inputs", None) or ():
            dataset = item.dataset
            if dataset.source_type == DATASET_SOURCE_TYPE:
                found.append(DatasetRecord(dataset.name, dataset.digest, dataset.source))
        return sorted(found)

    def experiment_name(self, experiment_id: str) -> str:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_experiment(experiment_id).name)
        except MlflowException:
            return ""

    def tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.tags)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)

    def delete_tags(self, run_id: str, keys: Sequence[str]) -> None:
        for key in keys:
            self.client.delete_tag(run_id, key)

    def log_artifact(self, run_id: str, local_path: Path, artifact_path: str) -> None:
        self.client.log_artifact(run_id, str(local_path), artifact_path)

    def write_link(
        self,
        run_id: str,
        tags: Mapping[str, str],
        used: Sequence[RecordedOutput],
        delete: Sequence[str] = (),
        repo_url: str | None = None,
    ) -> None:
        """Write a link so that it is whole or visibly unfinished: the dataset inputs (`used`:
        the committed data the run used, links.inputs) first, then our tags, then our stale
        keys are deleted, and `git.commit` goes last as the marker. Every step is an upsert
        (the store deduplicates inputs by name and digest), so a retry after a failure at any
        step completes the same link."""
        from mlflow.entities import RunTag

        commit = tags.get(COMMIT_TAG, "")
        inputs = dataset_inputs(used, repo_url, commit)
        for start in range(0, len(inputs), INPUTS_PER_CALL):
            self.client.log_inputs(run_id, inputs[start : start + INPUTS_PER_CALL])
        ordered = sorted((k, v) for k, v in tags.items() if k != COMMIT_TAG)
        for start in range(0, len(ordered), TAGS_PER_BATCH):
            chunk = ordered[start : start + TAGS_PER_BATCH]
            self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in chunk])
        for key in delete:
            self.client.delete_tag(run_id, key)
        if commit:
            self.client.set_tag(run_id, COMMIT_TAG, commit)


def dataset_source(out: RecordedOutput, repo_url: str | None, commit: str) -> str:
    """The dataset's source: JSON naming the repository, the commit and the path, so that
    `dvc get <url> <path> --rev <commit>` fetches it from the run page alone. The store keeps
    the source of the first commit that logged a (name, digest): any commit recording that
    digest holds the same data, so the command stays right."""
    source: dict[str, str] = {"path": out.path, "dvc_file": out.source, "rev": commit}
    if repo_url:
        source["url"] = repo_url
        source["command"] = f"dvc get {repo_url} {out.path} --rev {commit}"
    return json.dumps(source, sort_keys=True)


def dataset_inputs(
    outputs: Sequence[RecordedOutput], repo_url: str | None, commit: str
) -> list[Any]:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    inputs = []
    for out in outputs:
        if len(out.hash_value) > MAX_DIGEST or len(out.path) > MAX_DATASET_NAME:
            continue  # still recorded as a tag; MLflow's dataset limits forbid it here
        inputs.append(
            DatasetInput(
                Dataset(
                    name=out.path,
                    digest=out.hash_value,
                    source_type=DATASET_SOURCE_TYPE,
                    source=dataset_source(out, repo_url, commit),
                ),
                [InputTag(DATASET_CONTEXT_TAG, DATASET_CONTEXT)],
            )
        )
    return inputs


# ---- the model registry -----------------------------------------------------------------------


def _version(mv: Any) -> VersionRecord:
    return VersionRecord(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id or None,
        tags=dict(mv.tags or {}),
        aliases=tuple(getattr(mv, "aliases", None) or ()),
        source=str(mv.source or ""),
    )


def _logged_model(model: Any) -> LoggedModel:
    return LoggedModel(
        model_id=str(model.model_id),
        name=str(getattr(model, "name", "") or ""),
        source_run_id=getattr(model, "source_run_id", None) or None,
        artifact_location=str(getattr(model, "artifact_location", "") or ""),
        tags=dict(getattr(model, "tags", None) or {}),
    )


def _entry(item: Any) -> ArtifactEntry:
    size = getattr(item, "file_size", None)
    return ArtifactEntry(str(item.path), bool(item.is_dir), None if size is None else int(size))


class MlflowRegistry:
    """tracking.port.ModelRegistry over an MlflowClient (and MLflow's artifact repositories)."""

    def __init__(
        self, tracking_uri: str, registry_uri: str | None = None, *, client: Any = None
    ) -> None:
        self.client: Any = client if client is not None else _client(tracking_uri, registry_uri)
        self._repositories: dict[str, Any] = {}

    @classmethod
    def of(cls, client: Any) -> MlflowRegistry:
        """The registry of an MlflowClient already open."""
        return cls(str(getattr(client, "tracking_uri", "") or ""), client=client)

    @property
    def tracking_uri(self) -> str | None:
        return str(getattr(self.client, "tracking_uri", "") or "") or None

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
        return self._one_version(
            lambda: self.client.get_model_version(name, version),
            name,
            uri,
            f"model {name!r} has no version {version}",
        )

    def by_alias(self, name: str, alias: str, uri: str) -> VersionRecord:
        return self._one_version(
            lambda: self.client.get_model_version_by_alias(name, alias),
            name,
            uri,
            f"model {name!r} has no alias {alias!r}",
        )

    def _one_version(
        self, fetch: Callable[[], Any], name: str, uri: str, absent: str
    ) -> VersionRecord:
        """The version `fetch` asks for; when the registry has none, says whether the model
        itself is missing, or else `absent`."""
        from mlflow.exceptions import MlflowException

        try:
            return _version(fetch())
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
        raise self._missing_model(name, uri) or ReproHooksError(f"{uri}: {absent}")

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
        return tuple(runs_with_stamp(self.client, stamp, limit))

    def versions_of_run(self, run_id: str) -> list[VersionRecord]:
        """Every model version registered from the run (all registered models, all pages)."""
        found: list[VersionRecord] = []
        token = None
        for _ in range(REGISTRY_MAX_PAGES):
            page = self.client.search_model_versions(
                f"run_id = {_quoted(run_id)}", max_results=REGISTRY_PAGE, page_token=token
            )
            found.extend(_version(mv) for mv in page)
            token = page.token
            if not token:
                break
        return found

    def logged_models_of_run(self, run_id: str, experiment_id: str) -> list[LoggedModel]:
        """Every MLflow 3 logged model whose source run is the run (empty before MLflow 3)."""
        search = getattr(self.client, "search_logged_models", None)
        if search is None:
            return []
        found: list[LoggedModel] = []
        token = None
        for _ in range(REGISTRY_MAX_PAGES):
            page = search(
                [experiment_id],
                filter_string=f"source_run_id = {_quoted(run_id)}",
                max_results=REGISTRY_PAGE,
                page_token=token,
            )
            found.extend(_logged_model(m) for m in page if m.source_run_id == run_id)
            token = page.token
            if not token:
                break
        return found

    def logged_model(self, model_id: str) -> LoggedModel | None:
        from mlflow.exceptions import MlflowException

        try:
            return _logged_model(self.client.get_logged_model(model_id))
        except MlflowException:
            return None

    def set_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, value)

    def delete_version_tag(self, name: str, version: str, key: str) -> None:
        self.client.delete_model_version_tag(name, version, key)

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        self.client.set_logged_model_tags(model_id, dict(tags))

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.client.delete_logged_model_tag(model_id, key)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[ArtifactEntry]:
        return [_entry(e) for e in self.client.list_artifacts(run_id, path)]

    def _repository(self, location: str) -> Any:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        if location not in self._repositories:
            self._repositories[location] = get_artifact_repository(
                location, tracking_uri=self.tracking_uri
            )
        return self._repositories[location]

    def location_listing(self, location: str, path: str | None) -> list[ArtifactEntry]:
        return [_entry(e) for e in self._repository(location).list_artifacts(path)]

    def download(self, location: str, remote_path: str, local_path: Path) -> None:
        repo = self._repository(location)
        repo._download_file(remote_file_path=remote_path, local_path=str(local_path))


# ---- the adapter's entry points (tracking/adapters.py) ----------------------------------------


# Typed as the ports, so mypy proves that the adapter's classes satisfy them.


def open_tracker(uri: str) -> Tracker:
    allow_file_store(uri)
    return MlflowTracker(uri)


def open_registry(uri: str, registry_uri: str | None = None) -> ModelRegistry:
    return MlflowRegistry(uri, registry_uri)
