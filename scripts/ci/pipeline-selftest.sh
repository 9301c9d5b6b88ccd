#!/usr/bin/env bash
# Runs every pipeline script that .ci/run does not already run as a stage of its own, the way the
# Jenkinsfile calls it, so that the pipeline's steps are tested where Jenkins does not run:
#   jenkinsfile  every stage calls scripts/ci scripts that exist, each run by .ci/run or here
#   notify   scripts/ci/test-notify.sh (against the local Bot API stand-in)
#   deploy   scripts/ci/test-bump-image-tag.sh (throwaway GitOps repositories, copies of deploy/overlays)
#   push     scripts/ci/push.sh <tag> without REGISTRY: docker save, then `docker load` gives the image back
#   scan     scripts/ci/scan.sh: the real scan must pass, and a lockfile, then a binary built with
#            cargo auditable, with a known vulnerability must fail it with exit 3 and a report naming it
#   dast     scripts/ci/dast.sh against a stand-in server with a 500 (must fail), then the release binary
#            (DAST_CHECKS, when set, chooses schemathesis's checks; default: 5xx and schema conformance)
#   wapiti   scripts/ci/wapiti.sh against a stand-in web UI with a reflected XSS (must fail with exit 3
#            and name it), then the release binary's web UI
#
#   scripts/ci/pipeline-selftest.sh [image-tag]
#
# image-tag: an image ticketgw:<tag> that scripts/ci/build-image.sh built (its release binary is then
# target/release/ticketgw, built with cargo auditable); without it a tiny image stands in for the push
# test, and scan.sh builds the binary itself. SELFTEST_SKIP="dast scan wapiti" skips steps (by name).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
tag=${1:-}
work=$(mktemp -d)
cleanup_images=()
cleanup() {
  for i in "${cleanup_images[@]}"; do docker image rm -f "$i" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

results=()
passed=0
failed=0
step() { # name, command...
  local name=$1
  shift
  case " ${SELFTEST_SKIP:-} " in *" $name "*) echo "== selftest: $name: skipped (SELFTEST_SKIP)"; results+=("$name: skipped"); return ;; esac
  printf '\n== selftest: %s\n' "$name"
  local started rc=0
  started=$(date +%s)
  "$@" || rc=$?
  local took=$(($(date +%s) - started))
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    results+=("$name: ok (${took} s)")
  else
    failed=$((failed + 1))
    results+=("$name: FAILED, exit $rc (${took} s)")
  fi
}

push_save_mode() {
  local image=ticketgw push_tag=$tag
  if [ -z "$push_tag" ]; then
    # No image from build-image.sh: a tiny one, FROM scratch like the real one, stands in.
    image=ticketgw-selftest
    push_tag="selftest-$$"
    mkdir -p "$work/ctx"
    echo "stand-in" >"$work/ctx/file"
    printf 'FROM scratch\nCOPY file /file\n' >"$work/ctx/Dockerfile"
    DOCKER_BUILDKIT=0 docker build --quiet -t "$image:$push_tag" "$work/ctx" >/dev/null 2>&1 ||
      docker build --quiet -t "$image:$push_tag" "$work/ctx" >/dev/null
    cleanup_images+=("$image:$push_tag")
  fi
  local id
  id=$(docker image inspect --format '{{.Id}}' "$image:$push_tag")
  (unset REGISTRY; IMAGE=$image ARTIFACT_DIR="$work/artifacts" scripts/ci/push.sh "$push_tag")
  local tarball="$work/artifacts/$image-$push_tag.tar"
  (cd "$work/artifacts" && sha256sum -c --quiet "$(basename "$tarball").sha256")
  # The tarball gives the same image back under another name.
  docker image rm "$image:$push_tag" >/dev/null
  docker load --quiet --input "$tarball" >/dev/null
  [ "$(docker image inspect --format '{{.Id}}' "$image:$push_tag")" = "$id" ] || { echo "push: docker load gave another image" >&2; return 1; }
  echo "push: docker load of $(basename "$tarball") gives back $image:$push_tag ($id)"
  # A tag that does not exist is refused.
  if (unset REGISTRY; IMAGE=$image ARTIFACT_DIR="$work/artifacts" scripts/ci/push.sh "no-such-tag-$$") 2>/dev/null; then
    echo "push: a missing image was not refused" >&2
    return 1
  fi
  echo "push: a missing image is refused"
}

