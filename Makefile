# django_mmc's developer entry points.
#
#   make demo         the example shop + MMC sandbox + Celery + dev server
#   make demo-check   the same, unattended, on free ports: PASS/FAIL per step
#   make test         the whole test matrix, each leg in a virtualenv of its own

PYTHON ?= python3

.PHONY: demo demo-check test

# The demo needs only Python 3.10+: example_project/demo.py creates .venv
# (if absent), installs django_mmc into it with `pip install -e .`, and runs
# everything from there. DEMO_PORT (8000) and DEMO_SANDBOX_PORT (8765) move
# the dev server and the sandbox.
demo:
	$(PYTHON) example_project/demo.py

demo-check:
	$(PYTHON) example_project/demo.py --check

# The matrix, exactly as CI runs it (scripts/run-tests says what each leg
# runs): Python 3.13 + Django 6.1 on PostgreSQL and Redis (lint, migrations,
# docs, deprecations, the whole suite, the packaging tests), Python 3.10 +
# Django 5.2 on SQLite and PostgreSQL, Python 3.12 + Django 6.0, and the
# integration tests on RabbitMQ. Starts the services that are installed but
# down. LEGS="main" runs some legs only; ARGS go to every pytest run.
test:
	LEGS="$(LEGS)" bash scripts/run-tests $(ARGS)
