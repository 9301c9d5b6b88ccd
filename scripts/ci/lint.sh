#!/usr/bin/env bash
# Lint stage: formatting and clippy on every target, warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
