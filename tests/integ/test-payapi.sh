#!/usr/bin/env bash
# test-payapi.sh: the emulated payment API on its own. The other integration tests trust
# what it says (which instance answered, 404 for objects it does not hold, replays), so
# its behaviour is pinned down here: Stripe-shaped answers, what Stripe's SDKs send,
# lists, ownership, idempotency, declines, the fault modes (dropped first attempts
# included), and survival of malformed and hostile input.
. "$(dirname "$0")/lib.sh"

need curl
[ -x "$PAYAPI_BIN" ] || { fail prerequisite "$PAYAPI_BIN not built (make bench-bin)"; exit 1; }

alloc_port P_A; alloc_port P_B
A=http://127.0.0.1:$P_A
B=http://127.0.0.1:$P_B
start_payapi acct_a "$P_A" || { fail start-payapi; exit 1; }
start_payapi acct_b "$P_B" || { fail start-payapi; exit 1; }

# ---- Stripe-shaped objects -------------------------------------------------------------------

req "$A" POST /v1/payment_intents -d amount=1000 -d currency=EUR -d payment_method=pm_card_visa -d confirm=true
pi=$(jfield id)
if [ "$CODE" = 200 ] && [[ $pi =~ ^pi_[A-Za-z0-9]{24}$ ]] && [ "$(jfield object)" = payment_intent ] &&
	[ "$(jfield status)" = succeeded ] && [ "$(jfield currency)" = eur ] &&
	[ "$(hdr x-payapi-instance)" = acct_a ] && [ "$(jfield payapi_instance)" = acct_a ] &&
	[ "$(hdr content-type)" = application/json ] && [[ $(hdr request-id) == req_* ]]; then
	pass create_payment_intent
else
	fail create_payment_intent "$(show_last)"
fi

req "$A" POST /v1/payment_intents -d currency=eur
expect missing_param_400 "status, code" "$CODE $(jfield code)" "400 parameter_missing"

# ---- objects belong to the instance (and the Connect account) that created them ----------------

req "$B" GET "/v1/payment_intents/$pi"
expect foreign_object_404 "status, type, code" "$CODE $(jfield type) $(jfield code)" \
	"404 invalid_request_error resource_missing"
req "$A" GET "/v1/payment_intents/$pi" -H 'Stripe-Account: acct_other'
expect other_connect_account_404 "status, code" "$CODE $(jfield code)" "404 resource_missing"

req "$A" POST /v1/payment_intents -d amount=5000 -d currency=usd -d payment_method=pm_card_visa \
	-d confirm=true -d capture_method=manual
mpi=$(jfield id) st1=$(jfield status)
req "$B" POST "/v1/payment_intents/$mpi/capture"
c_b=$CODE
req "$A" POST "/v1/payment_intents/$mpi/capture"
c_a="$CODE $(jfield status)"
req "$A" POST "/v1/payment_intents/$mpi/capture"
expect capture_on_owner_only "manual auth, capture elsewhere, capture here, capture again" \
	"$st1 $c_b $c_a $CODE" "requires_capture 404 200 succeeded 400"

req "$A" POST /v1/refunds -d payment_intent="$mpi" -d amount=1500
r1="$CODE $(jfield object) $(jfield status)"
req "$A" POST /v1/refunds -d payment_intent="$mpi" -d amount=4000
expect refunds_bounded "partial refund, then more than is left" "$r1 $CODE $(jfield code)" \
	"200 refund succeeded 400 amount_too_large"

# ---- idempotency ---------------------------------------------------------------------------------

req "$A" POST /v1/customers -H 'Idempotency-Key: k-1'
id1=$(jfield id)
req "$A" POST /v1/customers -H 'Idempotency-Key: k-1'
id2=$(jfield id) rep=$(hdr idempotent-replayed)
req "$B" POST /v1/customers -H 'Idempotency-Key: k-1'
id3=$(jfield id)
if [ -n "$id1" ] && [ "$id1" = "$id2" ] && [ "$rep" = true ] && [ -n "$id3" ] && [ "$id3" != "$id1" ] &&
	[ -z "$(hdr idempotent-replayed)" ]; then
	pass idempotent_replay_per_instance
else
	fail idempotent_replay_per_instance "first $id1, retry $id2 (replayed '$rep'), other instance $id3"
fi
req "$A" POST /v1/customers -H 'Idempotency-Key: k-1' -d description=other
expect idempotency_key_reuse_400 "status, type" "$CODE $(jfield type)" "400 idempotency_error"

