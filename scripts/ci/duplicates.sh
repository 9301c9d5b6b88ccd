#!/usr/bin/env bash
# No new duplicated blocks of code (the static-analysis gate in place of SonarQube's duplication check).
#
#   scripts/ci/duplicates.sh                    fail (exit 1) on a clone not in scripts/ci/duplicates/baseline.txt
#   scripts/ci/duplicates.sh --update-baseline  rewrite the baseline from the tree as it is
#   scripts/ci/duplicates.sh --selftest         show, in a temporary copy of the scanned files, that the gate
#                                               passes on the tree, survives code moving down a file, reports a
#                                               removed clone as fixed and fails on a 15-line function copied
#                                               into another file (the real tree is not touched)
#
# jscpd (pinned in scripts/ci/duplicates/package-lock.json, installed there with npm ci) scans the Rust
# sources, the askama templates and the shell and Python scripts of scripts/ and tests/. Not scanned:
# node_modules, target, .venv, the SQL migrations (crates/*/migrations/{sqlite,postgres} are parallel on
# purpose, one per database backend) and generated files (deploy/ is not scanned at all).
# A clone is at least 6 lines and 70 tokens (DUPLICATES_MIN_LINES, DUPLICATES_MIN_TOKENS); `use` declarations are not compared (lists of
# imports are not copied logic). Clones already known are listed in the baseline by file pair and a hash
# of their text, not by line numbers (scripts/ci/duplicates/clones.py); one no longer found is reported as
# "fixed — remove from baseline" and does not fail. jscpd's JSON report: target/ci/duplicates/.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
DIR=$REPO/scripts/ci/duplicates
BASELINE=$DIR/baseline.txt
MIN_LINES=${DUPLICATES_MIN_LINES:-6}
MIN_TOKENS=${DUPLICATES_MIN_TOKENS:-70}
IGNORE_USE='(?ms)^\s*(pub(\([^)]*\))?\s+)?use\s[^;]*;'

