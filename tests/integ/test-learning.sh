#!/usr/bin/env bash
# test-learning.sh: the learning loop through a real HAProxy. Payments flow at a steady
# open-loop rate (tests/loadgen, LOAD_RATE req/s) to the cheaper of two accounts
# (tests/integ/learning.conf); that account's emulated API is switched to failing (every
# answer a 500): payspoa must abandon it within a second, measured from the switch to the
# start of the last request it still served. Switched back to healthy, it must be
# re-tested (the breaker's probe requests reach it, X-Pay-Reason probe:stripe_us) and get
# the traffic back. Judged on shares and on the order of events, never on a rate: the
# volume floors are a small fraction of what even a slow machine sends.
. "$(dirname "$0")/lib.sh"

need_stack
POLICY_SRC=tests/integ/learning.conf start_stack
LOAD_RATE=${LOAD_RATE:-100}

# One line per request: "start|latency|status|instance|reason".
start_load load tests/integ/usd-visa.list -r "$LOAD_RATE" -o x-payapi-instance -o x-pay-reason

window() { load_window load "$@"; }
share_of() { awk -F'|' -v who="$1" '{ n++; if ($4 == who) k++ } END { printf "%d %d\n", k, n }'; }

sleep 2
t_warm=$(now)
sleep 2
read -r k n < <(window "$t_warm" "$(now)" | share_of stripe_us)
if [ "$n" -ge 20 ] && [ "$k" -ge $((n * 95 / 100)) ]; then
	pass healthy_traffic_to_cheaper_account
else
	fail healthy_traffic_to_cheaper_account "$k of $n requests served by stripe_us in 2 s (want >= 95 % of >= 20)"
fi

# ---- the preferred account starts failing -------------------------------------------------
payapi_mode "$P_US" mode=failing || { fail switch-failing "payapi refused the mode"; exit 1; }
t_fail=$(now)
sleep 1.8
# The breaker opens for 2 s (open_s): until then only stripe_eu may serve. Failover time:
# from the switch to the start of the last request stripe_us still served.
last_us=$(window "$t_fail" "$(plus "$t_fail" 1.8)" | awk -F'|' '$4 == "stripe_us" { t = $1 } END { print t }')
failover=$(awk -v a="$t_fail" -v b="${last_us:-$t_fail}" 'BEGIN { printf "%.3f", b - a }')
read -r k n < <(window "$(plus "$t_fail" 1.0)" "$(plus "$t_fail" 1.8)" | share_of stripe_eu)
bad=$(window "$t_fail" "$(now)" | awk -F'|' '$4 == "stripe_eu" && $3 != 200' | wc -l)
echo "  failover ${failover} s after the switch; then $k of $n requests on stripe_eu"
if awk -v f="$failover" 'BEGIN { exit !(f < 1.0) }' && [ "$n" -ge 10 ] && [ "$k" -eq "$n" ]; then
	pass failing_account_abandoned_within_1s
else
	fail failing_account_abandoned_within_1s "failover ${failover} s; in [1 s, 1.8 s) after the switch $k of $n on stripe_eu" \
		"$(window "$t_fail" "$(now)" | awk -F'|' '$4 == "stripe_us"' | tail -5)"
fi
if window "$t_fail" "$(now)" | awk -F'|' '$4 == "stripe_eu"' | grep -q 'breaker:stripe_us'; then
	pass reason_names_breaker
else
	fail reason_names_breaker "$(window "$t_fail" "$(now)" | tail -3)"
fi
expect rerouted_requests_succeed "non-200 answers from stripe_eu" "$bad" 0

# Still failing: the probes of the half-open breaker fail, it reopens (4 s cap).
sleep 2.5

# ---- it recovers ---------------------------------------------------------------------------
payapi_mode "$P_US" mode=healthy || { fail switch-healthy "payapi refused the mode"; exit 1; }
t_heal=$(now)
probe_ok() { window "$t_heal" "$(now)" | awk -F'|' '$4 == "stripe_us" && $3 == 200' | grep -q 'probe:stripe_us'; }
if wait_until 8 probe_ok; then
	t_probe=$(window "$t_heal" "$(now)" | awk -F'|' '$4 == "stripe_us" && $3 == 200 && /probe:stripe_us/ { print $1; exit }')
	pass recovered_account_probed
	echo "  first successful probe $(awk -v a="$t_heal" -v b="$t_probe" 'BEGIN { printf "%.3f", b - a }') s after recovery"
else
	fail recovered_account_probed "no probe:stripe_us answered 200 within 8 s" "$(window "$t_heal" "$(now)" | tail -5)"
fi
back() {
	local t=$(now) k n
	read -r k n < <(window "$(plus "$t" -0.5)" "$t" | share_of stripe_us)
	[ "$n" -ge 10 ] && [ "$k" -ge $((n * 9 / 10)) ]
}
if wait_until 8 back; then
	pass recovered_account_gets_traffic_back
else
	fail recovered_account_gets_traffic_back "$(window "$t_heal" "$(now)" | tail -5)"
fi

stop_load load
integ_done
