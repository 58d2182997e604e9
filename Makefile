# `make demo` runs the example experiment; `make test` runs the whole suite.
# Both work on a fresh Debian or Ubuntu host as root: they create a virtual
# environment, install and start Docker when needed, and bootstrap base images.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# Cells that tests parametrized with pytest_nni_docker.cells() run in `make test`:
# one per NNI version. `make matrix` runs every cell through tox.
TEST_CELLS ?= nni3.0-py3.11,nni2.10.1-py3.9

.PHONY: venv docker base-images demo test matrix clean-containers

$(BIN)/pytest: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/pytest

venv: $(BIN)/pytest

docker:
	scripts/docker-up.sh

base-images: venv docker
	PYTHON=$(BIN)/python scripts/base-images.sh bookworm bullseye

demo: base-images
	$(BIN)/pytest examples -p no:cacheprovider --nni-require-docker -o log_cli=true --log-cli-level=INFO $(PYTEST_ARGS)

test: base-images
	$(BIN)/pytest tests examples --nni-require-docker -n 2 --nni-cells $(TEST_CELLS) $(PYTEST_ARGS)

matrix: base-images
	$(PYTHON) -m tox -m matrix

clean-containers: venv
	$(BIN)/python -m pytest_nni_docker cleanup --kept
