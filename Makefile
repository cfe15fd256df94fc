# The two commands a newcomer needs: `make run` and `make test`.
.PHONY: run test bench

run:
	cargo run --release -p legato -- serve

test:
	bash scripts/test.sh

bench:
	bash bench/run.sh
