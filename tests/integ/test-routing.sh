#!/usr/bin/env bash
# test-routing.sh: payspoa's decisions, observed through a real HAProxy and the emulated
# Stripe accounts (tests/payapi/) of conf/payspoa.conf: cost routing by currency and card
# country, pins (an idempotent retry and an operation on an existing object reach the
# account that holds them: payapi answers 404 resource_missing anywhere else), and load
# shedding (background traffic above its budget gets 429 + Retry-After from HAProxy and
# never reaches an account, while checkout traffic keeps flowing).
. "$(dirname "$0")/lib.sh"

need_stack
start_stack

# served_by NAME BACKEND: the last answer was a 2xx from BACKEND, as payspoa advised.
served_by() {
	if [ "${CODE:0:1}" = 2 ] && [ "$(hdr x-pay-backend)" = "$2" ] &&
		[ "$(hdr x-payapi-instance)" = "$2" ] && [ "$(hdr x-pay-served-by)" = "$2" ]; then
		pass "$1"
	else
		fail "$1" "want a 2xx from $2" "$(show_last)"
	fi
}

pay() { req "$HAP" POST /v1/payment_intents -d payment_method=pm_card_visa -d confirm=true "$@"; }

# ---- cost routing ----------------------------------------------------------------------------

pay -d amount=2500 -d currency=eur -H 'X-Card-Country: DE'
served_by eur_eea_card_to_stripe_eu stripe_eu
pay -d amount=1999 -d currency=usd -H 'X-Card-Country: US'
served_by usd_us_card_to_stripe_us stripe_us

# ---- pins --------------------------------------------------------------------------------------

# An idempotent retry reaches the account that saw the first attempt, which replays it.
KEY=integ-$RANDOM$RANDOM
pay -d amount=4200 -d currency=eur -H "Idempotency-Key: $KEY" -H 'X-Card-Country: FR'
first_id=$(jfield id) first_be=$(hdr x-payapi-instance)
us0=$(payapi_stat "$P_US" requests)
pay -d amount=4200 -d currency=eur -H "Idempotency-Key: $KEY" -H 'X-Card-Country: FR'
us1=$(payapi_stat "$P_US" requests)
if [ "$CODE" = 200 ] && [ -n "$first_id" ] && [ "$(jfield id)" = "$first_id" ] &&
	[ "$(hdr x-payapi-instance)" = "$first_be" ] && [ "$(hdr idempotent-replayed)" = true ] &&
	[[ "$(hdr x-pay-reason)" == *pin:idem* ]] && [ "$us1" = "$us0" ]; then
	pass idempotent_retry_pinned
else
	fail idempotent_retry_pinned "first: $first_id from $first_be; stripe_us requests $us0 → $us1" "$(show_last)"
fi

# Operations on an object carry no currency: only the pin can send them to its account.
# payspoa learns an object's account from pay-response (object = $.id, extracted by
# HAProxy's json_query, and backend = be_name), so these also prove that pay-response
# arrives complete.
for cur in eur usd; do
	want=stripe_us; [ "$cur" = eur ] && want=stripe_eu
	pay -d amount=8000 -d currency=$cur -d capture_method=manual
	pi=$(jfield id)
	if [ "$CODE" != 200 ] || [ -z "$pi" ]; then
		fail "capture_${cur}_pinned" "authorisation failed" "$(show_last)"
		continue
	fi
	req "$HAP" GET "/v1/payment_intents/$pi"
	served_by "retrieve_${cur}_pinned" "$want"
	req "$HAP" POST "/v1/payment_intents/$pi/capture"
	if [ "$CODE" = 200 ] && [ "$(jfield status)" = succeeded ] && [[ "$(hdr x-pay-reason)" == *pin:object* ]]; then
		served_by "capture_${cur}_pinned" "$want"
	else
		fail "capture_${cur}_pinned" "$(show_last)"
	fi
done

# ---- shedding --------------------------------------------------------------------------------

# 200 background list calls at once: far above the charges endpoint budget of all four
# accounts (25/s each, less the reserve of the classes above background). In parallel,
# 20 checkouts, which the reserve protects.
# upstream: requests all the accounts have received so far.
upstream() {
	local n=0 p
	for p in "$P_US" "$P_EU" "$P_US2" "$P_EU2"; do n=$((n + $(payapi_stat "$p" requests))); done
	echo "$n"
}
up0=$(upstream)
BURST_SAVE=$T/bg burst "$HAP/v1/charges" 200 20 -H 'X-Pay-Class: background' >"$T/bg.out" &
bg=$!
burst "$HAP/v1/payment_intents" 20 4 -d amount=1000 -d currency=usd \
	-d payment_method=pm_card_visa -d confirm=true >"$T/co.out"
