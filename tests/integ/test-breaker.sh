#!/usr/bin/env bash
# test-breaker.sh: circuit breakers end to end. An emulated account (stripe_eu) is switched
# at run time to answer declines, rate limits, lock timeouts, PSP errors and slow calls;
# payspoa learns only from the pay-response messages HAProxy sends, and its advice is
# read back from the X-Pay-* headers. GBP payments with a UK card are the probe traffic:
# every account serves GBP and stripe_eu is the cheapest, its standby (stripe_eu_standby)
# the next, so the advice moves only when something else than cost speaks. EUR may only
# use the two EEA accounts: with both failing it has no candidate left.
#
# The policy is conf/payspoa.conf with a fast breaker (3 failures in a row, 2 s open, a
# 3 s window, 200 ms slow calls), so that a whole open/half-open/closed cycle fits in
# seconds.
. "$(dirname "$0")/lib.sh"

need_stack
start_stack '$a breaker = { consecutive = 3; open_s = 2.0; open_max_s = 4.0; jitter = 0.0; probes = 2; window_s = 3.0; min_calls = 5; slow_ms = 200; slow_rate = 0.6; };'

# gbp [PAYMENT_METHOD]: one GBP payment with a UK card; appends
# "code advised instance reason" to $T/seen.
gbp() {
	req "$HAP" POST /v1/payment_intents -d amount=1000 -d currency=gbp \
		-d payment_method="${1:-pm_card_visa}" -d confirm=true -H 'X-Card-Country: GB'
	echo "$CODE $(hdr x-pay-backend) $(hdr x-payapi-instance) $(hdr x-pay-reason | tr ' ' ,)" >>"$T/seen"
}
# gbp_until SECONDS PATTERN [PAYMENT_METHOD]: GBP payments every 0.1 s (payspoa merges
# outcomes every ~50 ms) until the last one's line matches PATTERN (ERE).
gbp_until() {
	local deadline=$((SECONDS + $1))
	while [ "$SECONDS" -lt "$deadline" ]; do
		gbp "${3:-}"
		tail -1 "$T/seen" | grep -qE "$2" && return 0
		sleep 0.1
	done
	return 1
}
# phase: start a new record of what was seen.
phase() { : >"$T/seen"; }
seen() { sed 's/^/    /' "$T/seen" | tail -"${1:-12}"; }

# ---- what must never open a breaker ---------------------------------------------------------------

phase
for i in $(seq 15); do gbp pm_card_chargeDeclinedInsufficientFunds; done
for i in $(seq 5); do gbp pm_card_chargeDeclinedIncorrectCvc; done
for i in $(seq 5); do gbp; done
# (payspoa explores the other account now and then: most, not all, go to stripe_eu)
if ! grep -q breaker "$T/seen" && [ "$(grep -c '^402 stripe_eu stripe_eu ' "$T/seen")" -ge 15 ] &&
	[ "$(tail -5 "$T/seen" | grep -c '^200 stripe_eu stripe_eu ')" -ge 3 ]; then
	pass declines_keep_breaker_closed
else
	fail declines_keep_breaker_closed "code advised instance reason:" "$(seen 25)"
fi

for mode in ratelimit lock; do
	phase
	payapi_mode "$P_EU" mode=$mode rate_limit=1
	for i in $(seq 12); do gbp; sleep 0.05; done
	payapi_mode "$P_EU" mode=healthy
	if ! grep -q breaker "$T/seen" && grep -q '^429 stripe_eu stripe_eu ' "$T/seen"; then
		pass "upstream_${mode}_429_keeps_breaker_closed"
	else
		fail "upstream_${mode}_429_keeps_breaker_closed" "code advised instance reason:" "$(seen)"
	fi
done

# ---- PSP errors open it --------------------------------------------------------------------------------

# An authorisation held by stripe_eu, to capture while its breaker is open.
req "$HAP" POST /v1/payment_intents -d amount=8000 -d currency=eur -d payment_method=pm_card_visa \
	-d confirm=true -d capture_method=manual -H 'X-Card-Country: DE'
held=$(jfield id) held_by=$(hdr x-payapi-instance)

