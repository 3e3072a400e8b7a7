#!/usr/bin/env bash
# test-fleet-claim.sh: fleet.claim against the window a replicated pin leaves open (issue
# 10). Three HAProxy + payspoa nodes and a real redis-server; the emulated accounts answer
# slowly (latency_ms), so a first attempt is still in flight when its retry arrives. Node
# 2's policy chooses another account than nodes 1 and 3 for the same payment (stripe_us
# disabled there: fresh USD payments go to stripe_us_standby). The same keyed payments are
# sent to node 1 (first attempts) and node 2 (retries) at once:
#   (a) fleet.claim = false: some keys are charged on two accounts (the test can fail);
#   (b) fleet.claim = true (default): no key charged on two accounts (but through a
#       claim left unconfirmed at claim_timeout_ms, counted), every request answered;
#       the first attempts' claim wait p50/p99 is printed;
#   (c) Redis killed mid-run: every request still answered (nearly all with payspoa's
#       verdict), and the nodes stop holding ACKs (claims_skipped).
# Judged by counts (the emulators' key records, answers, the nodes' debug fleet_stats
# lines), never by a duration.
INTEG_TIMEOUT=${INTEG_TIMEOUT:-300}
. "$(dirname "$0")/lib.sh"

need_stack
need redis-server
need redis-cli

N=${CLAIM_KEYS:-200}     # keyed payments per phase
LAT_MS=300               # the accounts' answer delay: a first attempt stays in flight
BUDGETS=('s/rate = 100.0; burst = 100.0;/rate = 100000.0; burst = 100000.0;/'
	's/rate = 25.0; burst = 25.0;/rate = 100000.0; burst = 100000.0;/')

redis_setup
start_redis || { fail start-redis "$(tail -5 "$T/redis.log")"; exit 1; }

start_accounts
for p in "$P_US" "$P_EU" "$P_US2" "$P_EU2"; do
	curl -sS --max-time 5 -d "latency_ms=$LAT_MS" "http://127.0.0.1:$p/__payapi/mode" >/dev/null ||
		{ fail payapi-mode "cannot slow the account on $p"; exit 1; }
done

# policy NODE CLAIM: node NODE's policy copy, fleet.claim = CLAIM; node 2 without stripe_us.
policy() {
	local extra=()
	[ "$1" = 2 ] && extra=('/name = "stripe_us";/a\		enabled = false;')
	policy_copy "$T/pol$1-$2" "${BUDGETS[@]}" "${extra[@]}" \
		"$(fleet_sed "$1" "claim = $2; claim_timeout_ms = 80; ")" ||
		{ fail "policy-$1-$2" "$(head -3 "$T/pol$1-$2/check.log" 2>/dev/null)"; exit 1; }
}

# every node's payspoa (re)started with fleet.claim = CLAIM (lib.sh fleet_agents CLAIM RUN)
fleet_ports
fleet_agents false off
for i in 1 2 3; do
	start_haproxy "h$i" "${P_HTTPN[$i]}" "$P_US" "$P_EU" "${P_AGENTN[$i]}" ||
		{ fail "start-haproxy-$i" "$(tail -5 "$T/h$i.log")"; exit 1; }
done
fleet_nodes_up || { fail agents-up "a node's HAProxy does not see its payspoa UP"; exit 1; }

# usd_list FILE PREFIX: N USD card payments keyed PREFIX<n>.
usd_list() {
	printf 'POST /v1/payment_intents amount=1200&currency=usd&payment_method=pm_card_visa&confirm=true\n\tX-Card-Country: US\n\tIdempotency-Key: %s{n}\n' \
		"$2" >"$1"
}

# send NAME NODE LIST: N requests of LIST through node NODE's HAProxy (background-able);
# lines of $T/NAME.out: start|latency|status|instance|verdict
send() {
	"$LOADGEN_BIN" -a "http://127.0.0.1:${P_HTTPN[$2]}" -f "$3" -n "$N" -c 16 -t 20 -q -o X-Payapi-Instance \
		-o X-Pay-Verdict >"$T/$1.out" 2>"$T/$1.err" </dev/null
}
answered() { awk -F'|' '$3 ~ /^2/' "$T/$1.out" | wc -l; }
decided() { awk -F'|' '$3 ~ /^2/ && $5 != ""' "$T/$1.out" | wc -l; }

# twice PREFIX: keys of PREFIX charged on both USD accounts.
twice() {
	local a b
	a=$(curl -sS --max-time 5 "http://127.0.0.1:$P_US/__payapi/keys?prefix=$1" | grep -o "\"$1[^\"]*\"" | sort -u)
	b=$(curl -sS --max-time 5 "http://127.0.0.1:$P_US2/__payapi/keys?prefix=$1" | grep -o "\"$1[^\"]*\"" | sort -u)
	comm -12 <(echo "$a") <(echo "$b") | grep -c . || true
}

# race PHASE: first attempts to node 1 and their retries to node 2, at the same time.
race() {
	usd_list "$T/$1.list" "claim-$1-"
	send "$1_first" 1 "$T/$1.list" & local p1=$!
	send "$1_retry" 2 "$T/$1.list" & local p2=$!
	wait "$p1" "$p2"
	expect "${1}_every_first_answered" "2xx answers to $N first attempts on node 1" "$(answered "$1_first")" "$N"
	expect "${1}_every_retry_answered" "2xx answers to $N retries on node 2" "$(answered "$1_retry")" "$N"
}

