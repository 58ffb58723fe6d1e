# The README's commands. `make demo` sets up (if needed) and runs the main job; `make test` runs the tests.
.PHONY: setup demo test bench bench-ingest
setup:
	bash scripts/setup.sh
demo: setup
	.venv/bin/shuzhi demo
test: setup
	.venv/bin/python -m pytest -q
bench: setup
	.venv/bin/python -u benchmarks/night_bench.py

bench-ingest: setup
	.venv/bin/python -u benchmarks/ingest_bench.py
