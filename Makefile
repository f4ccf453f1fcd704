# mlstack developer tasks. Everything runs inside .venv (created on first use).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: docs demo test fuzz lint bench install install-dev oldest-env wheels clean browser
# Azurite, Microsoft's Azure Storage emulator, for the remote-state tests (npm, pinned)
AZURITE := azurite@3.37.0

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# core + the embedded local backend
# (`mlstack` was this distribution's old name; on the package index it is someone else's)
$(VENV)/.local-installed: $(BIN)/python pyproject.toml constraints.txt runtime/pyproject.toml
	$(PIP) uninstall -y -q mlstack 2>/dev/null || true
	$(PIP) install -q -c constraints.txt -e 'runtime[validate,tune,remote]' -e '.[local]'
	touch $@

# everything the test suite needs: the runtime, local, the SageMaker, Azure ML, Vertex and KServe
# backends, the AWS, Azure, GCP and Kubernetes stacks, test tools
$(VENV)/.dev-installed: $(BIN)/python pyproject.toml constraints.txt runtime/pyproject.toml backends/sagemaker/pyproject.toml backends/azureml/pyproject.toml backends/vertex/pyproject.toml backends/kserve/pyproject.toml stacks/pyproject.toml
	$(PIP) uninstall -y -q mlstack 2>/dev/null || true
	$(PIP) install -q -c constraints.txt -e 'runtime[validate,tune,remote]' -e '.[local,test]' -e 'backends/sagemaker[test]' -e 'backends/azureml[test]' -e 'backends/vertex[test]' -e 'backends/kserve[test]' -e 'stacks[aws,azure,gcp,kubernetes]'
	touch $@

$(VENV)/node/.installed: Makefile
	npm install --prefix $(VENV)/node --no-audit --no-fund --loglevel=error $(AZURITE)
	touch $@

install: $(VENV)/.local-installed
install-dev: $(VENV)/.dev-installed $(VENV)/node/.installed

# Wheels and sdists of every distribution into dist/ (what examples/ci installs until a release
# is published). The test suite builds them again in a temporary folder for its fresh-venv run.
DISTS := . runtime backends/sagemaker backends/azureml backends/vertex backends/kserve stacks
wheels: install-dev
	rm -rf dist
	# build/ is removed first: setuptools would package stale files left in it
	for d in $(DISTS); do rm -rf $$d/build && $(BIN)/python -m build --no-isolation --sdist --wheel --outdir dist $$d || exit 1; done

# mlstack_runtime's oldest supported versions (SageMaker's scikit-learn 1.2-1 image) in
# .venv-py39; the runtime's tests build it on first use too, and skip where Python 3.9 is absent.
oldest-env: $(BIN)/python
	$(BIN)/python runtime/tests/oldest_env.py

# The quickstart end to end on the local backend: data, plan, apply, a prediction.
demo: install
	cd examples/quickstart && ../../$(BIN)/python prepare_data.py
	cd examples/quickstart && ../../$(BIN)/mlstack validate
	cd examples/quickstart && ../../$(BIN)/mlstack plan -e dev
	cd examples/quickstart && ../../$(BIN)/mlstack apply -e dev --auto-approve
	cd examples/quickstart && ../../$(BIN)/mlstack status -e dev
	cd examples/quickstart && ../../$(BIN)/mlstack predict -e dev --data "$$(cat sample.json)"

# The generated reference pages (docs/reference/): rewritten from the code's tables and models.
docs: install-dev
	$(BIN)/python -m mlstack.tooling.docs_gen

lint: install-dev
	$(BIN)/ruff check mlstack runtime backends stacks tests
	$(BIN)/ruff format --check mlstack runtime tests backends stacks
	$(BIN)/mypy
	$(BIN)/lint-imports

# Two test processes (pytest-xdist), a test file each at a time: module fixtures stay in one
# process, and the suite's waits on servers and jobs overlap on the machine's two cores.
test: install-dev lint browser
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

# `mlstack report`'s test opens the HTML file in Debian's headless `chromium`: installed here when
# missing and we may (root, apt-get), within bounded time. Without it that test fails saying so.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { timeout 600 apt-get install -y --no-install-recommends chromium || \
	    { timeout 300 apt-get update && timeout 600 apt-get install -y --no-install-recommends chromium; }; }; } || \
	  echo "chromium is not installed: tests/unit/monitoring/test_report.py will fail saying how to install it" >&2

# The fuzzers and the crash test at a larger size than `make test` runs them.
fuzz: install-dev
	MLSTACK_FUZZ_EXAMPLES=5000 $(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_fuzz.py
	MLSTACK_CRASH_KILLS=50 $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/test_crash_kills.py

bench: install-dev
	$(BIN)/python tests/benchmarks/bench_cli.py
	$(BIN)/python tests/benchmarks/bench_plan.py
	$(BIN)/python tests/benchmarks/bench_runner.py
	$(BIN)/python tests/benchmarks/bench_apply.py
	$(BIN)/python tests/benchmarks/bench_router.py
	$(BIN)/python backends/sagemaker/benchmarks/bench_plan.py
	$(BIN)/python backends/sagemaker/benchmarks/bench_noop_plan_refresh.py

# Destroy every environment that has state (staging too, not only dev); keep .mlstack when
# one of them fails to destroy, so that nothing is orphaned without a record of it.
clean:
	cd examples/quickstart && ok=1; \
	for db in .mlstack/state/*.db; do \
	  [ -e "$$db" ] || continue; env=$$(basename "$$db" .db); \
	  ../../$(BIN)/mlstack destroy -e "$$env" --auto-approve || ok=0; \
	done; \
	if [ $$ok = 1 ]; then rm -rf .mlstack; else echo "kept .mlstack: a destroy failed" >&2; exit 1; fi
