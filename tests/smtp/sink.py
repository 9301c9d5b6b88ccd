#!/usr/bin/env python3
"""Tiny SMTP sink for tests: saves every received message as <outdir>/<n>-<ts>.eml.

usage: python smtp_sink.py [--host 127.0.0.1] [--port 2525] [--outdir /tmp/mails]
needs: pip install aiosmtpd==1.4.6
Stops on SIGTERM/SIGINT. Prints "READY host:port" once listening (tests can wait for it).
"""
import argparse
import itertools
import os
import signal
import threading
import time

from aiosmtpd.controller import Controller


class SaveEml:
    def __init__(self, outdir):
        self.outdir = outdir
        self.counter = itertools.count(1)
        os.makedirs(outdir, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        name = f"{n:05d}-{time.time_ns()}.eml"
        tmp = os.path.join(self.outdir, "." + name + ".tmp")
        # envelope.content = raw bytes of the message as received (headers + body)
        with open(tmp, "wb") as f:
            f.write(f"X-Envelope-From: {envelope.mail_from}\r\n".encode())
            f.write(f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n".encode())
            f.write(envelope.original_content or envelope.content)
        os.replace(tmp, os.path.join(self.outdir, name))  # atomic: readers never see half a file
        print(f"saved {name} from={envelope.mail_from} to={envelope.rcpt_tos}", flush=True)
        return "250 Message accepted for delivery"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=2525)
    ap.add_argument("--outdir", default="/tmp/mails")
    a = ap.parse_args()
    ctl = Controller(SaveEml(a.outdir), hostname=a.host, port=a.port)
    ctl.start()  # runs the asyncio server in a background thread
    print(f"READY {a.host}:{a.port} -> {a.outdir}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    ctl.stop()


if __name__ == "__main__":
    main()
