#!/usr/bin/env bash
# Dependency scan: every crate in Cargo.lock, and every crate compiled into the release binary,
# against the RustSec advisory database, offline.
#
#   scripts/ci/scan.sh [binary]
#
# 1. `cargo audit` of Cargo.lock;
# 2. `cargo audit bin` of the release binary built with `cargo auditable` (its dependency list is
#    embedded in the binary's .dep-v0 section, the SBOM the image carries). The binary is
#    target/release/ticketgw unless named; it is (re)built with `cargo auditable build --release`
#    when missing or without that section (SCAN_BUILD=0: fail instead).
# The advisory database: $ADVISORY_DB, default ../shared/advisory-db beside this repository or beside
# the repository it was cloned from (a
# snapshot: its SNAPSHOT file names the commit and date); it is never fetched.
# Advisories to let pass: scripts/ci/audit-ignore.txt, one id, its scope and its reason a line.
# For the pipeline's self-test: SCAN_LOCKFILE (another Cargo.lock), SCAN_IGNORE_FILE (another list),
# SCAN_BINARY=0 (the lockfile only).
# cargo-audit and cargo-auditable are installed once (cargo install --locked) into ~/.cargo/bin.
# Exit: 0 clean; 3 vulnerabilities found (listed in $SCAN_REPORT, default target/ci/scan-report.txt,
# for the pipeline's security notice); anything else: the scan could not run.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
log() { printf '\n== scan: %s\n' "$*"; }

CARGO_AUDIT_VERSION=0.22.2
CARGO_AUDITABLE_VERSION=0.7.7
# A clone of the main checkout (CI's) finds it beside its origin.
origin=$(git -C "$repo" remote get-url origin 2>/dev/null || true)
db=${ADVISORY_DB:-}
if [ -z "$db" ]; then
  for candidate in "$repo/../shared/advisory-db" "${origin:+$origin/../shared/advisory-db}"; do
    [ -n "$candidate" ] && [ -d "$candidate/crates" ] && { db=$candidate; break; }
  done
  db=${db:-$repo/../shared/advisory-db}
fi
report=${SCAN_REPORT:-$repo/target/ci/scan-report.txt}
release_binary=${CARGO_TARGET_DIR:-$repo/target}/release/ticketgw
binary=${1:-$release_binary}
mkdir -p "$(dirname "$report")" "$repo/target/ci"
: >"$report"

[ -d "$db/crates" ] || { echo "scan: no advisory database at $db (set ADVISORY_DB)" >&2; exit 1; }
echo "scan: advisory database $db, snapshot $(cat "$db/SNAPSHOT" 2>/dev/null || echo unknown)"

export PATH="$HOME/.cargo/bin:$PATH"
install_tool() { # binary crate version (the version installed when missing; any installed one is used)
  if command -v "$1" >/dev/null; then return; fi
  log "installing $2 $3 (once per machine)"
  cargo install --locked --quiet "$2" --version "$3"
}
install_tool cargo-audit cargo-audit "$CARGO_AUDIT_VERSION"
install_tool cargo-auditable cargo-auditable "$CARGO_AUDITABLE_VERSION"

# The ignore list: "<id> <scope> <reason>"; every id must have a scope and a reason.
lock_ignores=()
bin_ignores=()
while read -r id scope reason; do
  case "$id" in '' | '#'*) continue ;; esac
  [[ "$id" =~ ^(RUSTSEC|CVE|GHSA)-[A-Za-z0-9-]+$ ]] || { echo "scan: audit-ignore.txt: '$id' is no advisory id" >&2; exit 1; }
  [ -n "$reason" ] || { echo "scan: audit-ignore.txt: $id has no reason" >&2; exit 1; }
  case "$scope" in
    lockfile) lock_ignores+=(--ignore "$id") ;;
    all) lock_ignores+=(--ignore "$id"); bin_ignores+=(--ignore "$id") ;;
    *) echo "scan: audit-ignore.txt: $id: scope must be lockfile or all, not '$scope'" >&2; exit 1 ;;
  esac
  echo "scan: letting $id pass ($scope): $reason"
