"""Which run a commit links to, on a shared tracking server: the run stamp (the real
`mlflow.run_context_provider` plugin in real training processes), the code and data rules,
sweeps, rewrites and merges. Real `mlflow server`, real git, pre-commit and DVC."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from repro_hooks.links.record import dvc_tag_key
from repro_hooks.links.stamp import load_record
from tests.dvc_helpers import dvc
from tests.helpers import (
    built_once,
    cli_here,
    commit,
    git,
    install_local_hooks,
    run_cli,
    write,
)
from tests.mlflow_fixtures import MLFLOW_WARNINGS, MlflowServer, wait_delivered
from tests.stamp_helpers import (
    client,
    dvc_file,
    md5_of,
    run_script,
    stamped_run,
    train_env,
)

pytestmark = MLFLOW_WARNINGS

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


def build_dvc_repo(path: Path) -> Path:
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


TEMPLATE: list[Path] = []  # build_dvc_repo's result, built once per run (set by the fixture)


@pytest.fixture(autouse=True)
def dvc_repo_template(tmp_path_factory: pytest.TempPathFactory) -> None:
    """build_dvc_repo once per run, shared by the workers (tests/helpers.built_once): `dvc init`,
    `dvc add` and `pre-commit install` cost some 2 s a repository, and nothing in it names its
    path (the DVC cache is inside, DVC's hash cache is keyed by the path it is read from)."""
    if not TEMPLATE:
        built = built_once(tmp_path_factory, "link-run-repo", lambda p: build_dvc_repo(p / "repo"))
        TEMPLATE.append(built / "repo")


def dvc_repo(path: Path) -> Path:
    """A private copy of build_dvc_repo's repository at `path`."""
    shutil.copytree(TEMPLATE[0], path, symlinks=True)
    git(path, "update-index", "-q", "--refresh")  # the index's stat data, as git left it there
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
    assert ours == {
        f"repro_hooks.{k}" for k in ("clone", "stamp", "head", "clean", "data", "evidence")
    }
    assert got["repro_hooks.evidence"] == "tree"  # no DVC stage ran it
    assert record["written"] == ["models/model.pkl"]  # the audit hook saw the process write it
    assert "data/train.csv" in record["read"]  # and read this (for the run's dataset inputs)
    assert "models/model.pkl" not in record["read"]


def test_stamp_never_raises_into_training(
    tmp_path: Path, sqlite_store: str, stamp_plugin: Path
) -> None:
    """A repository git cannot read (a broken .git file): the run starts, unstamped."""
    repo = tmp_path / "broken"
    repo.mkdir()
    write(repo / ".git", "gitdir: /nonexistent/place\n")
    run_id = run_script(
        repo,
        TRAIN.replace('data/train.csv").read_bytes()', 'x").name.encode()'),
        sqlite_store,
        stamp_plugin,
    )
    assert not any(k.startswith("repro_hooks.") for k in tags(sqlite_store, run_id))


ONCE = """\
import mlflow
from mlflow.tracking.context.registry import _run_context_provider_registry as registry
from repro_hooks.links import stamp
providers = [p for p in registry if isinstance(p, stamp.RunStamp)]
taken = []
take = stamp.take_stamp
stamp.take_stamp = lambda *a, **k: taken.append(1) or take(*a, **k)
with mlflow.start_run() as run:
    pass
print(len(providers), len(taken))
print(run.info.run_id)
"""


def _stamped_script(tmp_path: Path, sqlite_store: str, stamp_plugin: Path, script: str) -> str:
    """Run `script` with the stamp plugin in a fresh one-commit repository; it prints its counts,
    then its run id, as its last two lines. Returns the counts; the run must carry a stamp."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "README.md", "x\n")
    commit(repo, "first")
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env=train_env(sqlite_store, stamp_plugin),
    )
    assert proc.returncode == 0, proc.stderr
    counts, run_id = proc.stdout.strip().splitlines()[-2:]
    assert "repro_hooks.stamp" in tags(sqlite_store, run_id)
    return counts


def test_the_stamp_is_taken_once_however_often_the_plugin_is_registered(
    tmp_path: Path, sqlite_store: str, stamp_plugin: Path
) -> None:
    """The entry point registered twice (the installed package's, and the test's plugin
    directory: as with an editable install beside a wheel): MLflow makes two providers, and
    only the first one stamps, once per `start_run`."""
    counts = _stamped_script(tmp_path, sqlite_store, stamp_plugin, ONCE)
    assert counts == "2 1"


LOGGED_MODEL = """\
import mlflow
from repro_hooks.links import stamp
taken = []
take = stamp.take_stamp
stamp.take_stamp = lambda *a, **k: taken.append(1) or take(*a, **k)
class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input
with mlflow.start_run() as run:
    info = mlflow.pyfunc.log_model(name="model", python_model=Echo(), pip_requirements=["mlflow"])
model_tags = mlflow.get_logged_model(info.model_id).tags
print(len(taken), sorted(k for k in model_tags if k.startswith("repro_hooks.")))
print(run.info.run_id)
"""


def test_a_logged_model_takes_no_stamp_of_its_own(
    tmp_path: Path, sqlite_store: str, stamp_plugin: Path
) -> None:
    """MLflow 3 asks the run-context providers for a logged model's tags too: the model is not
    a run (it names its run as source_run_id), so it costs no second stamp."""
    counts = _stamped_script(tmp_path, sqlite_store, stamp_plugin, LOGGED_MODEL)
    assert counts == "1 []"


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
        outside,
        "import mlflow\nwith mlflow.start_run() as r: pass\nprint(r.info.run_id)\n",
        shared,
        stamp_plugin,
        "nb.py",
    )
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
    assert f"{run_id}: data/train.csv: the run read another version" in text


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
    """One linked run through every rewrite: an amend of its data (kept), an amend adding one
    README line (case 4: moved), a reword, merges, a squash."""
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
    proc = subprocess.run(
        ["git", "commit", "--amend", "-m", "model, new data"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = sync(repo)
    wait_delivered(repo)
    assert tags(shared, run_id)["git.commit"] == original
    said = out.stdout + log_text(repo)  # the sync or the detached delivery, whichever went first
    assert "keeps its link: data/train.csv: the run read another version" in said
    subprocess.run(["git", "reset", "-q", "--hard", original], cwd=repo, check=True)
    dvc(repo, "checkout", "-q", "-f")

    # case 4: `--amend` adding one README line changes nothing the run used: the link moves
    # to the new commit (README.md matches the default `link-ignore`)
    write(repo / "README.md", "How to train.\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "--amend", "--no-edit")
    sync(repo)
    wait_delivered(repo)
    documented = head(repo)
    assert documented != original
    assert tags(shared, run_id)["git.commit"] == documented, log_text(repo)

    # reword through `rebase -i`: same code and data, the link moves and keeps git.branch
    env = {
        **os.environ,
        "GIT_SEQUENCE_EDITOR": "sed -i 's/^pick/reword/'",
        "GIT_EDITOR": "sed -i '1s/.*/model, reworded/'",
    }
    git(repo, "rebase", "-i", "HEAD~1", env=env)
    sync(repo)
    wait_delivered(repo)
    reworded = head(repo)
    assert reworded not in (original, documented)
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
    git(repo, "merge", "--no-ff", "-q", "-m", "merge main", "main")
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
    git(repo, "merge", "--no-ff", "-q", "-m", "merge side", "side")
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
    git(repo, "rebase", "-i", "HEAD~2", env=env)
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


# ---- stage runs, crashed runs, data changed under a run, first commit, notebooks ----

PIPELINE = """\
stages:
  train:
    cmd: {python} train.py
    deps:
    - data/train.csv
    - train.py
    params:
    - train.lr
    outs:
    - model.pkl
  evaluate:
    cmd: {python} evaluate.py
    deps:
    - model.pkl
    - evaluate.py
    metrics:
    - metrics.json:
        cache: false
"""
STAGE_TRAIN = """\
import mlflow, pathlib, yaml
lr = yaml.safe_load(open("params.yaml"))["train"]["lr"]
data = pathlib.Path("data/train.csv").read_bytes()
with mlflow.start_run() as run:
    mlflow.log_param("lr", lr)
    pathlib.Path("model.pkl").write_bytes(b"model %r of " % lr + data)
print("RUN_ID=" + run.info.run_id)
"""
EVALUATE = """\
import json, pathlib
model = pathlib.Path("model.pkl").read_bytes()
pathlib.Path("metrics.json").write_text(json.dumps({"size": len(model)}))
"""


def pipeline_repo(path: Path) -> Path:
    """The textbook pipeline in miniature: train (logs an MLflow run) -> evaluate (writes a
    git-tracked `cache: false` metrics.json), params in params.yaml, hooks installed."""
    import sys

    repo = dvc_repo(path)
    write(repo / "dvc.yaml", PIPELINE.format(python=sys.executable))
    write(repo / "train.py", STAGE_TRAIN)
    write(repo / "evaluate.py", EVALUATE)
    write(repo / "params.yaml", "train:\n  lr: 0.1\n")
    write(repo / ".gitignore", "")  # train.py is code here
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "pipeline")
    return repo


def dvc_cli(repo: Path, uri: str, plugin: Path, *args: str) -> str:
    """The real `dvc` CLI (the stage commands inherit its environment: the training one)."""
    import sys

    from tests.stamp_helpers import train_env

    exe = Path(sys.executable).parent / "dvc"
    proc = subprocess.run(
        [str(exe), *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env=train_env(uri, plugin),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def run_ids(output: str) -> list[str]:
    return [line.split("=", 1)[1].strip() for line in output.splitlines() if "RUN_ID=" in line]


@pytest.mark.e2e
def test_stage_run_of_the_textbook_pipeline_links(
    tmp_path: Path, shared: str, stamp_plugin: Path
) -> None:
    """Three things on one pipeline repository (each pays `dvc repro`, whose train stage imports
    MLflow):
    - a stage run is justified by its own stage only: params edited after the run, the
      dvc.lock regenerated by another run that was never logged... here: the lock says lr 0.3;
    - case 1: change a param, `dvc repro`, commit: the train run links by its stage, though
      params.yaml differs from HEAD and evaluate rewrote metrics.json after train exited;
    - `dvc exp run --temp` runs the stage in a copy under .dvc/tmp/exps: the stamp records the
      run in the parent clone, and after `dvc exp apply` and a commit the experiment's run links
      (its stage evidence matches the commit's dvc.lock)."""
    repo = pipeline_repo(tmp_path / "repo")

    # the commit does not record the run's params: not linked
    write(repo / "params.yaml", "train:\n  lr: 0.2\n")
    (run_id,) = run_ids(dvc_cli(repo, shared, stamp_plugin, "repro"))
    write(repo / "params.yaml", "train:\n  lr: 0.3\n")
    dvc_cli(repo, shared, stamp_plugin, "commit", "-f")  # the hook's own hint
    hook_commit(repo, "lr 0.3, committed by hand")
    out = sync(repo)
    wait_delivered(repo)
    assert "git.commit" not in tags(shared, run_id)
    said = out.stdout + log_text(repo)
    assert "params.yaml: param train.lr: the run started with '0.2'" in said, said

    # case 1: the textbook loop, twice (never lr 0.2 again: DVC's run cache would restore that
    # run's outputs instead of training)
    for lr in ("0.1", "0.4"):
        write(repo / "params.yaml", f"train:\n  lr: {lr}\n")
        (run_id,) = run_ids(dvc_cli(repo, shared, stamp_plugin, "repro"))
        got = tags(shared, run_id)
        assert got["repro_hooks.stage"] == "train"
        assert got["repro_hooks.evidence"] == "stage"
        assert "repro_hooks.clean" not in got  # no alarm on every `dvc repro`
        record = load_record(str(repo / ".git"), got["repro_hooks.stamp"])
        assert record is not None
        assert record["stage"]["params"] == {"params.yaml": {"train.lr": float(lr)}}
        assert record["stage"]["deps"]["data/train.csv"] == md5_of(b"a,b\n1,2\n")
        hook_commit(repo, f"lr {lr}")
        sync(repo)
        wait_delivered(repo)
        got = tags(shared, run_id)
        assert got.get("git.commit") == head(repo), log_text(repo)
        assert got["repro_hooks.link"] == "stage"
        assert json.loads((repo / "metrics.json").read_text())["size"] > 0

    # an experiment in a temp copy, from the last loop's commit (its baseline)
    out = dvc_cli(
        repo, shared, stamp_plugin, "exp", "run", "--temp", "-n", "lr5", "-S", "train.lr=0.5"
    )
    (run_id,) = run_ids(out)
    got = tags(shared, run_id)
    assert got["repro_hooks.clone"] == (repo / ".git/repro-hooks/clone-id").read_text().strip()
    record = load_record(str(repo / ".git"), got["repro_hooks.stamp"])
    assert record is not None
    assert record["root"] == str(repo)
    assert ".dvc/tmp/exps/" in record["workspace"]
    assert record["experiment"] == "lr5"
    dvc_cli(repo, shared, stamp_plugin, "exp", "apply", "lr5")
    hook_commit(repo, "lr 0.5 from the experiment")
    sync(repo)
    wait_delivered(repo)
    got = tags(shared, run_id)
    assert got.get("git.commit") == head(repo), log_text(repo)
    assert got["repro_hooks.link"] == "stage"


CRASH = """\
import mlflow, os, pathlib, signal, sys
data = pathlib.Path("data/train.csv").read_bytes()
with mlflow.start_run() as run:
    print(run.info.run_id, flush=True)
    if sys.argv[-1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)  # no end state, MLflow says RUNNING for ever
    raise RuntimeError("diverged")  # mlflow ends the run FAILED
"""


@pytest.mark.e2e
def test_a_crashed_run_never_takes_the_commit_from_a_finished_one(
    tmp_path: Path, shared: str, stamp_plugin: Path
) -> None:
    """Case 2: the finished run made the committed model; later runs of the same code raised
    (FAILED) or were killed (RUNNING, no end state): the finished run is linked."""
    import sys

    from tests.stamp_helpers import train_env

    repo = dvc_repo(tmp_path / "repo")
    good = run_script(repo, TRAIN, shared, stamp_plugin)
    dvc(repo, "add", "-q", "models/model.pkl")
    crashed = []
    for how in ("raise", "kill"):
        (repo / "crash.py").write_text(CRASH)
        proc = subprocess.run(
            [sys.executable, "crash.py", how],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
            env=train_env(shared, stamp_plugin),
        )
        assert proc.returncode != 0
        crashed.append(proc.stdout.split()[0])
    (repo / "crash.py").unlink()
    assert client(shared).get_run(crashed[0]).info.status == "FAILED"
    assert client(shared).get_run(crashed[1]).info.status == "RUNNING"
    hook_commit(repo, "model")
    sync(repo)
    wait_delivered(repo)
    assert tags(shared, good).get("git.commit") == head(repo), log_text(repo)
    for run_id in crashed:
        assert "git.commit" not in tags(shared, run_id)


READ_SLOWLY = """\
import mlflow, pathlib, subprocess, sys
with mlflow.start_run() as run:
    data = pathlib.Path("data/train.csv").read_bytes()
    # the data changes under the run (another process: a colleague, a sync job)
    subprocess.run([sys.executable, "-c",
                    "open('data/train.csv', 'w').write('a,b\\\\n5,6\\\\n')"], check=True)
    pathlib.Path("models").mkdir(exist_ok=True)
    pathlib.Path("models/model.pkl").write_bytes(b"model of " + data)
print(run.info.run_id)
"""


@pytest.mark.e2e
def test_a_run_is_never_credited_with_data_it_never_saw(
    tmp_path: Path, shared: str, stamp_plugin: Path
) -> None:
    """Case 3: the run read the old data; the data changed under it; `dvc commit -f`; commit:
    the run is not linked (it read another version, and it did not write it)."""
    repo = dvc_repo(tmp_path / "repo")
    run_id = run_script(repo, READ_SLOWLY, shared, stamp_plugin)
    assert (repo / "data" / "train.csv").read_text() == "a,b\n5,6\n"
    dvc(repo, "add", "-q", "models/model.pkl")
    dvc(repo, "commit", "-q", "-f")
    hook_commit(repo, "model and the new data")
    out = sync(repo)
    wait_delivered(repo)
    assert "git.commit" not in tags(shared, run_id)
    said = out.stdout + log_text(repo)
    assert f"{run_id}: data/train.csv: the run read another version" in said, said


@pytest.mark.e2e
def test_the_first_commit_links_like_any_other(
    tmp_path: Path, shared: str, stamp_plugin: Path
) -> None:
    """Case 5: a run made before the repository's first commit (no HEAD) links to it."""
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", "repo")
    write(repo / "data" / "train.csv", "a,b\n1,2\n")
    write(repo / "pyproject.toml", "[tool.repro-hooks.mlflow]\ntimeout = 120\n")
    install_local_hooks(repo, HOOKS, HOOK_TYPES)
    git(repo, "update-ref", "-d", "HEAD")  # the helper commits its config: back to no commit
    script = TRAIN.replace("models/model.pkl", "model.txt")
    run_id = run_script(repo, script, shared, stamp_plugin)
    assert tags(shared, run_id)["repro_hooks.head"] == ""
    # the code and the data, not what the run made (model.txt stays untracked)
    hook_commit(repo, "first", "train.py", "data/train.csv", "pyproject.toml")
    sync(repo)
    wait_delivered(repo)
    assert tags(shared, run_id).get("git.commit") == head(repo), log_text(repo)
    assert "None" not in log_text(repo)


NOTEBOOK_RUN = """\
import json, mlflow, pathlib
nb = pathlib.Path("analysis.ipynb")
with mlflow.start_run() as run:
    cells = json.loads(nb.read_text())
    for i, cell in enumerate(cells["cells"]):  # what papermill writes back, in place
        cell["execution_count"] = i + 1
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ran\\n"]}]
        cell["metadata"]["papermill"] = {"duration": 0.5}
    cells["metadata"]["papermill"] = {"parameters": {}}
    nb.write_text(json.dumps(cells))
print(run.info.run_id)
"""


@pytest.mark.e2e
def test_notebook_executed_in_place_and_committed_with_outputs_links(
    tmp_path: Path, shared: str, stamp_plugin: Path
) -> None:
    """Case 8: the committed notebook differs from HEAD only by outputs, execution counts and
    metadata: its code is the code the run ran."""
    repo = dvc_repo(tmp_path / "repo")
    cell = {
        "cell_type": "code",
        "source": ["x = 1\n"],
        "outputs": [],
        "execution_count": None,
        "metadata": {},
    }
    write(
        repo / "analysis.ipynb",
        json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
    )
    git(repo, "add", "analysis.ipynb")
    git(repo, "commit", "-q", "--no-verify", "-m", "notebook")
    run_id = run_script(repo, NOTEBOOK_RUN, shared, stamp_plugin)
    hook_commit(repo, "executed notebook", "analysis.ipynb")
    sync(repo)
    wait_delivered(repo)
    assert tags(shared, run_id).get("git.commit") == head(repo), log_text(repo)
