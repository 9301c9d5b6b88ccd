#!/usr/bin/env bash
# DAST of the web UI: Debian's wapiti (in place of OWASP ZAP) crawls and attacks the pages that the
# release binary serves with its demo (home, search, event pages, sign-in and registration, and what
# they link to), anonymously and signed in as the demo attendee (session cookies from the sign-in
# form, CSRF cookie and field included). The build fails on any finding of level medium or above.
#
#   scripts/ci/wapiti.sh [binary]      (default target/release/ticketgw)
#
# The binary serves the demo on SQLite in a temporary folder on a free local port, started as
# dast.sh starts it (scripts/ci/lib/serve-demo.sh); the scope is that server alone (--scope folder on
# its root; /logout, /api/ and static assets left out: schemathesis covers the API). Nothing outside
# is called: no crash reports (--no-bugreport), and no module that needs an outside endpoint or
# database (ssrf, xxe, nikto, wapp).
#
# Modules (WAPITI_MODULES): xss,sql,exec,file,redirect,crlf,permanentxss,csrf,http_headers,
# cookieflags,methods,csp (blindsql, time-based, is left out: slow, and SQLite has no sleep). Bounded,
# per identity: WAPITI_CRAWL_TIME s of crawling (default 25), then WAPITI_ATTACK_TIME s per module at
# most (default 15); each scan is killed after WAPITI_SCAN_LIMIT s (default 110; a killed scan writes
# no report and fails). A scan takes about 20-25 s on two busy cores. WAPITI_USERS: the identities
# (default "anonymous attendee"; organizer and admin sign in the same way).
#
# Levels, as wapiti 3.0.4 writes them (wapitiCore/language/vulnerability.py): 0 info, 1 low,
# 2 medium, 3 high, 4 critical. Its anomalies are a 500 answer to an attack (high) and an attack that
# timed out ("Resource consumption", medium). Any vulnerability, anomaly or additional of level >= 2
# (WAPITI_FAIL_LEVEL) fails the run (exit 3); lower ones are printed.
# Reports: target/ci/wapiti/<identity>.json (wapiti's JSON) and .log, server.log, findings.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
binary=${1:-${CARGO_TARGET_DIR:-$repo/target}/release/ticketgw}
[ -x "$binary" ] || { echo "wapiti: no binary at $binary (scripts/ci/build-image.sh or scan.sh builds it)" >&2; exit 1; }
out=$repo/target/ci/wapiti
rm -rf "$out"
mkdir -p "$out"

if ! command -v wapiti >/dev/null; then
  echo "wapiti: installing Debian's wapiti (once per machine)"
  install() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq wapiti >/dev/null; }
  install || { apt-get update -qq && install; }
fi
wapiti --version 2>/dev/null | grep -m1 -o 'Wapiti-[0-9.]*' || true
# wapiti runs through this shim: Debian's wapiti 3.0.4 turns every -x pattern into a regex with a
# trailing global flag, `\Z(?ms)`, which Python 3.11 refuses (re.error, the scan never starts); the
# shim compiles the same pattern with the flags in front, then runs wapiti's own main.
wapiti_python=$(head -1 "$(command -v wapiti)" | sed 's/^#! *//; s/ .*//')
wapiti_shim='
import re, sys
import wapitiCore.net.crawler as crawler
def wildcard_translate(pattern):
    return re.compile("(?ms)" + ".*".join(re.escape(part) for part in pattern.split("*")) + r"\Z")
crawler.wildcard_translate = wildcard_translate
from wapitiCore.main.wapiti import wapiti_main
sys.argv[0] = "wapiti"
sys.exit(wapiti_main())'

# shellcheck source=scripts/ci/lib/serve-demo.sh
. scripts/ci/lib/serve-demo.sh
serve_demo "$binary" "$out/server.log" wapiti || exit 1
base=$DEMO_BASE
echo "wapiti: $binary serves the web UI at $base/"

