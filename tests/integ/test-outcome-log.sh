#!/usr/bin/env bash
# test-outcome-log.sh: the log outcome channel through real HAProxy (PAY_OUTCOMES=log).
# HAProxy sends no pay-response at all; payspoa learns every outcome from the JSON line
# HAProxy logs to agent.outcome_socket: upstream failures open a breaker, HAProxy's own
# 502 (a hangup) and 503 (a dead server) are reported, and a request routed without
# advice moves its idempotency pin to the backend HAProxy really used.
#
# The policy is conf/payspoa.conf (its outcome socket moved to this test's folder by
# policy_copy, which also points HAProxy's PAY_OUTCOME_SOCK at it), a fast
# breaker (3 failures in a row) that stays open 30 s (so that what it diverts does not
# change mid-test) and may eject every backend (each case opens its own), and the
# unanswered-decision judge off: whatever opens a breaker here was reported by a log
# line, not inferred from a missing answer.
. "$(dirname "$0")/lib.sh"

need_stack
# The same haproxy.cfg parses without a warning with every channel (HAPROXY_BIN's version).
bad=
for m in spoe log both; do
	out=$(PAY_OUTCOMES=$m PAY_HTTP_ADDR=127.0.0.1:1 "$HAPROXY_BIN" -c -f haproxy/haproxy.cfg 2>&1) || bad="$bad $m"
	echo "$out" | grep -qE 'WARNING|ALERT' && bad="$bad $m"
done
if [ -z "$bad" ]; then pass config_valid_every_channel; else fail config_valid_every_channel "refused or warned:$bad"; fi

export PAY_OUTCOMES=log
alloc_port MPORT
start_stack "s|log_level = \"info\";|&\\n\\tmetrics = \"127.0.0.1:$MPORT\";|" \
	'$a breaker = { consecutive = 3; open_s = 30.0; open_max_s = 60.0; jitter = 0.0; probes = 2; window_s = 3.0; min_calls = 5; max_ejected = 1.0; };' \
	'$a learning = { unanswered = { enabled = false; }; };'

# pay CURRENCY COUNTRY [CURL-ARGS...]: one payment; appends "code advised instance reason"
# to $T/seen.
pay() {
	local cur=$1 cc=$2
	shift 2
	req "$HAP" POST /v1/payment_intents -d amount=1000 -d currency="$cur" -d payment_method=pm_card_visa \
		-d confirm=true -H "X-Card-Country: $cc" "$@"
	echo "$CODE $(hdr x-pay-backend) $(hdr x-payapi-instance) $(hdr x-pay-reason | tr ' ' ,)" >>"$T/seen"
}
# pay_until SECONDS PATTERN CURRENCY COUNTRY: payments every 0.1 s until the last one's
# line matches PATTERN (ERE).
pay_until() {
	local deadline=$((SECONDS + $1)) pat=$2
	shift 2
	while [ "$SECONDS" -lt "$deadline" ]; do
		pay "$@"
		tail -1 "$T/seen" | grep -qE "$pat" && return 0
		sleep 0.1
	done
	return 1
}
phase() { : >"$T/seen"; }
seen() { sed 's/^/    /' "$T/seen" | tail -"${1:-12}"; }

if [ -S "$PAY_OUTCOME_SOCK" ] && [ "$(stat -c %a "$PAY_OUTCOME_SOCK")" = 660 ]; then
	pass outcome_socket_mode_0660
else
	fail outcome_socket_mode_0660 "$(ls -l "$PAY_OUTCOME_SOCK" 2>&1)"
fi

# ---- upstream failures, learned from log lines only --------------------------------------

phase
for i in $(seq 5); do pay gbp GB; done
payapi_mode "$P_EU" mode=failing
if pay_until 10 'breaker:stripe_eu(,|$)' gbp GB && grep -q '^500 stripe_eu stripe_eu ' "$T/seen"; then
	pass breaker_opens_from_log_lines
else
	fail breaker_opens_from_log_lines "code advised instance reason:" "$(seen)"
fi

