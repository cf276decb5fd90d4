"""Which run a commit links to, on a shared tracking server: the run stamp (the real
`mlflow.run_context_provider` plugin in real training processes), the code and data rules,
sweeps, rewrites and merges. Real `mlflow server`, real git, pre-commit and DVC."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from repro_hooks.links.core import dvc_tag_key
from repro_hooks.links.stamp import load_record
from tests.dvc_helpers import dvc
from tests.helpers import cli_here, commit, git, install_local_hooks, run_cli, write
from tests.mlflow_fixtures import MlflowServer, wait_delivered
from tests.stamp_helpers import (
    client,
    dvc_file,
    md5_of,
    run_script,
    stamped_run,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

HOOKS = ["mlflow-tag-commit", "mlflow-relink-rewritten", "mlflow-tag-merge"]
HOOK_TYPES = ["post-commit", "post-rewrite", "post-merge"]

# The everyday loop: read the data, overwrite the DVC-tracked model, log a run.
TRAIN = """\
import mlflow, pathlib, sys
data = pathlib.Path("data/train.csv").read_bytes()
with mlflow.start_run() as run:
    mlflow.log_param("rows", data.count(b"\\n"))
    pathlib.Path("models").mkdir(exist_ok=True)
    pathlib.Path("models/model.pkl").write_bytes(b"model of " + data + sys.argv[-1].encode())
