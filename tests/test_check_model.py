"""check-model (the deploy gate) against real components: a real `mlflow server` (sqlite, model
registry), models logged and registered through MLflow's own API, a bare git remote, a CI clone
of it, and a local DVC remote filled by a real `dvc push`."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from repro_hooks.cli import cli
from repro_hooks.git import Git
from repro_hooks.links.record import EVIDENCE_TAG, commit_record, dvc_tag_key
from repro_hooks.links.registry import propagate_link
from repro_hooks.tracking.mlflow import MlflowRegistry, MlflowTracker
from tests.dvc_helpers import dvc
from tests.helpers import built_once, commit, git, write
from tests.mlflow_fixtures import (
    MLFLOW_WARNINGS,
    MlflowServer,
    free_port,
    silent_server,
    status_server,
)

pytestmark = MLFLOW_WARNINGS

_counter = iter(range(1_000_000))


def client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def trivial_model() -> Any:
    import mlflow.pyfunc

    class Identity(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return model_input

    return Identity()


def log_and_register(uri: str, name: str, *more_names: str) -> tuple[str, str]:
    """A run that logs a pyfunc model registered as `name` (and registers it again under each of
    `more_names`), the way a training script does. Returns (run id, version of `name`)."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    try:
        # not the Default experiment: the shared template database gave it an artifact
        # location under the directory pytest started in
        found = client(uri).get_experiment_by_name("check-model")
        experiment = found.experiment_id if found else client(uri).create_experiment("check-model")
        with mlflow.start_run(experiment_id=experiment) as run:
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=trivial_model(),
                registered_model_name=name,
                pip_requirements=["mlflow"],
            )
        for other in more_names:
            mlflow.register_model(info.model_uri, other)
    finally:
        mlflow.set_tracking_uri(None)  # and MLFLOW_TRACKING_URI, which it had set
    return run.info.run_id, str(info.registered_model_version)


def link(
    uri: str,
    run_id: str,
    repo: Path,
    sha: str,
    branch: str | None = "main",
    *,
    statement: bool = True,
) -> dict[str, str]:
    """Write the run link exactly as tag-mlflow's delivery does (links.record's tags), on a run
    stamped at `sha` (the stamp's tags as links.stamp writes them), and the statement of the
    run's files (unsigned) it writes for a run whose stamp recorded them."""
    import uuid

    from mlflow.entities import RunTag

    from repro_hooks.deploy.artifacts import run_digests
    from repro_hooks.deploy.attest import publish_statement

    stamp = {
        "repro_hooks.clone": "c" * 32,
        "repro_hooks.stamp": uuid.uuid4().hex,
        "repro_hooks.head": sha,
        "repro_hooks.evidence": "tree",
    }
    record = commit_record(Git.discover(repo), sha, branch)
    tags = {**record.tags(), EVIDENCE_TAG: "stamp"}
    tags |= stamp
    client(uri).log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    if not statement:
        return tags
    files = {
        "artifacts": {"run": run_id, "files": run_digests(MlflowRegistry.of(client(uri)), run_id)}
    }
    outputs = [(o.path, o.hash_value) for o in record.outputs]
    publish_statement(
        MlflowTracker.of(client(uri)), Git.discover(repo), run_id, tags, {}, outputs, files, uri
    )
    return tags


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