install_jscpd() {
  local want have
  want=$(node -p "require('$DIR/package-lock.json').packages['node_modules/jscpd'].version")
  have=$("$DIR/node_modules/.bin/jscpd" --version 2>/dev/null | awk '{print $2}') || true
  if [[ "$have" != "$want" ]]; then
    (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# The files scanned, relative to the root given, one a line.
list_files() {
  (
    cd "$1"
    {
      find crates \( -name node_modules -o -name target -o -name migrations \) -prune -o -type f -name '*.rs' -print
      find crates/web/templates -maxdepth 1 -type f -name '*.html'
      find scripts tests \( -name node_modules -o -name target -o -name .venv -o -name __pycache__ \) -prune \
        -o -type f \( -name '*.sh' -o -name '*.py' \) -print
    } | LC_ALL=C sort
  )
}

# scan ROOT: jscpd over ROOT's files; the JSON report in ROOT/target/ci/duplicates/.
scan() {
  local root=$1 out=$1/target/ci/duplicates files
  mapfile -t files < <(list_files "$root")
  ((${#files[@]})) || { echo "duplicates: no files to scan under $root" >&2; exit 2; }
  rm -rf "$out" && mkdir -p "$out"
  if ! (cd "$root" && "$DIR/node_modules/.bin/jscpd" --silent --no-tips --no-colors --absolute --fail-on-empty \
      --workers 1 --min-lines "$MIN_LINES" --min-tokens "$MIN_TOKENS" --ignore-pattern "$IGNORE_USE" \
      --format rust,markup,bash,python --reporters json --output "$out" "${files[@]}" >"$out/jscpd.log" 2>&1); then
    cat "$out/jscpd.log" >&2
    echo "duplicates: jscpd failed" >&2
    exit 2
  fi
  jq -r '.statistics.formats | to_entries[] | "  \(.key): \(.value.sources) files, \(.value.lines) lines, \(.value.clones) clone(s)"' \
    "$out/jscpd-report.json"
}

# gate ROOT BASELINE [update]
gate() {
  local root=$1 baseline=$2 mode=${3:-check}
  scan "$root"
  python3 "$DIR/clones.py" "$mode" "$root/target/ci/duplicates/jscpd-report.json" "$root" "$baseline"
}

selftest() {
  local out rc fails=0
  tmp=$(mktemp -d) # global: the trap runs after this function has returned
  trap 'rm -rf "$tmp"' EXIT
  list_files "$REPO" | tar -C "$REPO" -cf - -T - | tar -C "$tmp" -xf -
  expect() { # expect WANT_RC WHAT [GREP...]: runs the gate on the copy against its own baseline
    local want=$1 what=$2 pattern
    shift 2
    rc=0
    out=$(gate "$tmp" "$tmp/baseline.txt" 2>&1) || rc=$?
    for pattern in "$@"; do grep -qF -- "$pattern" <<<"$out" || rc="$rc, no '$pattern' in the output"; done
    if [[ "$rc" == "$want" ]]; then
      echo "selftest: ok: $what"
    else
      echo "selftest: FAILED: $what (exit $rc, wanted $want)"
      sed 's/^/    /' <<<"$out"
      fails=$((fails + 1))
    fi
  }
  gate "$tmp" "$tmp/baseline.txt" update >/dev/null
  local known
  known=$(grep -vc '^#' "$tmp/baseline.txt" || true)
  ((known > 0)) || { echo "selftest: the tree has no clone to test the baseline with" >&2; exit 2; }
  expect 0 "the tree against its own baseline ($known clones) passes"

  # Every file of a known clone gets three lines more at its top: no line number in the baseline, so nothing new.
  local path
  for path in $(grep -v '^#' "$tmp/baseline.txt" | cut -f2,3 | tr '\t' '\n' | sort -u); do
    case $path in
      *.rs) printf '// moved\n\n// down\n' | cat - "$tmp/$path" >"$tmp/x" ;;
      *.html) printf '{# moved #}\n\n{# down #}\n' | cat - "$tmp/$path" >"$tmp/x" ;;
      *) printf '# moved\n\n# down\n' | cat - "$tmp/$path" >"$tmp/x" ;;
    esac
    mv "$tmp/x" "$tmp/$path"
  done
  expect 0 "known clones moved down their files are still known"

  # The shortest function of 15 lines or more of one crate copied into another crate: a new clone, exit 1.
  local copied
  copied=$(python3 - "$tmp" <<'EOF'
import os, re, sys
root = sys.argv[1]
start = re.compile(r"^(pub(\([a-z]+\))? )?(async )?fn \w+")
files = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(os.path.join(root, "crates"))
               for f in fs if f.endswith(".rs") and "/src/" in os.path.join(d, f))
best = None
for path in files:
    lines = open(os.path.join(root, path), encoding="utf-8").read().split("\n")
    for i, line in enumerate(lines):
        if start.match(line):
            end = next((j for j in range(i + 1, len(lines)) if lines[j] == "}"), None)
            if end is not None and end - i + 1 >= 15 and (best is None or end - i < best[2] - best[1]):
                best = (path, i, end, lines[i:end + 1])
if best is None:
    sys.exit("no top-level function of 15 lines or more")
path, i, end, body = best
crate = path.split("/")[1]
target = next(p for p in files if p.split("/")[1] != crate)
with open(os.path.join(root, target), "a", encoding="utf-8") as fh:
    fh.write("\n" + "\n".join(body) + "\n")
print(f"{path}:{i + 1}-{end + 1} {target}")
EOF
  )
  echo "selftest: copied ${copied% *} to the end of ${copied#* }"
  expect 1 "a function copied into another file fails the gate" "NEW duplicated block" "${copied#* }" "${copied%%:*}"
  sed -n '/^NEW duplicated block/,$s/^/    /p' <<<"$out"

  # That copy removed again, and one side of a known clone deleted: it is reported fixed, and passes.
  rm -rf "$tmp"/crates "$tmp"/scripts "$tmp"/tests
  list_files "$REPO" | tar -C "$REPO" -cf - -T - | tar -C "$tmp" -xf -
  path=$(grep -v '^#' "$tmp/baseline.txt" | head -1 | cut -f3)
  : >"$tmp/$path"
  expect 0 "a clone removed (emptied $path) is reported, not failed" "fixed — remove from baseline"

  ((fails == 0)) || { echo "selftest: $fails check(s) failed"; exit 1; }
  echo "selftest: passed"
}

install_jscpd
started=$(date +%s%N)
status=0
case "${1:-}" in
  "") gate "$REPO" "$BASELINE" || status=$? ;;
  --update-baseline) gate "$REPO" "$BASELINE" update ;;
  --selftest) selftest ;;
  *) echo "usage: $0 [--update-baseline | --selftest]" >&2; exit 2 ;;
esac
echo "duplicates: $(( ($(date +%s%N) - started) / 1000000 )) ms (jscpd $("$DIR/node_modules/.bin/jscpd" --version | awk '{print $2}'), --min-lines $MIN_LINES --min-tokens $MIN_TOKENS)"
exit "$status"