print(run.info.run_id)
"""


def tags(uri: str, run_id: str) -> dict[str, str]:
    return dict(client(uri).get_run(run_id).data.tags)


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def sync(repo: Path) -> subprocess.CompletedProcess[str]:
    """Deliver everything queued, in the foreground (waits for a detached delivery). In this
    process: MLflow is imported once per worker, not once per sync."""
    return cli_here(repo, "tag-mlflow", "--sync", "--timeout", "120")


def log_text(repo: Path) -> str:
    path = Path(git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir").strip())
    log = path / "repro-hooks" / "delivery.log"
    return log.read_text() if log.exists() else ""


def dvc_repo(path: Path) -> Path:
    """A git + DVC repository with data/train.csv under DVC, hooks installed."""
    git(path.parent, "init", "-q", "-b", "main", path.name)
    git(path, "commit", "-q", "--allow-empty", "--no-verify", "-m", "root")
    dvc(path, "init", "-q")
    write(path / "data" / "train.csv", "a,b\n1,2\n")
    dvc(path, "add", "-q", "data/train.csv")
    write(path / ".gitignore", "train.py\n")  # scratch scripts stay out of the commits
    # the detached deliveries' deadline on a loaded shared machine (importing mlflow can take 10 s)
    write(path / "pyproject.toml", "[tool.repro-hooks.mlflow]\ntimeout = 120\n")
    install_local_hooks(path, HOOKS, HOOK_TYPES)
    git(path, "add", "-A")
    git(path, "commit", "-q", "--no-verify", "-m", "data")
    return path


def hook_commit(repo: Path, message: str, *paths: str) -> None:
    proc = commit(repo, message, *paths, verify=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def shared(tmp_path: Path, mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh experiment on the session's shared server, selected for every process."""
    name = f"exp-{tmp_path.name}"
    client(mlflow_server.url).create_experiment(name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", name)
    return mlflow_server.url


# ---- the stamp ---------------------------------------------------------------------------------


@pytest.mark.e2e
def test_stamp_records_clone_code_and_data_at_start_and_end(
    tmp_path: Path, shared: str, stamp_plugin: Path
) -> None:
    repo = dvc_repo(tmp_path / "repo")
    run_id = run_script(repo, TRAIN, shared, stamp_plugin)
    got = tags(shared, run_id)
    common = repo / ".git" / "repro-hooks"
    clone = (common / "clone-id").read_text().strip()
    assert got["repro_hooks.clone"] == clone
    assert got["repro_hooks.head"] == head(repo)
    assert got["repro_hooks.clean"] == "true"  # train.py is ignored; nothing tracked changed
    record = load_record(str(repo / ".git"), got["repro_hooks.stamp"])
    assert record is not None
    data = b"a,b\n1,2\n"
    assert record["start"] == {"data/train.csv": md5_of(data)}
    model = (repo / "models" / "model.pkl").read_bytes()
    assert record["end"]["models/model.pkl"] == md5_of(model)  # written by the run
    assert record["end"]["data/train.csv"] == md5_of(data)
    assert record["root"] == str(repo)
    # MLflow's own tags are MLflow's: the stamp adds only repro_hooks.* keys
    ours = {k for k in got if not k.startswith("mlflow.")}
    assert ours == {f"repro_hooks.{k}" for k in ("clone", "stamp", "head", "clean", "data")}


def test_stamp_never_raises_into_training(
    tmp_path: Path, sqlite_store: str, stamp_plugin: Path
) -> None:
    """A repository git cannot read (a broken .git file): the run starts, unstamped."""
    repo = tmp_path / "broken"
    repo.mkdir()
    write(repo / ".git", "gitdir: /nonexistent/place\n")
    run_id = run_script(repo, TRAIN.replace('data/train.csv").read_bytes()', 'x").name.encode()'),
                          sqlite_store, stamp_plugin)  # fmt: skip
    assert not any(k.startswith("repro_hooks.") for k in tags(sqlite_store, run_id))


# ---- which run: other clones, notebooks, data the run never saw --------------------------------


@pytest.mark.e2e
def test_shared_server_two_clones_and_a_notebook_outside(
    tmp_path: Path, shared: str, stamp_plugin: Path
) -> None:
    mine = dvc_repo(tmp_path / "mine")
    my_run = run_script(mine, TRAIN, shared, stamp_plugin, "mine")
    # a colleague's clone of the same repository, on the same server, trains after me
    git(tmp_path, "clone", "-q", str(mine), "colleague")
    theirs = tmp_path / "colleague"
    write(theirs / "data" / "train.csv", (mine / "data" / "train.csv").read_bytes())
    their_run = run_script(theirs, TRAIN, shared, stamp_plugin, "theirs")
    # and a notebook outside any repository logs a run after both
    outside = tmp_path / "notebooks"
    outside.mkdir()
    nb_run = run_script(
        outside, "import mlflow\nwith mlflow.start_run() as r: pass\nprint(r.info.run_id)\n",
        shared, stamp_plugin, "nb.py",
    )  # fmt: skip
    dvc(mine, "add", "-q", "models/model.pkl")
    hook_commit(mine, "model")
    out = sync(mine)
    assert out.returncode == 0, out.stdout + out.stderr
    wait_delivered(mine)
    got = tags(shared, my_run)
    assert got["git.commit"] == head(mine), log_text(mine)
    model = (mine / "models" / "model.pkl").read_bytes()
    assert got[dvc_tag_key("models/model.pkl")] == md5_of(model)
    assert got["repro_hooks.link"] == "stamp"
    for other in (their_run, nb_run):
        assert not any(k.startswith(("git.", "dvc.")) for k in tags(shared, other))
    # the UI: the DVC dataset input has a context and a source naming the commit
    inputs = client(shared).get_run(my_run).inputs.dataset_inputs
    by_name = {i.dataset.name: i for i in inputs}
    assert set(by_name) == {"data/train.csv"}  # what it read; the model it made is no input
    source = json.loads(by_name["data/train.csv"].dataset.source)
    assert source["rev"] == head(mine)
    assert source["path"] == "data/train.csv"
    assert [(t.key, t.value) for t in by_name["data/train.csv"].tags] == [
        ("mlflow.data.context", "dvc")
    ]


@pytest.mark.e2e
def test_data_changed_after_the_run_is_not_linked(
    tmp_path: Path, shared: str, stamp_plugin: Path
) -> None:
    repo = dvc_repo(tmp_path / "repo")
    run_id = run_script(repo, TRAIN, shared, stamp_plugin)  # trains on data A, finishes
    write(repo / "data" / "train.csv", "a,b\n3,4\n")  # data B, after the run
    dvc(repo, "add", "-q", "data/train.csv")
    hook_commit(repo, "new data, no new run", "data/train.csv.dvc")
    out = sync(repo)
    wait_delivered(repo)
    assert "git.commit" not in tags(shared, run_id)
    text = out.stdout + log_text(repo)
    assert "nothing linked: no qualifying run" in text
    assert f"{run_id}: data/train.csv: changed after the run ended" in text


@pytest.mark.e2e
def test_new_data_made_before_the_run_and_added_after_is_linked(
    tmp_path: Path, shared: str, stamp_plugin: Path
) -> None:
    """The demo's loop: new data written, a run trains on it while no DVC file describes it
    yet, then `dvc add` and the commit: linked (the end state holds every untracked data file,
    not only those the run wrote). Data changed after such a run ended is not."""
    repo = dvc_repo(tmp_path / "repo")
    # untracked, described by no DVC file; over 1 MiB each, so the end state (taken in the
    # exit handlers, where no thread can start) hashes them as large files
    for name in ("extra.csv", "more.csv"):
        write(repo / "data" / name, "c,d\n" + f"{name},8\n" * 150_000)
    run_id = run_script(repo, TRAIN, shared, stamp_plugin)
    dvc(repo, "add", "-q", "data/extra.csv", "data/more.csv")
    hook_commit(repo, "new data", "data/extra.csv.dvc", "data/more.csv.dvc", "data/.gitignore")
    first = head(repo)
    sync(repo)
    wait_delivered(repo)
    assert tags(shared, run_id)["git.commit"] == first, log_text(repo)
    write(repo / "data" / "late.csv", "e\n1\n")
    late = run_script(repo, TRAIN, shared, stamp_plugin)
    write(repo / "data" / "late.csv", "e\n2\n")  # changed after the run ended
    dvc(repo, "add", "-q", "data/late.csv")
    hook_commit(repo, "late data", "data/late.csv.dvc", "data/.gitignore")
    out = sync(repo)
    wait_delivered(repo)
    assert "git.commit" not in tags(shared, late), out.stdout
    assert tags(shared, run_id)["git.commit"] == first


@pytest.mark.e2e
def test_run_still_running_while_the_data_is_regenerated(
    tmp_path: Path, shared: str, stamp_plugin: Path
) -> None:
    repo = dvc_repo(tmp_path / "repo")
    running = (
        "import mlflow, os\nrun = mlflow.start_run()\nprint(run.info.run_id, flush=True)\n"
        "os._exit(0)  # the process is gone, the run stays RUNNING, no end state recorded\n"
    )
    run_id = run_script(repo, running, shared, stamp_plugin)
    assert client(shared).get_run(run_id).info.status == "RUNNING"
    write(repo / "data" / "train.csv", "a,b\n5,6\n")
    dvc(repo, "add", "-q", "data/train.csv")
    hook_commit(repo, "regenerated", "data/train.csv.dvc")
    out = sync(repo)
    wait_delivered(repo)
    assert "git.commit" not in tags(shared, run_id)
    assert "changed since the run started" in out.stdout + log_text(repo)


# ---- sweeps ------------------------------------------------------------------------------------

SWEEP = """\
import mlflow
with mlflow.start_run() as parent:
    for lr in (0.1, 0.01):
        with mlflow.start_run(nested=True):
            mlflow.log_param("lr", lr)
print(parent.info.run_id)
"""

GRID = """\
import mlflow
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True)
X, y = make_classification(n_samples=40, n_features=4, random_state=0)
with mlflow.start_run() as parent:
    GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(X, y)
print(parent.info.run_id)
"""


@pytest.mark.e2e
def test_sweeps_link_the_parent_and_children_carry_it(
    tmp_path: Path, shared: str, stamp_plugin: Path
) -> None:
    repo = dvc_repo(tmp_path / "repo")
    write(repo / ".gitignore", "train.py\ngrid.py\n")
    git(repo, "commit", "-q", "--no-verify", "-am", "ignore scripts")
    sweep = run_script(repo, SWEEP, shared, stamp_plugin)
    grid = None
    try:
        import sklearn  # noqa: F401
    except ImportError:
        pass
    else:
        grid = run_script(repo, GRID, shared, stamp_plugin, "grid.py")
    git(repo, "commit", "-q", "--allow-empty", "-m", "after the sweep")  # hooks run
    sync(repo)
    wait_delivered(repo)
    c = client(shared)
    exp = c.get_run(sweep).info.experiment_id
    newest = grid or sweep
    assert tags(shared, newest)["git.commit"] == head(repo), log_text(repo)  # latest parent
    children = c.search_runs([exp], f"tags.`mlflow.parentRunId` = '{newest}'")
    assert len(children) >= 2
    assert {r.data.tags.get("git.commit") for r in children} == {head(repo)}
    if grid is not None:  # "latest": the older sweep is left alone
        assert "git.commit" not in tags(shared, sweep)


@pytest.mark.e2e
def test_policy_links_every_run_since_the_previous_commit(
    tmp_path: Path, shared: str, stamp_plugin: Path
) -> None:
    repo = dvc_repo(tmp_path / "repo")
    write(
        repo / "pyproject.toml",
        '[tool.repro-hooks.mlflow]\ntimeout = 120\nlink = "all-since-previous-commit"\n',
    )
    git(repo, "add", "pyproject.toml")
    git(repo, "commit", "-q", "--no-verify", "-m", "policy")
    first = stamped_run(shared, repo, os.environ["MLFLOW_EXPERIMENT_NAME"])
    second = stamped_run(shared, repo, os.environ["MLFLOW_EXPERIMENT_NAME"])
    git(repo, "commit", "-q", "--allow-empty", "-m", "both runs")
    sync(repo)
    wait_delivered(repo)
    assert tags(shared, first)["git.commit"] == head(repo), log_text(repo)
    assert tags(shared, second)["git.commit"] == head(repo)


# ---- rewrites and merges -----------------------------------------------------------------------


@pytest.mark.e2e
def test_amend_reword_squash_and_merge(tmp_path: Path, shared: str, stamp_plugin: Path) -> None:
    repo = dvc_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", "feature")
    run_id = run_script(repo, TRAIN, shared, stamp_plugin)
    dvc(repo, "add", "-q", "models/model.pkl")
    hook_commit(repo, "model")
    sync(repo)
    wait_delivered(repo)
    original = head(repo)
    assert tags(shared, run_id)["git.commit"] == original, log_text(repo)

    # an amend that changes the data: the run never saw it, it keeps its original link
    write(repo / "data" / "train.csv", "a,b\n7,8\n")
    dvc(repo, "add", "-q", "data/train.csv")
    git(repo, "add", "-A")
    proc = subprocess.run(["git", "commit", "--amend", "-m", "model, new data"], cwd=repo,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = sync(repo)
    wait_delivered(repo)
    assert tags(shared, run_id)["git.commit"] == original
    said = out.stdout + log_text(repo)  # the sync or the detached delivery, whichever went first
    assert "keeps its link: data/train.csv: changed after the run ended" in said
    subprocess.run(["git", "reset", "-q", "--hard", original], cwd=repo, check=True)
    dvc(repo, "checkout", "-q", "-f")

    # reword through `rebase -i`: same code and data, the link moves and keeps git.branch
    env = {**os.environ, "GIT_SEQUENCE_EDITOR": "sed -i 's/^pick/reword/'",
           "GIT_EDITOR": "sed -i '1s/.*/model, reworded/'"}  # fmt: skip
    proc = subprocess.run(["git", "rebase", "-i", "HEAD~1"], cwd=repo, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sync(repo)
    wait_delivered(repo)
    reworded = head(repo)
    assert reworded != original
    got = tags(shared, run_id)
    assert got["git.commit"] == reworded, log_text(repo)
    assert got["git.branch"] == "feature"

    # a merge that brings code the run never ran: post-merge runs, the run is not moved
    git(repo, "checkout", "-q", "main")
    write(repo / "lib.py", "X = 1\n")
    git(repo, "add", "lib.py")
    git(repo, "commit", "-q", "--no-verify", "-m", "lib on main")
    git(repo, "checkout", "-q", "feature")
    later = stamped_run(shared, repo, os.environ["MLFLOW_EXPERIMENT_NAME"])  # clean, at feature
    proc = subprocess.run(["git", "merge", "--no-ff", "-q", "-m", "merge main", "main"],
                          cwd=repo, capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = sync(repo)
    wait_delivered(repo)
    assert "git.commit" not in tags(shared, later)
    said = out.stdout + log_text(repo)
    assert "lib.py: changed by the commit, but the run ran the version at its HEAD" in said
    # a merge that changes no code or data the run saw is linked like any commit
    git(repo, "checkout", "-q", "-b", "side", "feature")
    write(repo / ".gitignore", "train.py\n*.tmp\n")
    git(repo, "commit", "-q", "--no-verify", "-am", "ignore tmp")
    git(repo, "checkout", "-q", "feature")
    merged_run = stamped_run(shared, repo, os.environ["MLFLOW_EXPERIMENT_NAME"])
    proc = subprocess.run(["git", "merge", "--no-ff", "-q", "-m", "merge side", "side"],
                          cwd=repo, capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sync(repo)
    wait_delivered(repo)
    assert tags(shared, merged_run)["git.commit"] == head(repo), log_text(repo)

    # squash (rebase -i fixup) a code commit and the model commit made after its run
    write(repo / "lib2.py", "Y = 2\n")
    git(repo, "add", "lib2.py")
    git(repo, "commit", "-q", "--no-verify", "-m", "lib2")
    squashed_run = run_script(repo, TRAIN, shared, stamp_plugin, "squash")
    dvc(repo, "add", "-q", "models/model.pkl")
    hook_commit(repo, "model again")
    sync(repo)
    wait_delivered(repo)
    assert tags(shared, squashed_run)["git.commit"] == head(repo), log_text(repo)
    env = {**os.environ, "GIT_SEQUENCE_EDITOR": "sed -i '2s/^pick/fixup/'"}
    proc = subprocess.run(["git", "rebase", "-i", "HEAD~2"], cwd=repo, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sync(repo)
    wait_delivered(repo)
    got = tags(shared, squashed_run)
    assert got["git.commit"] == head(repo), log_text(repo)
    assert got["git.branch"] == "feature"


# ---- without the stamp -------------------------------------------------------------------------


@pytest.mark.e2e
def test_without_the_stamp_only_what_mlflow_proves(
    tmp_path: Path, shared: str, stamp_plugin: Path
) -> None:
    repo = dvc_repo(tmp_path / "repo")
    plain = "import mlflow\nwith mlflow.start_run() as r: pass\nprint(r.info.run_id)\n"
    # started by path inside this work tree, at HEAD; the commit changes neither code nor data
    linked = run_script(repo, plain, shared, None, absolute="1")
    write(repo / ".gitignore", "train.py\n*.tmp\n")
    hook_commit(repo, "ignore tmp")
    sync(repo)
    wait_delivered(repo)
    got = tags(shared, linked)
    assert got["git.commit"] == head(repo), log_text(repo)
    assert got["repro_hooks.link"] == "mlflow-source"
    assert not any(k.startswith("repro_hooks.") and k != "repro_hooks.link" for k in got)

    # the commit changes data after an unstamped run: not proven, left alone, said why
    left = run_script(repo, plain, shared, None, absolute="1")
    write(repo / "data" / "train.csv", "a,b\n9,9\n")
    dvc(repo, "add", "-q", "data/train.csv")
    hook_commit(repo, "new data")
    out = sync(repo)
    wait_delivered(repo)
    assert "git.commit" not in tags(shared, left)
    assert "which data the run saw is not proven" in out.stdout + log_text(repo)

    # a relative source name (`python train.py`) does not prove which clone ran it
    relative = run_script(repo, plain, shared, None)
    write(repo / ".gitignore", "train.py\n*.tmp\n*.bak\n")
    hook_commit(repo, "ignore bak")
    out = sync(repo)
    wait_delivered(repo)
    assert "git.commit" not in tags(shared, relative)
    assert "does not prove which clone it ran in" in out.stdout + log_text(repo)


def test_stamped_run_in_process_helper_is_linked(
    repo: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-process stamped runs other tests use qualify like real ones."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    data = b"rows\n"
    write(repo / "d", data)
    write(repo / "d.dvc", dvc_file("d", data))
    write(repo / ".gitignore", "/d\n")
    run_id = stamped_run(sqlite_store, repo)
    commit(repo, "data")
    assert run_cli(repo, "tag-mlflow").returncode == 0
    out = sync(repo)
    assert f"linked to run {run_id}" in out.stdout, out.stdout + out.stderr
    got: dict[str, Any] = tags(sqlite_store, run_id)
    assert got["git.commit"] == head(repo)
    assert got["dvc.d"] == md5_of(data)
