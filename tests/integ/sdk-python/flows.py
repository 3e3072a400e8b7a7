# flows.py: payment flows through Stripe's own Python SDK (unmodified) against payspoa's
# HAProxy and the emulated accounts; used by tests/integ/test-sdk-python.sh. The same
# flows as tests/integ/sdk-node/flows.js, through StripeClient.
#
#   python flows.py HAP_PORT RUN FLOWS CONCURRENCY MAX_RETRIES [PAUSE_MS]
#
# FLOWS flows run CONCURRENCY at a time (threads), PAUSE_MS (default 0) between two flows
# of a thread, with max_network_retries = MAX_RETRIES. One line per flow,
# "FLOW <n> <kind> ok|bad <instance> <detail>", then "SUMMARY {json}": every HTTP attempt
# (seen by subclassing the SDK's own requests client, whose retry loop still runs), their
# statuses, the retries. Exit status 0 when every flow ended as Stripe documents.
import json
import sys
import threading
import time

import stripe

hap_port, run, nflows, conc, max_retries = sys.argv[1:6]
pause_s = int(sys.argv[6]) / 1000.0 if len(sys.argv) > 6 else 0.0

lock = threading.Lock()
statuses = {}        # HTTP status of every attempt -> count (0: no answer)
by_key = {}          # Idempotency-Key -> status of each attempt, in order


def seen(headers, status):
    key = (headers or {}).get("Idempotency-Key")
    with lock:
        statuses[status] = statuses.get(status, 0) + 1
        if key:
            by_key.setdefault(key, []).append(status)


class Observed(stripe.RequestsClient):
    """The SDK's own HTTP client; each attempt's status is counted."""

    def request(self, method, url, headers, post_data=None):
        try:
            res = super().request(method, url, headers, post_data)
        except stripe.APIConnectionError:
            seen(headers, 0)
            raise
        seen(headers, res[1])
        return res


client = stripe.StripeClient(
    "sk_test_payspoa_example",
    base_addresses={"api": "http://127.0.0.1:%s" % hap_port},
    max_network_retries=int(max_retries),
    http_client=Observed(),
)
pis = client.v1.payment_intents


class Bad(Exception):
    pass


def want(cond, what):
    if not cond:
        raise Bad(what)


def inst(o):
    return o["payapi_instance"]   # the emulator names the account in every body


def flow_confirm(i):
    pi = pis.create(params={"amount": 1000 + i, "currency": "usd" if i % 3 else "eur",
                            "payment_method_types": ["card"],
                            "metadata": {"flow": str(i), "run": run},
                            "expand": ["latest_charge"]})
    want(pi.object == "payment_intent" and pi.status == "requires_payment_method",
         "created: %s" % pi.status)
    c = pis.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    want(c.id == pi.id and c.status == "succeeded" and c.amount_received == pi.amount and
         (c.latest_charge or "").startswith("ch_"), "confirmed: %s %s" % (c.status, c.amount_received))
    want(inst(c) == inst(pi), "confirm on %s, created on %s" % (inst(c), inst(pi)))
    return inst(pi)


def flow_capture(i):
    pi = pis.create(params={"amount": 2000 + i, "currency": "usd", "payment_method": "pm_card_visa",
                            "capture_method": "manual", "confirm": True})
    want(pi.status == "requires_capture" and pi.amount_capturable == pi.amount and
         pi.amount_received == 0, "authorised: %s" % pi.status)
    c = pis.capture(pi.id)
    want(c.status == "succeeded" and c.amount_received == pi.amount and c.amount_capturable == 0,
         "captured: %s %s" % (c.status, c.amount_received))
    return inst(pi)


def flow_refund(i):
    pi = pis.create(params={"amount": 3000, "currency": "gbp", "payment_method": "pm_card_visa",
                            "confirm": True})
    want(pi.status == "succeeded", "paid: %s" % pi.status)
    r1 = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1200})
    want(r1.object == "refund" and r1.status == "succeeded" and r1.amount == 1200 and
         r1.payment_intent == pi.id, "partial: %s %s" % (r1.status, r1.amount))
    r2 = client.v1.refunds.create(params={"payment_intent": pi.id})
    want(r2.status == "succeeded" and r2.amount == 1800, "rest: %s %s" % (r2.status, r2.amount))
    try:
        client.v1.refunds.create(params={"payment_intent": pi.id})
        want(False, "third refund succeeded")
    except stripe.InvalidRequestError as e:
        want(e.code == "charge_already_refunded", "third refund: %s" % e.code)
    page = client.v1.refunds.list(params={"payment_intent": pi.id, "limit": 1})
    ids = [r.id for r in page.auto_paging_iter()]
    want(ids == [r2.id, r1.id], "listed: %s" % ids)
    return inst(pi)