scan_finds_vulnerabilities() {
  # smallvec 1.6.0 has RUSTSEC-2021-0003 (fixed in 1.6.1): the scan must fail with exit 3 and name it.
  cat >"$work/Cargo.lock" <<'EOF'
version = 3

[[package]]
name = "demo"
version = "0.1.0"
dependencies = ["smallvec"]

[[package]]
name = "smallvec"
version = "1.6.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
EOF
  : >"$work/no-ignores.txt"
  local rc=0
  SCAN_BINARY=0 SCAN_LOCKFILE="$work/Cargo.lock" SCAN_IGNORE_FILE="$work/no-ignores.txt" \
    SCAN_REPORT="$work/scan-report.txt" scripts/ci/scan.sh >"$work/scan.out" 2>&1 || rc=$?
  if [ "$rc" -eq 3 ] && grep -q "RUSTSEC-2021-0003 smallvec 1.6.0" "$work/scan-report.txt"; then
    echo "scan: a vulnerable lockfile fails the scan (exit 3): $(head -1 "$work/scan-report.txt")"
  else
    tail -20 "$work/scan.out" >&2
    echo "scan: a vulnerable lockfile gave exit $rc" >&2
    return 1
  fi
  # The same in a binary: a tiny program built with cargo auditable around smallvec 1.6.0; the
  # binary scan must find it although the lockfile scanned with it is clean.
  mkdir -p "$work/vulnbin/src"
  printf '[package]\nname = "vulnbin"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\nsmallvec = "=1.6.0"\n\n[workspace]\n' \
    >"$work/vulnbin/Cargo.toml"
  echo 'fn main() { println!("{}", smallvec::SmallVec::<[u8; 4]>::new().len()); }' >"$work/vulnbin/src/main.rs"
  (cd "$work/vulnbin" && PATH="$HOME/.cargo/bin:$PATH" CARGO_TARGET_DIR="$work/vulnbin/target" cargo auditable build --quiet)
  rc=0
  SCAN_REPORT="$work/scan-report.txt" scripts/ci/scan.sh "$work/vulnbin/target/debug/vulnbin" >"$work/scan.out" 2>&1 || rc=$?
  if [ "$rc" -eq 3 ] && grep -q "^vulnbin: RUSTSEC-2021-0003 smallvec 1.6.0" "$work/scan-report.txt" &&
    ! grep -q "^Cargo.lock:" "$work/scan-report.txt"; then
    echo "scan: a vulnerable crate compiled into a binary fails the scan (exit 3): $(head -1 "$work/scan-report.txt")"
  else
    tail -20 "$work/scan.out" >&2
    echo "scan: a vulnerable binary gave exit $rc" >&2
    return 1
  fi
  # An ignored advisory needs a reason.
  echo "RUSTSEC-2021-0003 lockfile" >"$work/bad-ignores.txt"
  rc=0
  SCAN_BINARY=0 SCAN_LOCKFILE="$work/Cargo.lock" SCAN_IGNORE_FILE="$work/bad-ignores.txt" \
    SCAN_REPORT="$work/scan-report.txt" scripts/ci/scan.sh >"$work/scan.out" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ] && grep -q "has no reason" "$work/scan.out"; then
    echo "scan: an ignore without a reason is refused"
  else
    echo "scan: an ignore without a reason gave exit $rc" >&2
    return 1
  fi
}

