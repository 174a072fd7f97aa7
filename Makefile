# liverseg: the two front-door commands are `make book` and `make test` (see README.md).
PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.liverseg-installed
PROFILE  ?= demo
BOOK_OUT := _build

.PHONY: install test test-lane-chapters test-lane-tests test-fast test-tests test-unit test-jax \
        test-book test-nbval test-nbval-early test-nbval-late book clean

install: $(STAMP)

# Re-install whenever the package metadata changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[book,dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

## make test: unit tests (TensorFlow) and the backend-specific Keras tests again on JAX, every
## chapter executed once in the smoke profile (`liverseg reproduce`: a failing cell fails the
## run), the book rendered from them with warnings as errors, and every chapter run again by
## nbval against its first outputs. Two lanes share the two cores: the chapters followed by the
## JAX tests, and the unit tests followed by the late chapters (the lesion chapter shares no
## stored network with the chapters of the first lane, so it runs beside them); the results
## chapter (whose lesion stage cuts the lesion chapter's slices) and the report (which reads
## every chapter's results) run once both lanes are done. Each TensorFlow process keeps to one
## thread (a smoke cascade trains as fast on one as on two, and the lanes do not contend).
SMOKE          := $(BOOK_OUT)/smoke
SMOKE_RUN      := $(VENV)/bin/liverseg reproduce --profile smoke --backend tensorflow --out $(SMOKE) -q
LATE_CHAPTERS  := lesions
LAST_CHAPTERS  := results report
ONE_THREAD     := TF_NUM_INTRAOP_THREADS=1

test: install
	rm -rf $(SMOKE)
	$(MAKE) --no-print-directory -j2 test-lane-chapters test-lane-tests
	$(ONE_THREAD) $(SMOKE_RUN)
	$(MAKE) --no-print-directory -j2 test-nbval-early test-nbval-late

test-lane-chapters: install
	$(ONE_THREAD) $(SMOKE_RUN) --skip $(LATE_CHAPTERS) $(LAST_CHAPTERS) --no-render
	$(MAKE) --no-print-directory test-jax

test-lane-tests: test-unit
	$(ONE_THREAD) $(SMOKE_RUN) --chapters $(LATE_CHAPTERS) --no-render

test-tests: test-unit test-jax

test-unit: install
	$(ONE_THREAD) KERAS_BACKEND=tensorflow $(PY) -m pytest --durations=15 tests

# XLA compiles each network's train step for half a minute on this CPU; the tests build the same
# few networks again and again, so a persistent compilation cache (under $(BOOK_OUT)) makes every
# compile after the first a read.
test-jax: install
	KERAS_BACKEND=jax JAX_COMPILATION_CACHE_DIR=$(BOOK_OUT)/jax-cache \
	JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 $(PY) -m pytest -m keras tests

## make test-book: every chapter in the smoke profile in one process, and the book rendered.
test-book: install
	rm -rf $(SMOKE)
	$(SMOKE_RUN)

## make test-nbval: every chapter executed by test-book runs again with nbval and must print
## what it printed then (networks come from the store; times and addresses are sanitized), so a
## chapter whose numbers do not reproduce fails. `make test` runs it in two halves side by side.
NBVAL          := $(ONE_THREAD) $(PY) -m pytest -p no:cacheprovider --nbval --nbval-current-env \
                  --nbval-sanitize-with tests/nbval/sanitize.cfg
NBVAL_LATE     := lesions results report fusion postprocessing
LATE_NOTEBOOKS  = $(foreach c,$(NBVAL_LATE),$(SMOKE)/book/$(c).ipynb)

test-nbval: install
	test -d $(SMOKE)/book || $(MAKE) --no-print-directory test-book
	$(NBVAL) $(SMOKE)/book

test-nbval-early: install
	$(NBVAL) $(filter-out $(LATE_NOTEBOOKS),$(wildcard $(SMOKE)/book/*.ipynb))

test-nbval-late: install
	$(NBVAL) $(LATE_NOTEBOOKS)

## make test-fast: the unit tests without the slow ones (no chapter, no JAX lane).
test-fast: install
	$(ONE_THREAD) KERAS_BACKEND=tensorflow $(PY) -m pytest -m "not slow" tests

## make book: set up, run every chapter on the built-in synthetic data, render the book. The run
## folder keeps the trained networks: a second `make book` only re-runs changed chapters.
book: install
	$(VENV)/bin/liverseg reproduce --profile $${LIVERSEG_PROFILE:-$(PROFILE)} --out runs/book-$${LIVERSEG_PROFILE:-$(PROFILE)}
	@echo "Book: runs/book-$${LIVERSEG_PROFILE:-$(PROFILE)}/_build/html/index.html"

clean:
	rm -rf $(BOOK_OUT) .pytest_cache runs
