# Two entry points for a fresh machine: `make run` and `make test`. Each creates .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := imdiag/node/node_modules/.package-lock.json

.PHONY: run test node nginx chromium dist bench lint clean

run: $(STAMP)
	$(BIN)/imdiag size-sweep

test: $(STAMP) node nginx chromium
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

# Headless Chromium renders the --html reports in the browser test (the Debian package).
# Without it that test skips locally; with CI=true it must run, so it is installed here.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$CI" = "true" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	else \
		echo "chromium not found: the --html browser test will be skipped" >&2; \
	fi

# The exact versions of constraints.txt: the reference masters' behaviour depends on them.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

# The wheel users install (pip install dist/imdiag-*.whl); it finds or installs Node's packages itself.
dist: $(STAMP)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .

bench: $(STAMP) node
	$(BIN)/python benchmarks/bench_sweep.py --master python
	$(BIN)/python benchmarks/bench_sweep.py --master both
	$(BIN)/python benchmarks/bench_probe.py
	$(BIN)/python benchmarks/bench_probe.py --no-guess  # the worst case: plain bisection to 16MiB
	$(BIN)/python benchmarks/bench_replay.py
	$(BIN)/python benchmarks/bench_tap.py
	$(BIN)/python benchmarks/bench_large_record.py  # one 50 MB record: read, size, replay
	$(BIN)/python benchmarks/bench_polling_load.py  # python master polling losses, 1 and 50 clients

clean:
	rm -rf $(VENV) imdiag/node/node_modules .pytest_cache .hypothesis build dist
