#!/usr/bin/env bash
# test-nodouble.sh: never a double charge (issue 8), the ways test-failopen.sh does not
# play, through the real HAProxy (haproxy/haproxy.cfg), the four emulated accounts and
# payspoa with agent.state_file set: (a) 1,000 pairs of simultaneous identical requests;
# (b) a SIGTERM restart and (c) a SIGKILL restart, with HAProxy's own pin table cleared so
# that only payspoa's snapshot remembers; (d) a flood of distinct keys between first
# attempts and their retries. Judged from the emulators' own records
# (GET /__payapi/keys): zero keys charged on two accounts.
#
# Payments mix USD, EUR, GBP with a US card and GBP with a GB card. GBP with a US card is
# the hard case: payspoa prefers stripe_us for it while HAProxy's fallback for GBP is
# stripe_eu, so a retry sent anywhere but where its pin says would charge twice.
# Everything is judged by counts (answered, replayed, keys per account), never by a rate
# or a duration; the flood is sized by count.
INTEG_TIMEOUT=${INTEG_TIMEOUT:-180}
. "$(dirname "$0")/lib.sh"

need_stack
STATE=$T/state.msgpack
# Budgets far above what the test sends: nothing is shed (a 429 reaches no account and
# pins nothing). Snapshots only on SIGTERM and SIGUSR1 (state_interval_s = 0), so case c
# knows exactly which pins the snapshot holds.
start_stack 's/rate = 100.0; burst = 100.0;/rate = 100000.0; burst = 100000.0;/' \
	's/rate = 25.0; burst = 25.0;/rate = 100000.0; burst = 100000.0;/' \
	'/^agent = {/a\	state_interval_s = 0;' \
	"/^agent = {/a\\	state_file = \"$STATE\";"

# load NAME LIST LOADGEN-ARGS...: loadgen against HAProxy until done; lines in $T/NAME.out:
# start|latency|status|instance|replayed|verdict|reason|haproxy-pin|advised-backend
load() {
	local name=$1 list=$2
	shift 2
	"$LOADGEN_BIN" -a "$HAP" -f "$list" -t 10 -q -o X-Payapi-Instance -o Idempotent-Replayed \
		-o X-Pay-Verdict -o X-Pay-Reason -o X-Pay-Pin -o X-Pay-Backend "$@" \
		>"$T/$name.out" 2>"$T/$name.err" </dev/null
}

# count NAME AWK-CONDITION: lines of $T/NAME.out that meet the condition.
count() { awk -F'|' "$2" "$T/$1.out" | wc -l; }

# retries CASE NAME N: batch NAME (retries of N keys) must be answered 2xx and replayed
# by the account that holds the key (Idempotent-Replayed is only sent by the account
# that executed the first attempt). Keeps the case's detail line in DETAIL[CASE].
declare -A DETAIL=()
retries() {
	local c=$1 name=$2 n=$3 got replayed refused
	got=$(count "$name" '1')
	replayed=$(count "$name" '$3 ~ /^2/ && $5 == "true"')
	refused=$(count "$name" '$3 !~ /^2/')
	DETAIL[$c]="${DETAIL[$c]:-}  $c, $name: $n retries, $replayed answered (replayed by the same account), $refused refused"$'\n'
	if [ "$got" = "$n" ] && [ "$replayed" = "$n" ]; then
		pass "${c}_${name}_replayed"
	else
		fail "${c}_${name}_replayed" "$got answers to $n retries, $replayed replayed by their first account, $refused refused" \
			"$(awk -F'|' '$3 !~ /^2/ || $5 != "true"' "$T/$name.out" | head -3)"
	fi
}

# first CASE NAME N: batch NAME (first attempts) is all 2xx.
first() {
	local ok
	ok=$(count "$2" '$3 ~ /^2/')
	expect "${1}_${2}_answered" "2xx answers of $3 first attempts" "$ok" "$3"
}