jenkinsfile_calls_scripts() {
  # Every stage of the Jenkinsfile calls scripts/ci scripts that exist and are executable, and every
  # script it calls is run by .ci/run: by this self-test or as a stage command of its own.
  python3 - Jenkinsfile .ci/run "$0" scripts/ci/test-notify.sh scripts/ci/test-bump-image-tag.sh <<'PY'
import os, re, sys
jenkinsfile = open(sys.argv[1], encoding="utf-8").read()
# What runs them: .ci/run, this self-test and the tests it runs (their commands, not their comments).
runners = "".join(l for p in sys.argv[2:] for l in open(p, encoding="utf-8") if not l.lstrip().startswith("#"))
stages = re.split(r"\n\s*stage\('", jenkinsfile.split("\n  post {")[0])[1:]
problems, called = [], set()
for block in stages:
    name = block.split("'", 1)[0]
    scripts = re.findall(r"scripts/ci/[\w.-]+\.sh", block)
    if re.search(r"\bnotify\(", block):  # the Jenkinsfile's notify() runs notify-telegram.sh
        scripts.append("scripts/ci/notify-telegram.sh")
    if name != "Prepare" and "stages {" not in block and not scripts:
        problems.append(f"stage {name} calls no scripts/ci script")
    called.update(scripts)
    nested = "stages {" in block
    print(f"stage {name}: {', '.join(sorted(set(scripts))) or ('(its stages follow)' if nested else '(groovy only)')}")
called.update(re.findall(r"scripts/ci/[\w.-]+\.sh", jenkinsfile))
for script in sorted(called):
    if not os.access(script, os.X_OK):
        problems.append(f"{script} is missing or not executable")
    elif script not in runners:
        problems.append(f"{script} is called by the Jenkinsfile but run neither by .ci/run nor by this self-test")
for p in problems:
    print("problem:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
}

dast_finds_server_errors() {
  # A stand-in server with one operation that answers 500: dast.sh must fail and name the check.
  local rc=0
  DAST_MAX_TIME=6 scripts/ci/dast.sh scripts/ci/testdata/server-with-a-5xx.py >"$work/dast.out" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ] && grep -q "Server error" "$work/dast.out" && grep -q "\[500\]" "$work/dast.out"; then
    echo "dast: a server answering 500 fails the DAST stage (exit $rc)"
  else
    tail -30 "$work/dast.out" >&2
    echo "dast: a server answering 500 gave exit $rc" >&2
    return 1
  fi
}

wapiti_finds_xss() {
  # A stand-in web UI whose search writes the query back unescaped: wapiti.sh must fail with exit 3
  # (a finding of level medium or above) and name it.
  local rc=0
  WAPITI_USERS=anonymous WAPITI_MODULES=xss WAPITI_CRAWL_TIME=10 \
    scripts/ci/wapiti.sh scripts/ci/testdata/web-with-an-xss.py >"$work/wapiti.out" 2>&1 || rc=$?
  if [ "$rc" -eq 3 ] && grep -q "medium \[vulnerability\] Cross Site Scripting: GET /events (parameter q)" "$work/wapiti.out"; then
    echo "wapiti: a reflected XSS fails the web UI's DAST stage (exit 3)"
  else
    tail -30 "$work/wapiti.out" >&2
    echo "wapiti: a reflected XSS gave exit $rc" >&2
    return 1
  fi
}

step jenkinsfile jenkinsfile_calls_scripts
step notify scripts/ci/test-notify.sh
step deploy scripts/ci/test-bump-image-tag.sh
step push push_save_mode
step scan-detects scan_finds_vulnerabilities
step scan scripts/ci/scan.sh "${CARGO_TARGET_DIR:-$repo/target}/release/ticketgw"
step dast-detects dast_finds_server_errors
step dast scripts/ci/dast.sh "${CARGO_TARGET_DIR:-$repo/target}/release/ticketgw"
step wapiti-detects wapiti_finds_xss
step wapiti scripts/ci/wapiti.sh "${CARGO_TARGET_DIR:-$repo/target}/release/ticketgw"

printf '\n== selftest: summary\n'
printf '  %s\n' "${results[@]}"
echo "pipeline-selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
