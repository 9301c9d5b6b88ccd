#!/usr/bin/env python3
"""A local stand-in for the Telegram Bot API's sendMessage, speaking its wire format.

    fake_bot_api.py --token TOKEN --port-file FILE --log FILE [--port 0]

Answers like https://api.telegram.org does:
- POST /bot<TOKEN>/sendMessage with a JSON body {chat_id, text, parse_mode?, ...}:
  200 {"ok":true,"result":{message_id, from, chat, date, text}};
- a wrong token: 401 {"ok":false,"error_code":401,"description":"Unauthorized"};
- an unknown method: 404 {"ok":false,"error_code":404,"description":"Not Found"};
- a body that is not JSON, or without chat_id or text, or with an unknown parse_mode, or a text longer
  than 4096 characters: 400 {"ok":false,"error_code":400,"description":"Bad Request: ..."}.
Every accepted message is appended to the log as one JSON line (the request body as received).
The port it listens on (0: any free port) is written to the port file once it is listening.
"""

import argparse
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)$")
PARSE_MODES = {"HTML", "MarkdownV2", "Markdown"}


class BotApi(BaseHTTPRequestHandler):
    server_version = "nginx"  # what the real API says
    token = ""
    log_path = ""
    lock = threading.Lock()
    next_id = 1

    def log_message(self, *args):  # quiet: the test prints what matters
        pass

    def answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fail(self, code, description):
        self.answer(code, {"ok": False, "error_code": code, "description": description})

    def do_GET(self):
        self.route(None)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.route(self.rfile.read(length))

    def route(self, raw):
        m = PATH.match(self.path.split("?", 1)[0])
        if not m:
            return self.fail(404, "Not Found")
        if m["token"] != self.token:
            return self.fail(401, "Unauthorized")
        if m["method"] != "sendMessage":
            return self.fail(404, "Not Found")
        if raw is None:
            return self.fail(400, "Bad Request: message text is empty")
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return self.fail(400, "Bad Request: this stand-in takes JSON bodies only")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return self.fail(400, "Bad Request: can't parse JSON object")
        if not isinstance(body, dict):
            return self.fail(400, "Bad Request: can't parse JSON object")
        chat_id = body.get("chat_id")
        if chat_id is None or chat_id == "":
            return self.fail(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, (int, str)) or isinstance(chat_id, bool):
            return self.fail(400, "Bad Request: chat_id must be an integer or a string")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return self.fail(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return self.fail(400, "Bad Request: message is too long")
        mode = body.get("parse_mode")
        if mode is not None and mode not in PARSE_MODES:
            return self.fail(400, f"Bad Request: unsupported parse_mode {mode!r}")
        with self.lock:
            message_id = BotApi.next_id
            BotApi.next_id += 1
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(body, ensure_ascii=False) + "\n")
        numeric = isinstance(chat_id, int) or str(chat_id).lstrip("-").isdigit()
        chat = (
            {"id": int(chat_id), "title": "CI", "type": "group" if int(chat_id) < 0 else "private"}
            if numeric
            else {"id": -1001234567890, "title": "CI", "username": str(chat_id).lstrip("@"), "type": "channel"}
        )
        self.answer(
            200,
            {
                "ok": True,
                "result": {
                    "message_id": message_id,
                    "from": {"id": 7000000001, "is_bot": True, "first_name": "Ticket Gateway CI", "username": "tg_ci_bot"},
                    "chat": chat,
                    "date": int(time.time()),
                    "text": text,
                },
            },
        )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--token", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    a = p.parse_args()
    BotApi.token = a.token
    BotApi.log_path = a.log
    server = ThreadingHTTPServer(("127.0.0.1", a.port), BotApi)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(a.port_file + ".tmp", a.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
