# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench lint typecheck unit compile clean release lock fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project's metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev,deploy,release]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check ohttp gateway relay issuer benchmarks tests deploy

typecheck: $(STAMP)
	$(BIN)/mypy --strict ohttp gateway relay issuer benchmarks tests deploy

# The engine's and the relay's per-request modules compiled by mypyc, in place; rebuilt only when
# missing or older than a source (deploy/compile.py). The tests and the demo run on them.
compile: $(STAMP)
	$(BIN)/python deploy/compile.py

unit: compile
	$(BIN)/pytest

test: lint typecheck unit

demo: compile
	$(BIN)/ohttp demo

# Plots, progress bars and py-spy; nginx and wrk (apt) are used when installed.
$(VENV)/.installed-bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,dev,bench]'
	touch $@

bench: $(VENV)/.installed-bench compile
	$(BIN)/python -m benchmarks

# The sdist and the wheel of HEAD, built reproducibly into dist/ with the hash-locked build
# tools, the CycloneDX SBOM of the runtime dependencies, and the measurement (docs/transparency.md).
release: $(STAMP)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-build.lock
	$(BIN)/python deploy/release.py --out dist

# Regenerate the hash-locked requirements files (docs/deploy.md, "Supply chain").
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
		--no-emit-find-links -o requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --no-emit-index-url \
		--no-emit-find-links -o requirements-build.lock requirements-build.in

# Every parser harness of tests/fuzz for FUZZ_SECONDS each (make test runs a short pass).
FUZZ_SECONDS ?= 60
fuzz: compile
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/pytest -q tests/fuzz

clean:
	$(PYTHON) deploy/compile.py --clean
	rm -rf $(VENV) build dist *.egg-info
