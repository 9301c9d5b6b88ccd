#!/usr/bin/env python3
"""A stand-in for the ticketgw binary that has a bug: `server-with-a-5xx.py serve --demo` listens on
TICKETGW_LISTEN like ticketgw, answers /readyz, the login dast.sh makes and an OpenAPI document with
one operation, GET /api/v1/things/{id}, which answers 500 for any id that is not a number. The
pipeline self-test runs scripts/ci/dast.sh against it to prove that a 5xx fails the DAST stage."""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOC = {
    "openapi": "3.0.3",
    "info": {"title": "stand-in", "version": "1"},
    "paths": {
        "/api/v1/things/{id}": {
            "get": {
                "operationId": "get_thing",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "a thing"}, "404": {"description": "none"}},
            }
        }
    },
}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/readyz":
            return self.reply(200, {"status": "ready"})
        if path == "/api/v1/openapi.json":
            return self.reply(200, DOC)
        if path.startswith("/api/v1/things/"):
            thing = path.rsplit("/", 1)[1]
            if thing.isdigit():
                return self.reply(200, {"id": thing})
            return self.reply(500, {"error": "unhandled: not a number"})  # the bug
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/api/v1/auth/login":
            return self.reply(200, {"access_token": "stand-in-token"})
        self.reply(404, {"error": "not found"})


host, port = os.environ["TICKETGW_LISTEN"].rsplit(":", 1)
ThreadingHTTPServer((host, int(port)), Handler).serve_forever()
