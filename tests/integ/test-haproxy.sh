#!/usr/bin/env bash
# test-haproxy.sh: payspoa behind a real HAProxy, with the emulated payment API instances.
# Proves the SPOE contract end to end: HAProxy sends pay-request, acts on txn.pay.* (the
# backend that answered is the one payspoa named, unless the name is unknown), reports
# pay-response, checks the agent with option spop-check, fails open when the agent dies,
# recovers when it comes back without an HAProxy restart, and fails closed when asked to.
#
# The policies are copies of conf/payspoa.conf whose default backend is changed, so that
# payspoa's advice differs from HAProxy's own default_backend (stripe_us): a request
# served by the advised backend then proves that use_backend followed the variable.
. "$(dirname "$0")/lib.sh"

need_stack
# This test holds the SPOE contract, pay-response included: outcomes by SPOE here
# (test-outcome-log.sh tests the log channel, haproxy.cfg's default).
export PAY_OUTCOMES=spoe

alloc_port P_HTTP; alloc_port P_HTTP2; alloc_port P_AGENT
HAP=http://127.0.0.1:$P_HTTP
HAP2=http://127.0.0.1:$P_HTTP2

# through_hap BASE METHOD PATH [CURL-ARGS...]: req, plus TIME (seconds) of the exchange.
through_hap() {
	local t0=$EPOCHREALTIME
	req "$@"
	TIME=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
}

