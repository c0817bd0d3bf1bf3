.PHONY: run test lint

run:  ## set up everything and run the app with a demo tenant
	./scripts/run.sh

test:  ## install test needs, lint, and run the whole suite (browser tests included)
	./scripts/test.sh

lint:
	.venv/bin/ruff check .
