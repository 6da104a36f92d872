# aiortmp — set-up contract: make install | serve | test | bench | lint | fuzz
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install serve test lint typecheck sysdeps bench fuzz clean

install: $(STAMP)

# Idempotent: the venv is created once; the package is re-installed when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: install
	$(BIN)/aiortmp serve $(ARGS)

# Debian peers used by interop tests (rtmpdump, GStreamer, ffprobe, nginx-rtmp); idempotent.
sysdeps:
	bash scripts/sysdeps.sh

lint: install
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)
	$(BIN)/mypy

test: install sysdeps lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: install sysdeps
	$(BIN)/python -m bench.run $(ARGS)

fuzz: install
	$(BIN)/python -m tests.fuzz $(ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
