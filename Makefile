# Two entry points (see README): `make quickstart` and `make test`. Both create/reuse $(VENV).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vmae_det_installed

.PHONY: install quickstart test bench clean-venv

$(STAMP): setup.py requirements.txt scripts/install.sh scripts/install_detectron2.sh
	bash scripts/install.sh $(VENV)
	touch $@

install: $(STAMP)

quickstart: $(STAMP)
	bash scripts/quickstart.sh $(PY)

test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) datasets/make_tiny_ava.py --root datasets/tiny_ava
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
