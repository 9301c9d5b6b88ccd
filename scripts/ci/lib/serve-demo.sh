# Sourced by the DAST scripts (dast.sh, wapiti.sh): serves the demo from a release binary on a free
# local port, on SQLite in a temporary folder, and stops it when the script exits. Nothing outside
# is called.
#
#   serve_demo BINARY LOG NAME   start `BINARY serve --demo`, output into LOG; wait until /readyz
#                                answers (60 s at most). Sets DEMO_BASE (http://127.0.0.1:PORT),
#                                DEMO_PID and DEMO_DATA, and an EXIT trap that stops the server.
#                                NAME prefixes the messages.
#   demo_alive                   the server is still running
#   demo_token EMAIL PASSWORD    prints an API access token (POST /api/v1/auth/login)
#   demo_stop                    stops the server and removes its data (the EXIT trap calls it)
#
# The demo accounts (README): admin@example.com / ticketgw-demo-admin, organizer@example.com /
# ticketgw-demo-organizer, attendee@example.com / ticketgw-demo-attendee.

DEMO_PID=
DEMO_DATA=
DEMO_BASE=

demo_stop() {
  if [ -n "$DEMO_PID" ]; then
    kill "$DEMO_PID" 2>/dev/null || true
    wait "$DEMO_PID" 2>/dev/null || true
    DEMO_PID=
  fi
  if [ -n "$DEMO_DATA" ]; then rm -rf "$DEMO_DATA"; DEMO_DATA=; fi
}

demo_alive() { [ -n "$DEMO_PID" ] && kill -0 "$DEMO_PID" 2>/dev/null; }

serve_demo() { # binary, log, name
  local binary=$1 log=$2 name=$3 port
  DEMO_DATA=$(mktemp -d)
  trap demo_stop EXIT
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  DEMO_BASE="http://127.0.0.1:$port"
  # Scanners come from one address and try every form: the per-address sign-in, registration and
  # mail limits (tested elsewhere) would answer them 429 before they reach anything worth scanning.
  TICKETGW_LISTEN=127.0.0.1:$port TICKETGW_DATA_DIR=$DEMO_DATA PUBLIC_URL=$DEMO_BASE LOG_FORMAT=json \
    LOGIN_IP_BURST=1000000 LOGIN_ACCOUNT_BURST=1000000 REGISTER_IP_BURST=1000000 \
    "$binary" serve --demo >"$log" 2>&1 &
  DEMO_PID=$!
  for _ in $(seq 1 120); do
    curl -fsS "$DEMO_BASE/readyz" >/dev/null 2>&1 && break
    demo_alive || { tail -20 "$log" >&2; echo "$name: the server died" >&2; return 1; }
    sleep 0.5
  done
  curl -fsS "$DEMO_BASE/readyz" >/dev/null || { echo "$name: the server is not ready" >&2; return 1; }
}

demo_token() { # email, password
  curl -fsS -X POST "$DEMO_BASE/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
