#!/usr/bin/env bash
# Post a pipeline notice to Telegram through the Bot API's sendMessage.
#
#   scripts/ci/notify-telegram.sh <status> <message>
#
# status: success | failure | unstable | aborted | security | info (anything else is shown as it is).
# Environment:
#   TELEGRAM_BOT_TOKEN   the bot's token (never printed)
#   TELEGRAM_CHAT_ID     the chat, group or channel to post to (numeric id or @channelname)
#   TELEGRAM_API_URL     the Bot API's base URL (default https://api.telegram.org)
#   TELEGRAM_PARSE_MODE  optional: HTML, MarkdownV2 or Markdown (default: plain text, nothing to escape)
#   TELEGRAM_TIMEOUT     seconds for the whole request (default 20)
# Without a token or a chat id it does nothing and says so (exit 0): notices are optional.
# When the API answers ok:false, or cannot be reached, it fails (exit 1) with the API's description.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 <status> <message>" >&2
  exit 2
fi
status=$1
shift
message=$*

if [ -z "${TELEGRAM_BOT_TOKEN:-}" ] || [ -z "${TELEGRAM_CHAT_ID:-}" ]; then
  echo "notify-telegram: TELEGRAM_BOT_TOKEN or TELEGRAM_CHAT_ID not set; not sending the $status notice"
  exit 0
fi
case "$TELEGRAM_BOT_TOKEN" in
  *[!A-Za-z0-9:_-]*) echo "notify-telegram: TELEGRAM_BOT_TOKEN has characters no bot token has" >&2; exit 1 ;;
esac

api=${TELEGRAM_API_URL:-https://api.telegram.org}
api=${api%/}

case "$status" in
  success) prefix="✅ SUCCESS" ;;
  failure) prefix="❌ FAILURE" ;;
  unstable) prefix="⚠️ UNSTABLE" ;;
  aborted) prefix="⏹ ABORTED" ;;
  security) prefix="🚨 SECURITY" ;;
  info) prefix="ℹ️" ;;
  *) prefix="[$status]" ;;
esac

# The JSON body, built by python so that any message (quotes, newlines, non-ASCII) is encoded right;
# Telegram takes at most 4096 characters of text.
body=$(
  PREFIX=$prefix MESSAGE=$message python3 -c '
import json, os
chat = os.environ["TELEGRAM_CHAT_ID"]
text = (os.environ["PREFIX"] + " " + os.environ["MESSAGE"]).strip()
if len(text) > 4096:
    text = text[:4095] + "…"
body = {"chat_id": int(chat) if chat.lstrip("-").isdigit() else chat, "text": text,
        "link_preview_options": {"is_disabled": True}}
mode = os.environ.get("TELEGRAM_PARSE_MODE", "")
if mode:
    body["parse_mode"] = mode
print(json.dumps(body, ensure_ascii=False))
'
)

# The token is part of the URL: hand it to curl through its config on stdin, never on its command line
# (where `ps` would show it), and never echo the URL.
response_file=$(mktemp)
error_file=$(mktemp)
trap 'rm -f "$response_file" "$error_file"' EXIT
set +e
http_code=$(
  printf 'url = "%s/bot%s/sendMessage"\n' "$api" "$TELEGRAM_BOT_TOKEN" |
    curl --config - --silent --show-error --max-time "${TELEGRAM_TIMEOUT:-20}" \
      --retry 2 --retry-connrefused --retry-delay 1 \
      -X POST -H 'content-type: application/json' --data-binary "$body" \
      -o "$response_file" -w '%{http_code}' 2>"$error_file"
)
curl_rc=$?
set -e
if [ "$curl_rc" -ne 0 ]; then
  # curl's own message names the host at most; the token is masked all the same.
  error=$(tail -1 "$error_file")
  echo "notify-telegram: could not reach the Bot API at $api: ${error//$TELEGRAM_BOT_TOKEN/***}" >&2
  exit 1
fi

HTTP_CODE=$http_code python3 - "$response_file" <<'PY'
import json, os, sys
raw = open(sys.argv[1], encoding="utf-8", errors="replace").read()
code = os.environ["HTTP_CODE"]
try:
    answer = json.loads(raw)
except ValueError:
    sys.exit(f"notify-telegram: the Bot API answered HTTP {code} with something that is not JSON: {raw[:200]!r}")
if not isinstance(answer, dict) or answer.get("ok") is not True:
    desc = answer.get("description", "no description") if isinstance(answer, dict) else raw[:200]
    err = answer.get("error_code", code) if isinstance(answer, dict) else code
    sys.exit(f"notify-telegram: the Bot API refused the message: error {err}: {desc}")
msg = answer.get("result", {})
print(f"notify-telegram: sent message {msg.get('message_id')} to chat {msg.get('chat', {}).get('id')}")
PY
