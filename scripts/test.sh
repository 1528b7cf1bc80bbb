#!/usr/bin/env bash
# The project's one test command (README "Run all the tests"; .ci/run calls exactly this).
# Installs what the tests need on a fresh machine, builds every binary, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real Helm 4 for the chart tests comes from the helm-python-sdk package.
if ! python3 -c 'import helm_python' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check helm-python-sdk
fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
# Prometheus's promtool checks and unit-tests the chart's alerts (Debian package prometheus).
if ! command -v promtool >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y -qq prometheus >/dev/null || { apt-get update -qq && apt-get install -y -qq prometheus >/dev/null; }
fi
# The simulated kubelet's pods get network namespaces from iproute2 (`ip netns`, veth) and
# their mounts from util-linux (nsenter, unshare, setpriv, mount).
for tool in ip:iproute2 nsenter:util-linux setpriv:util-linux; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq "${tool#*:}" >/dev/null || { apt-get update -qq && apt-get install -y -qq "${tool#*:}" >/dev/null; }
  fi
done

# The house rules, checked before anything is built: formatting, no import cycle between the
# modules of the controller or the simulator, no function over 80 lines in the controller.
cargo fmt --all --check
python3 scripts/module_cycles.py e2e/kubesim/src
python3 scripts/module_cycles.py --max-fn-lines 80 src
cargo clippy --workspace --all-targets -- -D warnings

# e2e tests drive the real binaries as processes: build them first.
cargo build --workspace --bins
cargo nextest run --workspace --no-fail-fast "$@"
