# Two entry points that work on a fresh machine: `make demo` and `make test`.
# Each bootstraps its own virtual environment (python3 -m venv, then uv; pip if uv is missing):
# the suite and the dev tools in .venv, the demo only what docs/demo.sh runs in .venv-demo.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_VENV ?= .venv-demo

.PHONY: demo test lint venv clean conformance census

# uv installs the same pins as pip in a fraction of the time (66 s -> 12 s on a fresh machine); pip if
# uv cannot be had. Both compile bytecode at install: the suite's first processes would otherwise
# compile the same modules side by side (tried: slower).
INSTALL := -e '.[dev,dvc,mlflow]'
# The demo runs repro-hooks, dvc, mlflow (train.py, the check of the link) and pre-commit; not the
# suite's toolchain (pytest, mypy, ruff, jupyter, build, prek...).
DEMO_INSTALL := -e '.[dvc,mlflow]' 'pre-commit>=4.0'

# $(call make-venv,DIR,REQUIREMENTS)
define make-venv
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q uv && $(1)/bin/python -m uv pip install -q --compile-bytecode --python $(1)/bin/python $(2) -C editable_mode=compat \
		|| $(1)/bin/python -m pip install -q $(2) --config-settings editable_mode=compat
	touch $(1)/.installed
endef

$(VENV)/.installed: pyproject.toml
	$(call make-venv,$(VENV),$(INSTALL))

$(DEMO_VENV)/.installed: pyproject.toml
	$(call make-venv,$(DEMO_VENV),$(DEMO_INSTALL))

venv: $(VENV)/.installed

lint: venv
	$(PY) -m ruff check repro_hooks tests bench
	$(PY) -m ruff format --check repro_hooks tests bench
	$(PY) -m mypy

# On every core (pytest-xdist; `make test WORKERS=0` for a serial run). Each worker has its own session
# fixtures; the slow shared builds (wheel, hook environment, DVC projects) are built once per run under a
# lock (tests/helpers.built_once), not by xdist groups, which pytest 9.2 silently ignores.
# The suite starts some 1,500 Python processes. PYTHONDONTWRITEBYTECODE (set on the project's machines)
# is cleared for them, so this checkout's own modules are compiled once too; without bytecode
# `import mlflow` takes 4.0 s instead of 1.4 s.
# ruff and mypy run beside pytest, on the processor time its waits leave free (mypy alone takes 13 s
# on a fresh clone); their output follows pytest's, and the target fails if either fails.
RUN := PYTHONDONTWRITEBYTECODE= PATH="$(abspath $(VENV))/bin:$$PATH"
WORKERS ?= auto
test: venv
	@$(MAKE) --no-print-directory lint > $(VENV)/lint.log 2>&1 & lint=$$!; \
	$(RUN) $(PY) -m pytest --cov --cov-report=term -p no:cacheprovider \
		-n $(WORKERS); tests=$$?; \
	wait $$lint; linted=$$?; cat $(VENV)/lint.log; \
	test $$tests -eq 0 && test $$linted -eq 0

# Where the suite's processor time goes: `make test` with a line per Python process it starts
# (command line, CPU, wall, MLflow imported; tests/subprocess_coverage/sitecustomize.py), then
# bench/suite_census.py adds them up by kind (bench/RESULTS.md, "The suite").
CENSUS := $(abspath $(VENV))/census.jsonl
census: venv
	rm -f $(CENSUS)
	REPRO_HOOKS_TEST_CENSUS=$(CENSUS) $(MAKE) --no-print-directory test
	$(PY) bench/suite_census.py $(CENSUS)

# The full differential sweep of check-dvc against `dvc status` (tests/test_conformance.py), DVC
# asked from the root of each DVC project; for templated pipelines also the stages check-dvc
# resolves against DVC's own index. Its figures go to bench/conformance.json (copy them into
# bench/RESULTS.md).
conformance: venv
	$(RUN) CONFORMANCE_REPORT=bench/conformance.json \
		$(PY) -m pytest -p no:cacheprovider -m conformance -s tests/test_conformance.py

demo: $(DEMO_VENV)/.installed
	PYTHONDONTWRITEBYTECODE= PATH="$(abspath $(DEMO_VENV))/bin:$$PATH" bash docs/demo.sh

clean:
	rm -rf $(VENV) $(DEMO_VENV) .coverage* .mypy_cache .ruff_cache

# Mutation testing of the core rules (mutmut; what is mutated and which unit tests run:
# [tool.mutmut] in pyproject.toml). Each mutant runs only the tests that call the function it
# changes, forked from one warm process. Of links/ only the rules are run (links/rules.py,
# LINK_RULES), not the MLflow and git I/O around them. A part: `make mutation MUTANTS='repro_hooks.history.baseline.*'`.
# mutmut keeps its results in mutants/ (selected mutants run again each time); bench/mutation_report.py
# then prints the kill rate per module (`--survivors` lists them; `.venv/bin/mutmut show NAME`).
# `rm -rf mutants` starts afresh.
LINK_RULES := is_finished status_verdict choose_runs code_verdict _covers data_verdict \
	_same_value _cmd_text stage_verdict usable_end stamp_verdict fallback_verdict not_code
MUTANTS ?= 'repro_hooks.large_files.*' 'repro_hooks.history.*' 'repro_hooks.dvc.check.*' \
	'repro_hooks.deploy.gate.*' $(foreach f,$(LINK_RULES),'repro_hooks.links.rules.x_$(f)__mutmut_*')
MUTATION_JOBS ?= 2
.PHONY: mutation
mutation: venv
	$(RUN) $(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS) > $(VENV)/mutation.log 2>&1 \
		|| { tail -n 40 $(VENV)/mutation.log; exit 1; }
	$(PY) bench/mutation_report.py $(MUTANTS)
