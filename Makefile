# Two commands set everything up: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: serve test install install-test lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(TEST_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@ $(STAMP)

install: $(STAMP)
install-test: $(TEST_STAMP)

serve: $(STAMP)
	$(BIN)/searchtrail serve $(ARGS)

test: $(TEST_STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# Refresh the constraints file from what is installed (after changing pyproject.toml ranges).
lock: $(TEST_STAMP)
	$(BIN)/pip freeze --exclude-editable | grep -v '^searchtrail' > constraints.txt

clean:
	rm -rf $(VENV) .searchtrail .pytest_cache