def flow_list(i):
    page = pis.list(params={"limit": 3})
    want(page.object == "list" and page.url == "/v1/payment_intents" and len(page.data) <= 3 and
         isinstance(page.has_more, bool) and all(p.object == "payment_intent" for p in page.data),
         "list shape")
    ch = client.v1.charges.list(params={"limit": 2})
    want(ch.object == "list" and all(c.object == "charge" for c in ch.data), "charges list")
    return inst(page)


def flow_connect(i):
    acct = "acct_1PYSDK%s%d" % (run, i % 4)
    opts = {"stripe_account": acct}
    pi = pis.create(params={"amount": 1500, "currency": "eur", "payment_method": "pm_card_visa",
                            "confirm": True}, options=opts)
    want(pi.status == "succeeded", "connected payment: %s" % pi.status)
    again = pis.retrieve(pi.id, options=opts)
    want(again.id == pi.id and inst(again) == inst(pi), "retrieve on %s" % inst(again))
    try:
        pis.retrieve(pi.id)
        want(False, "found on the platform")
    except stripe.InvalidRequestError as e:
        want(e.code == "resource_missing" and e.http_status == 404, "platform retrieve: %s" % e.code)
    return inst(pi)


def flow_decline(i):
    pm = "pm_card_chargeDeclined" if i % 2 else "pm_card_chargeDeclinedInsufficientFunds"
    key = "py-%s-decline-%d" % (run, i)
    try:
        pis.create(params={"amount": 4200, "currency": "usd", "payment_method": pm, "confirm": True},
                   options={"idempotency_key": key})
        want(False, "a declined card was charged")
    except stripe.CardError as e:
        want(e.code == "card_declined" and
             e.error.decline_code == ("generic_decline" if i % 2 else "insufficient_funds") and
             e.error.payment_intent["status"] == "requires_payment_method",
             "decline: %s %s" % (e.code, e.error.decline_code))
    st = by_key.get(key, [])
    want(st and st[-1] == 402 and st.count(402) == 1, "a decline was retried: statuses %s" % st)
    return "-"


def flow_retry(i):
    key = "py-%s-%d-payapi-drop-first" % (run, i)
    params = {"amount": 5000 + i, "currency": "usd" if i % 2 else "eur",
              "payment_method": "pm_card_visa", "confirm": True}
    pi = pis.create(params=params, options={"idempotency_key": key})
    want(pi.status == "succeeded", "retried payment: %s" % pi.status)
    want(len(by_key.get(key, [])) >= 2, "the first attempt was not retried: %s" % by_key.get(key))
    again = pis.create(params=params, options={"idempotency_key": key})
    want(again.id == pi.id and again.last_response.headers.get("Idempotent-Replayed") == "true",
         "replay: %s vs %s" % (again.id, pi.id))
    return inst(pi)


FLOWS = [("confirm", flow_confirm), ("capture", flow_capture), ("refund", flow_refund),
         ("list", flow_list), ("connect", flow_connect), ("decline", flow_decline),
         ("retry", flow_retry)]


def main():
    n = int(nflows)
    state = {"next": 0, "bad": 0}
    retried = {}   # retry flows by the account that served them
    out = threading.Lock()

    def worker():
        while True:
            with out:
                i = state["next"]
                if i >= n:
                    return
                state["next"] += 1
            kind, fn = FLOWS[i % len(FLOWS)]
            try:
                where = fn(i)
                line = "FLOW %d %s ok %s" % (i, kind, where)
                if kind == "retry":
                    with out:
                        retried[where] = retried.get(where, 0) + 1
            except Exception as e:   # every failure is reported, none stops the run
                with out:
                    state["bad"] += 1
                what = str(e) if isinstance(e, Bad) else "%s: %s" % (type(e).__name__, e)
                line = "FLOW %d %s bad - %s" % (i, kind, " ".join(what.split()))
            with out:
                print(line, flush=True)
            if pause_s:
                time.sleep(pause_s)

    t0 = time.time()
    threads = [threading.Thread(target=worker) for _ in range(int(conc))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keyed = list(by_key.values())
    print("SUMMARY " + json.dumps({
        "flows": n, "bad": state["bad"], "attempts": sum(statuses.values()),
        "statuses": {str(k): v for k, v in statuses.items()},
        "retry_flows_by_instance": retried, "keys": len(keyed),
        "keys_retried": sum(1 for a in keyed if len(a) > 1),
        "max_attempts": max([len(a) for a in keyed] or [0]),
        "seconds": round(time.time() - t0, 3)}), flush=True)
    sys.exit(1 if state["bad"] else 0)


main()
