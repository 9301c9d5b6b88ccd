#!/usr/bin/env bash
# Test stage on PostgreSQL: the same suite, each test in a fresh database of its own on the server at
# TEST_DATABASE_URL (default the local one). Databases left by earlier runs (tg_test_*) are dropped first.
set -euo pipefail
cd "$(dirname "$0")/../.."
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
psql "$TEST_DATABASE_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'tg\_test\_%'" |
  while read -r db; do psql "$TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" || true; done
cargo test --workspace --locked "$@"
