#!/usr/bin/env bash
# Test stage on SQLite, the embedded default: the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
env -u TEST_DATABASE_URL cargo test --workspace --locked "$@"
