# Two entry points: `make run` (a small default tuning run) and `make test`.
# Each creates .venv with Python 3.11 and installs jaxmbrl on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= runs/default

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

.PHONY: run test lint study
run: $(VENV)/.installed
	$(PY) -m benchmarks.tune --env=cartpole_gear10 --tuner=pbt --population=8 --trials=12 \
		--ready_interval=3 --space=planning --preset=tiny --out=$(OUT)

# `make study`: the study at --scale=cpu (cartpole, 3 seeds, about an hour on 2 cores);
# the runs (with checkpoints) go to $(STUDY_RUNS), the report, study.json, PNGs and GIFs
# to results/study-cpu (committed). A rerun resumes the unfinished runs.
STUDY_RUNS ?= runs/study-cpu
study: $(VENV)/.installed
	$(PY) -m benchmarks.study --scale=cpu --out=$(STUDY_RUNS) --publish=results/study-cpu

test: $(VENV)/.installed
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder tests --durations=20

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check jaxmbrl benchmarks tests

# --- GPU path (BUILD_NOTES.gpu.md) ------------------------------------------------------
# `make test-py312`: the GPU image's Python and jax (3.12, jax/jaxlib 0.11.2, flax 0.12.12)
# on this CPU, in a second venv; runs the GPU-relevant test files one at a time.
PYTHON312 ?= $(or $(shell ls -d $(HOME)/.pyenv/versions/3.12.*/bin/python 2>/dev/null | tail -1), \
	$(shell command -v python3.12))
VENV312 ?= .venv312
PY312 := $(VENV312)/bin/python
GPU_TESTS ?= tests/test_tuners.py tests/test_planning.py tests/test_models.py \
	tests/test_population.py tests/test_envs.py
TEST_TIMEOUT ?= 1800

$(VENV312)/.installed: setup.cfg pyproject.toml
	$(PYTHON312) -m venv $(VENV312)
	$(PY312) -m pip install -q --upgrade pip
	$(PY312) -m pip install -q -e '.[test]' jax==0.11.2 jaxlib==0.11.2 flax==0.12.12 \
		mujoco==3.17.0 mujoco-mjx==3.17.0
	touch $@

.PHONY: test-py312 wheels
test-py312: $(VENV312)/.installed
	@$(PY312) -c "import sys, jax, flax; print(sys.version.split()[0], 'jax', jax.__version__, 'flax', flax.__version__)"
	@status=0; for f in $(GPU_TESTS); do \
		start=$$(date +%s); \
		timeout $(TEST_TIMEOUT) $(PY312) -m pytest -q $$f || status=1; \
		echo "$$f: $$(( $$(date +%s) - start )) s"; \
	done; exit $$status

# `make wheels`: the cp312 manylinux x86_64 wheels the GPU image lacks, into .whl/ (ignored),
# for the device machine (`run` with carry [".whl"]; see benchmarks/device_check.sh).
# Pinned to the versions tested in $(VENV312); --no-deps: the image has the rest.
WHEELS ?= mujoco==3.17.0 mujoco-mjx==3.17.0 glfw==2.11.0 pyopengl==3.1.10 websockets==17.4 \
	trimesh==5.2.0 etils==1.15.0 gymnasium==1.4.0
WHEEL_PLATFORMS := $(foreach p,manylinux_2_28_x86_64 manylinux_2_27_x86_64 \
	manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64,--platform $(p))
wheels:
	rm -rf .whl
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp $(WHEEL_PLATFORMS) -d .whl $(WHEELS)
	@ls -l .whl; du -sh .whl
