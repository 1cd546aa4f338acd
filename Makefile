# Two commands for a fresh machine with Python 3.11 and make: `make demo`, `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install lint format lock bench

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
		|| { echo "tierflow needs Python 3.11 (found $(PYTHON)); set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q --require-hashes -r requirements.lock
	@touch $@

install: $(VENV)/.installed

# The demo's own settings, written once: debug on, a random secret key, and no quiet
# hours (the demo runs no beat to send held messages when they end).
.env: | $(BIN)/python
	@printf 'DEBUG=true\nSECRET_KEY=%s\nTIERFLOW_QUIET_HOURS=\n' "$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env

demo: install .env
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py demo_setup
	$(BIN)/python manage.py runserver 127.0.0.1:8000

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n auto

# The benchmark (README, Performance): needs PostgreSQL, Redis, wrk and pgbench; not run by CI.
bench: install
	bash bench/run.sh

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Regenerate requirements.lock after changing the pins in pyproject.toml.
lock: install
	$(BIN)/python -m pip install -q uv==0.13.9
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		--no-header -o requirements.lock
