"""Lived end to end: a two-person team's week on the textbook DVC + MLflow project
(tests/textbook.py), through real git commits with the README's hooks installed by pre-commit,
real `dvc repro` / `dvc exp run`, and the session's real `mlflow server`.

Each test asserts the link (the `git.commit` tag on the right run) or the documented refusal.
Tests wait on conditions (the training process's own signal, the delivery queue emptied),
never on timers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import git, wait_until, write
from tests.mlflow_fixtures import MLFLOW_WARNINGS, MlflowServer
from tests.reliability import cli
from tests.textbook import Textbook, dvc, install_hooks, new_textbook, write_project

pytestmark = [pytest.mark.e2e, *MLFLOW_WARNINGS]

LOOPS = int(os.environ.get("TEXTBOOK_LOOPS", "3"))  # textbook loops per clone, at once


@pytest.fixture
def book(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    mlflow_server: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Textbook]:
    made = new_textbook(tmp_path, tmp_path_factory, mlflow_server, monkeypatch, request.node.name)
    yield made
    for clone in (made.alice, made.bob):  # no detached deliverer outlives its test
        made.wait_delivered(clone)


def loop_once(book: Textbook, clone: Path, lr: float) -> tuple[str, str]:
    """The textbook loop: change a param, `dvc repro`, commit. The new train run and commit."""
    before = book.runs(clone)
    book.set_param(clone, "train.lr", lr)
    book.repro(clone)
    (run_id,) = book.runs(clone)[len(before) :]
    book.commit(clone, f"lr {lr}")
    return run_id, book.head(clone)


def train_outside_dvc(book: Textbook, clone: Path, **env: str) -> subprocess.Popen[str]:
    """`python train.py` by hand (no stage), as a teammate runs it."""
    return subprocess.Popen(
        [sys.executable, "train.py"],
        cwd=clone,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )


def held_run(book: Textbook, clone: Path, hold: Path) -> tuple[subprocess.Popen[str], str]:
    """A training process held inside its run (TEXTBOOK_HOLD): the process and its run id."""
    hold.mkdir()
    before = book.runs(clone, "started")
    proc = train_outside_dvc(book, clone, TEXTBOOK_HOLD=str(hold))
    wait_until(
        lambda: (hold / "started").exists() or proc.poll() is not None,
        lambda: "the held training run never started",
    )
    assert proc.poll() is None, proc.communicate()
    (run_id,) = book.runs(clone, "started")[len(before) :]
    return proc, run_id


def register(book: Textbook, run_id: str, name: str) -> str:
    """A model version of the run's logged model.pkl: its URI."""
    client = book.client()
    client.create_registered_model(name)
    source = f"{client.get_run(run_id).info.artifact_uri}/model.pkl"
    version = client.create_model_version(name, source, run_id=run_id)
    return f"models:/{name}/{version.version}"


def check_model(clone: Path, *args: str) -> tuple[int, str]:
    """`repro-hooks check-model --format json`: its exit code and JSON report (stdout)."""
    out = cli(clone, "check-model", "--format", "json", *args)
    return out.code, out.out


def rules_failed(report: str) -> set[str]:
    return {f["rule"] for f in json.loads(report)["findings"]}


# ---- cases 1 and 7: the textbook loop links, and its push is not blocked by metrics.json -------


def test_case1_and_7_param_repro_commit_links_the_train_run_and_pushes(book: Textbook) -> None:
    """Change a param, `dvc repro`, commit: the train run is linked (evaluate rewrote
    metrics.json, `cache: false`, after train exited; repro rewrote dvc.lock). Then the push:
    blocked only for the DVC-cached model until `dvc push`; metrics.json lives in git and is
    never asked of the DVC remote. Then the same loop with metrics.json `cache: true`."""
    clone = book.alice
    run_id, sha = loop_once(book, clone, 0.2)
    book.wait_delivered(clone)
    assert book.linked(run_id) == sha, book.delivery_log(clone)
    assert book.tags(run_id).get("repro_hooks.stage") == "train"

    blocked = book.push(clone, "main")
    assert blocked.returncode != 0, blocked.stdout + blocked.stderr
    text = blocked.stdout + blocked.stderr
    assert "model.pkl: " in text, text
    assert "metrics.json" not in text and "plots/errors.json" not in text, text
    assert "dvc push" in text, text
    dvc(clone, "push", "-q")
    pushed = book.push(clone, "main")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert git(book.origin, "rev-parse", "main").strip() == sha

    # the same loop with metrics.json cached by DVC instead (the other attempt)
    stages = (clone / "dvc.yaml").read_text()
    (clone / "dvc.yaml").write_text(
        stages.replace("- metrics.json:\n        cache: false", "- metrics.json")
    )
    git(clone, "rm", "-q", "--cached", "metrics.json")
    run_id, sha = loop_once(book, clone, 0.25)
    assert "/metrics.json" in (clone / ".gitignore").read_text()
    book.wait_delivered(clone)
    assert book.linked(run_id) == sha, book.delivery_log(clone)


