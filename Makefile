# frontier-gevent developer entry points.
#   make serve [CONFIG=etc/frontier.yaml]   run the gateway from a local .venv
#   make test [PYTEST_ARGS='-k config']     install test deps, start brokers, run pytest
#   make fuzz [FUZZ_SECONDS=600] [FUZZ_TARGET=relay]   coverage-guided fuzzing of the frame decoder (or the relay path)
#   make faults [FAULTS_ARGS=--short]       the cluster under real network faults (root)

PYTHON ?= python3
VENV ?= .venv
CONFIG ?=
PYTEST_ARGS ?=

PY := $(VENV)/bin/python
# Reinstall only when the package metadata changes; the stamps live inside .venv.
SERVE_STAMP := $(VENV)/.installed-serve
TEST_STAMP := $(VENV)/.installed-test

.PHONY: serve test

$(PY):
	@echo "==> creating the virtualenv $(VENV) (first run only)"
	$(PYTHON) -m venv $(VENV)

# --no-build-isolation: build with the venv's own setuptools, so an already
# installed tree needs no network.
$(SERVE_STAMP): setup.cfg pyproject.toml | $(PY)
	@echo "==> installing frontier-gevent and its dependencies (gevent, grpcio, flask, the MQ clients...) into $(VENV); the first time takes about a minute"
	$(PY) -m pip install -q --upgrade pip 'setuptools>=70.1' wheel
	$(PY) -m pip install -q --no-build-isolation -e '.[native]'
	touch $@

$(TEST_STAMP): setup.cfg pyproject.toml | $(PY)
	@echo "==> installing frontier-gevent with its test dependencies into $(VENV); the first time takes a few minutes"
	$(PY) -m pip install -q --upgrade pip 'setuptools>=70.1' wheel
	$(PY) -m pip install -q --no-build-isolation -e '.[test,native]'
	touch $@ $(SERVE_STAMP)

# make native   compile the relay's hot path with mypyc when its sources changed (a few
# seconds; see frontier/compiled.py); without a C compiler plain Python runs
.PHONY: native
native: $(SERVE_STAMP)
	@$(PY) scripts/build_native.py --if-stale

serve: $(SERVE_STAMP) native
	$(VENV)/bin/frontier-gevent serve $(if $(CONFIG),--config $(CONFIG))

test: $(TEST_STAMP) native
	scripts/ensure-services.sh
	$(PY) -m pytest -q $(PYTEST_ARGS)

# make bench [QUICK=1]   gateway vs a bare gevent relay, same load, same run; prints a
# table, writes loadtests/results/latest.json and latest.png (see loadtests/README.md)
# make bench SCALE=100000 [SCALE_WORKERS=6]   only that: N idle edges on serve --workers,
# one worker killed and its edges back; writes loadtests/results/scale.json
QUICK ?=
SCALE ?=
SCALE_WORKERS ?= 6
.PHONY: bench
bench: $(TEST_STAMP) native
	$(PY) -m loadtests.bench $(if $(QUICK),--quick) $(if $(SCALE),--scale $(SCALE) --scale-workers $(SCALE_WORKERS) --only scale)

# make fuzz [FUZZ_SECONDS=600] [FUZZ_TARGET=relay]   coverage-guided fuzzing (atheris,
# libFuzzer) of the frame decoder, or with FUZZ_TARGET=relay of admission, routing and
# re-encoding between two sessions; runs until stopped unless FUZZ_SECONDS is set; the
# corpus grows in FUZZ_CORPUS; a crash leaves crash-<sha1> here (see tests/fuzz/fuzz_*.py); plain
# Python, since atheris instruments Python code
FUZZ_SECONDS ?=
FUZZ_TARGET ?= decoder
FUZZ_CORPUS ?= $(VENV)/fuzz-corpus-$(FUZZ_TARGET)
.PHONY: fuzz
fuzz: $(TEST_STAMP)
	PYTHONPATH=. FRONTIER_PURE_PYTHON=1 $(PY) tests/fuzz/fuzz_$(FUZZ_TARGET).py $(FUZZ_CORPUS) -rss_limit_mb=1024 -timeout=10 $(if $(FUZZ_SECONDS),-max_total_time=$(FUZZ_SECONDS))

# make faults [FAULTS_ARGS='--short --only split']   the cluster in network namespaces under
# partitions, latency and loss, pauses, kill -9, a Redis failover and a Frontlas restart;
# prints a table per scenario and exits 1 on a broken promise (see tests/faults/run.py).
# Needs root (CAP_NET_ADMIN); without it, it says so and stops.
FAULTS_ARGS ?=
.PHONY: faults
faults: $(TEST_STAMP)
	scripts/ensure-services.sh fault-tools
	$(PY) -m tests.faults.run $(FAULTS_ARGS)
