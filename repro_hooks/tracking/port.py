"""The experiment tracker as repro-hooks needs it: two typed ports and the plain data they speak.

`Tracker` is what the linker, `tag-mlflow --run-id`, the delivery queue, the stamp and `show`
ask of a tracking store; `ModelRegistry` is what the deploy gate (`check-model`) and link
propagation ask of a model registry. Both speak this package's own types (dataclasses below),
never a tracker's: an adapter (tracking/mlflow.py is the first) maps its client's objects onto
them, and tracking/adapters.py picks the adapter for a tracking URI.

Nothing here imports a tracker client: the commit-stage commands load this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

# The provenance a tracker records on a run, read by the link rules from RunCandidate.tags.
# These are MLflow's own keys (the first adapter's): another adapter puts what its tracker
# records under the same keys, so the rules read one vocabulary.
PARENT_RUN_TAG = "mlflow.parentRunId"  # read, never written
USER_TAG = "mlflow.user"  # read, never written
SOURCE_NAME_TAG = "mlflow.source.name"  # read, never written
SOURCE_URL_TAG = "mlflow.source.git.repoURL"  # read, never written
SOURCE_COMMIT_TAG = "mlflow.source.git.commit"  # read, never written


class StoreError(Exception):
    """A tracking-store answer that means "nothing to do here" for one job (not a failure)."""


@dataclass(frozen=True)
class RecordedOutput:
    """A DVC output a commit records: its path, recorded hash and the DVC file recording it."""

    path: str
    hash_value: str
    source: str  # the .dvc file or dvc.lock that records it


@dataclass(frozen=True)
class RunCandidate:
    """A run as the link rules see it."""

    run_id: str
    experiment_id: str
    start_time: int  # ms
    linked_commit: str | None  # our git.commit tag
    source_commit: str | None  # the commit the tracker recorded the run started from
    end_time: int | None = None  # ms, None while running
    status: str = ""
    tags: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def parent_run_id(self) -> str | None:
        return self.tags.get(PARENT_RUN_TAG)


class DatasetRecord(NamedTuple):
    """A dataset input a link logged on a run (a tuple: it sorts by name, digest, source)."""

    name: str
    digest: str
    source: str


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


@dataclass(frozen=True)
class LoggedModel:
    """A model logged from a run (MLflow 3's logged models), with its own artifact location."""

    model_id: str
    name: str
    source_run_id: str | None
    artifact_location: str
    tags: Mapping[str, str]


@dataclass(frozen=True)
class ArtifactEntry:
    """One entry of an artifact listing."""

    path: str
    is_dir: bool
    file_size: int | None = None


class Tracker(Protocol):
    """A tracking store: runs, their tags, and the links written on them."""

    @property
    def uri(self) -> str:
        """The store's URI as opened (it may carry credentials: never written anywhere)."""
        ...

    def experiment_ids(self, selection: Sequence[str]) -> tuple[list[str], list[str]]:
        """Ids of the selected experiments (names or ids; all active ones when empty), and a note
        per selected experiment that does not exist. Nothing is ever created."""
        ...

    def active_experiments(self, limit: int | None = None) -> list[str]:
        """Ids of the store's active experiments (the first `limit` when given)."""
        ...

    def candidates(
        self,
        experiment_ids: Sequence[str],
        before_ms: int,
        tag: tuple[str, str] | None = None,
    ) -> Iterator[RunCandidate]:
        """Active runs started before `before_ms` (carrying tag key = value when given),
        newest first."""
        ...

    def runs_tagged(
        self, experiment_ids: Sequence[str], key: str, value: str, limit: int
    ) -> list[str]:
        """Ids of at most `limit` active runs of the experiments whose tag `key` is `value`."""
        ...

    def runs_with_stamp(self, stamp: str, limit: int = 10) -> list[str]:
        """Ids of the active runs, in any active experiment, carrying the stamp id `stamp`."""
        ...

    def run(self, run_id: str) -> RunCandidate:
        """One run by id; StoreError if it does not exist or is deleted."""
        ...

    def run_or_none(self, run_id: str) -> RunCandidate | None:
        """One run by id, deleted ones too; None for any failure."""
        ...

    def children(self, run: RunCandidate) -> list[RunCandidate]:
        """Every run nested under `run` (any depth), in its experiment."""
        ...

    def runs_linked_to(self, experiment_ids: Sequence[str], commit: str) -> list[str]:
        """Ids of the active runs whose `git.commit` is `commit`."""
        ...

    def linked_runs(self, experiment_ids: Sequence[str], commit: str) -> list[RunCandidate]:
        """Every active run whose `git.commit` is `commit` (nested runs too), newest first."""
        ...

    def run_inputs(self, run_id: str) -> list[DatasetRecord]:
        """The run's dataset inputs logged by a link, by name."""
        ...

    def experiment_name(self, experiment_id: str) -> str:
        """The experiment's name ("" when it cannot be read)."""
        ...

    def tags(self, run_id: str) -> dict[str, str]: ...

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None: ...

    def delete_tags(self, run_id: str, keys: Sequence[str]) -> None: ...

    def log_artifact(self, run_id: str, local_path: Path, artifact_path: str) -> None: ...

    def write_link(
        self,
        run_id: str,
        tags: Mapping[str, str],
        used: Sequence[RecordedOutput],
        delete: Sequence[str] = (),
        repo_url: str | None = None,
    ) -> None:
        """Write a link so that it is whole or visibly unfinished (`git.commit` last)."""
        ...

    def registry(self) -> ModelRegistry:
        """The model registry of the same store."""
        ...


class ModelRegistry(Protocol):
    """A model registry: versions, their tags and aliases, and the files a version serves."""

    @property
    def tracking_uri(self) -> str | None: ...

    def version(self, name: str, version: str, uri: str) -> VersionRecord:
        """ReproHooksError (naming `uri`) when the model or version does not exist."""
        ...

    def by_alias(self, name: str, alias: str, uri: str) -> VersionRecord: ...

    def run(self, run_id: str) -> RunRecord: ...

    def runs_with_stamp(self, stamp: str, limit: int = 10) -> tuple[str, ...]: ...

    def versions_of_run(self, run_id: str) -> list[VersionRecord]: ...

    def logged_models_of_run(self, run_id: str, experiment_id: str) -> list[LoggedModel]: ...

    def logged_model(self, model_id: str) -> LoggedModel | None: ...

    def set_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None: ...

    def delete_version_tag(self, name: str, version: str, key: str) -> None: ...

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None: ...

    def delete_logged_model_tag(self, model_id: str, key: str) -> None: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[ArtifactEntry]:
        """A run's artifact listing at `path` (its root when None)."""
        ...

    def location_listing(self, location: str, path: str | None) -> list[ArtifactEntry]:
        """The listing at `path` of an artifact location (a run's or a logged model's)."""
        ...

    def download(self, location: str, remote_path: str, local_path: Path) -> None:
        """One file of an artifact location, into `local_path`."""
        ...