# ---- a request routed without advice: its pin follows the backend used --------------------
# payspoa is stopped (SIGSTOP) for one keyed GBP payment: HAProxy waits its 100 ms
# processing timeout and routes by currency to stripe_eu (still failing: the account holds
# the key's first result), while payspoa, once continued, decides late for the open
# breaker's stripe_eu_standby and pins the key there. The log line of that request names
# stripe_eu and carries the key's hash: the pin follows it, and payspoa's advice for the
# retry says stripe_eu (pin:idem), the account that has the key.
key=outcome-log-$RANDOM-$$
# the outcome log lines payspoa has read (/metrics), so that the retry waits until it has
# read the stopped request's line, however long that takes on a loaded machine
log_lines() { curl -s --max-time "$(scaled 5)" "http://127.0.0.1:$MPORT/metrics" |
	awk '$1 ~ /^payspoa_[a-z_]*log_lines_total$/ { v = $2 } END { print v + 0 }'; }
lines0=$(log_lines)
kill -STOP "${PROC[agent]}"
pay gbp GB -H "Idempotency-Key: $key"
first="$(tail -1 "$T/seen")"
kill -CONT "${PROC[agent]}"
wait_until 10 eval '[ "$(log_lines)" -gt "$lines0" ]' ||
	echo "  payspoa read no outcome log line within 10 s of SIGCONT (had $lines0)"
pay gbp GB -H "Idempotency-Key: $key"
if [[ "$first" == "500 "*" stripe_eu "* ]] && [ -z "$(echo "$first" | cut -d' ' -f2 | grep stripe)" ] &&
	[ "$(hdr x-pay-backend)" = stripe_eu ] && [[ "$(hdr x-pay-reason)" == *pin:idem* ]]; then
	pass unadvised_request_pin_follows_backend_used
else
	fail unadvised_request_pin_follows_backend_used "first: $first" "retry: $(show_last)"
fi
payapi_mode "$P_EU" mode=healthy

# ---- HAProxy's own errors ----------------------------------------------------------------
# stripe_us hangs up without answering: HAProxy answers 502 itself (no http-response rule
# runs, no pay-response could carry it). USD payments with a US card go there first.
phase
payapi_mode "$P_US" mode=hangup
if pay_until 15 'breaker:stripe_us(,|$)' usd US && grep -q '^502 stripe_us ' "$T/seen"; then
	pass haproxy_502_reported
else
	fail haproxy_502_reported "code advised instance reason:" "$(seen)"
fi

# A dead account: GBP's choice now (stripe_eu and stripe_us are open) is one of the
# standbys; its emulator is stopped and HAProxy answers 503 itself (connection refused,
# then no server up). Those 503s open its breaker and GBP's advice moves to the other
# standby (the reason names the breaker that changed the choice, which may be
# stripe_eu's: the check is where the advice goes, and the unanswered judge is off).
phase
pay gbp GB
dead=$(hdr x-pay-backend)
case $dead in
stripe_eu_standby | stripe_us_standby)
	stop "$dead"
	if pay_until 40 "^200 [a-z_]+ [a-z_]+ " gbp GB && grep -q "^503 $dead " "$T/seen" &&
		[ "$(tail -1 "$T/seen" | cut -d' ' -f2)" != "$dead" ]; then
		pass haproxy_503_dead_server_reported
	else
		fail haproxy_503_dead_server_reported "code advised instance reason:" "$(seen)"
	fi ;;
*)
	fail haproxy_503_dead_server_reported "GBP advised to '$dead', not a standby" "$(seen)" ;;
esac

# ---- pay-response never sent --------------------------------------------------------------
stop agent TERM
stopped=$(grep '"event":"stopped"' "$T/agent.log")
lines=$(echo "$stopped" | grep -o '"log_lines":"[0-9]*"' | grep -o '[0-9]*')
if echo "$stopped" | grep -q '"responses":"0"' && [ "${lines:-0}" -ge 10 ] &&
	echo "$stopped" | grep -q '"log_malformed":"0"' && ! grep -q 'GROUP:pay-response' "$T/hap.log"; then
	pass no_pay_response_all_by_log
else
	fail no_pay_response_all_by_log "$stopped" "$(grep -c 'GROUP:pay-response' "$T/hap.log") pay-response groups in HAProxy's log"
fi

integ_done
