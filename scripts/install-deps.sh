#!/bin/sh
# install-deps.sh: installs everything halfs needs on a fresh Debian 12 machine (run as root).
# Build: gcc, make, OpenBLAS (fp32 baseline GEMM), cJSON, cmocka (tests), zlib (embedded corpus).
# Tools: clang + its runtime (libFuzzer targets), gnuplot (figures of docs/RESULTS.md).
# Open MPI (data-parallel training across processes and machines; `make` builds without it too).
# Python (the system interpreter /usr/bin/python3, which the tests use): numpy, PyTorch and pytest
# from Debian; from PyPI, pinned, the ecosystem's own readers that the tests check halfs' files
# with: safetensors, tokenizers (Hugging Face) and gguf (llama.cpp's reader).
set -e
pkgs="build-essential libopenblas-dev libcjson-dev libcmocka-dev zlib1g-dev clang libclang-rt-14-dev
      gnuplot-nox openmpi-bin libopenmpi-dev python3 python3-pip python3-numpy python3-torch
      python3-pytest"
pypi="safetensors==0.8.0 tokenizers==0.23.3 gguf==0.19.0"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: need root to install:$missing" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing
fi
if ! /usr/bin/python3 -c "import safetensors, tokenizers, gguf" 2>/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: need root to install from PyPI: $pypi" >&2
        exit 1
    fi
    # Debian marks its interpreter as externally managed; these three are pure readers that
    # only add to it (their dependencies numpy, PyYAML and tqdm come from Debian or PyPI).
    /usr/bin/python3 -m pip install -q --root-user-action=ignore --break-system-packages $pypi
fi
