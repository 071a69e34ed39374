#!/usr/bin/env bash
# Installs every Debian 12 package trainmeter needs to build, run its example and test itself.
# Idempotent and quick when everything is present. Needs root (or sudo) for apt-get.
set -euo pipefail

packages=(
  # toolchain
  cmake ninja-build g++ pkg-config
  # libraries
  libtorch-dev libfmt-dev nlohmann-json3-dev libbenchmark-dev catch2
  # the live metrics endpoint (metrics_port): cpp-httplib serves GET /metrics
  libcpp-httplib-dev
  # libtorch's BLAS: OpenBLAS (pthreads) instead of the reference BLAS, 5-10x faster steps
  libopenblas0-pthread
  # tests: an independent JSON Schema validator, GNU time for the RSS cross-check, Prometheus'
  # promtool for the textfile export and the live endpoint, the Prometheus server
  # for the live-scrape test, headless Chromium to render the HTML report
  python3 python3-jsonschema time prometheus chromium
  # distributed tests and the train_ddp example: Gloo headers (libtorch ships ProcessGroupGloo)
  libgloo-dev
  # two_hosts_test: network namespaces and veth pairs (ip netns); unshare is util-linux's
  iproute2
  # reliability stage: libFuzzer harnesses and sanitizer runtimes (clang 14)
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
