#!/usr/bin/env python3
"""A stand-in for the ticketgw binary whose web UI has a bug: `web-with-an-xss.py serve --demo`
listens on TICKETGW_LISTEN like ticketgw, answers /readyz and serves a home page that links to
/events?q=..., a search page that writes the query back into the page without escaping it (a
reflected XSS). The pipeline self-test runs scripts/ci/wapiti.sh against it to prove that a finding
of level medium or above fails the web UI's DAST stage."""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

HOME = """<!doctype html><html lang="en"><head><title>stand-in</title></head><body>
<form action="/events" method="get"><input name="q" value=""><button>Search</button></form>
<a href="/events?q=music">Music</a></body></html>"""


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="text/html; charset=utf-8"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/readyz":
            return self.reply(200, '{"status":"ready"}', "application/json")
        if url.path == "/":
            return self.reply(200, HOME)
        if url.path == "/events":
            q = parse_qs(url.query).get("q", [""])[0]
            # The bug: the query goes into the page as it came.
            return self.reply(200, f"<!doctype html><html><body><h1>Results for {q}</h1></body></html>")
        self.reply(404, "<!doctype html><html><body>not found</body></html>")


host, port = os.environ["TICKETGW_LISTEN"].rsplit(":", 1)
ThreadingHTTPServer((host, int(port)), Handler).serve_forever()
