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
# llama.cpp is compiled once by pip for this machine's CPU: AVX-512 (with VNNI/VBMI/BF16 where
# present) reads prompts about 1.4x faster than AVX2 here; without AVX-512 it is an AVX2 build.
# Never -march=native: it enables ggml's AMX kernels on recent Xeons, which crash in VMs that
# don't grant AMX state. `--no-cache-dir` so a wheel cached with other flags is not reused.
CPU_FLAGS := $(shell grep -m1 -o -w -E 'avx512f|avx512bw|avx512vl|avx512_vnni|avx512vbmi|avx512_bf16|avx_vnni' /proc/cpuinfo 2>/dev/null | sort -u)
cpu_has = $(if $(filter $(1),$(CPU_FLAGS)),ON,OFF)
AVX512 := $(if $(filter 3,$(words $(filter avx512f avx512bw avx512vl,$(CPU_FLAGS)))),ON,OFF)
avx512_has = $(if $(filter ON,$(AVX512)),$(call cpu_has,$(1)),OFF)
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DGGML_AVX_VNNI=$(call cpu_has,avx_vnni) -DGGML_AVX512=$(AVX512) -DGGML_AVX512_VNNI=$(call avx512_has,avx512_vnni) \
  -DGGML_AVX512_VBMI=$(call avx512_has,avx512vbmi) -DGGML_AVX512_BF16=$(call avx512_has,avx512_bf16) \
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

.PHONY: install run index lint test test-fast bench eval browser-deps ocr-deps cluster-deps demo clean

# one stamp per set of build flags: a venv built with other flags (another CPU, an older
# Makefile) gets llama.cpp rebuilt once, an unchanged one never
LLAMA_STAMP := $(VENV)/.llama-build-$(shell printf '%s' '$(CMAKE_ARGS)' | md5sum | cut -c1-10)

$(LLAMA_STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@echo "llama.cpp build flags: $(CMAKE_ARGS)"
	$(PIP) install -q --no-cache-dir --force-reinstall --no-deps -c constraints.txt llama-cpp-python
	rm -f $(VENV)/.llama-build-*
	touch $@

$(STAMP): pyproject.toml constraints.txt $(LLAMA_STAMP)
	# the CPU build of torch that lies on this machine's disk; an unpinned torch pulls CUDA
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[llm,test,bench,dev]"
	touch $(STAMP)

install: $(STAMP)

browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

# text recognition for scans: Tesseract with the German model and orientation detection (OSD)
ocr-deps:
	@command -v tesseract >/dev/null && test -n "$$(ls /usr/share/tesseract-ocr/*/tessdata/deu.traineddata 2>/dev/null)" && \
	  test -n "$$(ls /usr/share/tesseract-ocr/*/tessdata/osd.traineddata 2>/dev/null)" || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-deu tesseract-ocr-osd >/dev/null)

# cluster mode's servers for the tests and the bench: PostgreSQL from Debian (the tests run initdb
# in a temp dir, as the package's postgres user when run as root); Chroma's server comes with chromadb
cluster-deps:
	@test -n "$$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null)" || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null)

index: install ocr-deps
	$(KIPORTAL) models prepare
	$(KIPORTAL) ingest corpus/demo/files --collection demo

run: index
	$(KIPORTAL) search "Welche Zonen hat das Ampelsystem?" -k 3
	KIPORTAL_PORTAL__EXAMPLE_QUESTIONS='["Welche Zonen hat das Ampelsystem?"]' $(KIPORTAL) serve

lint: install
	$(PY) -m ruff check

test: install lint browser-deps ocr-deps cluster-deps
	$(PY) -m pytest -q

test-fast: install ocr-deps
	$(PY) -m pytest -q -m "not integration and not llm and not browser"

eval: index
	$(KIPORTAL) eval evals/datasets/demo.jsonl

# BENCH_FLAGS: e.g. --quick (fewer questions); BENCH_SCALE: synthetic passages of the scale bench, empty
# to leave it out (.ci/run sets both on a slow machine to stay within CI's limit)
BENCH_FLAGS ?=
BENCH_SCALE ?= 10000
bench: install ocr-deps cluster-deps
	$(KIPORTAL) models prepare
	$(KIPORTAL) bench --shared ../shared $(BENCH_FLAGS)
	# 10,000 synthetic passages (a few minutes); 100,000 by hand (about 20 minutes, see docs/results.md)
	$(if $(BENCH_SCALE),$(KIPORTAL) bench --shared ../shared --scale $(BENCH_SCALE))

demo:
	$(PY) -m devtools.build_demo_corpus

clean:
	rm -rf $(VENV) data .test-cache bench/results
