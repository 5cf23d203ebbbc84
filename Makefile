# `make book` sets up, computes every chapter's sweeps on every core (one single-threaded process each) and builds
# the book into _build/html; `make test` sets up and runs every test.
.PHONY: setup book test benchmark clean

setup:
	@bash scripts/setup.sh

book: setup
	.venv/bin/python -m helpers sweep all --backend processes
	.venv/bin/jupyter-book build book/ --config _config.yml --toc "$(CURDIR)/_toc.yml" --all -W --keep-going
	.venv/bin/python scripts/check_book.py _build/html

test: setup
	.venv/bin/python -m pytest --nbval-lax -n auto --dist loadfile

benchmark: setup
	.venv/bin/python -m benchmarks.curvature

clean:
	rm -rf _build book/*.ipynb
