#!/usr/bin/env bash
# test-fleet-learn.sh: learning across nodes (issue 10): "a backend failed on one node's
# traffic is avoided by all nodes". Three HAProxy + payspoa nodes sharing the emulated
# accounts and a real redis-server. GBP payments with a UK card go to stripe_eu (the
# cheapest) unless something speaks against it, else to stripe_eu_standby. stripe_eu is
# made to fail (500s) while only node 1 carries traffic, until node 1's breaker opens;
# then nodes 2 and 3, which never sent anything to stripe_eu, get their first payments:
#   (a) fleet.learn_ms = 1000 (default): node 1's breaker opening reached nodes 2 and 3
#       (B line): none of their first payments goes to stripe_eu (stripe_eu_standby or
#       stripe_us answer them), saying breaker:stripe_eu; node 1's outcome counts were merged there too (L lines). The
#       time from node 1's publication to its application on nodes 2 and 3 is printed.
#       A malformed text and a replayed one (an old sequence number of node 1) are refused.
#   (c) Redis killed: node 1 serves on; the counts of its payments meanwhile reach nodes 2
#       and 3 once Redis is back (published on reconnect).
#   (d) Redis away longer than fleet.node_ttl_ms after a breaker opened on node 1: that
#       opening is dropped (learn_dropped), not published when Redis is back.
#   (b) fleet.learn_ms = 0: each node learns alone, and nodes 2 and 3 send their first
#       payments to the failing stripe_eu (so the check in (a) can fail).
# Judged by the advice headers and the nodes' counters, never by a duration.
INTEG_TIMEOUT=${INTEG_TIMEOUT:-300}
. "$(dirname "$0")/lib.sh"

need_stack
need redis-server
need redis-cli

FIRST=3 # first payments judged on each of nodes 2 and 3

redis_setup
start_redis || { fail start-redis "$(tail -5 "$T/redis.log")"; exit 1; }

start_accounts

# policy NODE LEARN_MS: node NODE's policy copy, a fast breaker (3 failures in a row) that
# stays open long enough (60 s) for the phase to be judged while it is open, and may open
# on every backend (case (d) opens a second one while stripe_eu's is open).
policy() {
	policy_copy "$T/pol$1-$2" \
		"s|^\\([[:space:]]*outcome_socket[[:space:]]*=\\).*|\\1 \"$T/out$1.sock\";|" \
		'$a breaker = { consecutive = 3; open_s = 60.0; open_max_s = 120.0; jitter = 0.0; probes = 2; max_ejected = 1.0; };' \
		"$(fleet_sed "$1" "learn_ms = $2; ")" ||
		{ fail "policy-$1-$2" "$(head -3 "$T/pol$1-$2/check.log" 2>/dev/null)"; exit 1; }
}

# nodes (lib.sh fleet_agents LEARN_MS RUN: every node's payspoa with fleet.learn_ms =
# LEARN_MS); each policy copy has its own state file, so nothing learned carries over
fleet_ports

# gbp NODE: one GBP payment with a UK card through node NODE's HAProxy; appends
# "code advised instance reason" to $T/seen-NODE.
gbp() {
	req "http://127.0.0.1:${P_HTTPN[$1]}" POST /v1/payment_intents -d amount=1000 -d currency=gbp \
		-d payment_method=pm_card_visa -d confirm=true -H 'X-Card-Country: GB'
	echo "$CODE $(hdr x-pay-backend) $(hdr x-payapi-instance) $(hdr x-pay-reason | tr ' ' ,)" >>"$T/seen-$1"
}
# node1_until_open: node 1 pays every 0.1 s until its advice says breaker:stripe_eu.
node1_until_open() {
	local deadline=$((SECONDS + $(scaled 20)))
	while [ "$SECONDS" -lt "$deadline" ]; do
		gbp 1
		tail -1 "$T/seen-1" | grep -qE 'breaker:stripe_eu(,|$)' && return 0
		sleep 0.1
	done
	return 1
}
seen() { sed 's/^/    /' "$T/seen-$1" | tail -"${2:-8}"; }

# phase NAME: stripe_eu fails; node 1 alone pays until its breaker opens.
phase() {
	: >"$T/seen-1"; : >"$T/seen-2"; : >"$T/seen-3"
	payapi_mode "$P_EU" mode=healthy || { fail "$1_payapi" "cannot reset stripe_eu"; exit 1; }
	# node 1's traffic teaches it that stripe_eu authorises: outcome counts to share
	for i in $(seq 10); do gbp 1; done
	payapi_mode "$P_EU" mode=failing || { fail "$1_payapi" "cannot make stripe_eu fail"; exit 1; }
	if node1_until_open && grep -q '^500 stripe_eu stripe_eu ' "$T/seen-1"; then
		pass "${1}_node1_breaker_opens"
	else
		fail "${1}_node1_breaker_opens" "code advised instance reason:" "$(seen 1 12)"
	fi
}

