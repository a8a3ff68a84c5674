PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint docs bench studies clean system-packages

# Debian packages some tests use beyond Python: Chromium for the UI tests (driven through
# Playwright's Python package; nothing downloads a browser), docker-compose, a Compose
# implementation that validates docker-compose.yml (no Docker engine needed), PostgreSQL for
# the tracking-server tests, and iproute2 for the namespace hosts of the deployment tests.
# Installed when missing and this runs as root on Debian, as CI does; elsewhere those tests
# skip, naming the package.
DEBIAN_PACKAGES := chromium docker-compose postgresql iproute2

# Re-install only when the project's dependencies change. uv (from PyPI, through pip)
# installs the dependencies in about 22 s where pip takes about 60 (measured on a fresh
# venv here). --compile-bytecode as pip does: with PYTHONDONTWRITEBYTECODE set, every
# process would compile MLflow and Ray on each import.
# PyTorch (for the Lightning integration) goes first, through pip, which reads the
# machine's wheel folder: 2.13.0 is the CPU build this machine keeps on disk, where PyPI's
# default build pulls in 3 GB of CUDA; uv keeps it, as it satisfies Lightning.
EXTRAS := dev,xgboost,lightgbm,lightning
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv "torch==2.13.0"
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hpo run experiments/digits_grid.py

# Three workers on the two cores: the tests that share a machine-wide resource (the
# namespace hosts, a Ray head, the tracking server, the local Ray cluster) each run as one
# group on one worker (tests/conftest.py), the rest beside them. Much of the integration
# tests' time is spent waiting on processes and servers, so a third worker still gains
# (about 8.5 min against 9-10 with two, measured). --no-loadscope-reorder: in the order
# tests/conftest.py gives, the longest groups first (pytest-xdist would otherwise start
# the groups with the most tests first, the namespace hosts' 13 after minutes of unit tests).
test: $(STAMP) lint system-packages
	$(BIN)/python -m pytest -q -n 3 --dist loadgroup --no-loadscope-reorder --durations=20

# The unit tests alone, less the slow ones (no Ray cluster, no servers, no browser): the
# edit-test loop.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not integration and not slow" --ignore=tests/integration

system-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		missing=""; \
		for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
		if [ -n "$$missing" ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		fi; \
	fi

# The documentation site (MkDocs, material theme, the API reference by mkdocstrings) in
# site/; strict: a broken link or reference fails (not --quiet: mkdocs counts for --strict
# only the warnings it logs). Its home page is the README, its links made relative to docs/.
docs: $(STAMP)
	sed -e 's#](docs/#](#g' -e 's#\[examples/quickstart.ipynb\](examples/quickstart.ipynb)#`examples/quickstart.ipynb`#' README.md > docs/index.md
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: $(STAMP)
	$(BIN)/ruff check hpo models experiments tests benchmarks examples
	$(BIN)/ruff format --check hpo models experiments tests benchmarks examples

# Optuna's GPSampler, a peer in optimizers.py, needs PyTorch (installed with the project)
# and greenlet, without which it polishes its candidates one after another.
# optuna-integration holds Optuna's MLflowCallback, a peer in overhead.py and cluster.py;
# ray[tune] is Ray Tune, a peer there too; hpbandster and ConfigSpace are what its BOHB
# (TuneBOHB, a peer in multifidelity.py) needs.
bench: $(STAMP)
	$(BIN)/pip install -q greenlet optuna-integration "ray[tune]" hpbandster ConfigSpace
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/models.py
	$(BIN)/python benchmarks/step_parts.py
	$(BIN)/python benchmarks/optimizers.py
	$(BIN)/python benchmarks/optimizers.py --warm-start
	$(BIN)/python benchmarks/optimizers.py --multi-objective
	$(BIN)/python benchmarks/pruning.py
	$(BIN)/python benchmarks/multifidelity.py
	$(BIN)/python benchmarks/multifidelity_wall.py
	$(BIN)/python benchmarks/pbt.py
	$(BIN)/python benchmarks/trial_resources.py
	$(BIN)/python benchmarks/searchcv.py
	$(BIN)/python benchmarks/closing_figures.py
	$(BIN)/python benchmarks/submit_latency.py
	$(BIN)/python benchmarks/cluster.py  # namespace hosts: needs root

# The source material's studies, run and written into docs/seed_studies.md (about half an
# hour on 2 cores; mnist_mlp only when HPO_MNIST names an MNIST file).
studies: $(STAMP)
	$(BIN)/python benchmarks/seed_studies.py

clean:
	rm -rf $(VENV) mlflow.db mlartifacts .pytest_cache site docs/index.md
