# The two commands of the README: `make run` (demo lifecycle, then serve) and `make test`.
.PHONY: run test setup lint

run:
	@bash scripts/setup.sh
	@bash scripts/run.sh

test:
	@bash scripts/setup.sh
	@bash scripts/test.sh

setup:
	@bash scripts/setup.sh

lint:
	@.venv/bin/ruff check . && .venv/bin/lint-imports