# first NODE: FIRST payments on node NODE; echoes how many were sent to stripe_eu.
first() {
	local i
	for i in $(seq "$FIRST"); do gbp "$1"; done
	grep -c ' stripe_eu stripe_eu ' "$T/seen-$1" || true
}

# ---- (a) learning shared: nodes 2 and 3 avoid stripe_eu from their first payment -------------
fleet_agents 1000 on
# each node's HAProxy sends its outcome lines to its own payspoa (a socket per node)
for i in 1 2 3; do
	start_haproxy "h$i" "${P_HTTPN[$i]}" "$P_US" "$P_EU" "${P_AGENTN[$i]}" PAY_OUTCOME_SOCK="$T/out$i.sock" ||
		{ fail "start-haproxy-$i" "$(tail -5 "$T/h$i.log")"; exit 1; }
done
fleet_nodes_up || { fail a_agents_up "a node's HAProxy does not see its payspoa UP"; exit 1; }
phase a
for i in 2 3; do
	if wait_until 10 grep -q '"event":"fleet_breaker_received".*"backend":"stripe_eu","wall_us"[^}]*opened here' \
		"$T/${AGENT[$i]}.log"; then
		pass "a_node${i}_breaker_received"
	else
		fail "a_node${i}_breaker_received" "$(grep -E 'fleet_breaker|fleet_redis' "$T/${AGENT[$i]}.log" | tail -3)"
	fi
done
for i in 2 3; do
	to_eu=$(first "$i")
	# answered elsewhere (stripe_eu_standby, or stripe_us, which serves GBP too), saying why
	if [ "$to_eu" -eq 0 ] && [ "$(grep -c '^200 ' "$T/seen-$i")" -eq "$FIRST" ] && grep -q 'breaker:stripe_eu' "$T/seen-$i"; then
		pass "a_node${i}_first_payments_avoid_stripe_eu"
	else
		fail "a_node${i}_first_payments_avoid_stripe_eu" "code advised instance reason:" "$(seen "$i")"
	fi
done
# the lag: node 1's publication (wall µs) to its application on nodes 2 and 3
pub=$(grep -o '"event":"fleet_breaker_published".*"backend":"stripe_eu","wall_us":"[0-9]*"' "$T/${AGENT[1]}.log" |
	head -1 | grep -o '"wall_us":"[0-9]*"' | grep -o '[0-9]*')
for i in 2 3; do
	got=$(grep -o '"event":"fleet_breaker_received".*"backend":"stripe_eu","wall_us":"[0-9]*"' "$T/${AGENT[$i]}.log" |
		head -1 | grep -o '"wall_us":"[0-9]*"' | grep -o '[0-9]*')
	[ -n "$pub" ] && [ -n "$got" ] && echo "  breaker of node 1 opened on node $i $((got - pub)) µs after its publication"
done
# node 1's outcome counts (L lines) merged on nodes 2 and 3 (the counters of a heartbeat)
for i in 2 3; do
	if wait_until 10 fstat_ge "$i" learn_applied 10 && fstat_ge 1 learn_published 1; then
		pass "a_node${i}_merged_node1_counts"
	else
		fail "a_node${i}_merged_node1_counts" "node $i learn_received=$(fstat "$i" learn_received) learn_applied=$(fstat "$i" learn_applied); node 1 learn_published=$(fstat 1 learn_published)"
	fi
	echo "  node $i: learn_received $(fstat "$i" learn_received), learn_applied $(fstat "$i" learn_applied)," \
		"breakers_received $(fstat "$i" breakers_received), opened_remote $(fstat "$i" breakers_opened_remote)," \
		"kept_local $(fstat "$i" breakers_kept_local)"
done
expect a_node1_never_echoed "breakers opened on node 1 by the others' B lines" "$(fstat 1 breakers_opened_remote)" 0
# texts that must not be applied: malformed, and node 1's sequence number replayed (an
# opening of stripe_us "from n1" with a sequence older than n1's last text)
r2=$(fstat 2 learn_refused) b2=$(fstat 2 breakers_received)
rcli PUBLISH payspoa:learn 'L n1 notanumber 1;stripe_us 0 0 0 0 1 0' >/dev/null
rcli PUBLISH payspoa:learn 'B n1 1 stripe_us' >/dev/null
if wait_until 10 fstat_ge 2 learn_refused $((r2 + 2)) && [ "$(fstat 2 breakers_received)" -eq "$b2" ]; then
	pass a_malformed_and_replayed_refused
else
	fail a_malformed_and_replayed_refused "node 2 learn_refused $r2 -> $(fstat 2 learn_refused), breakers_received $b2 -> $(fstat 2 breakers_received)"
fi

# ---- (c) Redis away: node 1 serves on, its counts wait and are published on reconnect -------
stop redis KILL
wait_until 10 grep -q '"event":"fleet_redis_down"' "$T/${AGENT[1]}.log" ||
	fail c_redis_down_seen "$(grep fleet_redis "$T/${AGENT[1]}.log" | tail -2)"
