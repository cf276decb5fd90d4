#!/usr/bin/env bash
# The main job, end to end, in a throwaway repository (run it with `make demo`):
# hooks installed through the pre-commit framework from this checkout, a training run logged to
# a local sqlite MLflow store, a commit blocked for a large data file, the file moved into DVC,
# a good commit, and the MLflow run linked to that commit and to the data's DVC hash.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/repro-hooks-demo.XXXXXX")
export PRE_COMMIT_HOME="${PRE_COMMIT_HOME:-$here/.venv-demo/pre-commit-home}"
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-Demo User}" GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-demo@example.com}"
export GIT_COMMITTER_NAME="${GIT_COMMITTER_NAME:-Demo User}" GIT_COMMITTER_EMAIL="${GIT_COMMITTER_EMAIL:-demo@example.com}"
export DVC_NO_ANALYTICS=1
unset MLFLOW_TRACKING_URI MLFLOW_EXPERIMENT_NAME MLFLOW_EXPERIMENT_ID
# The hook's environment must run the same MLflow as the sqlite store it writes to.
mlflow_version=$(python3 -c "import importlib.metadata as m; print(m.version('mlflow'))")

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "A throwaway ML repository in $work/project, with DVC initialised"
git init -q -b main "$work/project"
cd "$work/project"
dvc init -q
printf 'mlflow.db\nmlruns/\nmlartifacts/\n' > .gitignore
git add .gitignore
git commit -q -m "Initialise DVC"

step "Install repro-hooks through pre-commit, from this checkout ($(git -C "$here" rev-parse --short HEAD))"
cat > .pre-commit-config.yaml <<YAML
repos:
  - repo: $here
    rev: $(git -C "$here" rev-parse HEAD)
    hooks:
      - id: block-large-files
      - id: require-dvc-files
      - id: mlflow-tag-commit
        additional_dependencies: ['mlflow==$mlflow_version']
YAML
git add .pre-commit-config.yaml
git commit -q --no-verify -m "Add pre-commit configuration"
pre-commit install --hook-type pre-commit --hook-type post-commit
pre-commit install-hooks

step "Train: a run logged to the default local store (sqlite:///mlflow.db)"
mkdir -p data
python3 -c "import os; open('data/train.csv','wb').write(os.urandom(2*1024*1024))"
cat > train.py <<'PY'
import mlflow

with mlflow.start_run() as run:
    mlflow.log_param("rows", 2048)
    mlflow.log_metric("accuracy", 0.93)
    print(f"MLflow run {run.info.run_id} finished")
PY
python3 train.py 2>/dev/null
git add data/train.csv train.py

step "git commit with a 2 MiB CSV staged: the hooks block it"
if git commit -m "Train on the new data"; then
    echo "demo: the commit was expected to be blocked" >&2
    exit 1
fi

step "repro-hooks check-large-files --fix: the CSV moves into DVC (dvc add), its .dvc file is staged"
repro-hooks check-large-files --fix || true
git status --short

step "git commit again: accepted; git stores only the small .dvc file; post-commit queues the run link"
git commit -m "Train on the new data (tracked with DVC)"
git show --stat --format='%h %s' HEAD
dvc status

step "repro-hooks tag-mlflow --sync: wait for the background delivery and show what it linked"
repro-hooks tag-mlflow --sync
python3 - <<'PY'
import subprocess
from mlflow import MlflowClient

client = MlflowClient("sqlite:///mlflow.db")
experiments = [e.experiment_id for e in client.search_experiments()]
(run,) = client.search_runs(experiments, order_by=["attributes.start_time DESC"], max_results=1)
head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
tags = {k: v for k, v in run.data.tags.items() if k.startswith(("git.", "dvc."))}
for key in sorted(tags):
    print(f"  {key} = {tags[key]}")
assert tags["git.commit"] == head, "the run must be linked to HEAD"
print(f"run {run.info.run_id} is linked to commit {head[:12]} and to data/train.csv's DVC hash")
PY

printf '\nDemo repository left in %s/project\n' "$work"