# ---- (a) without claims: the window is real ----------------------------------------------
# On a loaded machine one race may see every retry come after its pin replicated: up to
# three races with fresh keys before the test says it showed nothing.
for a in a a2 a3; do
	race "$a"
	n_off=$(twice "claim-$a-")
	echo "  fleet.claim = false (race $a): $n_off of $N keys charged on two accounts"
	[ "$n_off" -gt 0 ] && break
done
if [ "$n_off" -gt 0 ]; then pass a_without_claim_double_charges
else fail a_without_claim_double_charges "no key charged on two accounts without fleet.claim in three races: the race did not happen (the test shows nothing)"; fi

# ---- (b) with claims: none ---------------------------------------------------------------
fleet_agents true on
fleet_nodes_up || fail b_agents_up "a node's HAProxy does not see its restarted payspoa UP"
# every claim of the races settled (won, lost or sent unconfirmed) in the nodes' logged
# counters, and both nodes claimed: a node whose HAProxy had not yet reconnected to its
# restarted payspoa routes the race's first requests without advice, so without claims
# (seen once on 3.2: node 1 sent none, node 2 won all 200): up to three races with fresh
# keys, as in (a), before the test says the nodes did not race.
settled() {
	local i
	for i in 1 2; do
		[ "$(fstat "$i" claims_sent)" -eq \
			"$(($(fstat "$i" claims_won) + $(fstat "$i" claims_lost) + $(fstat "$i" claims_unconfirmed)))" ] || return 1
	done
}
claimed() { fstat_ge 1 claims_sent 1 && fstat_ge 2 claims_sent 1; }
# A claim is lost only where the two nodes chose different accounts for one key at the
# same moment: race (a) shows that for a few keys in 200, and a slow race may show none
# (seen once on 3.2: 216 claims, all won). Such a race is run again too.
lost() { [ "$(($(fstat 1 claims_lost) + $(fstat 2 claims_lost)))" -gt 0 ]; }
n_on=0
for b in b b2 b3; do
	race "$b"
	wait_until 20 eval 'claimed && settled'
	# The guarantee: no key on two accounts, except through a claim Redis did not answer
	# within claim_timeout_ms (its ACK left unconfirmed: spoa/README.md, window 1), which
	# only a loaded machine sees here.
	n_on=$((n_on + $(twice "claim-$b-")))
	claimed && lost && break
	if claimed; then
		echo "  race $b: both nodes claimed, none lost (no two choices for one key met): again with fresh keys"
	else
		echo "  race $b: a node sent no claim (its HAProxy routed without its payspoa): again with fresh keys"
	fi
done
{ claimed && settled; } || fail b_claims_settled "claims not sent by both nodes, or not settled, in the nodes' fleet_stats lines"
unconf=$(($(fstat 1 claims_unconfirmed) + $(fstat 2 claims_unconfirmed)))
echo "  fleet.claim = true: $n_on of $N keys charged on two accounts, $unconf claims unconfirmed"
if [ "$n_on" -eq 0 ] || [ "$n_on" -le "$unconf" ]; then pass b_with_claim_no_double_charge_but_unconfirmed
else fail b_with_claim_no_double_charge_but_unconfirmed "$n_on keys charged on two accounts with fleet.claim, only $unconf claims unconfirmed"; fi
for i in 1 2; do
	echo "  node $i: claims sent $(fstat "$i" claims_sent), won $(fstat "$i" claims_won), lost $(fstat "$i" claims_lost)," \
		"unconfirmed $(fstat "$i" claims_unconfirmed), skipped $(fstat "$i" claims_skipped);" \
		"claim wait p50 $(fstat "$i" claim_wait_p50_us) µs, p99 $(fstat "$i" claim_wait_p99_us) µs"
done
if lost; then pass b_claims_rerouted
else fail b_claims_rerouted "no claim lost on either node in three races: the nodes did not race"; fi

# ---- (c) Redis killed mid-run: nothing held, nothing lost ---------------------------------
usd_list "$T/c.list" "claim-c-"
send c_first 1 "$T/c.list" & pc=$!
lines_ge() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }
wait_until 20 lines_ge "$T/c_first.out" $((N / 4)) || true
stop redis KILL
wait "$pc"
# Every request answered (none lost); nearly all with payspoa's verdict: the held ACKs
# leave when Redis goes, so only a machine too loaded to answer within HAProxy's
# `timeout processing` lets a few through without one, while a stalled node would lose
# every verdict from the kill on.
expect c_every_request_answered "2xx answers while Redis died" "$(answered c_first)" "$N"
if [ "$(decided c_first)" -gt $((N / 2)) ]; then pass c_verdicts_while_redis_died
else fail c_verdicts_while_redis_died "$(decided c_first) of $N answers carried payspoa's verdict while Redis died"; fi
# the rest of the run, or a second one if the first ended before Redis went
usd_list "$T/c2.list" "claim-c2-"
send c2_first 1 "$T/c2.list"
expect c2_every_request_answered "2xx answers with payspoa's verdict, Redis down" "$(decided c2_first)" "$N"
if wait_until 10 fstat_ge 1 claims_skipped "$N"; then pass c_no_hold_without_redis
else fail c_no_hold_without_redis "claims_skipped=$(fstat 1 claims_skipped) on node 1 with Redis down, $N expected at least"; fi

integ_done
