#!/bin/sh
# install-deps.sh: installs everything halfs needs on a fresh Debian 12 machine (run as root).
# Build: gcc, make, OpenBLAS (fp32 baseline GEMM), cJSON, cmocka (tests), zlib (embedded corpus).
# Tools: clang + its runtime (libFuzzer targets), gnuplot (figures of docs/RESULTS.md).
# Optional, not installed here: python3-torch (the PyTorch comparison test; it is skipped
# without it): `apt-get install python3-torch`.
set -e
pkgs="build-essential libopenblas-dev libcjson-dev libcmocka-dev zlib1g-dev clang libclang-rt-14-dev gnuplot-nox"
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
