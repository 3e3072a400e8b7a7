#!/usr/bin/env bash
# test-webhooks.sh: signed webhooks. stripe_eu is probed and switched failing, so that its
# breaker opens and payspoa emits events; a receiver (webhook-recv.py, its own HMAC code)
# verifies every delivery's Payspoa-Signature and fails the first 3 attempts of each
# event: payspoa retries with exponential backoff (never sooner than its schedule), a
# tampered body and a replay outside the receiver's tolerance are rejected. A second
# payspoa with a queue of 1 and a receiver that never answers drops events and counts them.
. "$(dirname "$0")/lib.sh"

need python3
need curl
[ -x "$PAYAPI_BIN" ] || { fail prerequisite "$PAYAPI_BIN not built (make bench-bin)"; exit 1; }

BREAKER='$a breaker = { consecutive = 3; open_s = 1.0; open_max_s = 2.0; jitter = 0.0; probes = 2; window_s = 3.0; min_calls = 5; };'
alloc_port P_EU; alloc_port P_RECV; alloc_port P_AGENT
start_payapi stripe_eu "$P_EU" || { fail start-payapi; exit 1; }
printf 'whsec_test_%s\n' "$RANDOM$RANDOM" >"$T/secret"
mkdir -p "$T/saved"
start_bg recv python3 tests/integ/webhook-recv.py "$P_RECV" "$T/secret" 3 3 "$T/recv.jsonl" "$T/saved"
wait_port recv "$P_RECV" || { fail start-receiver; exit 1; }

probe="/^backends/,\$ s|^\\([[:space:]]*name = \"stripe_eu\";\\)|\\1 probe_url = \"http://127.0.0.1:$P_EU/v1/balance\"; probe_interval_s = 0.1;|"
policy_copy "$T/pol" "$BREAKER" "$probe" \
	"\$a webhooks = { urls = [ \"http://127.0.0.1:$P_RECV/hook\" ]; secret_file = \"$T/secret\"; backoff_s = 0.2; backoff_max_s = 5.0; retries = 5; timeout_s = 2.0; };" ||
	{ fail policy "$(cat "$T/pol/check.log")"; exit 1; }
start_payspoa agent "$P_AGENT" "$POLICY" || { fail start-payspoa "$(tail -3 "$T/agent.log")"; exit 1; }
payapi_mode "$P_EU" mode=failing

# the breaker.opened event of stripe_eu, delivered whole (3 failures, then 200)
opened_id() { python3 - "$T/recv.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("type") == "breaker.opened" and r["data"].get("backend") == "stripe_eu" and r["status"] == 200:
        print(r["id"]); break
PY
}
has_opened() { [ -n "$(opened_id)" ]; }
if wait_until 30 has_opened; then
	pass breaker_opened_delivered_and_verified
else
	fail breaker_opened_delivered_and_verified "receiver saw:" "$(tail -5 "$T/recv.jsonl")" "$(grep webhook "$T/agent.log" | tail -3)"
	exit 1
fi
id=$(opened_id)

# backoff: attempt k+1 comes at least 0.5 x 0.2 s x 2^(k-1) after attempt k (load only
# lengthens the waits), every attempt verified, and the waits grow
res=$(python3 - "$T/recv.jsonl" "$id" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
rs = [r for r in rs if r.get("id") == sys.argv[2]]
m = [r["mono"] for r in rs]
gaps = [b - a for a, b in zip(m, m[1:])]
ok = (len(rs) == 4 and [r["status"] for r in rs] == [500, 500, 500, 200]
      and all(r["verdict"] == "ok" for r in rs)
      and all(g >= 0.5 * 0.2 * 2 ** k * 0.95 for k, g in enumerate(gaps)))
print("ok" if ok else "bad", len(rs), [r["status"] for r in rs], ["%.3f" % g for g in gaps])
PY
)
case $res in ok*) pass retried_never_before_backoff ;; *) fail retried_never_before_backoff "attempts statuses gaps: $res" ;; esac
# the waits payspoa chose (its debug log): after attempt k fails, 0.2 s x 2^(k-1) x [0.5, 1)
res=$(python3 - "$T/agent.log" <<'PY'
import json, sys
w = [json.loads(l) for l in open(sys.argv[1]) if '"event":"webhook_retry"' in l]
bad = [(r["attempt"], r["wait_s"]) for r in w
       if not 0.1 * 2 ** (int(r["attempt"]) - 1) * 0.999 <= float(r["wait_s"]) < 0.2 * 2 ** (int(r["attempt"]) - 1) * 1.001]
ks = sorted({int(r["attempt"]) for r in w})
print("ok" if w and not bad and ks[:3] == [1, 2, 3] else "bad", len(w), ks, bad[:5])
PY
)
case $res in ok*) pass backoff_doubles_with_jitter ;; *) fail backoff_doubles_with_jitter "retries attempts bad: $res" ;; esac