def test_case7_a_git_tracked_csv_plot_is_not_data_in_git_at_push(book: Textbook) -> None:
    """The tutorial's other plot shape, a `cache: false` CSV written by a stage: git keeps it
    (check-dvc accepts it at commit), so the push hooks must accept it too."""
    clone = book.alice
    evaluate = (clone / "evaluate.py").read_text()
    (clone / "evaluate.py").write_text(
        evaluate + 'with open("plots/errors.csv", "w") as fh:\n'
        '    fh.write("x,error\\n" + "".join(f"{x},{e}\\n" for (x, _), e in zip(rows, errors)))\n'
    )
    stages = (clone / "dvc.yaml").read_text()
    (clone / "dvc.yaml").write_text(
        stages.replace(
            "    - plots/errors.json:\n",
            "    - plots/errors.csv:\n        cache: false\n    - plots/errors.json:\n",
        )
    )
    book.repro(clone)  # evaluate only: train's deps and params are unchanged
    assert book.runs(clone) == []
    book.commit(clone, "a CSV plot too")
    dvc(clone, "push", "-q")
    pushed = book.push(clone, "main")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    # the deploy gate's scan of the commit's tree is the push's own: it accepts the plot too
    from repro_hooks.deploy.evidence import tree_policy_findings
    from repro_hooks.git import Git
    from repro_hooks.policy.config import load_config

    repo = Git.discover(clone)
    head = git(clone, "rev-parse", "HEAD").strip()
    policy = load_config(clone).policy
    found = tree_policy_findings(repo, policy, head, repo.tree(head, commit=head))
    assert "plots/errors.csv" in git(clone, "ls-files")
    assert [f for f in found if f.path == "plots/errors.csv"] == []


# ---- case 2: a crashed run never takes the commit from the finished one ------------------------


def test_case2_failed_and_killed_runs_never_take_the_commit(book: Textbook, tmp_path: Path) -> None:
    clone = book.alice
    book.set_param(clone, "train.lr", 0.3)
    book.repro(clone)
    (good,) = book.runs(clone)
    crashed = train_outside_dvc(book, clone, TEXTBOOK_CRASH="1")
    assert crashed.wait() != 0
    killed, killed_id = held_run(book, clone, tmp_path / "hold")
    killed.kill()
    killed.communicate()
    failed_id = book.runs(clone, "started")[1]
    assert book.client().get_run(failed_id).info.status == "FAILED"
    assert book.client().get_run(killed_id).info.status == "RUNNING"  # no end state, forever

    book.commit(clone, "lr 0.3")
    sha = book.head(clone)
    book.wait_delivered(clone)
    assert book.linked(good) == sha, book.delivery_log(clone)
    assert book.linked(failed_id) is None
    assert book.linked(killed_id) is None

    # the deploy gate accepts the good model (it used to say run-unlinked)
    model = register(book, good, f"textbook-case2-{os.getpid()}")
    dvc(clone, "push", "-q")
    assert book.push(clone, "main").returncode == 0
    code, report = check_model(clone, model)
    assert code == 0, report


# ---- case 3: data that changed under a run is never credited to it ---------------------------


