# liverseg: the two front-door commands are `make book` and `make test` (see README.md).
PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.liverseg-installed
PROFILE  ?= demo
BOOK_OUT := _build

.PHONY: install test test-unit test-jax test-book book book-html clean

install: $(STAMP)

# Re-install whenever the package metadata changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

## make test: unit tests (TensorFlow), Keras tests and the networks chapter again on JAX,
## nbval on every chapter in the smoke profile, and a Jupyter Book build that fails on warnings.
test: install test-unit test-jax test-book

test-unit: install
	KERAS_BACKEND=tensorflow $(PY) -m pytest tests

test-jax: install
	KERAS_BACKEND=jax $(PY) -m pytest -m keras tests
	LIVERSEG_PROFILE=smoke KERAS_BACKEND=jax $(PY) -m pytest --nbval-lax --nbval-current-env book/networks.ipynb

test-book: install
	LIVERSEG_PROFILE=smoke KERAS_BACKEND=tensorflow $(PY) -m pytest --nbval-lax --nbval-current-env book
	LIVERSEG_PROFILE=smoke $(MAKE) --no-print-directory book-html

## make book: set up, run every chapter on the built-in synthetic data, render the book.
book: install
	LIVERSEG_PROFILE=$${LIVERSEG_PROFILE:-$(PROFILE)} $(MAKE) --no-print-directory book-html
	@echo "Book: $(BOOK_OUT)/html/index.html"

book-html:
	rm -rf $(BOOK_OUT)
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going --path-output . .

clean:
	rm -rf $(BOOK_OUT) .pytest_cache runs