wait "$bg"
up1=$(upstream)

n429=$(grep -c '^429 reject ' "$T/bg.out")
n200=$(grep -c '^200 ' "$T/bg.out")
bad_ra=$(awk '$1 == 429 && !($4 ~ /^[0-9]+$/ && $4 >= 1)' "$T/bg.out" | wc -l)
if [ "$n429" -gt 0 ] && [ "$((n429 + n200))" -eq 200 ] && [ "$bad_ra" -eq 0 ]; then
	pass background_shed_429
else
	fail background_shed_429 "200 background: $n429 rejected (429 + Retry-After), $n200 served, $bad_ra 429 without a valid Retry-After" \
		"$(sort "$T/bg.out" | uniq -c | head -8)"
fi

# Shed requests never reach an account: upstream saw exactly the served ones.
nco=$(grep -c '^200 ' "$T/co.out")
expect shed_requests_not_forwarded "requests the accounts received" "$((up1 - up0))" "$((n200 + nco))"

if [ "$nco" -eq 20 ]; then
	pass checkout_served_during_shedding
else
	fail checkout_served_during_shedding "$(sort "$T/co.out" | uniq -c)"
fi

# The 429 is HAProxy's, shaped like Stripe's rate-limit error, with the header Stripe's
# SDKs obey first (a shed is retried after a delay).
h=$(grep -l -i '^x-pay-verdict: reject' "$T"/bg/r* 2>/dev/null | head -1)
[ -n "$h" ] && load_saved "$h"
if [ -n "$h" ] && [ "$CODE" = 429 ] && [ "$(jfield type)" = invalid_request_error ] &&
	[ "$(jfield code)" = rate_limit ] && [[ "$(hdr retry-after)" =~ ^[1-9][0-9]*$ ]] &&
	[ "$(hdr stripe-should-retry)" = true ] &&
	[ "$(hdr content-type)" = application/json ] && [ -z "$(hdr x-payapi-instance)" ]; then
	pass reject_is_stripe_shaped
else
	fail reject_is_stripe_shaped "${h:-no rejected response kept}" "$(show_last)"
fi

# ---- privacy -------------------------------------------------------------------------------------

# payspoa never sees a raw Idempotency-Key (HAProxy sends its SHA-256) and must not log
# object ids or payment methods (DOMAIN.md: logs are storage).
leaks=$(grep -c -e "$KEY" -e "$first_id" -e pm_card_ "$T/agent.log")
expect agent_log_has_no_raw_identifiers "agent log lines with the key, an object id or a payment method" "$leaks" 0

# ---- the agent saw what HAProxy sent ---------------------------------------------------------

# HAProxy logs one line per SPOE group it processed, st=0 when the agent's ACK came in time;
# payspoa's "stopped" line carries its own totals. Every group HAProxy completed must have
# been counted by payspoa, and payspoa counts no more than HAProxy sent (a group HAProxy
# gave up on, st!=0, past `timeout processing` on a loaded machine, may or may not have
# reached it), with no bad argument, unknown message or protocol error.
stop agent
hap_req=$(grep -c '<GROUP:pay-request> .* st=0 ' "$T/hap.log")
hap_res=$(grep -c '<GROUP:pay-response> .* st=0 ' "$T/hap.log")
hap_req_all=$(grep -c '<GROUP:pay-request> ' "$T/hap.log")
hap_res_all=$(grep -c '<GROUP:pay-response> ' "$T/hap.log")
stopped=$(grep '"event":"stopped"' "$T/agent.log" | tail -1)
total() { printf '%s' "$stopped" | grep -o "\"$1\":\"[0-9]*\"" | grep -o '[0-9]*'; }
in_range() { [ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
got_req=$(total requests) got_res=$(total responses)
if in_range "$got_req" "$hap_req" "$hap_req_all" && in_range "$got_res" "$hap_res" "$hap_res_all"; then
	pass agent_counted_every_message
else
	fail agent_counted_every_message "payspoa counted $got_req requests and $got_res responses;" \
		"HAProxy completed $hap_req and $hap_res, sent at most $hap_req_all and $hap_res_all"
fi
expect agent_saw_no_bad_message "payspoa bad_args unknown_messages protocol_errors" \
	"$(total bad_args) $(total unknown_messages) $(total protocol_errors)" "0 0 0"

integ_done
