# scrmbot: `make run` (sandbox: no WeCom account needed) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Front-end assets (ECharts, @wecom/jssdk) from the npm registry, pinned by package-lock.json.
ASSETS := node_modules/.installed

.PHONY: run test lint typecheck bench migrations clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "scrmbot needs Python 3.11+ ($(PYTHON) not found; set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)

$(ASSETS): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "scrmbot's console needs npm for its front-end assets (apt-get install npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(ASSETS)

## Start scrmbot in sandbox mode: SQLite, in-process Redis, the built-in WeCom simulator.
run: $(STAMP) $(ASSETS)
	$(BIN)/scrmbot sandbox

## Lint, type-check and run the whole test suite (uses DATABASE_URL / REDIS_URL when set).
test: $(STAMP) $(ASSETS)
	$(BIN)/ruff check --quiet .
	$(BIN)/mypy --no-error-summary bot handlers models scheduler
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy bot handlers models scheduler

bench: $(STAMP)
	$(BIN)/python bench/callback.py

## Generate a migration after changing models: make migrations NAME=add_tickets
migrations: $(STAMP)
	rm -f /tmp/scrmbot-makemigrations.db
	DATABASE_URL=sqlite:///tmp/scrmbot-makemigrations.db $(BIN)/tortoise -c bot.store.migrations_config.TORTOISE_ORM migrate
	DATABASE_URL=sqlite:///tmp/scrmbot-makemigrations.db $(BIN)/tortoise -c bot.store.migrations_config.TORTOISE_ORM makemigrations -n $(or $(NAME),auto)

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .mypy_cache *.egg-info
