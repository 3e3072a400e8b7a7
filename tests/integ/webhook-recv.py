#!/usr/bin/env python3
"""webhook-recv.py: the test receiver of payspoa's webhooks (tests/integ/test-webhooks.sh).

Verifies Payspoa-Signature as a Stripe-style receiver would, with its own HMAC code:
  t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
then checks that t is within the tolerance of its own clock: TOLERANCE_S, or the request's
own X-Test-Tolerance header (seconds; the test's replays, so that each replay is judged
against its own delay rather than against everything the test did since the delivery). Answers 400 with the verdict
(bad_signature, stale, malformed) when a check fails; a verified delivery is answered 500
for the first FAIL_PER_ID attempts of each event id (to make the sender retry), then 200.
One JSON line per request in LOG; each verified request saved as SAVE/<id>.<n>.{sig,body}.

usage: webhook-recv.py PORT SECRET_FILE TOLERANCE_S FAIL_PER_ID LOG SAVE
"""
import hashlib, hmac, json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, secret_file, tolerance, fail_per_id, log_path, save = sys.argv[1:7]
secret = open(secret_file, "rb").read().rstrip(b"\n")
tolerance, fail_per_id = float(tolerance), int(fail_per_id)
attempts, lock = {}, threading.Lock()
log = open(log_path, "a", buffering=1)


def verify(header, body, tol):
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t, v1 = int(parts["t"]), parts["v1"]
    except Exception:
        return "malformed", None
    want = hmac.new(secret, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, v1):
        return "bad_signature", t
    if abs(time.time() - t) > tol:
        return "stale", t
    return "ok", t


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        sig = self.headers.get("Payspoa-Signature", "")
        tol = float(self.headers.get("X-Test-Tolerance", tolerance))
        verdict, t = verify(sig, body, tol)
        rec = {"mono": time.monotonic(), "verdict": verdict, "t": t}
        status = 400
        if verdict == "ok":
            ev = json.loads(body)
            with lock:
                n = attempts[ev["id"]] = attempts.get(ev["id"], 0) + 1
            rec.update(id=ev["id"], type=ev["type"], data=ev["data"], attempt=n)
            status = 500 if n <= fail_per_id else 200
            base = os.path.join(save, "%s.%d" % (ev["id"], n))
            open(base + ".sig", "w").write(sig)
            open(base + ".body", "wb").write(body)
        rec["status"] = status
        log.write(json.dumps(rec) + "\n")
        out = (verdict + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