# keys_on_accounts CASE PREFIX N: the emulators' records of the keys starting with PREFIX
# (N payments): charged on two accounts must be 0, charged at all N.
keys_on_accounts() {
	local c=$1 prefix=$2 n=$3 port both total trunc=0
	: >"$T/keys-$c"
	for port in "$P_US" "$P_EU" "$P_US2" "$P_EU2"; do
		curl -sS --max-time 5 "http://127.0.0.1:$port/__payapi/keys?prefix=$prefix" >"$T/keys.json"
		grep -q '"truncated":false' "$T/keys.json" || trunc=1
		grep -o "\"$prefix[^\"]*\"" "$T/keys.json" | sort -u >>"$T/keys-$c"
	done
	both=$(sort "$T/keys-$c" | uniq -d | wc -l)
	total=$(sort -u "$T/keys-$c" | wc -l)
	DETAIL[$c]="${DETAIL[$c]:-}  $c: $total keys charged, $both on two accounts (of $n payments)"$'\n'
	[ "$trunc" = 0 ] || fail "${c}_keys_listed" "an emulator's key list for $prefix was truncated"
	expect "${c}_zero_double_charges" "keys of $prefix charged on two accounts" "$both" 0
	expect "${c}_every_key_charged" "keys of $prefix charged" "$total" "$n"
}

# table_used: entries in HAProxy's idempotency pin table.
table_used() { hap_cli hap "show table payspoa_pins/idem" | awk 'NR == 1 { sub(/.*used:/, ""); print $0 + 0 }'; }

# clear_table CASE: HAProxy forgets every idempotency pin, so only payspoa can remember.
clear_table() {
	hap_cli hap "clear table payspoa_pins/idem" >/dev/null
	expect "${1}_haproxy_table_cleared" "entries in payspoa_pins/idem after clear table" "$(table_used)" 0
}

# restart_agent CASE NAME: a new payspoa on the same port, policy and state file; waits
# for its state_loaded line and for HAProxy to see it UP. Sets LOADED (pins loaded).
restart_agent() {
	start_payspoa "$2" "$P_AGENT" "$POLICY" || { fail "${1}_restart" "$(tail -5 "$T/$2.log")"; exit 1; }
	if wait_until 10 grep -q '"state_loaded"' "$T/$2.log"; then
		LOADED=$(grep '"state_loaded"' "$T/$2.log" | grep -o '"pins":"*[0-9]*' | grep -o '[0-9]*$')
		pass "${1}_state_loaded"
	else
		LOADED=0
		fail "${1}_state_loaded" "no state_loaded line:" "$(tail -5 "$T/$2.log")"
	fi
	wait_until 10 hap_server_is hap spoe-payspoa payspoa1 UP ||
		{ fail agent-up "spoe-payspoa/payspoa1 is '$(hap_server_status hap spoe-payspoa payspoa1)'"; exit 1; }
}

# pinned_by_haproxy CASE NAME N: HAProxy's table held a pin for every request of NAME.
pinned_by_haproxy() {
	expect "${1}_${2}_haproxy_pins" "requests of $2 HAProxy's table held a pin for" \
		"$(count "$2" '$8 != "" && $8 != "0"')" "$3"
}

# pinned_by_agent CASE NAME N: every retry of batch NAME was advised by a payspoa pin
# (reason pin:...) while HAProxy's table held nothing for it.
pinned_by_agent() {
	local pinned nohap
	pinned=$(count "$2" '$7 ~ /^pin:/')
	nohap=$(count "$2" '$8 == "" || $8 == "0"')
	if [ "$pinned" = "$3" ] && [ "$nohap" = "$3" ]; then
		pass "${1}_${2}_advised_by_snapshot_pins"
	else
		fail "${1}_${2}_advised_by_snapshot_pins" "$pinned of $3 retries advised by a payspoa pin, $nohap without an HAProxy pin" \
			"$(awk -F'|' '$7 !~ /^pin:/' "$T/$2.out" | head -3)"
	fi
}

