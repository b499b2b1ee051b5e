# Every target sets up .venv on first use, so each is the only command a new user needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/heralded_entanglement.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check qnhw emulators
	$(BIN)/mypy qnhw emulators

bench: $(STAMP)
	$(BIN)/python benchmarks/rpc_latency.py
	$(BIN)/python benchmarks/stream_throughput.py
	$(BIN)/python benchmarks/physics_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info
