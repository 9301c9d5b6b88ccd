#!/usr/bin/env bash
# Tests scripts/ci/notify-telegram.sh against tests/telegram/fake_bot_api.py, a local server speaking
# the Bot API's wire format: a notice arrives with the right chat id and text (quotes, newlines and
# Khmer included), parse_mode passes through, a wrong token or chat fails the script loudly, the
# token is never printed, and without configuration the script does nothing and says so.
set -euo pipefail
cd "$(dirname "$0")/../.."

notify=scripts/ci/notify-telegram.sh
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

token="123456789:AAF-test_token-$RANDOM$RANDOM"
python3 tests/telegram/fake_bot_api.py --token "$token" --port-file "$work/port" --log "$work/messages.jsonl" &
server_pid=$!
for _ in $(seq 1 50); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "FAIL: the fake Bot API did not start" >&2; exit 1; }
api="http://127.0.0.1:$(cat "$work/port")"
: >"$work/messages.jsonl"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
no_token_in() { if grep -qF "$token" "$1"; then fail "the token was printed ($2)"; else ok "the token is not printed ($2)"; fi; }

# 1. A success notice arrives with the chat id and the text.
text='Pipeline #42 "main" passed: ticketgw:abc123
second line — ចូលរួម'
if TELEGRAM_API_URL=$api TELEGRAM_BOT_TOKEN=$token TELEGRAM_CHAT_ID=-100200300 \
  "$notify" success "$text" >"$work/out1" 2>&1; then
  ok "a notice is sent: $(tail -1 "$work/out1")"
else
  fail "sending a notice failed: $(cat "$work/out1")"
fi
no_token_in "$work/out1" "success"
if EXPECT_TEXT="✅ SUCCESS $text" python3 - "$work/messages.jsonl" <<'PY'
import json, os, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert len(lines) == 1, f"{len(lines)} messages arrived"
m = json.loads(lines[0])
assert m["chat_id"] == -100200300, m["chat_id"]
assert m["text"] == os.environ["EXPECT_TEXT"], m["text"]
assert "parse_mode" not in m, m
PY
then ok "the server got chat_id -100200300 and the exact text"; else fail "the message that arrived is wrong"; fi

# 2. parse_mode and a channel name as chat id pass through.
if TELEGRAM_API_URL=$api TELEGRAM_BOT_TOKEN=$token TELEGRAM_CHAT_ID=@ticketgw_ci TELEGRAM_PARSE_MODE=HTML \
  "$notify" security "<b>RUSTSEC-2099-0001</b> in somecrate" >"$work/out2" 2>&1 &&
  python3 -c '
import json, sys
m = json.loads(open(sys.argv[1], encoding="utf-8").read().splitlines()[-1])
assert m["chat_id"] == "@ticketgw_ci" and m["parse_mode"] == "HTML", m
assert m["text"] == "🚨 SECURITY <b>RUSTSEC-2099-0001</b> in somecrate", m["text"]
' "$work/messages.jsonl"; then
  ok "a security notice with parse_mode HTML to @ticketgw_ci"
else
  fail "security notice: $(cat "$work/out2")"
fi

# 3. A wrong token: the API answers 401 ok:false and the script fails, saying so.
before=$(wc -l <"$work/messages.jsonl")
if TELEGRAM_API_URL=$api TELEGRAM_BOT_TOKEN="999:wrong-token" TELEGRAM_CHAT_ID=-100200300 \
  "$notify" failure "must not arrive" >"$work/out3" 2>&1; then
  fail "a wrong token did not fail the script: $(cat "$work/out3")"
elif grep -q "error 401: Unauthorized" "$work/out3"; then
  ok "a wrong token fails loudly: $(tail -1 "$work/out3")"
else
  fail "a wrong token failed without the API's description: $(cat "$work/out3")"
fi
grep -qF "999:wrong-token" "$work/out3" && fail "the wrong token was printed" || ok "the wrong token is not printed"
[ "$(wc -l <"$work/messages.jsonl")" -eq "$before" ] && ok "nothing arrived with the wrong token" || fail "a message arrived with the wrong token"

# 4. An API that refuses the request (here: unknown parse mode, 400) fails the script too.
if TELEGRAM_API_URL=$api TELEGRAM_BOT_TOKEN=$token TELEGRAM_CHAT_ID=1 TELEGRAM_PARSE_MODE=Bogus \
  "$notify" info "x" >"$work/out4" 2>&1; then
  fail "a 400 answer did not fail the script"
else
  grep -q "error 400: Bad Request" "$work/out4" && ok "a 400 answer fails loudly" || fail "400: $(cat "$work/out4")"
fi
no_token_in "$work/out4" "bad request"

# 5. An unreachable API fails the script without printing the token.
dead_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if TELEGRAM_API_URL="http://127.0.0.1:$dead_port" TELEGRAM_BOT_TOKEN=$token TELEGRAM_CHAT_ID=1 TELEGRAM_TIMEOUT=5 \
  "$notify" failure "x" >"$work/out5" 2>&1; then
  fail "an unreachable API did not fail the script"
else
  ok "an unreachable API fails: $(tail -1 "$work/out5")"
fi
no_token_in "$work/out5" "unreachable"

# 6. Not configured: a notice, exit 0, no request.
before=$(wc -l <"$work/messages.jsonl")
if env -u TELEGRAM_BOT_TOKEN -u TELEGRAM_CHAT_ID TELEGRAM_API_URL="$api" "$notify" success "x" >"$work/out6" 2>&1 &&
  grep -q "not set" "$work/out6" && [ "$(wc -l <"$work/messages.jsonl")" -eq "$before" ]; then
  ok "without a token it sends nothing and says so"
else
  fail "unconfigured: $(cat "$work/out6")"
fi

# 7. The token never shows in the process list: curl gets the URL on stdin.
if grep -q -- '--config -' "$notify"; then ok "curl reads the URL from stdin"; else fail "curl gets the URL on its command line"; fi

echo "notify-telegram: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