# ---- a. 1,000 pairs of simultaneous identical requests -------------------------------------
# loadgen -c 2 -l: each round sends the same payment with the same key on two connections
# in the same loop turn; the two meet in HAProxy and in payspoa at once (one claim wins
# the key, the other follows it), the next round starts when both are answered.
PAIRS=1000
pay_list "$T/list-a" 'nd-a-{r}'
load a1 "$T/list-a" -c 2 -l -n $((2 * PAIRS))
first a a1 $((2 * PAIRS))
rounds=$(awk -F'|' '{ n[$1]++ } END { for (s in n) if (n[s] == 2) r++; print r + 0 }' "$T/a1.out")
expect a_pairs_sent_together "rounds of two requests issued at the same instant" "$rounds" "$PAIRS"
# Per round (its two lines share their start): the accounts that answered, the replays,
# how the second request knew the first (payspoa's pin, HAProxy's table, or neither: the
# two decisions met in payspoa's claim at the same instant), answers without advice.
awk -F'|' '{ inst[$1] = inst[$1] " " $4; if ($5 == "true") rep[$1]++; if ($7 ~ /^pin:/) pin[$1]++
	if ($8 != "" && $8 != "0") hp[$1]++; if ($6 == "") noadv++ }
	END { for (s in inst) { split(inst[s], a, " "); if (a[1] != a[2]) split_++
		if (rep[s] == 1) one++; if (pin[s] >= 1) p++; if (hp[s] >= 1) h++; if (!pin[s] && !hp[s]) met++ }
	print split_ + 0, one + 0, p + 0, h + 0, met + 0, noadv + 0 }' "$T/a1.out" >"$T/a-pairs"
read -r split one_replayed followed_pin table_pin met noadv <"$T/a-pairs"
expect a_pairs_on_one_account "pairs answered by two accounts" "$split" 0
expect a_pairs_one_execution "pairs with exactly one answer replayed" "$one_replayed" "$PAIRS"
# kind gbpus is round 3, 7, 11...: its pairs on stripe_us show advice and fallback differ
gbpus_us=$(awk -F'|' '{ print $1, $4 }' "$T/a1.out" | sort -n | awk '{ if ($1 != last) r++; last = $1
	if (r % 4 == 3 && $2 == "stripe_us") n++ } END { print n + 0 }')
if [ "$gbpus_us" -gt 0 ]; then
	pass a_gbp_us_card_advised_us
else
	fail a_gbp_us_card_advised_us "no GBP payment with a US card went to stripe_us: the hard case is not exercised"
fi
DETAIL[a]="  a, pairs: $PAIRS pairs, $split on two accounts, $one_replayed with one execution and one replay;"$'\n'
DETAIL[a]+="  a, pairs: the second followed payspoa's pin (pin:idem) in $followed_pin, HAProxy's table in $table_pin, met the first in payspoa's claim in $met; $noadv requests without advice (agent late); $gbpus_us GBP/US-card requests on stripe_us"$'\n'
keys_on_accounts a nd-a- "$PAIRS"

# ---- b. SIGTERM restart: the snapshot written after the drain remembers -------------------------
NB=400
pay_list "$T/list-b" 'nd-b-{n}'
load b1 "$T/list-b" -c 4 -n $NB
first b b1 $NB
stop agent TERM
if grep -q '"snapshot_written".*"SIGTERM"' "$T/agent.log"; then
	pass b_snapshot_on_sigterm
else
	fail b_snapshot_on_sigterm "no snapshot_written (SIGTERM) line:" "$(tail -5 "$T/agent.log")"
fi
clear_table b
restart_agent b agent_b
if [ "${LOADED:-0}" -ge $((PAIRS + NB)) ] 2>/dev/null; then pass b_pins_loaded; else
	fail b_pins_loaded "pins loaded '$LOADED', want at least $((PAIRS + NB)) (every key so far)"; fi