done <"${SCAN_IGNORE_FILE:-scripts/ci/audit-ignore.txt}"

# The database is read-only and not a git checkout: cargo-audit reads it in place, never fetches it,
# and must not complain that it cannot tell its age.
audit=(cargo audit --db "$db" --no-fetch --stale)
lockfile=${SCAN_LOCKFILE:-Cargo.lock}
findings=0
summarize() { # json file, what
  python3 - "$1" "$2" >>"$report" <<'PY' || findings=1
import json, sys
data = json.load(open(sys.argv[1]))
vulns = data.get("vulnerabilities", {}).get("list", [])
for v in vulns:
    a, p = v["advisory"], v["package"]
    patched = ", ".join(v.get("versions", {}).get("patched", [])) or "none"
    print(f"{sys.argv[2]}: {a['id']} {p['name']} {p['version']}: {a['title']} (fixed in: {patched})")
warnings = data.get("warnings", {})
for kind, items in warnings.items():
    for w in items:
        adv = w.get("advisory") or {}
        pkg = w.get("package", {})
        print(f"{sys.argv[2]}: warning ({kind}) {adv.get('id', '')} {pkg.get('name')} {pkg.get('version')}: {adv.get('title', '')}",
              file=sys.stderr)
sys.exit(1 if vulns else 0)
PY
}

log "$lockfile"
started=$(date +%s)
set +e
"${audit[@]}" "${lock_ignores[@]}" --file "$lockfile" --json >"$repo/target/ci/audit-lock.json" 2>"$repo/target/ci/audit-lock.err"
rc=$?
set -e
if [ ! -s "$repo/target/ci/audit-lock.json" ]; then
  cat "$repo/target/ci/audit-lock.err" >&2
  echo "scan: cargo audit could not run (exit $rc)" >&2
  exit 1
fi
"${audit[@]}" "${lock_ignores[@]}" --file "$lockfile" 2>&1 | tail -n 25 || true
summarize "$repo/target/ci/audit-lock.json" "$lockfile"
echo "scan: $lockfile audited in $(($(date +%s) - started)) s"

if [ "${SCAN_BINARY:-1}" = 0 ]; then
  echo "scan: SCAN_BINARY=0: the binary is not scanned"
else
  log "release binary $binary"
  has_audit_data() { [ -f "$1" ] && readelf -S "$1" 2>/dev/null | grep -q '\.dep-v0'; }
  if ! has_audit_data "$binary"; then
    if [ "${SCAN_BUILD:-1}" = 0 ]; then
      echo "scan: $binary is missing or was not built with cargo auditable" >&2
      exit 1
    fi
    [ "$binary" = "$release_binary" ] || { echo "scan: $binary has no audit data" >&2; exit 1; }
    log "building it with cargo auditable"
    cargo auditable build --release --locked -p ticketgw
  fi
  has_audit_data "$binary" || { echo "scan: $binary has no .dep-v0 section after the build" >&2; exit 1; }
  started=$(date +%s)
  set +e
  "${audit[@]}" "${bin_ignores[@]}" --json bin "$binary" >"$repo/target/ci/audit-bin.json" 2>"$repo/target/ci/audit-bin.err"
  rc=$?
  set -e
  if [ ! -s "$repo/target/ci/audit-bin.json" ]; then
    cat "$repo/target/ci/audit-bin.err" >&2
    echo "scan: cargo audit bin could not run (exit $rc)" >&2
    exit 1
  fi
  summarize "$repo/target/ci/audit-bin.json" "$(basename "$binary")"
  crates=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lockfile"]["dependency-count"])' \
    "$repo/target/ci/audit-bin.json" 2>/dev/null || echo "?")
  echo "scan: binary audited in $(($(date +%s) - started)) s ($crates crates embedded)"
fi

if [ "$findings" -ne 0 ]; then
  log "VULNERABILITIES"
  cat "$report"
  exit 3
fi
echo "scan: no known vulnerability (report: $report)"