# What Stripe's SDKs send: nested parameters (the Node SDK indexes arrays), Stripe-Version
# and the client headers; accepted, and the intent has Stripe's payment_method_types.
req "$A" POST /v1/payment_intents -H 'Stripe-Version: 2026-11-18.endive' \
	-H 'X-Stripe-Client-User-Agent: {"bindings_version":"23.2.0","lang":"node"}' \
	-H 'User-Agent: Stripe/v1 NodeBindings/23.2.0' --data-urlencode 'payment_method_types[0]=card' \
	--data-urlencode 'metadata[order_id]=A 17' --data-urlencode 'expand[0]=latest_charge' \
	--data-urlencode 'payment_method_types[]=card' -d amount=900 -d currency=usd
expect sdk_params_accepted "status, object, types" \
	"$CODE $(jfield object) $(grep -o '"payment_method_types":\["card"\]' "$T/body")" \
	'200 payment_intent "payment_method_types":["card"]'

# Lists: Stripe's cursor (starting_after, as the SDKs' auto-pagination sends it) and the
# filters by object (refunds and charges of a payment intent, intents of a customer).
req "$A" POST /v1/refunds -d payment_intent="$mpi" -d amount=500
r2=$(jfield id)
req "$A" GET "/v1/refunds?payment_intent=$mpi&limit=1"
l1="$(jfield object) $(jfield id) $(grep -o '"has_more":[a-z]*' "$T/body") $(jfield url)"
req "$A" GET "/v1/refunds?payment_intent=$mpi&limit=1&starting_after=$r2"
l2="$(grep -o '"id":"re_[A-Za-z0-9]*"' "$T/body" | wc -l) $(grep -o '"has_more":[a-z]*' "$T/body")"
req "$A" GET "/v1/refunds?payment_intent=pi_none"
l3=$(grep -c '"id":"re_' "$T/body")
req "$A" GET "/v1/refunds?starting_after=bad-id!"
expect list_cursor_and_filters "first page, next page, other intent, bad cursor" \
	"$l1 / $l2 / $l3 / $CODE" "list $r2 \"has_more\":true /v1/refunds / 1 \"has_more\":false / 0 / 400"

# ---- declines, as Stripe's test payment methods and as a header -----------------------------------

req "$A" POST /v1/payment_intents -d amount=700 -d currency=usd \
	-d payment_method=pm_card_chargeDeclinedInsufficientFunds -d confirm=true
d1="$CODE $(jfield type) $(jfield code) $(jfield decline_code) $(hdr stripe-should-retry)"
req "$A" POST /v1/payment_intents -d amount=700 -d currency=usd -d payment_method=pm_card_visa \
	-d confirm=true -H 'X-Payapi-Decline: do_not_honor'
expect declines "402 card errors" "$d1 / $CODE $(jfield decline_code)" \
	"402 card_error card_declined insufficient_funds false / 402 do_not_honor"

# ---- fault modes -------------------------------------------------------------------------------

payapi_mode "$P_B" mode=failing error_status=503
req "$B" GET /v1/charges
f1="$CODE $(jfield type) $(hdr stripe-should-retry)"
payapi_mode "$P_B" mode=ratelimit rate_limit=2
codes=$(for i in 1 2 3 4 5 6; do req "$B" GET /v1/charges; echo -n "$CODE "; done)
req "$B" GET /v1/charges
f2="$CODE $(jfield code) $(hdr stripe-rate-limited-reason) $(hdr stripe-should-retry)"
payapi_mode "$P_B" mode=lock
req "$B" GET /v1/charges
f3="$CODE $(jfield code) rl='$(hdr stripe-rate-limited-reason)'"
if [ "$f1" = "503 api_error true" ] && [[ $codes == "200 200 "*429* ]] &&
	[ "$f2" = "429 rate_limit global-rate true" ] && [ "$f3" = "429 lock_timeout rl=''" ]; then
	pass fault_modes
else
	fail fault_modes "failing: $f1" "ratelimit: $codes / $f2" "lock: $f3"
fi

# Slow mode holds each answer latency_ms; healthy mode does not. The healthy call is
# judged against the slow one (the same client, the same overheads), not against a
# fixed time: it must come back at least 0.4 s sooner than the 0.6 s delay.
payapi_mode "$P_B" mode=slow latency_ms=600
t0=$EPOCHREALTIME; req "$B" GET /v1/charges; t1=$EPOCHREALTIME
payapi_mode "$P_B" mode=healthy
t2=$EPOCHREALTIME; req "$B" GET /v1/charges; t3=$EPOCHREALTIME
if awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN { exit !(b - a >= 0.59 && d - c < (b - a) - 0.4) }' &&
	[ "$CODE" = 200 ]; then
	pass slow_then_healthy
