#!/usr/bin/env bash
# test-webhook-events.sh: the webhook events that payments cause, through the whole stack
# (HAProxy, payspoa, the emulated accounts) to a verifying receiver (webhook-recv.py):
# upstream 429s cut the account's adaptive budget (budget.cut), more idempotency keys
# than a 16-slot pin table holds evict pins before their TTL (pins.evicted), and
# background traffic over a small budget is shed by the forecast and then no longer
# (shedding.started, shedding.stopped). Every delivery must verify.
. "$(dirname "$0")/lib.sh"

need_stack
need python3
alloc_port P_RECV
printf 'whsec_events_%s\n' "$RANDOM$RANDOM" >"$T/secret"
mkdir -p "$T/saved"
start_bg recv python3 tests/integ/webhook-recv.py "$P_RECV" "$T/secret" 300 0 "$T/recv.jsonl" "$T/saved"
wait_port recv "$P_RECV" || { fail start-receiver; exit 1; }
start_stack "s|^\\([[:space:]]*idem_ttl_s = 86400;\\)|\\1 idem_slots = 16;|" \
	"\$a webhooks = { urls = [ \"http://127.0.0.1:$P_RECV/hook\" ]; secret_file = \"$T/secret\"; backoff_s = 0.2; };"

event() { # event TYPE: the first verified delivery of that type, as JSON ("" when none)
	python3 - "$T/recv.jsonl" "$1" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("type") == sys.argv[2] and r["verdict"] == "ok":
        print(json.dumps(r["data"])); break
PY
}
has_event() { [ -n "$(event "$1")" ]; }
gbp() {
	req "$HAP" POST /v1/payment_intents -d amount=1000 -d currency=gbp -d payment_method=pm_card_visa \
		-d confirm=true -H 'X-Card-Country: GB' "$@"
}

# 429s with Stripe-Rate-Limited-Reason: global-rate from stripe_eu
payapi_mode "$P_EU" mode=ratelimit rate_limit=1
deadline=$((SECONDS + 20))
while [ "$SECONDS" -lt "$deadline" ] && ! has_event budget.cut; do gbp; sleep 0.05; done
d=$(event budget.cut)
if [ -n "$d" ] && echo "$d" | grep -q '"cuts": [1-9]'; then pass budget_cut_event
else fail budget_cut_event "receiver: $(tail -3 "$T/recv.jsonl")" "$(grep -c budget "$T/agent.log") budget lines"; fi
payapi_mode "$P_EU" mode=healthy

# distinct idempotency keys, closed loop on 4 connections, until a 16-slot table (the
# smallest generation holds 128 pins, up to 6 generations are kept) evicts
cat >"$T/keys.list" <<LIST
POST /v1/payment_intents amount=1000&currency=usd&payment_method=pm_card_visa&confirm=true
	X-Card-Country: US
	Idempotency-Key: evict-$$-{n}
LIST
start_load keys "$T/keys.list" -c 4
if wait_until 60 has_event pins.evicted; then
	d=$(event pins.evicted)
	if echo "$d" | grep -q '"table": "idem"' && echo "$d" | grep -q '"evicted": [1-9]'; then pass pins_evicted_event
	else fail pins_evicted_event "$d"; fi
else
	fail pins_evicted_event "receiver: $(tail -3 "$T/recv.jsonl")" "$(grep pins_evicted "$T/agent.log" | tail -2)"
fi
stop_load keys >/dev/null

# background traffic (shed first) at 4 x what a 10 req/s account budget allows: the
# forecast sheds it (shedding.started), and stops once the load stops (shedding.stopped)
sed -i 's|account = { rate = 100.0; burst = 100.0; };|account = { rate = 10.0; burst = 10.0; };|' "$POLICY"
wait_until 10 grep -q '"event":"started"' "$T/agent.log"
kill -HUP "${PROC[agent]}"
wait_until 10 eval '[ "$(grep -c "\"event\":\"reloaded\"" "$T/agent.log")" -ge 1 ]' || fail reload "$(tail -2 "$T/agent.log")"
cat >"$T/bg.list" <<LIST
GET /v1/balance
	X-Pay-Class: background
LIST
start_load bg "$T/bg.list" -r 160
if wait_until 30 has_event shedding.started; then
	d=$(event shedding.started)
	if echo "$d" | grep -q '"class": "background"'; then pass shedding_started_event
	else fail shedding_started_event "$d"; fi
else
	fail shedding_started_event "receiver: $(tail -2 "$T/recv.jsonl")" "$(awk -F'|' '{ print $3 }' "$T/bg.out" | sort | uniq -c | head -5)"
fi
stop_load bg >/dev/null
if wait_until 30 has_event shedding.stopped; then pass shedding_stopped_event
else fail shedding_stopped_event "receiver: $(tail -2 "$T/recv.jsonl")"; fi

# every delivery verified, none refused
bad=$(grep -vc '"verdict": "ok"' "$T/recv.jsonl")
total=$(wc -l <"$T/recv.jsonl")
if [ "$total" -ge 2 ] && [ "$bad" -eq 0 ]; then pass every_delivery_verified
else fail every_delivery_verified "$bad of $total refused: $(grep -v '"verdict": "ok"' "$T/recv.jsonl" | head -3)"; fi

integ_done
