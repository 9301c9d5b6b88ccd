#!/usr/bin/env bash
# Web UI page throughput: the release binary on its embedded defaults (SQLite, demo data), each page
# loaded by wrk (2 threads, 32 connections, 10 s) as an anonymous visitor or with a demo user's
# session cookie. Needs `wrk` (Debian package) and a release build: cargo build --release -p ticketgw
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release/ticketgw}
PORT=${PORT:-18080}
SECONDS_PER_PAGE=${SECONDS_PER_PAGE:-10}
for tool in wrk curl python3; do
  command -v $tool >/dev/null || { echo "$tool is needed (wrk: apt-get install wrk)" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "no $BIN: cargo build --release -p ticketgw" >&2; exit 1; }
DIR=$(mktemp -d)
TICKETGW_LISTEN=127.0.0.1:$PORT TICKETGW_DATA_DIR=$DIR RUST_LOG=warn "$BIN" serve --demo >"$DIR/log" 2>&1 &
PID=$!
# On failure the server's log is shown before its folder goes.
trap 'status=$?; kill $PID 2>/dev/null; wait $PID 2>/dev/null; [ $status -eq 0 ] || cat "$DIR/log" >&2; rm -rf "$DIR"' EXIT
B=http://127.0.0.1:$PORT
ready=0
for _ in $(seq 1 60); do curl -sf $B/readyz >/dev/null && { ready=1; break; }; sleep 0.5; done
[ $ready = 1 ] || { echo "the server did not become ready" >&2; exit 1; }

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
token() { curl -sf -H 'content-type: application/json' -d "{\"email\":\"$1\",\"password\":\"$2\"}" $B/api/v1/auth/login | json '["access_token"]'; }
run() { # name, path, [access token]
  local headers=(-H "Accept: text/html,*/*")
  [ -n "${3:-}" ] && headers+=(-H "Cookie: tg_at=$3")
  # wrk counts redirects as successes: make sure the page itself answers (a bad session redirects to sign-in).
  local status
  status=$(curl -s -o /dev/null -w '%{http_code}' "${headers[@]}" "$B$2")
  [ "$status" = 200 ] || { echo "$2 answered $status, not 200" >&2; exit 1; }
  printf '| %-30s ' "$1"
  wrk -t2 -c32 -d"${SECONDS_PER_PAGE}s" --latency "${headers[@]}" "$B$2" | awk '
    /Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF}
    END {printf "| %9s | %8s | %8s | %s |\n", rps, p50, p99, (bad ? bad : 0)}'
}
ATTENDEE=$(token attendee@example.com ticketgw-demo-attendee)
ADMIN=$(token admin@example.com ticketgw-demo-admin)
ORGANIZER=$(token organizer@example.com ticketgw-demo-organizer)
EVENT=$(curl -sf $B/api/v1/events/tech-conference-2025 | json '["id"]')

echo "| page | req/s | p50 | p99 | non-2xx |"
echo "|--|--|--|--|--|"
run "home" "/"
run "search" "/events?q=tech"
run "event page" "/events/tech-conference-2025"
run "calendar file" "/events/tech-conference-2025/calendar.ics"
run "dashboard, before any sale" "/organizer/events/$EVENT" "$ORGANIZER"

# A confirmed booking of two VIP tickets, paid on the sandbox page.
BOOKING=$(curl -sf -H "authorization: Bearer $ATTENDEE" -H 'idempotency-key: pages-bench' -H 'content-type: application/json' \
  -d "{\"event_id\":\"$EVENT\",\"items\":[{\"ticket_type_id\":\"vip\",\"quantity\":2}]}" $B/api/v1/bookings | json '["id"]')
PAYMENT=$(curl -sf -H "authorization: Bearer $ATTENDEE" -H 'idempotency-key: pages-bench-pay' -H 'content-type: application/json' \
  -d "{\"booking_id\":\"$BOOKING\",\"provider\":\"sandbox\"}" $B/api/v1/payments | json '["id"]')
CSRF=$(curl -sf $B/pay/sandbox/$PAYMENT | grep -o 'name="csrf" value="[^"]*"' | sed 's/.*value="//; s/"$//')
curl -sf -o /dev/null -d "csrf=$CSRF&action=succeed" $B/pay/sandbox/$PAYMENT
for _ in $(seq 1 40); do
  [ "$(curl -sf -H "authorization: Bearer $ATTENDEE" $B/api/v1/bookings/$BOOKING | json '["status"]')" = confirmed ] && break
  sleep 0.25
done

run "booking page, paid" "/bookings/$BOOKING" "$ATTENDEE"
run "my tickets" "/tickets" "$ATTENDEE"
run "dashboard, with sales" "/organizer/events/$EVENT" "$ORGANIZER"
run "admin: events" "/admin/events" "$ADMIN"
run "JSON API: event" "/api/v1/events/tech-conference-2025"
echo
echo "RSS of the server after the runs: $(( $(ps -o rss= -p $PID) / 1024 )) MiB"
