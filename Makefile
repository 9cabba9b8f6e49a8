# Two entry points (see README): `make quickstart` and `make test`. Both create/reuse $(VENV).
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALL_DEPS := pyproject.toml setup.py scripts/install.sh scripts/install_detectron2.sh
STAMP := $(VENV)/.vmae_det_installed
STAMP_DEV := $(VENV)/.vmae_det_installed_dev

.PHONY: install install-dev quickstart test lint bench clean-venv

$(STAMP): $(INSTALL_DEPS)
	bash scripts/install.sh $(VENV)
	touch $@

# the tests' extras too (pytest, ruff, onnx/onnxruntime, transformers): pyproject.toml [dev]
$(STAMP_DEV): $(INSTALL_DEPS)
	bash scripts/install.sh $(VENV) dev
	touch $@ $(STAMP)

install: $(STAMP)

install-dev: $(STAMP_DEV)

quickstart: $(STAMP)
	bash scripts/quickstart.sh $(PY)

lint: $(STAMP_DEV)
	$(PY) -m ruff check .

test: lint
	OMP_NUM_THREADS=1 $(PY) -m pytest -q tests

# Benchmarks that need nothing outside this repository; bench_*_official.py and bench_mae_gpu.py take an
# official checkout or a GPU (see benchmarks/README.md).
bench: $(STAMP)
	$(PY) datasets/make_tiny_ava.py --root datasets/tiny_ava
	for b in bench_pretrain bench_ava_eval bench_detector bench_ava_loader bench_demo; do \
		echo "== $$b"; $(PY) benchmarks/$$b.py || exit 1; done

clean-venv:
	rm -rf $(VENV)