phase
payapi_mode "$P_EU" mode=failing
if gbp_until 10 'breaker:stripe_eu(,|$)'; then
	if tail -1 "$T/seen" | grep -q '^200 stripe_eu_standby stripe_eu_standby ' && grep -q '^500 stripe_eu stripe_eu ' "$T/seen"; then
		pass breaker_opens_on_psp_errors
	else
		fail breaker_opens_on_psp_errors "code advised instance reason:" "$(seen)"
	fi
else
	fail breaker_opens_on_psp_errors "no breaker:stripe_eu in 10 s of failures" "$(seen)"
fi

# While it is open, no request but the breaker's probes may reach stripe_eu. (The 2 s open
# time is an event, not a deadline for these requests: should the machine be slow enough
# for it to pass, the half-open probes are told apart by their reason.)
phase
for i in $(seq 5); do gbp; done
if [ "$(grep -v 'probe:' "$T/seen" | grep -c .)" -ge 1 ] &&
	[ "$(grep -v 'probe:' "$T/seen" | grep -vc '^200 stripe_eu_standby stripe_eu_standby ')" -eq 0 ]; then
	pass open_breaker_diverts_traffic
else
	fail open_breaker_diverts_traffic "code advised instance reason:" "$(seen)"
fi

# A pinned request stays with its account even when that account's breaker is open: any
# other account would answer 404 (or charge twice).
# (Shedding may still refuse it for now: then it must not have gone anywhere.)
req "$HAP" POST "/v1/payment_intents/$held/capture"
if [ "$held_by" = stripe_eu ] && [ "$(hdr x-pay-backend)" = stripe_eu ] &&
	[[ "$(hdr x-pay-reason)" == *pin:* ]] &&
	{ [ "$(hdr x-payapi-instance)" = stripe_eu ] ||
	  { [ "$(hdr x-pay-verdict)" = reject ] && [ "$CODE" = 429 ] && [ -z "$(hdr x-payapi-instance)" ]; }; }; then
	pass pinned_request_ignores_open_breaker
else
	fail pinned_request_ignores_open_breaker "authorised by $held_by" "$(show_last)"
fi

# EUR with an EEA card may only go to the EEA entity. Its standby fails too: EUR
# payments open that breaker as well (or, should stripe_eu's open time have passed,
# probe it and reopen it), until no candidate is left and payspoa degrades to the least
# bad EEA account and says so. Never a US account.
phase
payapi_mode "$P_EU2" mode=failing
eur() {
	req "$HAP" POST /v1/payment_intents -d amount=900 -d currency=eur -d payment_method=pm_card_visa \
		-d confirm=true -H 'X-Card-Country: DE'
	echo "$CODE $(hdr x-pay-backend) $(hdr x-payapi-instance) $(hdr x-pay-reason | tr ' ' ,)" >>"$T/seen"
}
for i in $(seq 100); do
	eur
	[[ "$(hdr x-pay-reason)" == *panic* ]] && break
	sleep 0.1
done
b=$(hdr x-pay-backend)
if { [ "$b" = stripe_eu ] || [ "$b" = stripe_eu_standby ]; } && [[ "$(hdr x-pay-reason)" == *panic* ]] &&
	[ -n "$(hdr x-pay-verdict)" ] && ! grep -q ' stripe_us' "$T/seen"; then
	pass no_candidate_left_degrades_to_panic
else
	fail no_candidate_left_degrades_to_panic "code advised instance reason:" "$(seen)" "$(show_last)"
fi

# ---- recovery: half-open probes, then closed --------------------------------------------------------

phase
payapi_mode "$P_EU2" mode=healthy
payapi_mode "$P_EU" mode=healthy
if gbp_until 15 'probe:stripe_eu(,|$)' && gbp_until 10 '^200 stripe_eu stripe_eu [^ ]*$' &&
	! tail -1 "$T/seen" | grep -q breaker; then
	pass breaker_recovers_through_probes
else
	fail breaker_recovers_through_probes "code advised instance reason:" "$(seen 20)"
fi

# ---- slow calls open it too --------------------------------------------------------------------------

sleep 3.2   # let the 3 s window forget the recovery's calls
phase
payapi_mode "$P_EU" mode=slow latency_ms=300
if gbp_until 15 'breaker:stripe_eu(,|$)'; then
	pass breaker_opens_on_slow_calls
else
	fail breaker_opens_on_slow_calls "no breaker:stripe_eu after slow calls" "$(seen)"
fi
payapi_mode "$P_EU" mode=healthy

integ_done
