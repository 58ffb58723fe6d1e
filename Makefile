# The README's commands. `make demo` sets up (if needed) and runs the main job; `make test` runs the tests.
.PHONY: setup demo test test-crash bench bench-ingest bench-lifecycle
setup:
	bash scripts/setup.sh
demo: setup
	.venv/bin/shuzhi demo
# two pytest workers, a test file each at a time: a small Spark job leaves one of the two cores
# idle (the lifecycle tests' built lake is built once and shared, see tests/conftest.py)
TEST_WORKERS ?= 2
test: setup
	.venv/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not crash"
test-crash: setup
	.venv/bin/python -m pytest -q -m crash
bench: setup
	.venv/bin/python -u benchmarks/night_bench.py

bench-ingest: setup
	.venv/bin/python -u benchmarks/ingest_bench.py

bench-lifecycle: setup
	.venv/bin/python -u benchmarks/lifecycle_bench.py
