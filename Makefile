# The two commands that matter: `make demo` and `make test` (README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
N ?= 2000
OUT ?= out/demo

.PHONY: setup demo test test-all bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cohort demo --participants $(N) --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --doctest-modules src/cohort tests

test-all: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --doctest-modules src/cohort tests -m ""

bench: $(STAMP)
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks analyses

clean:
	rm -rf $(VENV) out .pytest_cache
