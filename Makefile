# riskengine — `make demo` and `make test` work on a fresh machine with Python 3.11 and make.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-slow bench lint clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@$(BIN)/python -c "import hedging.native as n; print('native CPU kernels:', n.build())" \
		|| echo "note: native CPU kernels not built (no C++ compiler?): training runs as plain JAX"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/riskengine run configs/stress.yaml --out out/demo
	@echo "report: $(CURDIR)/out/demo/report.html"

# pytest exits 5 when it collects no test: that must fail, never pass silently.
# The tests run in TEST_WORKERS processes (pytest-xdist; 0 runs them in this one).
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n $(TEST_WORKERS) tests

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow -n $(TEST_WORKERS) tests

bench: $(STAMP)
	$(BIN)/python benchmarks/simulate.py

lint: $(STAMP)
	$(BIN)/ruff check riskengine hedging tests benchmarks

clean:
	rm -rf $(VENV) out .pytest_cache