load b2 "$T/list-b" -c 4 -n $NB
retries b b2 $NB
pinned_by_agent b b2 $NB
keys_on_accounts b nd-b- $NB

# ---- c. SIGKILL restart: the last snapshot remembers what it holds ------------------------------
# Pins made after the last snapshot are covered by HAProxy's table only: that is the
# design (a snapshot per state_interval_s, SIGUSR1 or SIGTERM; a SIGKILL loses what came
# after). Here keys nd-c-* are made before a SIGUSR1 snapshot, nd-cl-* after it: the
# late ones are retried while HAProxy's table still holds them (agent dead), the early
# ones after the table is cleared and a new payspoa has loaded the snapshot. The late
# keys are not retried after the clear: nothing would remember them, by design.
NC=400 NCL=200
pay_list "$T/list-c" 'nd-c-{n}'
pay_list "$T/list-cl" 'nd-cl-{n}'
load c1 "$T/list-c" -c 4 -n $NC
first c c1 $NC
kill -USR1 "${PROC[agent_b]}"
if wait_until 10 grep -q '"snapshot_written","why":"SIGUSR1"' "$T/agent_b.log"; then
	pass c_snapshot_on_sigusr1
else
	fail c_snapshot_on_sigusr1 "no snapshot_written (SIGUSR1) line:" "$(tail -5 "$T/agent_b.log")"
fi
load c2 "$T/list-cl" -c 4 -n $NCL
first c c2 $NCL
stop agent_b KILL
load c3 "$T/list-cl" -c 4 -n $NCL    # agent dead: HAProxy's table alone
retries c c3 $NCL
pinned_by_haproxy c c3 $NCL
clear_table c
restart_agent c agent_c
load c4 "$T/list-c" -c 4 -n $NC
retries c c4 $NC
pinned_by_agent c c4 $NC
keys_on_accounts c nd-c $((NC + NCL))    # nd-c-* and nd-cl-*

# ---- d. a flood of distinct keys between first attempts and their retries ------------------------
# The 1 M-key flood is tests/proto/test-pins (SPOP straight at the agent, make test-long);
# through HAProxy a smaller one, sized by count. The emulators keep 16,384 keys each, so
# the flood stays below what would make an account forget the first attempts (at most
# three kinds of four, 15,000 keys, on one account).
ND=500 FLOOD=${NODOUBLE_FLOOD:-20000}
pay_list "$T/list-d" 'nd-d-{n}'
pay_list "$T/list-f" 'nd-f-{n}'
load d1 "$T/list-d" -c 4 -n $ND
first d d1 $ND
load flood "$T/list-f" -c 8 -n "$FLOOD"
first d flood "$FLOOD"
used=$(table_used)
if [ "${used:-0}" -ge $((ND + FLOOD)) ]; then pass d_haproxy_table_kept; else
	fail d_haproxy_table_kept "payspoa_pins/idem holds '$used' entries, want at least $((ND + FLOOD))"; fi
load d2 "$T/list-d" -c 4 -n $ND      # HAProxy's table and payspoa's pins
retries d d2 $ND
pinned_by_haproxy d d2 $ND
clear_table d
load d3 "$T/list-d" -c 4 -n $ND      # payspoa's pins alone
retries d d3 $ND
pinned_by_agent d d3 $ND
stop agent_c TERM
ev=$(grep '"stopped"' "$T/agent_c.log" | grep -o '"pins_evicted":"*[0-9]*' | grep -o '[0-9]*$')
expect d_pin_evicted "pins_evicted in payspoa's stopped line" "${ev:-none}" 0
expect d_no_eviction_warning "pins_evicted warnings" "$(grep -c '"event":"pins_evicted"' "$T/agent_c.log")" 0
DETAIL[d]+="  d: flood of $FLOOD distinct keys between the first attempts of $ND keys and their retries; payspoa pins_evicted ${ev:-none}"$'\n'
keys_on_accounts d nd-d- $ND

for c in a b c d; do printf '%s' "${DETAIL[$c]}"; done
integ_done
