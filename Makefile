# Two commands do everything on a fresh machine: `make compare` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU machines carry torch 2.14.1 / torchvision 0.29.1 on disk; pinning them here keeps pip
# from resolving (and downloading) another build. Override on machines with their own torch.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.leakylab-installed

.PHONY: setup test compare theory clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile

compare: setup
	$(PY) -m apps.compare --config configs/compare/quick.yaml

theory: setup
	$(PY) -m apps.theory

clean:
	rm -rf $(VENV) runs reports
