# qpv-geo — the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
OUT    ?= out/demo

.PHONY: demo test lock install install-dev system-deps bench-deps lint bench bench-geocoding bench-batch \
        bench-maps bench-web bench-verdicts bench-registre bench-national clean notebook img-rapport img-verdict

# Python packages come from the lock files (exact versions with their hashes, as tested);
# `make lock` refreshes them on purpose from pyproject.toml.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.lock
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	touch $@

## Re-resolve the locked versions (requirements.lock for demo, requirements-dev.lock for tests).
LOCK_FLAGS = --generate-hashes --upgrade --python-version 3.11 \
             --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock"
lock: $(VENV)/.installed
	$(PY) -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra web --extra pdf $(LOCK_FLAGS) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra web --extra pdf --extra dev $(LOCK_FLAGS) \
	  -o requirements-dev.lock

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# Debian packages the tests call: Chromium (real-browser tests, never a downloaded browser),
# the Pango libraries used by WeasyPrint, and poppler-utils (pdftotext reads the PDFs written).
SYSTEM_PACKAGES = chromium fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0 poppler-utils
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v pdftotext >/dev/null 2>&1 \
	    || ! dpkg -s libpango-1.0-0 >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      $(SYSTEM_PACKAGES) >/dev/null); \
	  else echo "Installez les paquets Debian : apt-get install $(SYSTEM_PACKAGES)"; exit 1; fi; \
	fi

## Install, then run the main job on the embedded default data and say where the outputs are.
demo: install
	$(BIN)/qpv-geo demo --output $(OUT)

## Install the dev dependencies and the system packages, lint, then run the whole suite.
test: install-dev system-deps
	$(BIN)/ruff check .
	$(PY) -m pytest

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(PY) benchmarks/bench_eligibility.py

# Redis (Debian) for the addok side-by-side run of the geocoding benchmark.
bench-deps:
	@if ! command -v redis-server >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null); \
	  else echo "Installez redis-server (apt-get install redis-server) pour comparer avec addok"; fi; \
	fi

# Certainty of the verdicts: « à vérifier » inside QPV and wrong confident verdicts (issue 11).
bench-verdicts: install
	$(PY) benchmarks/bench_verdicts.py

bench-geocoding: install-dev bench-deps
	$(PY) benchmarks/bench_geocoding.py

bench-batch: install
	$(PY) benchmarks/bench_batch.py

# National file on Dask (1 and 2 local workers) vs the single-process path: make bench-national N=1000000
N ?= 10000000
bench-national: install-dev
	$(PY) benchmarks/bench_national.py --rows $(N)

bench-maps: install-dev system-deps
	$(PY) benchmarks/bench_maps.py

bench-web: install
	$(PY) benchmarks/bench_web.py

## Re-execute the copilotage notebook in place: it is stored with its outputs (tables, charts, maps).
notebook: install-dev
	cd notebooks && $(abspath $(BIN))/jupyter execute --inplace rapport_copilotage.ipynb

## The README's picture of the committee report (docs/img/rapport*.png), from the real output.
img-rapport: install-dev system-deps
	$(PY) docs/img/make_rapport_png.py

## The README's picture of the verdict page (docs/img/verdict.png), from the real page.
img-verdict: install-dev system-deps
	QPV_GEO_GEOCODER=demo $(PY) docs/img/make_verdict_png.py

bench-registre: install
	$(PY) benchmarks/bench_registre.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
