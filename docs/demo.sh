#!/usr/bin/env bash
# The main job, end to end, in a throwaway repository (run it with `make demo`):
# hooks installed through the pre-commit framework from this checkout, a commit blocked for a
# large data file, the file moved into DVC, a good commit.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/repro-hooks-demo.XXXXXX")
export PRE_COMMIT_HOME="${PRE_COMMIT_HOME:-$here/.venv/pre-commit-home}"
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-Demo User}" GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-demo@example.com}"
export GIT_COMMITTER_NAME="${GIT_COMMITTER_NAME:-Demo User}" GIT_COMMITTER_EMAIL="${GIT_COMMITTER_EMAIL:-demo@example.com}"
export DVC_NO_ANALYTICS=1

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "A throwaway ML repository in $work/project, with DVC initialised"
git init -q -b main "$work/project"
cd "$work/project"
dvc init -q
git commit -q -m "Initialise DVC"

step "Install repro-hooks through pre-commit, from this checkout ($(git -C "$here" rev-parse --short HEAD))"
cat > .pre-commit-config.yaml <<YAML
repos:
  - repo: $here
    rev: $(git -C "$here" rev-parse HEAD)
    hooks:
      - id: block-large-files
YAML
git add .pre-commit-config.yaml
git commit -q --no-verify -m "Add pre-commit configuration"
pre-commit install
mkdir -p data
python3 -c "import os; open('data/train.csv','wb').write(os.urandom(2*1024*1024))"
printf 'import pandas\n' > train.py
git add data/train.csv train.py

step "git commit with a 2 MiB CSV staged: the hook blocks it"
if git commit -m "Train on the new data"; then
    echo "demo: the commit was expected to be blocked" >&2
    exit 1
fi

step "repro-hooks check-large-files --fix: the CSV moves into DVC (dvc add), its .dvc file is staged"
repro-hooks check-large-files --fix || true
git status --short

step "git commit again: accepted, and git stores only the small .dvc file"
git commit -m "Train on the new data (tracked with DVC)"
git show --stat --format='%h %s' HEAD
dvc status

printf '\nDemo repository left in %s/project\n' "$work"
