"""Run links carried onto model versions and logged models, over the model registry's port
(tracking/port.py ModelRegistry; MLflow's adapter is tracking/mlflow.py), and the bounds that
`check-model` and `show` put on a registry's answers.

`propagate_link(registry, run_id, tags)` is the one entry point the link delivery calls after it
writes a run link: every model version whose `run_id` is the run and every MLflow 3 logged model
whose `source_run_id` is the run get the same `git.commit`, `git.branch`, `git.repo_url` and
`dvc.fingerprint` (the per-output `dvc.*` tags stay on the run: a version points at its run).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass

from repro_hooks.links.record import BRANCH_TAG, COMMIT_TAG, FINGERPRINT_TAG, REPO_URL_TAG
from repro_hooks.tracking.port import ModelRegistry, StoreError

PROPAGATED_TAGS = (COMMIT_TAG, BRANCH_TAG, REPO_URL_TAG, FINGERPRINT_TAG)


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


def propagate_link(registry: ModelRegistry, run_id: str, tags: Mapping[str, str]) -> Propagation:
    """Put the run link's commit and data tags on every model version and logged model made from
    the run. Idempotent: only differing tags are written. A propagated key the new link lacks
    (a relink to a detached HEAD drops `git.branch`) is deleted, so a version never shows a mix
    of two links. Does nothing when `tags` carries no `git.commit`."""
    wanted = link_tags(tags)
    if COMMIT_TAG not in wanted:
        return Propagation()
    stale = [k for k in PROPAGATED_TAGS if k not in wanted]
    versions: list[tuple[str, str]] = []
    for mv in registry.versions_of_run(run_id):
        have = dict(mv.tags)
        changes = {k: v for k, v in wanted.items() if have.get(k) != v}
        if changes:
            registry.set_version_tags(mv.name, mv.version, changes)
        for key in stale:
            if key in have:
                registry.delete_version_tag(mv.name, mv.version, key)
        versions.append((mv.name, mv.version))
    models: list[str] = []
    experiment_id = registry.run(run_id).experiment_id
    if experiment_id is None:
        raise StoreError(f"run {run_id} does not exist")
    for model in registry.logged_models_of_run(run_id, experiment_id):
        have = dict(model.tags)
        changes = {k: v for k, v in wanted.items() if have.get(k) != v}
        if changes:
            registry.set_logged_model_tags(model.model_id, changes)
        for key in stale:
            if key in have:
                registry.delete_logged_model_tag(model.model_id, key)
        models.append(model.model_id)
    return Propagation(tuple(sorted(versions)), tuple(sorted(models)))


def propagation_note(registry: ModelRegistry, run_id: str, tags: Mapping[str, str]) -> str:
    """For the link delivery: propagate, and say so in a few words ("" when the run has no
    model). A registry error never fails the run link (links come first; check-model --record
    propagates again), it only becomes a note."""
    try:
        done = propagate_link(registry, run_id, tags)
    except Exception as exc:
        return f"; model registry not updated: {one_line(exc)}"
    if not done.versions and not done.logged_models:
        return ""
    return f"; tagged {done.describe()}"


def tag_version(registry: ModelRegistry, name: str, version: str, tags: Mapping[str, str]) -> None:
    """Write `tags` on a model version, in key order."""
    registry.set_version_tags(name, version, dict(sorted(tags.items())))


# ---- bounded time ---------------------------------------------------------------------------


class RegistryTimeout(BaseException):
    """The deadline passed (BaseException: no library may swallow it)."""


@contextmanager
def bounded(env: MutableMapping[str, str], seconds: float) -> Iterator[None]:
    """MLflow's HTTP client told to give up fast and a SIGALRM deadline over the whole block
    (main thread only): the link delivery's bounds (links/delivery.py). The knobs are restored
    afterwards."""
    from repro_hooks.environ import restored
    from repro_hooks.links.delivery import HTTP_KNOBS, deadline, set_http_bounds

    with restored(env, HTTP_KNOBS):
        set_http_bounds(env, seconds)
        with deadline(seconds, RegistryTimeout):
            yield


@contextmanager
def asking(safe_uri: str, seconds: float, what: str, *, needs: str = "") -> Iterator[None]:
    """One bounded question to the tracking store (`bounded`), the client's warnings silenced,
    any error as one line naming the store and what was asked; `needs`: the command, whose
    missing client is then said as such."""
    import os
    import warnings

    from repro_hooks.errors import ReproHooksError

    try:
        with bounded(os.environ, seconds), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except RegistryTimeout:
        raise ReproHooksError(
            f"{safe_uri}: no answer within {seconds:g}s while {what} (tracking server down or "
            "hanging?)"
        ) from None
    except ReproHooksError:
        raise
    except ImportError:
        if not needs:
            raise
        from repro_hooks.snippets import pip_install

        raise ReproHooksError(
            f"{needs} needs MLflow, which is not installed ({pip_install('mlflow')})"
        ) from None
    except Exception as exc:
        raise ReproHooksError(f"{safe_uri}: {one_line(exc)} (while {what})") from None


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
