# `make demo` sets up the virtual environment and scores the built-in demo org.
# `make test` sets it up and runs the test suite. Both reinstall only when
# pyproject.toml changes.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: demo test setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	@echo "Installing revalign and its dependencies into $(VENV) (about a minute)..."
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/revalign score --demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q
