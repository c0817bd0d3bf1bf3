.PHONY: run test lint bench drills

run:  ## set up everything and run the app with a demo tenant
	./scripts/run.sh

test:  ## install test needs, lint, and run the whole suite (browser tests included)
	./scripts/test.sh

drills:  ## every fault drill (tests/drills: worker, Redis and Postgres killed mid-burst, providers down); a few minutes
	DJANGO_SETTINGS_MODULE=omnidesk.settings_test .venv/bin/pytest -q -m "drill or not drill" tests/drills

lint:
	.venv/bin/ruff check .

bench:  ## run every benchmark and print one table (ARGS="--quick" for a smoke run, ARGS="--only ingest,live --json")
	.venv/bin/python bench/run_all.py $(ARGS)
