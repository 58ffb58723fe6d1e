# The README's commands. `make demo` sets up (if needed) and runs the main job; `make test` runs the tests.
.PHONY: setup demo test bench
setup:
	bash scripts/setup.sh
demo: setup
	.venv/bin/shuzhi demo
test: setup
	.venv/bin/python -m pytest -q
bench: setup
	.venv/bin/python benchmarks/ingest_bench.py
