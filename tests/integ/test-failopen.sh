#!/usr/bin/env bash
# test-failopen.sh: never a double charge when payspoa is down or late (issue 8, HAProxy
# side). Hundreds of keyed payments and their retries through the real HAProxy with the
# generated haproxy.cfg, two emulated accounts and payspoa, while payspoa is killed for
# 5 s (SIGKILL, then a new process), while it is stopped (SIGSTOP) for 1 s past
# `timeout processing`, and across an HAProxy reload (-sf, tables handed over by the
# local peer). Counted from the emulators' own records (GET /__payapi/keys): zero keys
# charged on two accounts. Also: EUR never reaches the US entity; captures and refunds
# of payment intents created earlier reach their account with the agent down.
#
# GBP with a US card is the hard case: payspoa prefers stripe_us for it (US card, better
# authorisation rate) while the policy's fallback for GBP is stripe_eu, so a retry without
# advice is safe only if HAProxy's own pin table sends it where the first attempt went.
INTEG_TIMEOUT=${INTEG_TIMEOUT:-240}
. "$(dirname "$0")/lib.sh"

need_stack
[ -x "$LOADGEN_BIN" ] || { fail prerequisite "$LOADGEN_BIN not built (make loadgen)"; exit 1; }
# Budgets far above what the test sends: no payment is shed (a 429 from payspoa never
# reaches an account, so it would neither charge nor pin). Backends, currencies and
# compliance stay conf/payspoa.conf's, which haproxy/haproxy.cfg is generated from.
start_stack 's/rate = 100.0; burst = 100.0;/rate = 100000.0; burst = 100000.0;/' \
	's/rate = 25.0; burst = 25.0;/rate = 100000.0; burst = 100000.0;/'

# One list per kind of payment; the key is PREFIX-KIND-{n}, so the same run again is
# the same payments retried with the same keys and bodies.
KINDS="usd eur gbpus gbpgb"
mklist() { # mklist PREFIX KIND: the request list of one kind of payment
	local body card
	case $2 in
	usd) body='amount=1200&currency=usd' card=US ;;
	eur) body='amount=1300&currency=eur' card=DE ;;
	gbpus) body='amount=1400&currency=gbp' card=US ;;
	gbpgb) body='amount=1500&currency=gbp' card=GB ;;
	esac
	printf 'POST /v1/payment_intents %s&payment_method=pm_card_visa&confirm=true\n' "$body"
	printf '\tX-Card-Country: %s\n\tIdempotency-Key: fo-%s-%s-{n}\n' "$card" "$1" "$2"
}

# batch NAME PREFIX N: N payments of each kind, keys PREFIX-KIND-1..N, 4 connections per
# kind; lines in $T/NAME-KIND.out: start|latency|status|instance|replayed|verdict|advised
batch() {
	local name=$1 prefix=$2 n=$3 k pids=()
	for k in $KINDS; do
		mklist "$prefix" "$k" >"$T/list-$prefix-$k"
		"$LOADGEN_BIN" -a "$HAP" -f "$T/list-$prefix-$k" -n "$n" -c 4 -t 10 -q \
			-o X-Payapi-Instance -o Idempotent-Replayed -o X-Pay-Verdict -o X-Pay-Backend \
			>"$T/$name-$k.out" 2>"$T/$name-$k.err" &
		pids+=($!)
	done
	wait "${pids[@]}"
}

