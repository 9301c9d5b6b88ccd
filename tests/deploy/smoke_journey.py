#!/usr/bin/env python3
"""The attendee journey against a running platform (an image, a compose topology), over HTTP(S)
only: ready, register, sign in, find the event, hold a ticket, pay in the sandbox (a webhook signed
as the sandbox signs it), tickets and the confirmation notice arrive.

    smoke_journey.py BASE_URL --sandbox-secret SECRET [--event SLUG --ticket-type ID] [--admin EMAIL:PASSWORD]

With --admin (an existing admin account) and no --event, an organizer is approved and publishes the
fixture event first, as on a fresh microservices install without demo data. Exits non-zero with
the failing step's request and answer.
"""

import argparse
import hashlib
import hmac
import json
import pathlib
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[2]


class Platform:
    def __init__(self, base, cafile=None):
        self.base = base.rstrip("/")
        self.context = ssl.create_default_context(cafile=cafile) if cafile else None

    def call(self, method, path, token=None, body=None, key=None, expect=(200,), raw=None, headers=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        if key:
            req.add_header("idempotency-key", key)
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.context) as res:
                status, text = res.status, res.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        if status not in expect:
            sys.exit(f"FAILED: {method} {path} answered {status}, expected {expect}: {text[:500]}")
        return json.loads(text) if text.startswith(("{", "[")) else text

    def wait_ready(self, seconds=90):
        deadline = time.time() + seconds
        while True:
            try:
                self.call("GET", "/readyz")
                return
            except (SystemExit, OSError) as e:
                if time.time() > deadline:
                    sys.exit(f"FAILED: not ready within {seconds} s: {e}")
                time.sleep(1)

    def register(self, email, password="a long password"):
        self.call("POST", "/api/v1/auth/register", body={"email": email, "password": password, "display_name": email},
                  expect=(202,))
        return self.login(email, password)

    def login(self, email, password):
        return self.call("POST", "/api/v1/auth/login", body={"email": email, "password": password})["access_token"]

    def until(self, what, check, seconds=30):
        deadline = time.time() + seconds
        while not check():
            if time.time() > deadline:
                sys.exit(f"FAILED: timed out waiting until {what}")
            time.sleep(0.5)


def publish_fixture_event(p, admin, applicant_login):
    """An organizer approved by the admin publishes the fixture event, on sale now; its slug.
    The applicant's address must be verified: an account the CLI made."""
    email, password = applicant_login.split(":", 1)
    applicant = p.login(email, password)
    application = p.call("POST", "/api/v1/organizer-applications", applicant,
                         {"name": "Smoke Test Live", "contact_email": email, "message": "smoke test"}, expect=(201,))
    p.call("POST", f"/api/v1/admin/organizer-applications/{application['id']}/approve", admin, {})
    organizer = p.login(email, password)
    doc = json.loads((ROOT / "fixtures/event-tech-conference-2025.json").read_text())
    suffix = uuid.uuid4().hex[:8]
    doc["id"], doc["slug"], doc["status"] = f"evt-smoke-{suffix}", f"smoke-{suffix}", "draft"
    del doc["organizer"]  # the organizer's own profile
    # Dates that make it bookable now: sales open since yesterday, the event in six weeks.
    now = time.time()
    iso = lambda days: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + days * 86400))
    doc["datetime"].update(booking_start=iso(-1), booking_end=iso(41), start=iso(42), end=iso(43))
    for ticket_type in doc["ticketing"]["types"]:
        ticket_type.update(available_from=iso(-1), available_until=iso(41))
    created = p.call("POST", "/api/v1/events", organizer, doc, expect=(201,))
    p.call("POST", f"/api/v1/events/{created['id']}/publish", organizer)
    return created["slug"]


def sandbox_pays(p, secret, payment_id, amount_cents, currency):
    body = json.dumps({"id": f"sbx_evt_{payment_id}", "type": "payment.succeeded", "payment_id": payment_id,
                       "amount_cents": amount_cents, "currency": currency}).encode()
    t = int(time.time())
    tag = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    p.call("POST", "/api/v1/payments/webhooks/sandbox", raw=body, headers={"sandbox-signature": f"t={t},v1={tag}"})


def main():
    args = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args.add_argument("base")
    args.add_argument("--sandbox-secret", required=True)
    args.add_argument("--event", help="slug of an event on sale (the demo's: tech-conference-2025)")
    args.add_argument("--ticket-type", help="the ticket type to buy (default: the event's first)")
    args.add_argument("--admin", help="EMAIL:PASSWORD of an admin, to set up an event when there is none")
    args.add_argument("--applicant", help="EMAIL:PASSWORD of a verified account that applies to organize (with --admin)")
    args.add_argument("--cafile", help="CA certificate to trust (HTTPS with an internal CA)")
    a = args.parse_args()
    p = Platform(a.base, a.cafile)
    p.wait_ready()
    print("ready:", p.base)

    if a.event:
        slug = a.event
    elif a.admin and a.applicant:
        email, password = a.admin.split(":", 1)
        slug = publish_fixture_event(p, p.login(email, password), a.applicant)
    else:
        sys.exit("name --event, or --admin and --applicant")
    event = p.call("GET", f"/api/v1/events/{slug}")
    listed = p.call("GET", "/api/v1/events")
    assert any(e["slug"] == slug for e in listed["items"]), f"{slug} is not listed"
    print("event:", slug)

    buyer = p.register(f"smoke-{uuid.uuid4().hex[:12]}@example.com")
    me = p.call("GET", "/api/v1/me", buyer)
    print("signed in:", me["email"])
    types = event["ticketing"]["types"]
    ticket_type = next(t for t in types if t["id"] == a.ticket_type) if a.ticket_type else types[0]
    booking = p.call("POST", "/api/v1/bookings", buyer,
                     {"event_id": slug, "items": [{"ticket_type_id": ticket_type["id"], "quantity": 1}]},
                     key="smoke-hold", expect=(201,))
    print("held:", booking["id"], booking["status"])
    payment = p.call("POST", "/api/v1/payments", buyer, {"booking_id": booking["id"], "provider": "sandbox"},
                     key="smoke-pay", expect=(201,))
    sandbox_pays(p, a.sandbox_secret, payment["id"], round(payment["amount"] * 100), payment["currency"])
    p.until("the booking is confirmed",
            lambda: p.call("GET", f"/api/v1/bookings/{booking['id']}", buyer)["status"] == "confirmed")
    tickets = p.call("GET", "/api/v1/me/tickets", buyer)["items"]
    assert len(tickets) == 1, tickets
    print("confirmed, ticket:", tickets[0]["id"])
    p.until("the confirmation notice arrives",
            lambda: any(m["kind"] == "booking_confirmed" for m in p.call("GET", "/api/v1/me/messages", buyer)["items"]))
    page = p.call("GET", f"/events/{slug}")
    assert "<html" in page.lower(), "the event page is not HTML"
    print("journey passed")


if __name__ == "__main__":
    main()
