#!/usr/bin/env bash
# Run Ticket Gateway as microservices on this machine: the gateway and every service as its own
# process, each service with its own PostgreSQL database, domain events through RabbitMQ.
#
#   scripts/microservices.sh            # build, start, print the URLs; Ctrl-C stops everything
#
# Needs PostgreSQL (PG_URL, default postgres://postgres@127.0.0.1:5432) and RabbitMQ (AMQP_URL,
# default amqp://guest:guest@127.0.0.1:5672/%2f). BASE_PORT (default 9100) is the gateway's port;
# the services take the next ones. BINARY picks a built binary (default: build target/release/ticketgw).
# BOOKINGS_INSTANCES / PAYMENTS_INSTANCES (default 1) start more instances of those two; the
# gateway sends to the first (put a load balancer or Kubernetes Service in front for more).
# SHARED_DATABASE=name puts every service on that one database instead (what `tg-bench flash-sale
# --gateway` needs to set up its sale).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
BASE_PORT=${BASE_PORT:-9100}
DATA=${DATA:-./data/microservices}
if [[ -z "${BINARY:-}" ]]; then
  cargo build --release --locked -p ticketgw
  BINARY=target/release/ticketgw
fi
mkdir -p "$DATA/logs"

services=(users events bookings payments notifications admin web)
port_of() { local i; for i in "${!services[@]}"; do [[ ${services[$i]} == "$1" ]] && echo $((BASE_PORT + 1 + i)); done; }

# Shared by every process: where the others are, the issuer, the broker, the service credentials.
export PUBLIC_URL=${PUBLIC_URL:-http://127.0.0.1:$BASE_PORT}
export SANDBOX_WEBHOOK_SECRET=${SANDBOX_WEBHOOK_SECRET:-whsec_local_$(head -c12 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export PAYMENTS_SANDBOX=true
secret() { head -c24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
# Service credentials: only the services that call others get one, each sees only its own, and only
# the users service sees the list (not exported).
declare -A client_secret
clients=()
for s in events bookings payments notifications; do
  client_secret[$s]=$(secret); clients+=("$s:${client_secret[$s]}")
done
service_clients=$(IFS=,; echo "${clients[*]}")
for s in "${services[@]}"; do
  upper=${s^^}
  export "TICKETGW_${upper}_URL=http://127.0.0.1:$(port_of "$s")"
  if [[ $s != web && -z "${SHARED_DATABASE:-}" ]]; then
    db="tg_ms_$s"
    psql "$PG_URL/postgres" -qAtc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
      || psql "$PG_URL/postgres" -qc "CREATE DATABASE $db"
    export "${upper}_DATABASE_URL=$PG_URL/$db"
  fi
done
if [[ -n "${SHARED_DATABASE:-}" ]]; then
  psql "$PG_URL/postgres" -qAtc "SELECT 1 FROM pg_database WHERE datname = '$SHARED_DATABASE'" | grep -q 1 \
    || psql "$PG_URL/postgres" -qc "CREATE DATABASE $SHARED_DATABASE"
  export DATABASE_URL="$PG_URL/$SHARED_DATABASE"
fi

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

start() { # name port target
  local name=$1 port=$2 target=$3 clients=""
  [[ $target == users ]] && clients=$service_clients
  SERVICE_CLIENT_ID=$target SERVICE_CLIENT_SECRET=${client_secret[$target]:-} SERVICE_CLIENTS=$clients \
    "$BINARY" serve --target "$target" --listen "127.0.0.1:$port" --data-dir "$DATA/$name" \
    >"$DATA/logs/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  printf '  %-15s http://127.0.0.1:%s  (log: %s)\n' "$name" "$port" "$DATA/logs/$name.log"
}

echo "Ticket Gateway microservices:"
start users "$(port_of users)" users            # first: the others ask it for tokens and keys
for s in events bookings payments notifications admin web; do start "$s" "$(port_of "$s")" "$s"; done
next=$((BASE_PORT + 1 + ${#services[@]}))
for i in $(seq 2 "${BOOKINGS_INSTANCES:-1}"); do start "bookings-$i" $((next++)) bookings; done
for i in $(seq 2 "${PAYMENTS_INSTANCES:-1}"); do start "payments-$i" $((next++)) payments; done
start gateway "$BASE_PORT" gateway
echo "Open $PUBLIC_URL (readiness of all: $PUBLIC_URL/readyz). Ctrl-C stops them."
wait -n "${pids[@]}"
echo "a process exited; stopping the rest (see $DATA/logs)" >&2
