# The two commands of README.md: `make run` and `make check`. Both set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
#: Two stamps, one venv: `make run` installs what the server needs (about 120 MB); `make
#: check` adds the test, lint and benchmark tools (about 580 MB). `make run` after `make
#: check` installs nothing more, and `make check` after `make run` adds the tools.
RUN_STAMP := $(VENV)/.run-stamp
STAMP := $(VENV)/.installed-stamp
CERTS ?= certs
DB ?= sqlite:///securechat.db
VENV_READY = @$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "securechat needs Python 3.11 or newer")' && \
	{ test -x $(BIN)/python || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet --upgrade pip; }; }

.PHONY: run check lint test install clean

$(RUN_STAMP): pyproject.toml
	$(VENV_READY)
	$(BIN)/python -m pip install --quiet -e .
	@touch $(RUN_STAMP)

# matplotlib (the bench extra) is needed by the tests of `securechat bench --plot`.
$(STAMP): pyproject.toml
	$(VENV_READY)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@# Write the install out now: the tests' durable commits fsync, and the first one would
	@# otherwise wait behind hundreds of MB of freshly installed files.
	@sync
	@touch $(STAMP) $(RUN_STAMP)

install: $(STAMP)

## Start a working server on embedded defaults (certs in ./certs, SQLite in ./securechat.db, 127.0.0.1:5050).
run: $(RUN_STAMP)
	@test -f $(CERTS)/server.pem || $(BIN)/securechat init-certs --dir $(CERTS)
	@echo
	@echo "Starting securechat on 127.0.0.1:5050 and :5443 (Ctrl-C stops it). In another terminal:"
	@echo "  $(BIN)/securechat adduser alice"
	@echo "  $(BIN)/securechat connect localhost --user alice --ca $(CERTS)/ca.pem"
	@echo "or open https://localhost:5443/ in a browser that trusts $(CERTS)/ca.crt (docs/deploy.md)"
	@echo
	$(BIN)/securechat serve --host 127.0.0.1 --port 5050 --certs $(CERTS) --db $(DB)

lint: $(STAMP)
	$(BIN)/ruff check securechat tests migrations
	$(BIN)/ruff format --check securechat tests migrations
	$(BIN)/mypy --strict securechat tests

# Two workers: most tests wait on subprocesses, sockets and fsyncs, so two keep a 2-core
# machine busy (about half the serial time); every test is independent of the others.
test: $(STAMP)
	$(BIN)/pytest -n 2

## Install what the tests need, then lint, type-check and run the whole suite.
check: lint test

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
