# The README's commands. `make demo` sets up (if needed) and runs the main job; `make test` runs the tests.
.PHONY: setup demo test lint unit test-rest test-crash bench bench-ingest bench-lifecycle
setup:
	bash scripts/setup.sh
# the department simulator writes three nights, shuzhi runs its DAGs over them, the simulator scores them
demo: setup
	.venv/bin/feedsim demo
# two pytest workers, a test file each at a time: a small Spark job leaves one of the two cores
# idle (the lifecycle tests' built lake is built once and shared, see tests/conftest.py)
TEST_WORKERS ?= 2
# `make test`: lint, then the unit layer (seconds), then the rest (spark + integration; minutes)
test: setup lint unit test-rest
lint: setup
	.venv/bin/ruff check .
unit: setup
	.venv/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m unit --durations=10
test-rest: setup
	.venv/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "spark or integration" --durations=30
test-crash: setup
	.venv/bin/python -m pytest -q -m crash
bench: setup
	.venv/bin/python -u benchmarks/night_bench.py

bench-ingest: setup
	.venv/bin/python -u benchmarks/ingest_bench.py

bench-lifecycle: setup
	.venv/bin/python -u benchmarks/lifecycle_bench.py