def test_case3_run_is_never_credited_with_data_it_never_saw(book: Textbook, tmp_path: Path) -> None:
    """A run starts on the old data; the data changes under it; `dvc commit -f` (the hook's own
    hint) records the new data; commit: the run is not linked, and check-model refuses it."""
    clone = book.alice
    proc, run_id = held_run(book, clone, tmp_path / "hold")
    with (clone / "data" / "prepared" / "train.csv").open("a") as fh:
        fh.write("41,83\n")  # the data changes under the running training
    (tmp_path / "hold" / "go").touch()
    out, err = proc.communicate()
    assert proc.returncode == 0, out + err
    dvc(clone, "commit", "-f", "-q")
    book.commit(clone, "new training data")
    book.wait_delivered(clone)
    assert book.linked(run_id) is None, book.delivery_log(clone)
    log = book.delivery_log(clone)
    assert run_id in log and "data/prepared" in log, log

    model = register(book, run_id, f"textbook-case3-{os.getpid()}")
    code, report = check_model(clone, model)
    assert code == 1, report
    assert "run-unlinked" in rules_failed(report), report


# ---- case 4: rewrites that change nothing the run used keep the link -------------------------


def test_case4_amend_of_a_readme_line_and_rebase_onto_docs_keep_the_link(book: Textbook) -> None:
    alice, bob = book.alice, book.bob
    git(alice, "checkout", "-q", "-b", "feature")
    run_id, first = loop_once(book, alice, 0.4)
    book.wait_delivered(alice)
    assert book.linked(run_id) == first, book.delivery_log(alice)

    with (alice / "README.md").open("a") as fh:
        fh.write("Trained with a higher learning rate.\n")
    book.commit(alice, "lr 0.4, and why", "--amend")
    amended = book.head(alice)
    assert amended != first
    book.wait_delivered(alice)
    assert book.linked(run_id) == amended, book.delivery_log(alice)

    # main moves docs only (bob), alice rebases onto it
    write(bob / "docs" / "howto.md", "# How to train\n\n`dvc repro`\n")
    book.commit(bob, "docs: how to train")
    pushed = book.push(bob, "main")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    book.wait_delivered(bob)
    git(alice, "fetch", "-q", "origin")
    proc = subprocess.run(
        ["git", "rebase", "origin/main"], cwd=alice, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rebased = book.head(alice)
    assert rebased != amended
    book.wait_delivered(alice)
    assert book.linked(run_id) == rebased, book.delivery_log(alice)


# ---- case 5: the repository's first commit links --------------------------------------------


def test_case5_first_commit_of_a_repository_links(book: Textbook, tmp_path: Path) -> None:
    repo = tmp_path / "first"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, "init", "-q")
    write_project(repo)
    dvc(repo, "add", "-q", "data/raw.csv")
    install_hooks(repo)
    assert git(repo, "rev-parse", "--verify", "-q", "HEAD", check=False) == ""  # no commit yet
    dvc(repo, "repro", "-q")
    (run_id,) = book.runs(repo)
    book.commit(repo, "the textbook pipeline")
    book.wait_delivered(repo)
    log = book.delivery_log(repo)
    assert book.linked(run_id) == book.head(repo), log
    assert "None" not in log, log


# ---- case 6: --run-id applies the rules; --force says so; check-model fails it -----------------


def test_case6_run_id_is_judged_and_a_forced_link_fails_the_gate(book: Textbook) -> None:
    clone = book.alice
    book.set_param(clone, "train.lr", 0.9)  # uncommitted, other params
    proc = train_outside_dvc(book, clone)
    out, err = proc.communicate()
    assert proc.returncode == 0, out + err
    run_id = book.runs(clone)[-1]
    git(clone, "checkout", "-q", "--", "params.yaml")
    dvc(clone, "checkout", "-q", "--force", "model.pkl")  # the committed model back
    with (clone / "README.md").open("a") as fh:
        fh.write("A note.\n")
    book.commit(clone, "a note")
    book.wait_delivered(clone)
    assert book.linked(run_id) is None, book.delivery_log(clone)

    refused = cli(clone, "tag-mlflow", "--run-id", run_id)
    assert refused.code == 1, refused
    assert run_id in refused.text and "params.yaml" in refused.text, refused
    assert book.linked(run_id) is None

    forced = cli(clone, "tag-mlflow", "--run-id", run_id, "--force")
    assert forced.code == 0, forced
    tags = book.tags(run_id)
    assert tags["git.commit"] == book.head(clone)
    assert tags["repro_hooks.link"] == "forced"

    model = register(book, run_id, f"textbook-case6-{os.getpid()}")
    dvc(clone, "push", "-q")
    assert book.push(clone, "main").returncode == 0
    code, report = check_model(clone, model)
    assert code == 1, report
    assert "forced" in report, report
    # --allow-forced accepts the forced link, not the model: the bytes it serves are not the
    # model the commit's dvc.lock records (the run trained it from other params)
    code, report = check_model(clone, model, "--allow-forced")
    assert code == 1, report
    assert "model-bytes" in report and "dvc.lock records" in report, report
    assert "link-unverified" not in report, report


