# django_mmc's developer entry points.
#
#   make demo         the example shop + MMC sandbox + Celery + dev server
#   make demo-check   the same, unattended, on free ports: PASS/FAIL per step
#   make test         install what the tests need and run the whole suite

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

# The whole suite, exactly as CI runs it: creates .venv and installs the test
# extras, starts PostgreSQL and Redis if they are installed but down, installs
# Debian's Chromium for the browser tests when run as root, checks lint and
# migrations, then runs pytest on SQLite and on PostgreSQL. ARGS go to pytest.
test:
	bash scripts/run-tests $(ARGS)