@dataclass
class World:
    dev: Path  # where data is produced and trained on
    ci: Path  # the deploy job's clone (current directory)
    bare: Path
    uri: str

    def check(self, *args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(
            cli, ["check-model", "--tracking-uri", self.uri, *args], catch_exceptions=False
        )
        return result.exit_code, result.stdout, result.stderr

    def fetch(self) -> None:
        git(self.ci, "fetch", "-q", "origin")

    def model(self, name: str | None = None) -> tuple[str, str, str]:
        """Register a version from a run linked to dev's HEAD: (name, version, run id)."""
        name = name or f"m{next(_counter)}-{time.monotonic_ns()}"
        run_id, version = log_and_register(self.uri, name)
        link(self.uri, run_id, self.dev, head(self.dev))
        return name, version, run_id

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        return dict(client(self.uri).get_model_version(name, version).tags)


@pytest.fixture(scope="session")
def world_template(dvc_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per run, shared by the workers (DVC is slow; tests/helpers.built_once): a dev
    repository whose data is committed and pushed (git and DVC), its bare remote, the DVC
    remote, and a CI clone. Remote locations live in .dvc/config.local and git config, so a
    copy can be pointed at its own remotes."""
    from tests.dvc_helpers import clone_template

    def build(base: Path) -> None:
        dev = clone_template(dvc_template, base / "dev")
        bare = base / "remote.git"
        git(base, "init", "-q", "--bare", "-b", "main", str(bare))
        dvc(dev, "remote", "add", "--local", "-d", "store", str(base / "dvc-store"))
        write(dev / "data" / "train.txt", "one\ntwo\n")
        write(dev / "data" / "images" / "a.txt", "a\n")
        write(dev / "data" / "images" / "b.txt", "b\n")
        dvc(dev, "add", "-q", "data/train.txt", "data/images")
        commit(dev, "data")
        dvc(dev, "push", "-q")
        git(dev, "remote", "add", "origin", str(bare))
        git(dev, "push", "-q", "origin", "main")
        ci = base / "ci"
        git(base, "clone", "-q", str(bare), str(ci))
        shutil.copyfile(dev / ".dvc" / "config.local", ci / ".dvc" / "config.local")

    return built_once(tmp_path_factory, "deploy-world", build)


@pytest.fixture
def world(
    world_template: Path,
    tmp_path: Path,
    mlflow_server: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    base = tmp_path / "world"
    shutil.copytree(world_template, base, symlinks=True)
    for name in ("dev", "ci"):
        repo = base / name
        git(repo, "remote", "set-url", "origin", str(base / "remote.git"))
        local = repo / ".dvc" / "config.local"
        local.write_text(local.read_text().replace(str(world_template), str(base)))
    monkeypatch.chdir(base / "ci")
    return World(base / "dev", base / "ci", base / "remote.git", mlflow_server.url)


# ---- the gate passes, records, promotes ---------------------------------------------------------


def test_pass_is_read_only_then_record_and_promote(world: World) -> None:
    name, version, run_id = world.model()
    # a second registered model from the same run, and the run's MLflow 3 logged model
    code, out, err = world.check(f"models:/{name}/{version}")
    assert (code, out) == (0, ""), err
    assert f"models:/{name}/{version} (run {run_id}, {head(world.dev)[:12]}): passed" in err
    assert world.version_tags(name, version) == {}  # nothing written without --record
    code, _, err = world.check(f"models:/{name}/{version}", "--record", "--promote", "champion")
    assert code == 0, err
    tags = world.version_tags(name, version)
    assert tags["pre_deploy_checks"] == "PASSED"
    assert tags["pre_deploy_checks.reason"] == f"all checks passed at commit {head(world.dev)[:12]}"
    assert tags["git.commit"] == head(world.dev)
    assert tags["git.branch"] == "main"
    assert tags["git.repo_url"] == str(world.bare)
    run_tags = client(world.uri).get_run(run_id).data.tags
    assert tags["dvc.fingerprint"] == run_tags["dvc.fingerprint"]
    mv = client(world.uri).get_model_version_by_alias(name, "champion")
    assert str(mv.version) == version
    found = client(world.uri).search_model_versions(f"tags.`git.commit` = '{head(world.dev)}'")
    assert (name, version) in {(v.name, str(v.version)) for v in found}
    # the logged model got the link too (versions registered after the link)
    exp = client(world.uri).get_run(run_id).info.experiment_id
    (logged,) = client(world.uri).search_logged_models(
        [exp], filter_string=f"source_run_id = '{run_id}'"
    )
    assert logged.tags["git.commit"] == head(world.dev)
    # the alias URI resolves to the same version; a custom verdict key
    code, _, err = world.check(
        f"models:/{name}@champion", "--record", "--tag", "deploy.gate", "--registry-uri", world.uri
    )
    assert code == 0, err
    assert world.version_tags(name, version)["deploy.gate"] == "PASSED"


def test_every_format(world: World) -> None:
    name, version, _ = world.model()
    git(world.dev, "commit", "-q", "--allow-empty", "--no-verify", "-m", "not pushed")
    r2, v2 = log_and_register(world.uri, name)
    link(world.uri, r2, world.dev, head(world.dev))
    world.fetch()
    git(world.ci, "fetch", "-q", str(world.dev), "main")  # the commit is here, not on origin/main
    uri = f"models:/{name}/{v2}"
    code, out, _ = world.check(uri, "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert [(f["path"], f["rule"], f["commit"]) for f in doc["findings"]] == [
        (uri, "commit-unprotected", head(world.dev))
    ]
    code, out, _ = world.check(uri, "--format", "sarif")
    assert code == 1
    assert json.loads(out)["runs"][0]["results"][0]["ruleId"] == "commit-unprotected"
    code, out, _ = world.check(uri, "--format", "github")
    assert code == 1
    assert out.startswith("::error file=models%3A/") and "title=commit-unprotected" in out
    code, out, _ = world.check(uri)
    assert code == 1
    assert out.splitlines()[0] == (
        f"{uri}: commit {head(world.dev)[:12]} (run {r2}) is not on origin/main "
        f"(commit {head(world.dev)[:12]})"
    )
    assert "Merge the commit into origin/main" in out
    assert world.check(uri, "--branch", "FETCH_HEAD")[0] == 0  # --branch chooses
    assert world.check(f"models:/{name}/{version}")[0] == 0


# ---- each check fails on its own ------------------------------------------------------------------


def test_failed_checks_record_failed_and_never_promote(world: World) -> None:
    name, good, good_run = world.model()
    assert world.check(f"models:/{name}/{good}", "--promote", "champion")[0] == 0
    # data the commit references but nobody pushed, and a data file stored in git
    write(world.dev / "data" / "extra.txt", "not pushed\n")
    dvc(world.dev, "add", "-q", "data/extra.txt")
    write(world.dev / "weights.pkl", b"\x80\x04pickle")
    commit(world.dev, "more data")
    git(world.dev, "push", "-q", "origin", "main")
    world.fetch()
    run_id, bad = log_and_register(world.uri, name)
    link(world.uri, run_id, world.dev, head(world.dev))
    uri = f"models:/{name}/{bad}"
    code, out, err = world.check(uri, "--record", "--promote", "champion")
    assert code == 1, err
    rules = sorted((line.split(": ")[0], line) for line in out.splitlines() if ": " in line)
    paths = [p for p, _ in rules]
    assert "data/extra.txt" in paths and "weights.pkl" in paths
    assert "dvc-not-pushed" not in out  # rule ids are not shown in text; the message is
    assert "not in DVC remote 'store'" in out
    assert "data file stored in git" in out
    assert "alias 'champion' not moved" in err
    assert str(client(world.uri).get_model_version_by_alias(name, "champion").version) == good
    tags = world.version_tags(name, bad)
    assert tags["pre_deploy_checks"] == "FAILED"
    assert tags["pre_deploy_checks.reason"].startswith("data-in-git, dvc-not-pushed: ")
    # pushing the data fixes that check; the policy finding stays
    dvc(world.dev, "push", "-q")
    code, out, _ = world.check(uri, "--format", "json")
    assert code == 1
    assert [f["rule"] for f in json.loads(out)["findings"]] == ["data-in-git"]
    # the policy is the checkout's (or --config's), never the checked commit's own
    write(world.ci / "gate.toml", 'data-exclude = ["*.pkl"]\n')
    assert world.check(uri, "--config", "gate.toml")[0] == 0
    assert good_run != run_id


def test_data_mismatch_and_unlinked_and_deleted_runs(world: World) -> None:
    name, version, run_id = world.model()
    c = client(world.uri)
    key = dvc_tag_key("data/train.txt")
    recorded = c.get_run(run_id).data.tags[key]
    c.set_tag(run_id, key, "0" * 32)
    code, out, _ = world.check(f"models:/{name}/{version}", "--format", "json")
    assert code == 1
    messages = [f["message"] for f in json.loads(out)["findings"]]
    assert (
        f"data/train.txt: the run has {'0' * 32}, commit {head(world.dev)[:12]} records {recorded}"
        in messages
    )
    assert len(messages) == 1
    c.set_tag(run_id, key, recorded)
    fingerprint = c.get_run(run_id).data.tags["dvc.fingerprint"]
    c.set_tag(run_id, "dvc.fingerprint", "f" * 64)
    code, out, _ = world.check(f"models:/{name}/{version}")
    assert code == 1
    assert out.splitlines()[0].startswith(
        f"models:/{name}/{version}: dvc.fingerprint: the run has {'f' * 64}, commit "
    )
    assert out.splitlines()[0].endswith(f"gives {fingerprint} (commit {head(world.dev)[:12]})")
    c.set_tag(run_id, "dvc.fingerprint", fingerprint)
    c.set_tag(run_id, "dvc.stale/extra", "abc")  # a tag the commit does not record
    code, out, _ = world.check(f"models:/{name}/{version}")
    assert code == 1 and "dvc.stale/extra: on the run (abc), not recorded by commit" in out
    c.delete_tag(run_id, "dvc.stale/extra")
    assert world.check(f"models:/{name}/{version}")[0] == 0
    # a version from a run nobody linked
    unlinked_run, unlinked = log_and_register(world.uri, name)
    code, out, _ = world.check(f"models:/{name}/{unlinked}", "--record")
    assert code == 1
    assert out.startswith(
        f"models:/{name}/{unlinked}: run {unlinked_run} is linked to no commit (no git.commit tag)"
    )
    assert world.version_tags(name, unlinked)["pre_deploy_checks"] == "FAILED"
    assert "git.commit" not in world.version_tags(name, unlinked)
    # the run is deleted from the store
    c.delete_run(run_id)
    code, out, err = world.check(f"models:/{name}/{version}")
    assert (code, out.splitlines()[0]) == (1, f"models:/{name}/{version}: run {run_id} is deleted")
    assert "Traceback" not in out + err


# ---- bad input: one line, exit 2, nothing written ------------------------------------------


def test_unknown_model_version_alias(world: World) -> None:
    name, version, _ = world.model()
    cases = [
        (
            f"models:/nope-{name}/1",
            f"models:/nope-{name}/1: no registered model named 'nope-{name}'",
        ),
        (f"models:/{name}/99", f"models:/{name}/99: model {name!r} has no version 99"),
        (f"models:/{name}@ghost", f"models:/{name}@ghost: model {name!r} has no alias 'ghost'"),
        (
            "runs:/abc/model",
            "runs:/abc/model: not a model URI (expected models:/<name>/<version> "
            "or models:/<name>@<alias>)",
        ),
        (
            f"models:/{name}/Production",
            f"models:/{name}/Production: version 'Production' is not a "
            "number (stages are deprecated in MLflow: use an alias, models:/<name>@<alias>)",
        ),
    ]
    for uri, message in cases:
        # a good version first: nothing may be written for it either
        code, out, err = world.check(f"models:/{name}/{version}", uri, "--record", "--promote", "x")
        assert (code, out, err) == (2, "", f"repro-hooks: {message}\n"), uri
    assert world.version_tags(name, version) == {}
    assert client(world.uri).get_registered_model(name).aliases == {}
    code, _, err = world.check(f"models:/{name}/{version}", "--promote", "latest")
    assert code == 2 and "not a valid alias" in err
    code, _, err = world.check(f"models:/{name}/{version}", "--tag", "a..b")
    assert code == 2 and "not a valid MLflow tag key" in err


def test_no_repository_and_no_default_branch(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, version, _ = world.model()
    elsewhere = tmp_path / "not-a-repo"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = world.check(f"models:/{name}/{version}")
    assert (
        code == 2
        and out == ""
        and err.startswith("repro-hooks: ")
        and "not a git repository" in err
    )
    monkeypatch.chdir(world.dev)  # dev has origin but no origin/HEAD: falls back to origin/main
    assert world.check(f"models:/{name}/{version}")[0] == 0
    git(world.dev, "update-ref", "-d", "refs/remotes/origin/main")
    code, _, err = world.check(f"models:/{name}/{version}")
    assert code == 2
    assert err == (
        "repro-hooks: remote 'origin': no default branch fetched (git fetch origin, then "
        "git remote set-head origin --auto; or give --branch REF)\n"
    )
    code, _, err = world.check(f"models:/{name}/{version}", "--branch", "nope")
    assert (code, err) == (2, "repro-hooks: --branch nope: no such branch or commit here\n")


def test_shallow_clone_says_fetch(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = head(world.dev)
    name, version, _ = world.model()  # linked to `first`
    git(world.dev, "commit", "-q", "--allow-empty", "--no-verify", "-m", "later")
    git(world.dev, "push", "-q", "origin", "main")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{world.bare}", str(shallow))
    monkeypatch.chdir(shallow)
    code, out, err = world.check(f"models:/{name}/{version}", "--record")
    assert (code, out) == (2, "")
    assert err == (
        f"repro-hooks: commit {first[:12]}: not in this shallow clone; fetch the history first: "
        "git fetch --unshallow (in CI: a full-depth checkout)\n"
    )
    assert world.version_tags(name, version) == {}
    git(shallow, "fetch", "-q", "--unshallow")
    shutil.copyfile(world.ci / ".dvc" / "config.local", shallow / ".dvc" / "config.local")
    assert world.check(f"models:/{name}/{version}")[0] == 0


def test_commit_missing_without_shallow_is_a_failed_check(world: World) -> None:
    git(world.dev, "commit", "-q", "--allow-empty", "--no-verify", "-m", "never pushed")
    name, version, _ = world.model()
    code, out, _ = world.check(f"models:/{name}/{version}")
    assert code == 1
    assert f"commit {head(world.dev)[:12]} (run " in out and "is not in this repository" in out
    assert "Fetch the commit (git fetch origin)" in out


def test_server_down_or_hanging(world: World, tmp_path: Path) -> None:
    name, version, _ = world.model()
    down = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        cli, ["check-model", "--tracking-uri", down, "--timeout", "4", f"models:/{name}/{version}"]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"repro-hooks: {down}: connection refused (is the tracking server running?) "
        f"(while reading models:/{name}/{version})\n"
    )
    with silent_server() as hung:
        result = CliRunner().invoke(
            cli,
            [
                "check-model",
                "--tracking-uri",
                hung,
                "--timeout",
                "2",
                "--record",
                f"models:/{name}/{version}",
            ],
        )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"repro-hooks: {hung}: ")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
    assert world.version_tags(name, version) == {}
    with status_server(500) as (broken, _):
        result = CliRunner().invoke(cli, ["check-model", "--tracking-uri", broken, "models:/x/1"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"repro-hooks: {broken}: HTTP 500 from the tracking server (while reading models:/x/1)\n"
    )


def test_no_tracking_server_configured(world: World) -> None:
    result = CliRunner().invoke(cli, ["check-model", "models:/x/1"])
    assert result.exit_code == 2
    assert result.stderr == (
        "repro-hooks: no tracking server: give --tracking-uri, set MLFLOW_TRACKING_URI, or "
        "[tool.repro-hooks.mlflow] tracking-uri\n"
    )


# ---- the link reaches the registry ---------------------------------------------------------------


def test_propagate_link_tags_versions_and_logged_models(world: World) -> None:
    stem = f"p{next(_counter)}-{time.monotonic_ns()}"
    run_id, v1 = log_and_register(world.uri, f"{stem}-a", f"{stem}-b")
    c = client(world.uri)
    tags = link(world.uri, run_id, world.dev, head(world.dev))
    done = propagate_link(
        MlflowRegistry.of(c), run_id, {**tags, "dvc.data/train.txt": "x", "other": "y"}
    )
    assert [v for v in done.versions] == [(f"{stem}-a", v1), (f"{stem}-b", "1")]
    assert len(done.logged_models) == 1
    want = {k: tags[k] for k in ("git.commit", "git.branch", "git.repo_url", "dvc.fingerprint")}
    for model in (f"{stem}-a", f"{stem}-b"):
        assert dict(c.get_model_version(model, "1").tags) == want
    logged = c.get_logged_model(done.logged_models[0])
    assert {k: logged.tags[k] for k in want} == want
    assert "dvc.data/train.txt" not in logged.tags
    # a relink (after a rewrite, to a detached HEAD): new commit, and no stale branch left
    git(world.dev, "commit", "-q", "--allow-empty", "--no-verify", "-m", "rewritten")
    relinked = commit_record(Git.discover(world.dev), head(world.dev), None).tags()
    propagate_link(MlflowRegistry.of(c), run_id, relinked)
    for model in (f"{stem}-a", f"{stem}-b"):
        version_tags = dict(c.get_model_version(model, "1").tags)
        assert version_tags["git.commit"] == head(world.dev)
        assert "git.branch" not in version_tags
    assert "git.branch" not in c.get_logged_model(done.logged_models[0]).tags
    # an unlinked run propagates nothing
    other_run, _ = log_and_register(world.uri, f"{stem}-c")
    assert propagate_link(MlflowRegistry.of(c), other_run, {}).versions == ()
    assert dict(c.get_model_version(f"{stem}-c", "1").tags) == {}


def test_version_registered_after_link_gets_tags_when_gate_records(world: World) -> None:
    name, version, run_id = world.model()  # linked after registration: version has no tags
    assert world.version_tags(name, version) == {}
    from repro_hooks.links.record import COMMIT_TAG

    code, _, _ = world.check(f"models:/{name}/{version}", "--promote", "staging")
    assert code == 0
    assert world.version_tags(name, version)[COMMIT_TAG] == head(world.dev)
    assert run_id


@pytest.mark.e2e
def test_link_delivery_reaches_the_registry(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """tag-mlflow's own delivery tags the versions of the run it links."""
    from tests.helpers import run_cli
    from tests.mlflow_fixtures import wait_delivered

    name = f"d{next(_counter)}-{time.monotonic_ns()}"
    run_id, version = log_and_register(world.uri, name)
    monkeypatch.chdir(world.dev)
    # the run was made here, in the test process (no stamp, MLflow's source commit is not
    # dev's): the evidence rules refuse it, so the link is forced
    queued = run_cli(
        world.dev, "tag-mlflow", "--run-id", run_id, "--force", "--tracking-uri", world.uri
    )
    assert queued.returncode == 0, queued.stdout + queued.stderr
    CliRunner().invoke(cli, ["tag-mlflow", "--sync", "--tracking-uri", world.uri])
    wait_delivered(world.dev)
    assert client(world.uri).get_run(run_id).data.tags["git.commit"] == head(world.dev)
    assert world.version_tags(name, version)["git.commit"] == head(world.dev)


def test_propagation_note_never_fails_the_link(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repro_hooks.links.registry import propagation_note

    name, version, run_id = world.model()
    tags = client(world.uri).get_run(run_id).data.tags
    note = propagation_note(MlflowRegistry.of(client(world.uri)), run_id, tags)
    assert note.startswith(f"; tagged models:/{name}/{version}, logged model m-")
    assert world.version_tags(name, version)["git.commit"] == head(world.dev)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with status_server(500) as (url, _):
        assert propagation_note(MlflowRegistry.of(client(url)), run_id, tags) == (
            "; model registry not updated: HTTP 500 from the tracking server"
        )


@pytest.mark.e2e
def test_forced_link_fails_the_gate_unless_allowed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tag-mlflow --run-id` refuses a run its commit does not describe;
    `--force` links it and says so; check-model fails that link unless --allow-forced."""
    from tests.helpers import cli_here

    name = f"f{next(_counter)}-{time.monotonic_ns()}"
    run_id, version = log_and_register(world.uri, name)
    refused = cli_here(world.dev, "tag-mlflow", "--run-id", run_id, "--tracking-uri", world.uri)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"run {run_id} not linked: " in refused.stdout
    assert "git.commit" not in client(world.uri).get_run(run_id).data.tags
    forced = cli_here(
        world.dev, "tag-mlflow", "--run-id", run_id, "--force", "--tracking-uri", world.uri
    )
    assert forced.returncode == 0, forced.stdout + forced.stderr
    code, out, err = world.check(f"models:/{name}/{version}")
    assert code == 1, out + err
    assert out.startswith(
        f"models:/{name}/{version}: run {run_id}'s link was forced by Test Committer "
        "<committer@example.com> against the evidence rules ("
    )
    assert "--allow-forced" in out
    code, out, err = world.check(f"models:/{name}/{version}", "--allow-forced")
    assert (code, out) == (0, ""), out + err
    # a link written by hand (no repro_hooks.link tag) fails the same way
    client(world.uri).delete_tag(run_id, EVIDENCE_TAG)
    code, out, _ = world.check(f"models:/{name}/{version}")
    assert code == 1
    assert "link was not made by tag-mlflow (no repro_hooks.link tag: written by hand?)" in out
