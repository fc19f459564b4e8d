# The two commands a new user needs:  `make demo`  and  `make test`.
# Both run the idempotent setup first (virtual environment, ROS 2, colcon build).
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup test lint format demo sounds clean

help:
	@echo "make setup   create the environment and colcon-build the package (idempotent)"
	@echo "make test    setup + ruff + the whole pytest suite (what CI runs)"
	@echo "make demo    setup + the end-to-end demo; the report lands in out/demo/"
	@echo "make sounds  setup + fetch the real sound bank with apt (FULL=1 adds the large ambience packages)"
	@echo "make lint    ruff check + format check;  make format  rewrites files"

setup:
	@bash scripts/setup.sh

test: setup
	@bash scripts/run_tests.sh

lint: setup
	@source scripts/ros_env.sh && ruff check . && ruff format --check .

format: setup
	@source scripts/ros_env.sh && ruff format . && ruff check --fix .

demo: setup
	@bash scripts/demo.sh

sounds: setup
	@$(if $(FULL),FULL=$(FULL) )bash scripts/sounds.sh

clean:
	rm -rf build install log out
