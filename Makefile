# kiportal – two commands set up everything on a fresh machine:
#   make run   builds what it needs, indexes the demo corpus, starts the portal
#   make test  installs and runs the whole test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
KIPORTAL := $(VENV)/bin/kiportal
STAMP := $(VENV)/.installed
export KIPORTAL_HOME ?= $(CURDIR)/data
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False
# llama.cpp is compiled once by pip (then cached). Portable AVX2 build: ggml's AMX kernels,
# which -march=native enables on recent Xeons, crash in VMs that don't grant AMX state.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

.PHONY: install run index test test-fast bench eval browser-deps demo clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# the CPU build of torch that lies on this machine's disk; an unpinned torch pulls CUDA
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[llm,test,bench]"
	touch $(STAMP)

install: $(STAMP)

browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

index: install
	$(KIPORTAL) models prepare
	$(KIPORTAL) ingest corpus/demo/files --collection demo

run: index
	$(KIPORTAL) search "Welche Zonen hat das Ampelsystem?" -k 3
	$(KIPORTAL) serve

test: install browser-deps
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not integration and not llm and not browser"

eval: index
	$(KIPORTAL) eval evals/datasets/demo.jsonl

bench: install
	$(KIPORTAL) models prepare
	$(KIPORTAL) bench --shared ../shared

demo:
	$(PY) -m corpus.demo.build

clean:
	rm -rf $(VENV) data .test-cache bench/results