# the signature covers the body: the saved delivery, with one byte changed, is refused
post() { # post SIGFILE BODYFILE [TOLERANCE_S]: the receiver's verdict for that request
	curl -sS --max-time "$(scaled 5)" -H "Payspoa-Signature: $(cat "$1")" -H 'Content-Type: application/json' \
		${3:+-H "X-Test-Tolerance: $3"} --data-binary "@$2" "http://127.0.0.1:$P_RECV/hook"
}
sed 's/"stripe_eu"/"stripe_us"/' "$T/saved/$id.4.body" >"$T/tampered.body"
expect tampered_body_rejected "verdict" "$(post "$T/saved/$id.4.sig" "$T/tampered.body")" bad_signature
# A replay within the tolerance is accepted: the tolerance is the request's own (3 s
# beyond the time already gone since its t), not 3 s since the delivery for everything the
# test did in between (python checks on a loaded machine took longer than that).
t=$(sed 's/^t=\([0-9]*\),.*/\1/' "$T/saved/$id.4.sig")
expect replay_within_tolerance_accepted "verdict" \
	"$(post "$T/saved/$id.4.sig" "$T/saved/$id.4.body" $(( $(date +%s) - t + 3 )))" ok
# the same request once the receiver's default tolerance (3 s) has passed since its t
wait_until 15 eval '[ "$(date +%s)" -gt $((t + 4)) ]'
expect replay_outside_tolerance_rejected "verdict" "$(post "$T/saved/$id.4.sig" "$T/saved/$id.4.body")" stale

# the payload: Stripe-shaped event, its fields as documented
python3 - "$T/saved/$id.4.body" <<'PY' && pass payload_shape || fail payload_shape "$(cat "$T/saved/$id.4.body")"
import json, sys
e = json.load(open(sys.argv[1]))
assert e["id"].startswith("evt_") and e["type"] == "breaker.opened" and isinstance(e["created"], int)
assert e["data"]["backend"] == "stripe_eu" and e["data"]["breaker"] == "open" and e["data"]["trips"] >= 1
PY

stop agent
field() { grep -o "\"$1\":\"[0-9]*\"" "$T/$2.log" | tail -1 | cut -d'"' -f4; }
ev=$(field webhook_events agent) sent=$(field webhooks_sent agent) re=$(field webhooks_retried agent)
if [ "${ev:-0}" -ge 1 ] && [ "${sent:-0}" -ge 1 ] && [ "${re:-0}" -ge 3 ]; then pass webhook_counters
else fail webhook_counters "events '$ev' sent '$sent' retried '$re'"; fi

# ---- a full queue ------------------------------------------------------------------------------

# a receiver that accepts connections (the kernel's backlog) and never answers
alloc_port P_HOLE; alloc_port P_AGENT2
start_bg hole python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
while True: time.sleep(60)' "$P_HOLE"
wait_port hole "$P_HOLE" || { fail start-hole; exit 1; }
payapi_mode "$P_EU" mode=healthy
policy_copy "$T/pol2" "$BREAKER" "$probe" \
	"\$a webhooks = { urls = [ \"http://127.0.0.1:$P_HOLE/hook\" ]; secret_env = \"PAYSPOA_TEST_WHSEC\"; queue = 1; retries = 0; timeout_s = 3.0; };" ||
	{ fail policy2 "$(cat "$T/pol2/check.log")"; exit 1; }
PAYSPOA_TEST_WHSEC=$(cat "$T/secret") start_payspoa agent2 "$P_AGENT2" "$POLICY" ||
	{ fail start-payspoa2 "$(tail -3 "$T/agent2.log")"; exit 1; }
payapi_mode "$P_EU" mode=failing
# opened, half-opened, opened...: the first holds the one place, the next are dropped
if wait_until 20 grep -q '"event":"webhook_dropped"' "$T/agent2.log"; then pass full_queue_drops_logged
else fail full_queue_drops_logged "$(grep webhook "$T/agent2.log" | tail -3)"; fi
# the one in flight times out (3 s) and, with retries = 0, is given up
if wait_until 20 grep -q '"event":"webhook_failed".*"attempts":"1"' "$T/agent2.log"; then pass unanswered_given_up
else fail unanswered_given_up "$(grep webhook "$T/agent2.log" | tail -3)"; fi
stop agent2
dr=$(field webhooks_dropped agent2) fl=$(field webhooks_failed agent2) ev=$(field webhook_events agent2)
if [ "${dr:-0}" -ge 1 ] && [ "${fl:-0}" -ge 1 ] && [ "${ev:-0}" -ge 2 ]; then pass dropped_counted
else fail dropped_counted "events '$ev' dropped '$dr' failed '$fl'"; fi

# ---- webhooks turned on by a reload ------------------------------------------------------------

payapi_mode "$P_EU" mode=healthy
alloc_port P_AGENT3
policy_copy "$T/pol3" "$BREAKER" "$probe" || { fail policy3 "$(cat "$T/pol3/check.log")"; exit 1; }
start_payspoa agent3 "$P_AGENT3" "$POLICY" || { fail start-payspoa3 "$(tail -3 "$T/agent3.log")"; exit 1; }
echo "webhooks = { urls = [ \"http://127.0.0.1:$P_RECV/reloaded\" ]; secret_file = \"$T/secret\"; backoff_s = 0.2; };" >>"$POLICY"
: >"$T/recv.jsonl"
# (SIGHUP only once the daemon handles it: "started" is logged after its signal watchers)
wait_until 10 grep -q '"event":"started"' "$T/agent3.log"
kill -HUP "${PROC[agent3]}"
wait_until 10 grep -q '"event":"reloaded"' "$T/agent3.log" || fail reload3 "$(tail -3 "$T/agent3.log")"
payapi_mode "$P_EU" mode=failing
if wait_until 30 has_opened; then pass webhooks_added_by_reload
else fail webhooks_added_by_reload "receiver saw: $(tail -3 "$T/recv.jsonl")" "$(grep -i webhook "$T/agent3.log" | tail -3)"; fi

integ_done
