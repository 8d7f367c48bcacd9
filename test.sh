#!/usr/bin/env bash
# The whole test suite: unit tests, the CLI against a fake daemon, and the end-to-end tests
# that run real topicd processes (crashes, restarts, bad input).
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
cargo test --workspace "$@"