# ---- case 8: a notebook executed in place and committed with its outputs ---------------------

NOTEBOOK_CELLS = [
    "import os\nimport mlflow\nimport yaml\nparams = yaml.safe_load(open('params.yaml'))['train']",
    "rows = [l.split(',') for l in open('data/prepared/train.csv').read().split()]\n"
    "ratio = sum(float(y) / float(x) for x, y in rows) / len(rows)\nprint(round(ratio, 3))",
    "with mlflow.start_run() as run:\n"
    "    mlflow.log_params(params)\n"
    "    mlflow.log_metric('ratio', ratio)\n"
    "with open(os.environ['TEXTBOOK_RUN_LOG'], 'a') as fh:\n"
    "    fh.write(f'{run.info.run_id} {os.getcwd()} finished\\n')\n"
    "print(run.info.run_id)",
]

# executes a notebook in place, as `papermill nb.ipynb nb.ipynb` does: each code cell in one
# namespace, its stdout kept as the cell's output, execution counts set; the script's own file
# is installed code outside the repository, like a kernel's launcher (ipykernel_launcher.py in
# site-packages): the stamp takes an installed launcher's runs as the current directory's, and
# never a plain script from elsewhere
EXECUTE_IN_PLACE = """\
import contextlib, io, sys
import nbformat
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
namespace = {"__name__": "__main__"}
for count, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(cell.source, namespace)
    cell.execution_count = count
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=out.getvalue())]
nbformat.write(nb, path)
"""


