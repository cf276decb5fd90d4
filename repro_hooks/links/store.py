"""The MLflow adapter: every call tag-mlflow makes to a tracking store, through MlflowClient.

Imported only by the delivery process (never by the commit-stage command): `import mlflow`
alone costs over a second. The fluent API is avoided on purpose: `mlflow.search_runs()` creates
the experiment named by MLFLOW_EXPERIMENT_NAME when it is missing; MlflowClient never does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from repro_hooks.links.core import (
    COMMIT_TAG,
    DATASET_SOURCE_TYPE,
    MAX_DIGEST,
    PARENT_RUN_TAG,
    SOURCE_COMMIT_TAG,
    RecordedOutput,
    RunCandidate,
)

PAGE = 50
MAX_PAGES = 20
TAGS_PER_BATCH = 100  # MLflow's limit per log-batch request
INPUTS_PER_CALL = 500
MAX_DATASET_NAME = 500
DATASET_CONTEXT_TAG = "mlflow.data.context"  # an input tag (on the run's dataset input)
DATASET_CONTEXT = "dvc"


class StoreError(Exception):
    """A tracking-store answer that means "nothing to do here" for one job (not a failure)."""


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


def tag_equals(key: str, value: str) -> str:
    """A search filter clause `tags.<key> = '<value>'` (values here are ids and SHAs)."""
    safe = "".join(c for c in value if c.isalnum() or c in "-_.")
    return f"tags.`{key}` = '{safe}'"


def active_experiment_ids(client: Any) -> list[str]:
    """Ids of every active experiment of the store, all pages."""
    from mlflow.entities import ViewType

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


class MlflowStore:
    def __init__(self, uri: str) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)

    def experiment_ids(self, selection: Sequence[str]) -> tuple[list[str], list[str]]:
        """Ids of the selected experiments (names or ids; all active ones when empty), and a note
        per selected experiment that does not exist. Nothing is ever created."""
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
        self, experiment_ids: Sequence[str], before_ms: int, where: str | None = None
    ) -> Iterator[RunCandidate]:
        """Active runs started before `before_ms` (and matching `where`), newest first."""
        from mlflow.entities import ViewType

        clause = f"attributes.start_time < {int(before_ms)}"
        if where:
            clause += f" AND {where}"
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

    def runs_with_stamp(self, stamp: str, limit: int = 10) -> list[str]:
        """Ids of the active runs, in any active experiment, carrying the stamp id `stamp`."""
        return runs_with_stamp(self.client, stamp, limit)

    def run(self, run_id: str) -> RunCandidate:
        """One run by id; StoreError if it does not exist or is deleted."""
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

    def children(self, run: RunCandidate) -> list[RunCandidate]:
        """Every run nested under `run` (mlflow.parentRunId, any depth), in its experiment."""
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
        """Every active run whose `git.commit` is `commit` (nested runs too), newest first."""
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

    def run_inputs(self, run_id: str) -> list[tuple[str, str, str]]:
        """The run's dataset inputs logged by a link: (name, digest, source), by name."""
        run = self.client.get_run(run_id)
        inputs = getattr(run, "inputs", None)
        found = []
        for item in getattr(inputs, "dataset_inputs", None) or ():
            dataset = item.dataset
            if dataset.source_type == DATASET_SOURCE_TYPE:
                found.append((dataset.name, dataset.digest, dataset.source))
        return sorted(found)

    def experiment_name(self, experiment_id: str) -> str:
        """The experiment's name ("" when it cannot be read)."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_experiment(experiment_id).name)
        except MlflowException:
            return ""

    def tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.tags)

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
