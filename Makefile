# Two commands set everything up: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: serve test reliability install install-test install-javascript-sdk lock clean

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

# The AWS SDK for JavaScript v3, a second SDK for tests/functional/test_javascript_sdk.py, at
# the versions its lock file pins. Without npm the test says how to get it (and fails in CI).
JS_SDK := tests/sdk/javascript
JS_STAMP := $(JS_SDK)/node_modules/.installed
install-javascript-sdk:
	@if ! command -v npm >/dev/null; then \
		echo "make: npm is missing (apt-get install nodejs npm): the JavaScript SDK test cannot run"; \
	elif [ ! -e $(JS_STAMP) ] || [ $(JS_SDK)/package-lock.json -nt $(JS_STAMP) ]; then \
		npm ci --prefix $(JS_SDK) --no-audit --no-fund --loglevel=error && touch $(JS_STAMP); \
	fi

serve: $(STAMP)
	$(BIN)/searchtrail serve $(ARGS)

# Every test file runs on both cores (pytest-xdist, each file on one worker) except
# SERIAL_TESTS, which run one at a time afterwards, on an otherwise idle machine, since they
# assert latency or timing bounds (F4's and D2's p99 beside a fault, a TLS close within the
# server's grace). Both runs add to one reliability summary (SEARCHTRAIL_RELIABILITY_RUN).
# PYTEST_ARGS go to both (options such as --durations=20); for a subset, call .venv/bin/pytest
# with its paths.
TEST_WORKERS ?= 2
SERIAL_TESTS := tests/functional/test_tls.py tests/reliability/test_exhaustion.py \
	tests/reliability/test_delivery_faults.py
TEST_RUN := make-test-$(shell date +%s.%N)
test: $(TEST_STAMP) install-javascript-sdk
	SEARCHTRAIL_RELIABILITY_RUN=$(TEST_RUN) $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile \
		tests $(SERIAL_TESTS:%=--ignore=%) $(PYTEST_ARGS)
	SEARCHTRAIL_RELIABILITY_RUN=$(TEST_RUN) $(BIN)/pytest $(SERIAL_TESTS) $(PYTEST_ARGS)

# The reliability suite at full size (tests/reliability, README "Reliability"); `make test`
# runs the same scenarios CI-sized. Writes test-artifacts/reliability-summary-full.json.
RELIABILITY_SUMMARY ?= test-artifacts/reliability-summary-full.json
reliability: $(TEST_STAMP)
	SEARCHTRAIL_RELIABILITY=full SEARCHTRAIL_RELIABILITY_SUMMARY=$(RELIABILITY_SUMMARY) \
		$(BIN)/pytest tests/reliability tests/conformance/test_sigv4_suite.py $(PYTEST_ARGS)
	@$(BIN)/python -c "import json; print(json.dumps(json.load(open('$(RELIABILITY_SUMMARY)'))['totals'], indent=2))"

# Refresh the constraints file from what is installed (after changing pyproject.toml ranges).
lock: $(TEST_STAMP)
	$(BIN)/pip freeze --exclude-editable | grep -v '^searchtrail' > constraints.txt

clean:
	rm -rf $(VENV) .searchtrail .pytest_cache $(JS_SDK)/node_modules

# Benchmarks (bench/README.md): results in bench/results/*.json and bench/results/report.md.
# Peers (moto, ministack) go into .venv-peers/ on first use; the load generator is Debian's wrk.
.PHONY: bench bench-quick
bench: $(TEST_STAMP)
	@command -v wrk >/dev/null || echo "bench: wrk is missing: apt-get install wrk (falling back to the slower asyncio client)"
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: $(TEST_STAMP)
	@command -v wrk >/dev/null || echo "bench: wrk is missing: apt-get install wrk (falling back to the slower asyncio client)"
	$(BIN)/python -m bench --quick $(BENCH_ARGS)