# mix_req METHOD PATH [CURL-ARGS...]: one request through haproxy "hap", remembered in MIX
# as "code|verdict|advised backend|instance that answered|backend HAProxy used|currency".
mix_req() {
	local a cur=
	for a in "$@"; do [[ "$a" == currency=* ]] && cur=${a#currency=}; done
	through_hap "$HAP" "$@"
	MIX+=("$CODE|$(hdr x-pay-verdict)|$(hdr x-pay-backend)|$(hdr x-payapi-instance)|$(hdr x-pay-served-by)|$cur")
}

# send_mix: a mix of request kinds: list calls, a EUR and a USD payment, a customer.
send_mix() {
	MIX=()
	mix_req GET /v1/charges
	mix_req GET '/v1/customers?limit=3'
	mix_req POST /v1/payment_intents -d amount=1250 -d currency=eur \
		-d payment_method=pm_card_visa -d confirm=true -H 'X-Card-Country: DE'
	mix_req POST /v1/payment_intents -d amount=990 -d currency=usd \
		-d payment_method=pm_card_visa -d confirm=true -H 'X-Card-Country: US'
	mix_req POST /v1/customers
}

# mix_check ADVICE SERVER: over MIX, counts in NADV the requests advised ADVICE and lists
# in BAD the wrongly answered ones: a reject must be a 429; with SERVER "advised", every
# other request must be answered (200) by the backend it was advised; else the requests
# advised ADVICE must be answered by SERVER, or with SERVER "fallback" by HAProxy's
# fallback without advice (the generated per-currency default: stripe_eu for EUR,
# stripe_us otherwise).
mix_check() {
	local m code verdict advised instance served cur want
	BAD=(); NADV=0
	for m in "${MIX[@]}"; do
		IFS='|' read -r code verdict advised instance served cur <<<"$m"
		[ "$advised" = "$1" ] && NADV=$((NADV + 1))
		want=$2
		if [ "$want" = fallback ]; then
			want=stripe_us
			[ "$cur" = eur ] && want=stripe_eu
		fi
		if [ "$want" = advised ]; then
			want=$advised
		elif [ "$advised" != "$1" ]; then
			continue
		fi
		if [ "$verdict" = reject ]; then
			[ "$code" = 429 ] || BAD+=("$m")
		elif [ "$code" != 200 ] || [ -z "$want" ] || [ "$instance" != "$want" ] || [ "$served" != "$want" ]; then
			BAD+=("$m")
		fi
	done
}

# spoe_lines FROM PATTERN: SPOE log lines of haproxy "hap" from line FROM on matching PATTERN.
spoe_lines() { sed -n "$1,\$p" "$T/hap.log" | grep -cE "$2"; }
log_len() { echo $(($(wc -l <"$T/hap.log") + 1)); }   # the next line's number

# ---- the configuration files ---------------------------------------------------------------

# Valid, and without a single warning (2.6 and 3.x alike).
if env PAY_HTTP_ADDR="127.0.0.1:$P_HTTP" PAY_STATS_SOCK="$T/check.sock" \
	"$HAPROXY_BIN" -c -f haproxy/haproxy.cfg >"$T/check.log" 2>&1 &&
	! grep -q WARNING "$T/check.log"; then
	pass config_valid
else
	fail config_valid "$(tail -5 "$T/check.log")"
fi

start_accounts   # (the snippet below names their ports)

# snippet.cfg must parse once completed with what it says the user already has (a global
# with localpeer, defaults, the environment it names).
{
	printf 'global\n\tlocalpeer payspoa\n\tstats socket %s/snippet.sock\n' "$T"
	printf '\tdefault-path origin %s/haproxy\ndefaults\n\tmode http\n' "$ROOT"
	printf '\ttimeout connect 1s\n\ttimeout client 5s\n\ttimeout server 5s\n'
	cat haproxy/snippet.cfg
} >"$T/snippet-test.cfg"
alloc_port P_PEER
if env PAY_HTTP_ADDR="127.0.0.1:$P_HTTP" PAY_PEER_ADDR="127.0.0.1:$P_PEER" \
	PAY_BE_STRIPE_US_ADDR="127.0.0.1:$P_US" PAY_BE_STRIPE_EU_ADDR="127.0.0.1:$P_EU" \
	PAY_BE_STRIPE_US_STANDBY_ADDR="127.0.0.1:$P_US2" PAY_BE_STRIPE_EU_STANDBY_ADDR="127.0.0.1:$P_EU2" \
	"$HAPROXY_BIN" -c -f "$T/snippet-test.cfg" >"$T/snippet-check.log" 2>&1 &&
	! grep -q WARNING "$T/snippet-check.log"; then
	pass snippet_valid
else
	fail snippet_valid "$(tail -5 "$T/snippet-check.log")"
fi

# ---- start: the payment API instances, payspoa advising stripe_eu by default, haproxy ----

policy_copy "$T/pol-eu" 's/^default_backend[[:space:]]*=.*/default_backend = "stripe_eu";/' &&
	grep -q '^default_backend = "stripe_eu";' "$POLICY" || { fail policy-eu "cannot derive the policy"; exit 1; }
start_payspoa agent1 "$P_AGENT" "$POLICY" || { fail start-payspoa "$(tail -5 "$T/agent1.log")"; exit 1; }
start_haproxy hap "$P_HTTP" "$P_US" "$P_EU" "$P_AGENT" || { fail start-haproxy "$(tail -5 "$T/hap.log")"; exit 1; }
HAP_PID=${PROC[hap]}

# option spop-check: HAProxy's health check speaks SPOP to payspoa and finds it UP.
if wait_until 10 hap_server_is hap spoe-payspoa payspoa1 UP; then
	pass spop_check_up
else
	fail spop_check_up "spoe-payspoa/payspoa1 is '$(hap_server_status hap spoe-payspoa payspoa1)'"
fi

# ---- the agent answers: variables set and used -----------------------------------------------

log0=$(log_len)
through_hap "$HAP" GET /v1/charges
if [ "$CODE" = 200 ] && [ -n "$(hdr x-pay-verdict)" ] && [ -n "$(hdr x-pay-backend)" ] &&
	[ -n "$(hdr x-pay-class)" ] && [ -n "$(hdr x-pay-decision)" ] && [ -z "$(hdr x-pay-error)" ]; then
	pass request_vars_set
else
	fail request_vars_set "$(show_last)"
fi

send_mix
mix_check stripe_eu advised
if [ ${#BAD[@]} -eq 0 ] && [ "$NADV" -gt 0 ]; then
	pass use_backend_follows_advice
else
	fail use_backend_follows_advice "requests advised stripe_eu (not HAProxy's default): $NADV" \
		"code|verdict|advised|instance|served-by, wrong ones:" "${BAD[@]}"
fi

# pay-response: HAProxy logs one line per SPOE group it processed; st=0 is success.
nreq=$((1 + ${#MIX[@]}))
if wait_until 3 test "$(spoe_lines "$log0" '<GROUP:pay-response> .* st=0 ')" -ge "$nreq" &&
	[ "$(spoe_lines "$log0" '<GROUP:pay-request> .* st=0 ')" -ge "$nreq" ] &&
	[ "$(spoe_lines "$log0" '<GROUP:pay-(request|response)> .* st=[1-9]')" -eq 0 ]; then
	pass pay_response_sent
else
	fail pay_response_sent "expected $nreq successful pay-request and pay-response groups, no errors:" \
		"$(sed -n "$log0,\$p" "$T/hap.log" | grep SPOE | tail -6)"
fi
# (test-routing.sh checks the other side: payspoa's own totals match HAProxy's.)

# ---- the agent dies: fail open --------------------------------------------------------------

# Without advice a EUR payment goes to the policy's backend for EUR (the EEA entity, as
# the compliance rule says), not to default_backend.
us_before=$(payapi_stat "$P_US" requests)
stop agent1 KILL
through_hap "$HAP" POST /v1/payment_intents -d amount=1250 -d currency=eur -d payment_method=pm_card_visa -d confirm=true
if [ "$CODE" = 200 ] && [ "$(hdr x-payapi-instance)" = stripe_eu ] && [ -z "$(hdr x-pay-verdict)" ] &&
	[ -n "$(hdr x-pay-error)" ] && [ -n "$(jfield id)" ]; then
	pass fail_open_agent_killed
else
	fail fail_open_agent_killed "$(show_last)"
fi

if wait_until 10 hap_server_is hap spoe-payspoa payspoa1 DOWN; then
	pass spop_check_down
else
	fail spop_check_down "spoe-payspoa/payspoa1 is '$(hap_server_status hap spoe-payspoa payspoa1)'"
fi

# Once the check marked it DOWN, requests do not even wait for the processing timeout:
# the SPOE group fails at once for want of a server (txn.pay.error, X-Pay-Error, is 2
# on 2.6: a resource error) instead of timing out (X-Pay-Error 1, what the killed agent
# above got). Judged by HAProxy's own error code, not by the clock.
through_hap "$HAP" GET /v1/charges
if [ "$CODE" = 200 ] && [ "$(hdr x-payapi-instance)" = stripe_us ] && [ -z "$(hdr x-pay-verdict)" ] &&
	[ -n "$(hdr x-pay-error)" ] && [ "$(hdr x-pay-error)" != 1 ]; then
	pass fail_open_agent_down_fast
else
	fail fail_open_agent_down_fast "X-Pay-Error '$(hdr x-pay-error)' (1: it waited for the processing timeout); time ${TIME}s" \
		"$(show_last)"
fi
us_after=$(payapi_stat "$P_US" requests)
expect fail_open_reached_default_backend "stripe_us requests while the agent was away" \
	"$((us_after - us_before))" 1

# ---- the agent comes back, with a policy naming a backend HAProxy must not route to ---------
# spoe-payspoa exists in haproxy.cfg (it is the agent's own TCP backend): without the
# pay_known_backend guard, use_backend would send HTTP requests there.
ZZ=spoe-payspoa
policy_copy "$T/pol-zz" "s/\"stripe_eu\"/\"$ZZ\"/g" \
	"s/^default_backend[[:space:]]*=.*/default_backend = \"$ZZ\";/" &&
	grep -q "^default_backend = \"$ZZ\";" "$POLICY" || { fail policy-zz "cannot derive the policy"; exit 1; }
start_payspoa agent2 "$P_AGENT" "$POLICY" || { fail start-payspoa "$(tail -5 "$T/agent2.log")"; exit 1; }
if wait_until 10 hap_server_is hap spoe-payspoa payspoa1 UP; then
	through_hap "$HAP" GET /v1/charges
	if [ "$CODE" = 200 ] && [ -n "$(hdr x-pay-verdict)" ] && [ -n "$(hdr x-pay-decision)" ] &&
		alive hap && [ "${PROC[hap]}" = "$HAP_PID" ]; then
		pass agent_restart_recovers
	else
		fail agent_restart_recovers "$(show_last)"
	fi
else
	fail agent_restart_recovers "spoe-payspoa/payspoa1 is '$(hap_server_status hap spoe-payspoa payspoa1)'"
fi

# An advised backend HAProxy does not list in pay_known_backend is ignored: the fallback
# without advice (per-currency backend, else default_backend).
send_mix
mix_check "$ZZ" fallback
if [ ${#BAD[@]} -eq 0 ] && [ "$NADV" -gt 0 ]; then
	pass unknown_backend_ignored
else
	fail unknown_backend_ignored "requests advised $ZZ: $NADV; wrongly served: ${#BAD[@]}" \
		"code|verdict|advised|instance|served-by:" "${MIX[@]}"
fi

# ---- fail closed: the same haproxy.cfg with PAY_FAIL_CLOSED=1 ------------------------------

start_haproxy hap2 "$P_HTTP2" "$P_US" "$P_EU" "$P_AGENT" PAY_FAIL_CLOSED=1 ||
	{ fail start-haproxy "$(tail -5 "$T/hap2.log")"; exit 1; }
wait_until 10 hap_server_is hap2 spoe-payspoa payspoa1 UP
through_hap "$HAP2" GET /v1/charges
if [ "$CODE" = 200 ] && [ -n "$(hdr x-pay-verdict)" ]; then
	pass fail_closed_serves_with_agent
else
	fail fail_closed_serves_with_agent "$(show_last)"
fi

stop agent2 KILL
us_before=$(payapi_stat "$P_US" requests)
through_hap "$HAP2" POST /v1/payment_intents -d amount=500 -d currency=usd -d payment_method=pm_card_visa -d confirm=true
code2=$CODE retry2="$(hdr retry-after) $(hdr stripe-should-retry) $(jfield code)" err2=$(hdr x-pay-error) show2=$(show_last)
through_hap "$HAP" GET /v1/charges   # the fail-open instance, at the same moment
us_after=$(payapi_stat "$P_US" requests)
if [ "$code2" = 503 ] && [ "$retry2" = "1 true routing_unavailable" ] && [ -n "$err2" ] && [ "$CODE" = 200 ] &&
	[ "$((us_after - us_before))" = 1 ]; then
	pass fail_closed_denies_without_agent
else
	fail fail_closed_denies_without_agent "fail-closed: $show2" \
		"fail-open: $CODE; upstream requests: $((us_after - us_before)) (want 1: the fail-open one)"
fi

integ_done