def test_case8_notebook_executed_in_place_and_committed_with_outputs_links(
    book: Textbook, tmp_path: Path
) -> None:
    import nbformat

    clone = book.alice
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    nbformat.write(nb, str(clone / "explore.ipynb"))
    git(clone, "add", "explore.ipynb")
    git(clone, "commit", "-q", "--no-verify", "-m", "an exploration notebook")
    runner = write(tmp_path / "kernel" / "site-packages" / "execute.py", EXECUTE_IN_PLACE)
    proc = subprocess.run(
        [sys.executable, str(runner), "explore.ipynb"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_id,) = book.runs(clone)
    executed = nbformat.read(str(clone / "explore.ipynb"), as_version=4)
    assert run_id in executed.cells[-1].outputs[0]["text"]
    book.commit(clone, "explored, with outputs")
    book.wait_delivered(clone)
    assert book.linked(run_id) == book.head(clone), book.delivery_log(clone)
    inputs = book.client().get_run(run_id).inputs.dataset_inputs
    names = {i.dataset.name for i in inputs}
    assert "model.pkl" not in names, names  # another stage's output, never read by the notebook


# ---- DVC experiments: in the workspace, and --temp then `dvc exp apply` ----------------------


def test_dvc_experiments_workspace_and_temp_link_their_runs(book: Textbook) -> None:
    clone = book.alice
    dvc(clone, "exp", "run", "-q", "-S", "train.lr=0.6")
    (workspace_run,) = book.runs(clone)
    book.commit(clone, "experiment lr 0.6")
    book.wait_delivered(clone)
    assert book.linked(workspace_run) == book.head(clone), book.delivery_log(clone)

    dvc(clone, "exp", "run", "-q", "--temp", "-n", "lr-07", "-S", "train.lr=0.7")
    temp_run = book.runs(clone)[-1]
    assert temp_run != workspace_run
    assert ".dvc/tmp/exps" in book.run_log.read_text().splitlines()[-1]
    dvc(clone, "exp", "apply", "-q", "lr-07")
    book.commit(clone, "experiment lr-07 applied")
    book.wait_delivered(clone)
    assert book.linked(temp_run) == book.head(clone), book.delivery_log(clone)


def test_dvc_experiment_from_the_queue_links_its_run(book: Textbook) -> None:
    """`dvc exp run --queue`, run with `--run-all` (a temporary copy, as `--temp`), then
    `dvc exp apply` and a commit: the queued experiment's run is linked."""
    clone = book.alice
    dvc(clone, "exp", "run", "-q", "--queue", "-n", "lr-08", "-S", "train.lr=0.8")
    assert not book.runs(clone)  # queued, not run
    dvc(clone, "exp", "run", "-q", "--run-all")
    (queued_run,) = book.runs(clone)
    assert ".dvc/tmp/exps" in book.run_log.read_text().splitlines()[-1]
    dvc(clone, "exp", "apply", "-q", "lr-08")
    book.commit(clone, "experiment lr-08 applied")
    book.wait_delivered(clone)
    assert book.linked(queued_run) == book.head(clone), book.delivery_log(clone)


def test_dvc_exp_branch_then_a_commit_on_it_links_the_experiment_run(book: Textbook) -> None:
    """`dvc exp run --temp`, then `dvc exp branch` (DVC's own experiment commit, made without
    hooks, becomes a branch), `git checkout` and `dvc checkout` of it, and a commit of a README line: the experiment's
    run is linked to that commit (a README cannot change what the run computed)."""
    clone = book.alice
    dvc(clone, "exp", "run", "-q", "--temp", "-n", "lr-09", "-S", "train.lr=0.9")
    (exp_run,) = book.runs(clone)
    dvc(clone, "exp", "branch", "-q", "lr-09", "exp-lr-09")
    git(clone, "checkout", "-q", "exp-lr-09")
    dvc(clone, "checkout", "-q")  # the experiment's outputs, from the cache (DVC's own step)
    assert "lr: 0.9" in (clone / "params.yaml").read_text()
    (clone / "README.md").write_text("lr 0.9 looks better\n")
    book.commit(clone, "note on lr-09")
    book.wait_delivered(clone)
    assert book.linked(exp_run) == book.head(clone), book.delivery_log(clone)


# ---- the loop, many times in a row, by two clones at once -----------------------------------


def printed_dvc_push(text: str) -> str:
    """The `dvc push ...` command require-dvc-pushed prints as its fix."""
    commands = [line.strip() for line in text.splitlines() if line.strip().startswith("dvc push")]
    assert len(commands) == 1, text
    return commands[0]


def test_two_clones_loop_at_once_each_commit_links_its_own_run(book: Textbook) -> None:
    """Alice and Bob each run the textbook loop LOOPS times on a branch of their own, at the
    same time, against the same server and experiment, then push to the same origin through the
    pre-push hooks (once per clone, to keep the suite's cost down): blocked until the `dvc push`
    the hook prints is run as printed (it must send every commit's data, not only HEAD's). Every
    commit links its own clone's train run; no run is linked to the other clone's commit."""
    made: dict[str, list[tuple[str, str]]] = {"alice": [], "bob": []}
    errors: list[BaseException] = []

    def work(clone: Path, offset: float) -> None:
        try:
            git(clone, "checkout", "-q", "-b", f"{clone.name}-work")
            for n in range(LOOPS):
                made[clone.name].append(loop_once(book, clone, round(offset + n / 100, 3)))
            # no `dvc push` yet: the push is blocked, and the hint's command, run as printed,
            # sends the data of every commit of the push
            blocked = book.push(clone, f"{clone.name}-work")
            assert blocked.returncode != 0, blocked.stdout + blocked.stderr
            hint = printed_dvc_push(blocked.stdout + blocked.stderr)
            dvc(clone, *hint.split()[1:])
            pushed = book.push(clone, f"{clone.name}-work")
            assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(book.alice, 0.11)),
        threading.Thread(target=work, args=(book.bob, 0.51)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    for clone in (book.alice, book.bob):
        book.wait_delivered(clone)
    for name, pairs in made.items():
        assert len(pairs) == LOOPS
        for run_id, sha in pairs:
            assert book.linked(run_id) == sha, (name, book.delivery_log(book.root / name))
        pushed = git(book.origin, "rev-parse", f"{name}-work").strip()
        assert pushed == pairs[-1][1]
