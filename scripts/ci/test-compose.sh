#!/usr/bin/env bash
# Pipeline stage "test topology": the microservices topology as containers of the image
# (deploy/compose/docker-compose.yml), each service on its own database of this machine's
# PostgreSQL, RabbitMQ between them, and the whole attendee journey through the gateway only
# (an organizer approved by an admin publishes an event, a buyer holds, pays, gets the ticket);
# then /metrics: 404 on the service ports, served on each service's metrics port (9090).
#
#   scripts/ci/test-compose.sh [TAG]     # default tag: the short git revision
#
# Needs Docker, docker-compose (v1), socat, curl, PostgreSQL on 127.0.0.1:5432 and RabbitMQ on 127.0.0.1:5672.
set -euo pipefail
cd "$(dirname "$0")/../.."

export TAG=${1:-$(git rev-parse --short HEAD)}
project=tgcompose$$
compose=(docker-compose -p "$project" -f deploy/compose/docker-compose.yml)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
secret() { head -c24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
export GATEWAY_PORT=$(free_port)
export SANDBOX_WEBHOOK_SECRET=whsec_$(secret)
for s in EVENTS BOOKINGS PAYMENTS NOTIFICATIONS; do export "${s}_CLIENT_SECRET=$(secret)"; done
export SIGNING_KEYS_SECRET=$(head -c32 /dev/urandom | base64)
export AMQP_PREFIX=$project DB_PREFIX=$project
databases=(users events bookings payments notifications admin)
export PGOPTIONS="-c client_min_messages=warning"

# The host's PostgreSQL and RabbitMQ listen on loopback only: relay them on the Docker bridge's
# address, which containers reach as host.docker.internal.
bridge=$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1)
pg_relay=$(free_port) amqp_relay=$(free_port)
socat "TCP-LISTEN:$pg_relay,bind=$bridge,fork,reuseaddr" TCP:127.0.0.1:5432 & relays=($!)
socat "TCP-LISTEN:$amqp_relay,bind=$bridge,fork,reuseaddr" TCP:127.0.0.1:5672 & relays+=($!)
export PG_HOST=host.docker.internal PG_PORT=$pg_relay
export AMQP_URL="amqp://guest:guest@host.docker.internal:$amqp_relay/%2f"

cleanup() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    for s in gateway "${databases[@]}" web; do echo "--- $s"; "${compose[@]}" logs --no-color --tail 30 "$s" 2>&1 || true; done
  fi
  "${compose[@]}" down --volumes --timeout 5 >/dev/null 2>&1 || true
  kill "${relays[@]}" 2>/dev/null || true
  for db in "${databases[@]}"; do dropdb -h 127.0.0.1 -U postgres --if-exists "${project}_$db" || true; done
  rabbitmqctl -q list_queues name 2>/dev/null | grep "^$project" | xargs -r -n1 rabbitmqctl -q delete_queue >/dev/null 2>&1 || true
  exit $rc
}
trap cleanup EXIT

for db in "${databases[@]}"; do
  dropdb -h 127.0.0.1 -U postgres --if-exists "${project}_$db"
  createdb -h 127.0.0.1 -U postgres "${project}_$db"
done

"${compose[@]}" up -d --quiet-pull 2>&1 | grep -v '^Creating' || true
# The first admin: the CLI in a container of the users service (its USERS_DATABASE_URL), the
# password on standard input, as deploy/README.md does it with kubectl exec.
printf '%s' "compose admin password" | "${compose[@]}" run --rm --no-deps -T \
  users user create --email admin@example.com --display-name Admin --role admin --password-stdin
# The organizer-to-be: made by the CLI too, so its address counts as verified (there is no mailbox
# here to follow a verification link from), which applying to organize requires.
printf '%s' "compose applicant password" | "${compose[@]}" run --rm --no-deps -T \
  users user create --email applicant@example.com --display-name Applicant --password-stdin

python3 tests/deploy/smoke_journey.py "http://127.0.0.1:$GATEWAY_PORT" \
  --sandbox-secret "$SANDBOX_WEBHOOK_SECRET" --admin "admin@example.com:compose admin password" \
  --applicant "applicant@example.com:compose applicant password"

# Metrics (METRICS_LISTEN in the compose file): the published gateway answers 404 on /metrics, and so
# does every service's port 8080; each serves them on port 9090, unpublished, reached here on its
# container's address on the compose network, as a Prometheus there would.
status() { curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$1" || true; }
got=$(status "http://127.0.0.1:$GATEWAY_PORT/metrics")
[[ $got == 404 ]] || { echo "the published gateway answered $got on /metrics, not 404"; exit 1; }
for s in gateway "${databases[@]}" web; do
  ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$("${compose[@]}" ps -q "$s")")
  got=$(status "http://$ip:8080/metrics")
  [[ $got == 404 ]] || { echo "$s: /metrics on $ip:8080 answered $got, not 404"; exit 1; }
  page=$(curl -fsS --max-time 5 "http://$ip:9090/metrics") || { echo "$s: no metrics on $ip:9090"; exit 1; }
  grep -q '^ticketgw_build_info{' <<<"$page" || { echo "$s: $ip:9090/metrics has no ticketgw_build_info"; exit 1; }
done
echo "metrics: 404 on the service ports, served on port 9090 by $((${#databases[@]} + 2)) services"
echo "containers: $("${compose[@]}" ps -q | wc -l) running; passed"