before2=$(fstat 2 learn_applied) before3=$(fstat 3 learn_applied)
: >"$T/seen-1"
for i in $(seq 20); do gbp 1; done
cp "$T/seen-1" "$T/seen-c1"
# every payment answered with payspoa's advice (some may be shed by the budget: 429)
expect c_node1_serves_without_redis "answers advised by payspoa on node 1 with Redis down" \
	"$(awk '$1 != "000" && $2 != ""' "$T/seen-1" | wc -l)" 20
paid=$(grep -c '^200 ' "$T/seen-1") # successes: what the posteriors count
start_redis || { fail c_restart_redis "$(tail -5 "$T/redis.log")"; exit 1; }
for i in 2 3; do
	eval "b=\$before$i"
	if [ "$paid" -gt 0 ] && wait_until 15 fstat_ge "$i" learn_applied $((b + paid)); then
		pass "c_node${i}_got_node1_counts_after_reconnect"
	else
		fail "c_node${i}_got_node1_counts_after_reconnect" "learn_applied $b before, $(fstat "$i" learn_applied) now (+$paid expected)"
	fi
done
echo "  node 1: learn_published $(fstat 1 learn_published), learn_dropped $(fstat 1 learn_dropped)"

# ---- (d) an opening that waited out a long outage is history: dropped, not published ----------
# Redis away again; the accounts where node 1 pays GBP while stripe_eu is open (either
# standby, or stripe_us) fail until node 1 opens a breaker on one of them (or on all:
# panic); Redis comes back only after fleet.node_ttl_ms (1 s) has passed since, so those
# openings must not reach nodes 2 and 3.
stop redis KILL
wait_until 10 bash -c "[ \$(grep -c '\"event\":\"fleet_redis_down\"' '$T/${AGENT[1]}.log') -ge 2 ]" ||
	fail d_redis_down_seen "$(grep fleet_redis "$T/${AGENT[1]}.log" | tail -2)"
for p in "$P_US" "$P_EU2" "$P_US2"; do
	payapi_mode "$p" mode=failing || { fail d_payapi "cannot make the account on $p fail"; exit 1; }
done
: >"$T/seen-1"
deadline=$((SECONDS + $(scaled 20)))
# opened: a breaker:<one of them> in the advice, or panic (every breaker open)
OTHERS='stripe_us|stripe_eu_standby|stripe_us_standby'
while [ "$SECONDS" -lt "$deadline" ] && ! grep -qE "breaker:($OTHERS)(,|\$)|panic" "$T/seen-1"; do
	gbp 1
	sleep 0.1
done
if grep -qE "breaker:($OTHERS)(,|\$)|panic" "$T/seen-1"; then pass d_node1_breaker_opens
else fail d_node1_breaker_opens "code advised instance reason:" "$(seen 1 12)"; fi
sleep "$(scaled 2)" # a lower bound: past node_ttl_ms since the opening
d1=$(fstat 1 learn_dropped)
rs2=$(grep -c '"event":"fleet_resynced"' "$T/${AGENT[2]}.log")
start_redis || { fail d_restart_redis "$(tail -5 "$T/redis.log")"; exit 1; }
if wait_until 15 fstat_ge 1 learn_dropped $((d1 + 1)); then pass d_stale_opening_dropped
else fail d_stale_opening_dropped "node 1 learn_dropped $d1 -> $(fstat 1 learn_dropped)"; fi
# node 2 back on Redis (its resync after this restart) before it is judged
wait_until 10 bash -c "[ \$(grep -c '\"event\":\"fleet_resynced\"' '$T/${AGENT[2]}.log') -gt $rs2 ]" || true
if grep -qE "\"event\":\"fleet_breaker_received\".*\"backend\":\"($OTHERS)\"" "$T/${AGENT[2]}.log" "$T/${AGENT[3]}.log"; then
	fail d_stale_opening_not_received "node 2 or 3 received node 1's opening after the outage" \
		"$(grep -hE '"event":"fleet_breaker_received"' "$T/${AGENT[2]}.log" "$T/${AGENT[3]}.log" | tail -3)"
else
	pass d_stale_opening_not_received
fi
for p in "$P_US" "$P_EU2" "$P_US2"; do
	payapi_mode "$p" mode=healthy || { fail d_payapi "cannot heal the account on $p"; exit 1; }
done

# ---- (b) learning alone: the same first payments go to the failing account -----------------
fleet_agents 0 off
fleet_nodes_up || { fail b_agents_up "a node's HAProxy does not see its restarted payspoa UP"; exit 1; }
phase b
for i in 2 3; do
	to_eu=$(first "$i")
	if [ "$to_eu" -ge 1 ]; then
		pass "b_node${i}_without_learning_pays_on_stripe_eu"
	else
		fail "b_node${i}_without_learning_pays_on_stripe_eu" "none of the first $FIRST went to stripe_eu: the check in (a) shows nothing" "$(seen "$i")"
	fi
done
if grep -q '"event":"fleet_breaker_received"' "$T/${AGENT[2]}.log" "$T/${AGENT[3]}.log"; then
	fail b_nothing_shared "a breaker opening was received with fleet.learn_ms = 0"
else
	pass b_nothing_shared
fi

integ_done
