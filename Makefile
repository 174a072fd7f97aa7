# liverseg: the two front-door commands are `make book` and `make test` (see README.md).
PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.liverseg-installed
PROFILE  ?= demo
BOOK_OUT := _build

.PHONY: install test test-lane-chapters test-lane-tests test-results-chapter test-lesion-chapter \
        test-fast test-tests test-unit test-jax test-book test-nbval test-nbval-first book clean

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
## nbval against its first outputs. Two lanes share the two cores (`make -j2` over the targets
## below): (1) the chapters but the last three, nbval over them and the JAX tests (compiled
## from scratch on a clean clone, see test-jax); (2) the unit tests, the lesion chapter (it
## shares no stored network with the chapters of the first lane, so it runs beside them),
## then, once the first lane's chapters are done too, the results chapter (its system reads
## the networks chapter's liver cascade and cuts the lesion chapter's slices), and nbval over
## those two. The report (which reads every chapter's results) runs last, with the book's
## rendering, then nbval over it. Each TensorFlow process keeps to one thread (a smoke cascade
## trains as fast on one as on two, and the lanes do not contend).
SMOKE          := $(BOOK_OUT)/smoke
SMOKE_RUN      := $(VENV)/bin/liverseg reproduce --profile smoke --backend tensorflow --out $(SMOKE) -q
LATE_CHAPTERS  := lesions results
LAST_CHAPTERS  := report
ONE_THREAD     := TF_NUM_INTRAOP_THREADS=1
UNIT           := $(ONE_THREAD) KERAS_BACKEND=tensorflow $(PY) -m pytest --durations=10
FIRST_DONE     := $(SMOKE)/.first-chapters-done
notebooks       = $(foreach c,$(1),$(SMOKE)/book/$(c).ipynb)

test: install
	rm -rf $(SMOKE)
	$(MAKE) --no-print-directory -j2 test-lane-chapters test-lane-tests
	$(ONE_THREAD) $(SMOKE_RUN)
	$(NBVAL) $(call notebooks,$(LAST_CHAPTERS))

# lane 1
test-lane-chapters: $(FIRST_DONE)
	$(MAKE) --no-print-directory test-nbval-first
	$(MAKE) --no-print-directory test-jax

$(FIRST_DONE): install
	$(ONE_THREAD) $(SMOKE_RUN) --skip $(LATE_CHAPTERS) $(LAST_CHAPTERS) --no-render
	touch $@

# lane 2
test-lane-tests: test-results-chapter
	$(NBVAL) $(call notebooks,$(LATE_CHAPTERS))

test-results-chapter: test-lesion-chapter $(FIRST_DONE)
	$(ONE_THREAD) $(SMOKE_RUN) --chapters results --no-render

test-lesion-chapter: test-unit
	$(ONE_THREAD) $(SMOKE_RUN) --chapters lesions --no-render

test-tests: test-unit test-jax

test-unit: install
	$(UNIT) tests

# XLA compiles each network's train step for half a minute on this CPU; the tests build the same
# few networks again and again, so a persistent compilation cache (under $(BOOK_OUT)) makes every
# compile after the first a read. The tests' networks are tiny, so compiling is most of their
# time: XLA's CPU back end compiles here without LLVM's optimizations (building a smoke
# localizer, whose initializers are 25 small compiled programs, 10.4 s -> 2.5 s; the lane from a
# cold cache 148 s -> 104 s). The programs compute the same values up to rounding; GPU runs and
# benchmark runs outside the tests keep XLA's defaults.
test-jax: install
	KERAS_BACKEND=jax JAX_COMPILATION_CACHE_DIR=$(BOOK_OUT)/jax-cache \
	JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 XLA_FLAGS=--xla_backend_optimization_level=0 \
	$(PY) -m pytest -m keras tests

## make test-book: every chapter in the smoke profile in one process, and the book rendered.
test-book: install
	rm -rf $(SMOKE)
	$(SMOKE_RUN)

## make test-nbval: every chapter executed by test-book runs again with nbval and must print
## what it printed then (networks come from the store; times and addresses are sanitized), so a
## chapter whose numbers do not reproduce fails. `make test` runs it chapter group by chapter
## group, each as soon as its chapters are done.
NBVAL          := $(ONE_THREAD) $(PY) -m pytest -p no:cacheprovider --nbval --nbval-current-env \
                  --nbval-sanitize-with tests/nbval/sanitize.cfg

test-nbval: install
	test -d $(SMOKE)/book || $(MAKE) --no-print-directory test-book
	$(NBVAL) $(SMOKE)/book

# the chapters of the first lane (a target of its own: the wildcard is read once they exist)
test-nbval-first: install
	$(NBVAL) $(filter-out $(call notebooks,$(LATE_CHAPTERS) $(LAST_CHAPTERS)),$(wildcard $(SMOKE)/book/*.ipynb))

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
