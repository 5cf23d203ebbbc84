# `make book` sets up, computes whatever the results store lacks (at the defaults nothing: their results ship in
# store/) and builds the book into _build/html; `make book PRESET=smoke` builds every chapter with that preset.
# `make test` sets up and runs every test, then builds the whole book at smoke size from empty data and results
# folders (scripts/book_from_scratch.sh); `make check` is the quick loop: lint, unit tests, every chapter at smoke size.
.PHONY: setup book test check benchmark clean

PRESET ?=
BOOK_OUT ?= $(CURDIR)
JB = .venv/bin/jupyter-book build book/ --all -W --keep-going   # book/_config.yml, book/_toc.yml: links to the top level

setup:
	@bash scripts/setup.sh

book: setup
	EARLY_DYNAMICS_PRESET=$(PRESET) .venv/bin/python -m helpers sweep all $(PRESET) --backend processes
	EARLY_DYNAMICS_PRESET=$(PRESET) $(JB) --path-output "$(BOOK_OUT)"
	.venv/bin/python scripts/check_book.py "$(BOOK_OUT)/_build/html"

test: setup
	.venv/bin/python -m pytest --nbval-lax -n auto --dist loadfile
	bash scripts/book_from_scratch.sh

check: setup
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -n auto --dist loadfile -m "not full" tests

benchmark: setup
	.venv/bin/python -m benchmarks.curvature

clean:
	rm -rf _build book/*.ipynb
