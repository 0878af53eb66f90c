# comodo: `make demo` runs the whole pipeline on the synthetic default; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN := PATH="$(abspath $(BIN)):$$PATH" COMODO_PROGRESS=$${COMODO_PROGRESS:-1}
DATASET ?=

.PHONY: install demo sweeps test test-slow lint bench bench-all features clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	echo "$(TORCH_SPEC)" > $(VENV)/torch-constraint.txt
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -c $(VENV)/torch-constraint.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(RUN) $(BIN)/dvc repro
	$(RUN) $(BIN)/comodo-store ls data
	$(RUN) $(BIN)/comodo summary

# Figures 3/4, Table 5: every `sweep.params` key through DVC, as an experiment
sweeps: install
	$(RUN) $(BIN)/dvc exp run -S sweep.enabled=true
	$(RUN) $(BIN)/comodo summary

test: install
	$(RUN) COMODO_PROGRESS=0 $(BIN)/pytest -q

test-slow: install
	$(RUN) COMODO_PROGRESS=0 $(BIN)/pytest -q -m slow

lint: install
	$(BIN)/ruff check .

# the headline benchmarks: imu + windows against pandas + scipy on 100 h of IMU, the fast
# SVM against the reference protocol, export latency and size (benchmarks/results/*.json)
bench: install
	$(RUN) COMODO_PROGRESS=0 $(BIN)/python -m benchmarks bench_imu bench_svm bench_export

bench-all: install
	$(RUN) $(BIN)/python -m benchmarks

features: install
	@test -n "$(DATASET)" || { echo "usage: make features DATASET=<name from params.yaml datasets:>" >&2; exit 2; }
	$(RUN) $(BIN)/comodo check-dataset $(DATASET)
	$(RUN) $(BIN)/dvc repro features@$(DATASET)

clean:
	rm -rf data runs metrics reports benchmarks/results
