#!/usr/bin/env bash
# test-outage.sh: outages HAProxy answers itself, through a real HAProxy. When the
# preferred account's upstream is down (process killed: connection refused, HAProxy's
# own 503) or hangs (process stopped: HAProxy's 504 after `timeout server`), HAProxy runs
# no http-response rule, so no pay-response ever reaches payspoa; payspoa must notice the
# decisions nobody answered (learning.unanswered, grace 500 ms here) and advise the other
# account within ~2 s, then re-test the first one and give it the traffic back once it
# recovers (restarted / SIGCONT). What is measured is payspoa's advice (X-Pay-Backend),
# not where HAProxy sent the request: HAProxy's own health checks (inter 2 s) must not be
# what moves the traffic.
#
# Load is open-loop (tests/loadgen, LOAD_RATE req/s whatever the answers take), like real
# clients: a closed loop would wait 3 s per refused request and send almost nothing to
# judge. Judged on shares and on times measured from the failure, never on a rate: the
# volume floors are a small fraction of what even a slow machine sends.
. "$(dirname "$0")/lib.sh"

need_stack
# prior_weight 1: the account that served the outage learns a success rate a hair above
# the other's, and with the default weight (20) that alone would outweigh the 0.5 % fee
# difference once it is back; this test is about health, not posteriors.
POLICY_SRC=tests/integ/learning.conf start_stack \
	's/^learning = .*/learning = { explore = 0.0; prior_weight = 1.0; unanswered = { grace_ms = 500; }; };/'
grep -q 'grace_ms = 500' "$POLICY" || { fail policy "could not set learning.unanswered"; exit 1; }
LOAD_RATE=${LOAD_RATE:-50}

# One line per request once it ends (a hung one within loadgen's 5 s timeout):
# "start|latency|status|advised backend|instance that answered|reason".
start_load load tests/integ/usd-visa.list -r "$LOAD_RATE" -c 256 -t 5 \
	-o x-pay-backend -o x-payapi-instance -o x-pay-reason

window() { load_window load "$@"; }
# advised WHO: "k n", k of the n requests read on stdin advised to WHO (probes excluded).
advised() { awk -F'|' -v who="$1" '$6 !~ /probe:/ { n++; if ($4 == who) k++ } END { printf "%d %d\n", k, n }'; }

sleep 3
read -r k n < <(window "$(plus "$(now)" -2)" "$(now)" | advised stripe_us)
if [ "$n" -ge 20 ] && [ "$k" -eq "$n" ]; then
	pass healthy_traffic_advised_to_cheaper_account
else
	fail healthy_traffic_advised_to_cheaper_account "$k of $n requests advised to stripe_us in 2 s"
fi

# outage CASE T_FAIL, judged once every request has ended (a line is written when its
# request ends, up to 5 s later: stop_load waits for them): the failover time (from
# T_FAIL to the start of the last non-probe request still advised to stripe_us) must be
# under 2 s, and every request in [2 s, 3 s) advised elsewhere.
outage() {
	local name=$1 t_fail=$2 last failover k n
	last=$(window "$t_fail" "$(plus "$t_fail" 3)" | awk -F'|' '$4 == "stripe_us" && $6 !~ /probe:/ { t = $1 } END { print t }')
	failover=$(awk -v a="$t_fail" -v b="${last:-$t_fail}" 'BEGIN { printf "%.3f", b - a }')
	read -r k n < <(window "$(plus "$t_fail" 2)" "$(plus "$t_fail" 3)" | advised stripe_eu)
	echo "  $name: advice left stripe_us ${failover} s after the failure; in [2 s, 3 s) $k of $n advised to stripe_eu"
	if awk -v f="$failover" 'BEGIN { exit !(f < 2.0) }' && [ "$n" -ge 10 ] && [ "$k" -eq "$n" ]; then
		pass "${name}_abandoned_within_2s"
	else
		fail "${name}_abandoned_within_2s" "failover ${failover} s; $k of $n on stripe_eu in [2 s, 3 s)" \
			"$(window "$t_fail" "$(plus "$t_fail" 3)" | awk -F'|' '$4 == "stripe_us"' | tail -5)"
	fi
}

# recovery CASE T_UP: traffic advised back to stripe_us (90 % of the last second) within
# 15 s (HAProxy may hold the server DOWN until its checks see it again: rise 2 x 2 s; the
# breaker's open time is at most 4 s; unanswered probes reopen it).
recovery() {
	local name=$1 t_up=$2 t
	back() {
		local k n
		read -r k n < <(window "$(plus "$(now)" -1)" "$(now)" | advised stripe_us)
		[ "$n" -ge 10 ] && [ "$k" -ge $((n * 9 / 10)) ]
	}
	if wait_until 15 back; then
		t=$(awk -v a="$t_up" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
		pass "${name}_traffic_back_after_recovery"
		echo "  $name: traffic back on stripe_us ${t} s after recovery"
	else
		fail "${name}_traffic_back_after_recovery" "$(window "$t_up" "$(now)" | tail -5)"
	fi
}

# ---- killed: connection refused, HAProxy answers 503 after its connect retries ------------
stop stripe_us KILL
t_kill=$(now)
sleep 3
start_payapi stripe_us "$P_US" || { fail restart-payapi; exit 1; }
recovery killed "$(now)"

# ---- hung: the process stopped, connections accepted by the kernel, never answered ----------
sleep 2
kill -STOP "${PROC[stripe_us]}"
t_hang=$(now)
sleep 3
kill -CONT "${PROC[stripe_us]}"
recovery hung "$(now)"

stop_load load   # every request has ended and has its line
outage killed "$t_kill"
outage hung "$t_hang"
for c in "killed $t_kill" "hung $t_hang"; do
	set -- $c
	echo "  $1: statuses of the requests advised to stripe_us in the first 2 s (HAProxy retries refused connects for ~3 s; the late ones are answered after the restart / SIGCONT):" \
		"$(window "$2" "$(plus "$2" 2)" | awk -F'|' '$4 == "stripe_us" { print $3 }' | sort | uniq -c | tr '\n' ' ')"
done
integ_done