# tally NAME: ANSWERED (2xx), REPLAYED (2xx replayed by the account), REFUSED (the rest),
# NOADV (answered without payspoa's advice) over the batch NAME.
tally() {
	# shellcheck disable=SC2086 # $1 may be a glob
	read -r ANSWERED REPLAYED REFUSED NOADV < <(cat $T/$1-*.out | awk -F'|' '
		$3 ~ /^2/ { a++; if ($5 == "true") r++ } $3 !~ /^2/ { f++ } $6 == "" { x++ }
		END { print a + 0, r + 0, f + 0, x + 0 }')
}

# eur_on_us NAME: EUR payments of batch NAME answered by stripe_us (must be 0).
eur_on_us() { awk -F'|' '$4 == "stripe_us"' "$T/$1-eur.out" | wc -l; }

# report CASE NAME: the counts of retry batch NAME (a glob), as a detail line.
report() {
	tally "$2"
	echo "  $1: $ANSWERED answered ($REPLAYED replayed by the same account), $REFUSED refused, $NOADV without advice"
}

# ---- 1. first attempts with payspoa up --------------------------------------------------
N_A=75 N_B=40 N_C=25
batch a1 A "$N_A"
tally a1
expect first_attempts_answered "2xx answers of $((4 * N_A)) first attempts" "$ANSWERED" "$((4 * N_A))"
gbpus_on_us=$(awk -F'|' '$4 == "stripe_us"' "$T/a1-gbpus.out" | wc -l)
if [ "$gbpus_on_us" -gt 0 ]; then
	pass gbp_us_card_advised_us
else
	fail gbp_us_card_advised_us "payspoa sent no GBP payment with a US card to stripe_us: the hard case is not exercised"
fi

# Payment intents to capture and refund later, with the agent down.
OBJS=()
for i in $(seq 12); do
	req "$HAP" POST /v1/payment_intents -d amount=2000 -d currency=gbp -d payment_method=pm_card_visa \
		-d capture_method=manual -d confirm=true -H 'X-Card-Country: US'
	[ "$CODE" = 200 ] && OBJS+=("$(jfield id):$(hdr x-payapi-instance)")
done
expect objects_created "manual-capture payment intents created" "${#OBJS[@]}" 12

# ---- 2. payspoa killed for 5 s ---------------------------------------------------------
t_kill=$SECONDS
stop agent KILL
batch a2 A "$N_A"          # retries
batch b1 B "$N_B"          # new payments, no advice: per-currency fallback
report agent_killed_retries a2
bad=$(cat "$T"/a2-*.out | awk -F'|' '$5 != "true" || $3 !~ /^2/' | wc -l)
expect retries_replayed_agent_killed "retries not replayed by their first account" "$bad" 0
expect eur_never_us_agent_killed "EUR payments answered by stripe_us" "$(( $(eur_on_us b1) + $(eur_on_us a2) ))" 0
# Captures and refunds of the intents created above reach their account.
bad=()
for o in "${OBJS[@]}"; do
	id=${o%%:*} owner=${o#*:}
	req "$HAP" POST "/v1/payment_intents/$id/capture"
	[ "$CODE" = 200 ] && [ "$(hdr x-payapi-instance)" = "$owner" ] || bad+=("capture $id ($owner): $CODE $(hdr x-payapi-instance)")
	req "$HAP" POST /v1/refunds -d payment_intent="$id" -d amount=500
	[ "$CODE" = 200 ] && [ "$(hdr x-payapi-instance)" = "$owner" ] || bad+=("refund $id ($owner): $CODE $(hdr x-payapi-instance)")
done
if [ ${#bad[@]} -eq 0 ]; then pass objects_reach_owner_agent_down; else fail objects_reach_owner_agent_down "${bad[@]}"; fi
# The rest of the 5 s, then a new payspoa (no memory of the old one's pins).
while [ $((SECONDS - t_kill)) -lt 5 ]; do sleep 0.2; done
start_payspoa agent2 "$P_AGENT" "$POLICY" || { fail start-payspoa "$(tail -5 "$T/agent2.log")"; exit 1; }
wait_until 10 hap_server_is hap spoe-payspoa payspoa1 UP ||
	{ fail agent-up "spoe-payspoa/payspoa1 is '$(hap_server_status hap spoe-payspoa payspoa1)'"; exit 1; }
# The new payspoa remembers nothing: for the B keys (charged on the fallback while it was
# dead) it advises its own choice, and HAProxy's table must overrule it. The B retries go
# first, while that choice is still its day-one one (GBP with a US card: stripe_us, as in
# a1). After the A retries' outcomes it may have learned that stripe_eu authorises US
# cards as well, and then its advice agrees with the table. A fast run once learned
# them all before b2 began, and no advice differed.
batch b2 B "$N_B"
batch a3 A "$N_A"
report agent_restarted_retries a3
over=$(cat "$T"/b2-*.out | awk -F'|' '$7 != "" && $7 != $4' | wc -l)
if [ "$over" -gt 0 ]; then
	pass table_overrules_advice
	echo "  $over retries sent where the table says, not where the restarted payspoa advised"
else
	fail table_overrules_advice "no retry where advice and table differed: the case is not exercised"
fi
bad=$(cat "$T"/a3-*.out "$T"/b2-*.out | awk -F'|' '$5 != "true" || $3 !~ /^2/' | wc -l)
expect retries_replayed_agent_restarted "retries not replayed by their first account" "$bad" 0

# ---- 3. payspoa stopped for 1.1 s (past timeout processing, 100 ms) -----------------------
kill -STOP "${PROC[agent2]}"
batch c1 C "$N_C" &
cpid=$!
sleep 1.1
kill -CONT "${PROC[agent2]}"
wait "$cpid"
tally c1
if [ "$NOADV" -gt 0 ]; then
	pass late_agent_requests_without_advice
	echo "  $NOADV of $((4 * N_C)) payments answered without advice while payspoa was stopped"
else
	fail late_agent_requests_without_advice "every payment got advice: the late path was not exercised"
fi
expect eur_never_us_agent_late "EUR payments answered by stripe_us" "$(eur_on_us c1)" 0
wait_until 10 hap_server_is hap spoe-payspoa payspoa1 UP ||
	{ fail agent-up "spoe-payspoa/payspoa1 is '$(hap_server_status hap spoe-payspoa payspoa1)'"; exit 1; }
# The late agent pinned what it would have chosen; HAProxy's table wins over that advice.
batch c2 C "$N_C"
report late_agent_retries c2
echo "  $(cat "$T"/c2-*.out | awk -F'|' '$7 != "" && $7 != $4' | wc -l) of them advised elsewhere by the late payspoa's pins, sent where HAProxy's table says"
bad=$(cat "$T"/c2-*.out | awk -F'|' '$5 != "true" || $3 !~ /^2/' | wc -l)
expect retries_replayed_agent_late "retries not replayed by their first account" "$bad" 0

# ---- 4. HAProxy reload (-sf): the tables move to the new process ----------------------------
old=${PROC[hap]}
table_used() { hap_cli "$1" "show table payspoa_pins/idem" | awk 'NR == 1 { u = $0 } END { sub(/.*used:/, "", u); print u + 0 }'; }
before=$(table_used hap)
start_bg hap2 env PAY_HTTP_ADDR="127.0.0.1:$P_HTTP" PAY_US_ADDR="127.0.0.1:$P_US" \
	PAY_EU_ADDR="127.0.0.1:$P_EU" PAY_US2_ADDR="127.0.0.1:$P_US2" PAY_EU2_ADDR="127.0.0.1:$P_EU2" \
	PAY_AGENT_ADDR="127.0.0.1:$P_AGENT" \
	PAY_PEER_ADDR="127.0.0.1:${HAP_PEER[hap]}" PAY_STATS_SOCK="$T/hap2.sock" \
	PAY_LOG_LEVEL=notice PAY_FAIL_CLOSED=0 "$HAPROXY_BIN" -db -f haproxy/haproxy.cfg -sf "$old"
if wait_until 15 bash -c "! kill -0 $old 2>/dev/null"; then
	unset "PROC[hap]"
	pass reload_old_process_gone
else
	fail reload_old_process_gone "the old haproxy ($old) still runs"
fi
after=$(table_used hap2)
if [ -n "$before" ] && [ "${after:-0}" -ge "$before" ] && [ "$before" -ge $((4 * (N_A + N_B + N_C))) ]; then
	pass reload_keeps_table
else
	fail reload_keeps_table "idempotency pins before the reload: '$before', after: '$after'"
fi
# With the agent dead, only the tables know where each key went.
stop agent2 KILL
batch r1 A "$N_A"; batch r2 B "$N_B"; batch r3 C "$N_C"
report after_reload_retries 'r[123]'
bad=$(cat "$T"/r[123]-*.out | awk -F'|' '$5 != "true" || $3 !~ /^2/' | wc -l)
expect retries_replayed_after_reload "retries not replayed by their first account" "$bad" 0

# ---- the emulators' records: keys charged on two accounts --------------------------------
# Every account of the policy (exploration and failover also use the standby accounts).
keys() { curl -sS --max-time 5 "http://127.0.0.1:$1/__payapi/keys?prefix=fo-" | grep -o '"fo-[^"]*"' | sort -u; }
keys "$P_US" >"$T/keys-us"; keys "$P_EU" >"$T/keys-eu"
keys "$P_US2" >"$T/keys-us2"; keys "$P_EU2" >"$T/keys-eu2"
nus=$(wc -l <"$T/keys-us") neu=$(wc -l <"$T/keys-eu")
nus2=$(wc -l <"$T/keys-us2") neu2=$(wc -l <"$T/keys-eu2")
both=$(cat "$T"/keys-us "$T"/keys-eu "$T"/keys-us2 "$T"/keys-eu2 | sort | uniq -d | wc -l)
total=$((4 * (N_A + N_B + N_C)))
echo "  keys charged: $nus on stripe_us, $neu on stripe_eu, $nus2 on stripe_us_standby, $neu2 on stripe_eu_standby, $both on two accounts (of $total)"
expect zero_double_charges "keys charged on two accounts" "$both" 0
expect every_key_charged_once "keys charged" "$((nus + neu + nus2 + neu2))" "$total"
expect eur_only_on_eu "EUR keys charged on a US account" "$(cat "$T/keys-us" "$T/keys-us2" | grep -c -- '-eur-')" 0

integ_done
