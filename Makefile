# Two commands for a new user: `make run` and `make test`. Everything else is set up from nothing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
HW     := $(VENV)/bin/headwater
STAMP  := $(VENV)/.installed
export HEADWATER_HOME ?= $(CURDIR)/.headwater
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install run test bench lint format clean browser java lambda iac-check

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	# torch pinned exactly: this is the CPU build on the machine's disk; any other spec downloads gigabytes.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job: ingest the bundled MNIST, train the MLP (density 35), evaluate, rank, serve.
run: install
	$(HW) ingest data/mnist.pkl.gz --dataset mnist
	$(HW) datasets
	$(HW) train --dataset mnist --model mlp --density 35
	$(HW) leaderboard mnist
	@echo "serving the API and the web UI; open the login URL printed below to train from the browser (Ctrl-C stops)"
	$(HW) serve --host $(HOST) --port $(PORT)

# PostgreSQL tests run against this server when it answers (CI insists that it does).
export HEADWATER_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test

# Two workers on two cores: one math thread each. OpenMP/BLAS pools per worker (torch,
# scikit-learn, openTSNE) oversubscribe the cores and spin: a 27 s test took 600 s that way.
test: install browser java iac-check
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist worksteal --timeout 600 $(PYTEST_ARGS)

# The obfuscator's Lambda zip (build/lambda/): its own modules and pinned wheels only; prints
# its size and fails past Lambda's 250 MB unzipped limit. See "Deploy the obfuscator to AWS".
lambda: install
	$(PY) deploy/aws/build_lambda.py

# Static checks of deploy/aws/ (no AWS account, no network): checkov, every skip explained
# inline. checkov pins old boto3 and packaging releases that would downgrade the project's
# own, so it lives in a venv of its own.
IAC_VENV := .venv-iac
CHECKOV  := $(IAC_VENV)/bin/checkov

$(CHECKOV):
	$(PYTHON) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/pip install --quiet 'checkov==3.3.30'

iac-check: $(CHECKOV)
	$(CHECKOV) --directory deploy/aws --framework terraform --quiet --compact --skip-download

# Browser tests drive Debian's Chromium (Playwright's own download cannot work here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium and chromium-driver for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# Spark (--engine spark, its tests) runs on a JVM: Debian's OpenJDK 17 when none is there.
java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing Debian's openjdk-17-jre-headless for Spark"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; }

bench: install
	$(PY) bench/ingest.py
	$(PY) bench/train.py
	$(PY) bench/train_stream.py
	$(PY) bench/obfuscate.py --gb 1.0
	$(PY) bench/lambda.py --sizes-mb 1 100 1024
	$(PY) bench/anomaly.py
	$(PY) bench/api.py
	$(PY) bench/synth.py
	$(PY) bench/images.py
	$(PY) bench/scale.py --scale 0.1

lint: install
	$(VENV)/bin/ruff check src tests bench deploy
	$(VENV)/bin/ruff format --check src tests bench deploy
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) $(IAC_VENV) .headwater .pytest_cache .mypy_cache .ruff_cache
