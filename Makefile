# Two entry points for a fresh machine: `make run` and `make test`. Each creates .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := imdiag/node/node_modules/.package-lock.json

.PHONY: run test node nginx bench lint clean

run: $(STAMP)
	$(BIN)/imdiag size-sweep

test: $(STAMP) node nginx
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

# Real nginx (the Debian package) for the tests of the path between worker and master. The tests
# start their own nginx processes with generated configs; no service is needed. Without nginx
# those tests skip locally; with CI=true they must run, so nginx is installed (as root).
nginx:
	@if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then \
		:; \
	elif [ "$$CI" = "true" ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx; \
	else \
		echo "nginx not found: the proxy tests will be skipped (apt-get install nginx)" >&2; \
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
