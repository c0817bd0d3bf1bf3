.PHONY: run test lint bench

run:  ## set up everything and run the app with a demo tenant
	./scripts/run.sh

test:  ## install test needs, lint, and run the whole suite (browser tests included)
	./scripts/test.sh

lint:
	.venv/bin/ruff check .

bench:  ## run every benchmark and print one table (ARGS="--quick" for a smoke run, ARGS="--only ingest,live --json")
	.venv/bin/python bench/run_all.py $(ARGS)
