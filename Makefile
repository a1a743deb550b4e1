# Two entry points for a fresh machine: `make run` and `make test`. Each creates .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := imdiag/node/node_modules/.package-lock.json

.PHONY: run test node bench lint clean

run: $(STAMP)
	$(BIN)/imdiag size-sweep

test: $(STAMP) node
	$(BIN)/python -m pytest
	$(BIN)/imdiag gate  # dogfood: the project's own CI gate on its shipped fixtures (imdiag.toml)

# The pinned Node.js socket.io master for the interop tests (package-lock.json).
# Without npm the Node tests skip locally; with CI=true they must run, so a missing npm fails.
node:
	@if command -v npm >/dev/null 2>&1; then \
		if [ ! -f $(NODE_STAMP) ] || [ imdiag/node/package-lock.json -nt $(NODE_STAMP) ]; then \
			npm ci --prefix imdiag/node --no-audit --no-fund --loglevel=error; \
		fi; \
	elif [ "$$CI" = "true" ]; then \
		echo "npm is required in CI for the Node.js interop tests" >&2; exit 1; \
	else \
		echo "npm not found: the Node.js interop tests will be skipped" >&2; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

bench: $(STAMP) node
	$(BIN)/python benchmarks/bench_sweep.py --master python
	$(BIN)/python benchmarks/bench_sweep.py --master both
	$(BIN)/python benchmarks/bench_probe.py
	$(BIN)/python benchmarks/bench_probe.py --no-guess  # the worst case: plain bisection to 16MiB
	$(BIN)/python benchmarks/bench_replay.py

clean:
	rm -rf $(VENV) imdiag/node/node_modules .pytest_cache .hypothesis