modules=${WAPITI_MODULES:-xss,sql,exec,file,redirect,crlf,permanentxss,csrf,http_headers,cookieflags,methods,csp}
crawl_time=${WAPITI_CRAWL_TIME:-25}
attack_time=${WAPITI_ATTACK_TIME:-15}
scan_limit=${WAPITI_SCAN_LIMIT:-110}
event=$(curl -fsS "$base/api/v1/events?limit=1" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
items = d.get("items", d) if isinstance(d, dict) else d
print(items[0].get("slug") or items[0]["id"] if items else "tech-conference-2025")' 2>/dev/null || echo tech-conference-2025)

# Signs in through the sign-in form as a browser does (GET /login sets the CSRF cookie, the form
# carries it back) and writes the session cookies in wapiti's JSON cookie format.
sign_in() { # email, password, cookie file
  python3 - "$base" "$1" "$2" "$3" <<'PY'
import http.cookiejar, json, re, sys, urllib.parse, urllib.request
base, email, password, path = sys.argv[1:5]
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
page = opener.open(base + "/login").read().decode()
csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
form = urllib.parse.urlencode({"csrf": csrf, "next": "/", "email": email, "password": password}).encode()
opener.open(urllib.request.Request(base + "/login", data=form))
cookies = {}
for c in jar:
    cookies.setdefault(c.path or "/", {})[c.name] = {
        "value": c.value, "expires": c.expires, "secure": c.secure, "port": None, "version": 0}
if not any("tg_at" in names for names in cookies.values()):
    sys.exit(f"wapiti: signing in as {email} set no session cookie")
json.dump({urllib.parse.urlparse(base).hostname: cookies}, open(path, "w"), indent=2)
print(f"wapiti: signed in as {email} through the form (cookies: {', '.join(sorted(n for p in cookies.values() for n in p))})")
PY
}

scan() { # identity, extra wapiti args...
  local name=$1 started rc=0
  shift
  echo "wapiti: $name: crawl up to $crawl_time s, then up to $attack_time s per module ($modules)"
  started=$(date +%s)
  timeout --kill-after=10 "$scan_limit" "$wapiti_python" -c "$wapiti_shim" -u "$base/" --scope folder -m "$modules" \
    -s "$base/events" -s "$base/events?q=conference" -s "$base/events/$event" \
    -s "$base/login" -s "$base/register" "$@" \
    -x "$base/logout" -x "$base/api/*" -x "$base/assets/*" -x "$base/sw.js" -x "$base/lang/*" \
    -d 3 --max-links-per-page 40 --max-files-per-dir 20 --max-parameters 12 \
    --max-scan-time "$crawl_time" --max-attack-time "$attack_time" -t 10 \
    --flush-session --store-session "$out/session-$name" --store-config "$out/config" \
    --no-bugreport -v 1 -f json -o "$out/$name.json" </dev/null >"$out/$name.log" 2>&1 || rc=$?
  grep -E 'found [0-9]+ URLs and forms|Launching module|Max (scan|attack) time' "$out/$name.log" |
    sed "s/^/wapiti: $name: /" || true
  echo "wapiti: $name: $(($(date +%s) - started)) s, exit $rc"
  [ -s "$out/$name.json" ] || { tail -20 "$out/$name.log" >&2; echo "wapiti: $name: no report (killed after $scan_limit s?)" >&2; return 1; }
}

started=$(date +%s)
rc=0
reports=()
for who in ${WAPITI_USERS:-anonymous attendee}; do
  case "$who" in
    anonymous) scan anonymous || rc=1 ;;
    attendee | organizer | admin)
      sign_in "$who@example.com" "ticketgw-demo-$who" "$out/$who-cookies.json" || { rc=1; continue; }
      scan "$who" -c "$out/$who-cookies.json" -s "$base/account" -s "$base/tickets" || rc=1 ;;
    *) echo "wapiti: unknown identity $who" >&2; rc=1; continue ;;
  esac
  [ -s "$out/$who.json" ] && reports+=("$out/$who.json")
done
demo_alive || { echo "wapiti: the server died during the scan" >&2; rc=1; }
if grep -q '"level":"ERROR"' "$out/server.log"; then
  echo "wapiti: the server logged errors:" >&2
  grep '"level":"ERROR"' "$out/server.log" | head -5 >&2
fi

# The findings of every report, worst first; exit 3 when one is at WAPITI_FAIL_LEVEL or above.
frc=0
python3 - "${WAPITI_FAIL_LEVEL:-2}" "${reports[@]}" <<'PY' | tee "$out/findings.txt" || frc=$?
import json, os, sys
fail_at = int(sys.argv[1])
names = {0: "info", 1: "low", 2: "medium", 3: "high", 4: "critical"}
kinds = {"vulnerabilities": "vulnerability", "anomalies": "anomaly", "additionals": "additional"}
rows = {}
for path in sys.argv[2:]:
    who = os.path.splitext(os.path.basename(path))[0]
    report = json.load(open(path))
    for section in ("vulnerabilities", "anomalies", "additionals"):
        for category, items in (report.get(section) or {}).items():
            for item in items:
                level = int(item.get("level") or 0)
                key = (level, section, category, item.get("method", ""), item.get("path", ""),
                       item.get("parameter", ""), " ".join(str(item.get("info", "")).split()))
                rows.setdefault(key, []).append(who)
worst = 0
for (level, section, category, method, path, parameter, info), who in sorted(rows.items(), key=lambda r: -r[0][0]):
    worst = max(worst, level)
    where = f"{method} {path}" + (f" (parameter {parameter})" if parameter else "")
    print(f"{names.get(level, level):>8} [{kinds[section]}] {category}: {where}: {info} ({', '.join(sorted(set(who)))})")
bad = sum(1 for k in rows if k[0] >= fail_at)
print(f"wapiti: {len(rows)} findings, {bad} of level {names.get(fail_at, fail_at)} or above")
sys.exit(3 if bad else 0)
PY
echo "wapiti: done in $(($(date +%s) - started)) s (reports in $out)"
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
exit "$frc"
