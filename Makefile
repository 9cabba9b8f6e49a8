# Two entry points (see README): `make quickstart` and `make test`. Both create/reuse $(VENV), installed at the
# locked versions of requirements/lock*.txt; `LOCK=none make ...` resolves pyproject.toml's ranges instead
# (newest versions, in a new venv), `LOCK=FILE` installs another lock. `make lock` rewrites the lock.
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK ?=
INSTALL_DEPS := pyproject.toml setup.py scripts/install.sh scripts/install_detectron2.sh scripts/check_lock.py \
	requirements/lock.txt requirements/lock-dev.txt
ifeq ($(LOCK),none)
MODE := _loose
CHECK_LOCK := --loose
else
MODE :=
CHECK_LOCK := $(if $(LOCK),$(LOCK),requirements/lock-dev.txt)
endif
# one set of stamps per mode: switching between locked and loose reinstalls
STAMP := $(VENV)/.vmae_det_installed$(MODE)
STAMP_DEV := $(VENV)/.vmae_det_installed_dev$(MODE)

.PHONY: install install-dev quickstart quickstart-compare test lint check-lock lock bench clean-venv

$(STAMP): $(INSTALL_DEPS)
	rm -f $(VENV)/.vmae_det_installed*
	LOCK=$(LOCK) bash scripts/install.sh $(VENV)
	touch $@

# the tests' extras too (pytest, ruff, onnx/onnxruntime, transformers): pyproject.toml [dev]
$(STAMP_DEV): $(INSTALL_DEPS)
	rm -f $(VENV)/.vmae_det_installed*
	LOCK=$(LOCK) bash scripts/install.sh $(VENV) dev
	touch $@ $(STAMP)

install: $(STAMP)

install-dev: $(STAMP_DEV)

# the whole story in a few minutes (docs/quickstart.md)
quickstart: $(STAMP)
	bash scripts/quickstart.sh $(PY)

# MAE-pretrained vs scratch over 5 fine-tuning seeds, 15-30 min (docs/quickstart.md, docs/experiments.md)
quickstart-compare: $(STAMP)
	bash scripts/quickstart_compare.sh $(PY)

lint: $(STAMP_DEV)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# installed versions = the lock, and pip check
check-lock: $(STAMP_DEV)
	$(PY) scripts/check_lock.py $(CHECK_LOCK)

# on both cores (pytest-xdist): a module's tests stay in one worker, as they share module fixtures; modules in
# the order of tests/conftest.py (the longest first)
test: lint check-lock
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder tests

# a fresh loose install in a temporary venv, frozen into requirements/lock.txt and lock-dev.txt (minutes)
lock:
	python3 scripts/make_lock.py

# Benchmarks that need nothing outside this repository; bench_*_official.py and bench_mae_gpu.py take an
# official checkout or a GPU (see benchmarks/README.md).
bench: $(STAMP)
	$(PY) datasets/make_tiny_ava.py --root datasets/tiny_ava
	for b in bench_pretrain bench_ava_eval bench_detector bench_ava_loader bench_demo; do \
		echo "== $$b"; $(PY) benchmarks/$$b.py || exit 1; done

clean-venv:
	rm -rf $(VENV)