else
	fail slow_then_healthy "slow $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')s, healthy $(awk -v a="$t2" -v b="$t3" 'BEGIN { print b - a }')s, then $CODE"
fi

payapi_mode "$P_B" mode=hangup
req "$B" GET /v1/charges
h1=$CODE
payapi_mode "$P_B" mode=healthy
expect hangup_mode "answer while hanging up" "$h1" 000

# A first attempt dropped before the key is read (a connection broken before Stripe got the
# request: nothing saved), by a magic key or by drop_first; the retry with the same key runs.
req "$B" POST /v1/payment_intents -H 'Idempotency-Key: t-payapi-drop-first-1' -d amount=100 -d currency=usd
d1=$CODE
req "$B" POST /v1/payment_intents -H 'Idempotency-Key: t-payapi-drop-first-1' -d amount=100 -d currency=usd
d2="$CODE $(hdr idempotent-replayed)"
req "$B" POST /v1/payment_intents -H 'Idempotency-Key: t-payapi-drop-first-1' -d amount=100 -d currency=usd
d3="$CODE $(hdr idempotent-replayed)"
payapi_mode "$P_B" drop_first=1
req "$B" POST /v1/customers -H 'Idempotency-Key: t-df-2'
d4=$CODE
req "$B" POST /v1/customers -H 'Idempotency-Key: t-df-2'
d5=$CODE
req "$B" POST /v1/customers
d6=$CODE
mode=$(curl -sS --max-time 5 "$B/__payapi/mode" | grep -o '"drop_first":[0-9.]*')
payapi_mode "$P_B" mode=healthy
expect drop_first "magic key: drop, run, replay; drop_first=1: drop, run, unkeyed; dropped; mode" \
	"$d1 $d2 $d3 / $d4 $d5 $d6 / $(payapi_stat "$P_B" dropped_first) $mode" \
	'000 200  200 true / 000 200 200 / 2 "drop_first":1'

req "$B" POST /__payapi/mode -d mode=sideways
expect bad_mode_400 status "$CODE" 400
n=$(payapi_stat "$P_B" requests)
[ -n "$n" ] && [ "$n" -gt 0 ] && pass stats || fail stats "requests=$n"

# ---- HTTP details and hostile input ---------------------------------------------------------------

# raw HOST-PORT BYTES: one connection, BYTES sent (printf format), the first status line out.
raw() {
	timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; printf "$2" >&3; head -1 <&3' _ "$1" "$2" 2>/dev/null | tr -d '\r'
}
got=$(raw "$P_A" 'GET /v1/balance HTTP/1.1\r\nHost: x\r\n\r\nPOST /v1/customers HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
expect pipelined_keepalive "first status line" "$got" "HTTP/1.1 200 OK"
got=$(raw "$P_A" 'POST /v1/payment_intents HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n9\r\namount=12\r\nd\r\n&currency=usd\r\n0\r\n\r\n')
expect chunked_body "status line" "$got" "HTTP/1.1 200 OK"

bad=()
for input in 'GARBAGE\r\n\r\n' 'GET / HTTP/2.0\r\n\r\n' 'GET /v1/x HTTP/1.1\r\nNo-Colon\r\n\r\n' \
	'GET /v1/x HTTP/1.1\r\n folded\r\n\r\n' 'GET /v1/x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n' \
	'POST /v1/customers HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n' \
	'POST /v1/customers HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n' \
	'POST /v1/customers HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n'; do
	got=$(raw "$P_A" "$input")
	[[ $got == "HTTP/1.1 4"* || $got == "HTTP/1.1 5"* ]] || bad+=("$input → '$got'")
done
got=$(raw "$P_A" 'POST /v1/customers HTTP/1.1\r\nContent-Length: 999999\r\n\r\n')
[ "$got" = "HTTP/1.1 413 Content Too Large" ] || bad+=("huge body → '$got'")
got=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; head -c 40000 /dev/zero | tr "\0" a >&3; head -1 <&3' _ "$P_A" 2>/dev/null | tr -d '\r')
[ "$got" = "HTTP/1.1 431 Request Header Fields Too Large" ] || bad+=("endless header → '$got'")
# random bytes on many connections, some cut short
for i in $(seq 40); do
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; head -c $((RANDOM % 3000)) /dev/urandom >&3' _ "$P_A" 2>/dev/null
done
req "$A" GET /__payapi/health
if [ ${#bad[@]} -eq 0 ] && [ "$CODE" = 200 ] && alive acct_a; then
	pass hostile_input_survived
else
	fail hostile_input_survived "${bad[@]}" "after: health $CODE, alive: $(alive acct_a && echo yes || echo no)"
fi

integ_done
