#!/usr/bin/env bash
# test-leak.sh: no secret that reaches payspoa comes out in anything it writes. Traffic
# through a real HAProxy carries Luhn-valid card numbers, raw idempotency keys, Bearer
# sk_live_ keys and e-mails, planted where they really reach payspoa: the Idempotency-Key
# (hashed by HAProxy into pay-request's idem), the object id in the path, the headers
# pay-request forwards as they are (X-Card-Brand, X-Card-Funding, X-Pay-Class), the
# form fields it forwards (customer) and Stripe-Account, which the log outcome channel
# (PAY_OUTCOMES=log) carries too. Then payspoa's log (stderr, at debug level), its
# snapshot file, every answer of its admin socket (show decisions sampling every
# decision) and a /metrics scrape must hold none of them, nor the plain SHA-256 of a key.
# Not vacuous: a socat relay between HAProxy and payspoa records the SPOP bytes, which
# must hold the planted values; payapi's key log must hold the raw key; payspoa must
# have pinned the key (pin:idem on the replay) and counted the outcome lines.
. "$(dirname "$0")/lib.sh"

need_stack
need socat
need sha256sum

r=$RANDOM$RANDOM
CARD=4242424242424242                 # Luhn-valid (Visa test numbers)
CARD2=4000056655665556
IDEM="order-$r-4111111111111111"     # a raw key with a card number inside
SK="sk_live_51LeakTest${r}AbCdEfGhIjKlMnOp"
EMAIL="jane.doe+$r@example.com"
IDEM_SHA=$(printf %s "$IDEM" | sha256sum | cut -d' ' -f1)
SECRETS=("$CARD" "$CARD2" "4111111111111111" "$IDEM" "$SK" "$EMAIL" "$IDEM_SHA")

# The stack of start_stack, with a relay in the SPOP path: HAProxy → socat → payspoa.
export PAY_OUTCOMES=log PAY_OUTCOME_SOCK=$T/pol/outcomes.sock
alloc_port P_HTTP; alloc_port P_AGENT; alloc_port P_RELAY; alloc_port P_METRICS
HAP=http://127.0.0.1:$P_HTTP
start_accounts
# (policy_copy moves the outcome socket to $T/pol/outcomes.sock; the admin socket and
# /metrics are on, their answers searched too)
policy_copy "$T/pol" "s|^\\([[:space:]]*\\)idle_timeout_ms = 30000;|&\\n\\1admin_socket = \"$T/admin.sock\";\\n\\1metrics = \"127.0.0.1:$P_METRICS\";\\n\\1state_file = \"$T/pol/state.msgpack\";|" ||
	{ fail policy "$(head -3 "$T/pol/check.log")"; exit 1; }
grep -q "outcome_socket" "$POLICY" || { fail policy "no outcome_socket in $POLICY"; exit 1; }
start_payspoa agent "$P_AGENT" "$POLICY" || { fail start-payspoa "$(tail -5 "$T/agent.log")"; exit 1; }
start_bg relay socat -v "TCP-LISTEN:$P_RELAY,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$P_AGENT"
wait_port relay "$P_RELAY" || { fail start-relay "$(tail -3 "$T/relay.log")"; exit 1; }
start_haproxy hap "$P_HTTP" "$P_US" "$P_EU" "$P_RELAY" || { fail start-haproxy "$(tail -5 "$T/hap.log")"; exit 1; }
wait_until 10 hap_server_is hap spoe-payspoa payspoa1 UP ||
	{ fail agent-up "spoe-payspoa/payspoa1 is '$(hap_server_status hap spoe-payspoa payspoa1)'"; exit 1; }

need socat
admin() { printf '%s\n' "$1" | timeout 10 socat - "UNIX-CONNECT:$T/admin.sock"; }
admin "set sample 1" >/dev/null   # every decision sampled: show decisions shows them all

# pay [CURL-ARGS...]: a payment carrying the secrets in every forwarded field.
pay() {
	req "$HAP" POST /v1/payment_intents -d amount=1000 -d currency=usd -d payment_method=pm_card_visa \
		-d confirm=true -d "receipt_email=$EMAIL" -d "description=card $CARD" \
		-H "Idempotency-Key: $IDEM" -H "Authorization: Bearer $SK" -H "X-Card-Country: US" \
		-H "X-Card-Brand: $CARD" -H "X-Card-Funding: $EMAIL" -H "X-Pay-Class: Bearer $SK" "$@"
}
pay
first="$CODE $(hdr x-pay-reason)"
pay  # the replay: payspoa pinned the key it was given
if [[ " $(hdr x-pay-reason) " == *" pin:idem "* ]]; then
	pass secrets_reach_payspoa_idem_pinned
else
	fail secrets_reach_payspoa_idem_pinned "first: $first" "replay: $(show_last)"
fi
# the object id in the path with a card number in it; form fields pay-request forwards;
# Stripe-Account, which the outcome lines carry as well
req "$HAP" GET "/v1/payment_intents/pi_${CARD}_$CARD2" -H "Authorization: Bearer $SK" -H "X-Pay-Class: $EMAIL" \
	-H "Stripe-Account: acct_$EMAIL"
req "$HAP" POST /v1/refunds -d "payment_intent=pi_$CARD" -d "customer=cus_$CARD2" -H "Idempotency-Key: $IDEM-refund" \
	-H "Authorization: Bearer $SK" -H "X-Card-Brand: $CARD2" -H "Stripe-Account: acct_$EMAIL"

# Not vacuous: the planted values were in the SPOP frames payspoa read ...
missing=()
for s in "$CARD" "$CARD2" "$SK" "$EMAIL" "$IDEM_SHA"; do
	grep -aqiF -- "$s" "$T/relay.log" || missing+=("$s") # HAProxy's hex is upper case
done
[ ${#missing[@]} -eq 0 ] && pass secrets_in_spop_frames ||
	fail secrets_in_spop_frames "not seen between HAProxy and payspoa: ${missing[*]}"
# ... the raw key reached the payment API ...
# (the key log holds the keys of payments made: the first pay's, on either account)
curl -sS --max-time 5 "http://127.0.0.1:$P_US/__payapi/keys?prefix=order-$r" "http://127.0.0.1:$P_EU/__payapi/keys?prefix=order-$r" |
	grep -qF -- "\"$IDEM\"" && pass raw_key_reached_payapi ||
	fail raw_key_reached_payapi "payapi's key log lacks $IDEM; first payment: $first"

# What an operator sees: every admin answer and a /metrics scrape.
admin "show info; show backends; show classes; show breakers; show budgets; show forecast; show learning; show pins; show decisions 100" >"$T/admin.out"
curl -s --max-time 10 "http://127.0.0.1:$P_METRICS/metrics" >"$T/metrics.out"
# (not vacuous: the scrape has payspoa's series, and show decisions the sampled payments)
grep -q '^payspoa_decisions' "$T/metrics.out" && [ "$(grep -c '^decision .* checkout ' "$T/admin.out")" -ge 2 ] &&
	pass admin_and_metrics_read ||
	fail admin_and_metrics_read "metrics: $(head -c 200 "$T/metrics.out")" "admin: $(head -c 300 "$T/admin.out")"

# The snapshot (binary) now and at the stop, and payspoa's whole log.
kill -USR1 "${PROC[agent]}"
wait_until 10 grep -q '"event":"snapshot_written","why":"SIGUSR1"' "$T/agent.log" ||
	fail snapshot "no SIGUSR1 snapshot: $(tail -2 "$T/agent.log")"
stop hap
stop agent
grep -q '"event":"stopped"' "$T/agent.log" || fail agent-stopped "$(tail -3 "$T/agent.log")"
# ... and the outcome lines (carrying Stripe-Account) reached payspoa too.
outcomes=$(grep '"event":"stopped"' "$T/agent.log" | grep -o '"outcomes":"[0-9]*"' | grep -o '[0-9]*')
[ "${outcomes:-0}" -ge 4 ] && pass outcome_lines_reached_payspoa ||
	fail outcome_lines_reached_payspoa "outcomes counted: '${outcomes:-none}', want >= 4"

files=("$T/agent.log" "$T/admin.out" "$T/metrics.out")
[ -s "$T/pol/state.msgpack" ] && files+=("$T/pol/state.msgpack") || fail snapshot "no snapshot file"
[ "$(wc -l <"$T/agent.log")" -ge 5 ] || fail log-written "payspoa wrote almost nothing: $(cat "$T/agent.log")"
# leaks FILE: one line per secret found in FILE (any case), and per Luhn-valid run of 13
# to 19 digits.
leaks() {
	local f=$1 s d k x sum alt
	for s in "${SECRETS[@]}"; do
		grep -aqiF -- "$s" "$f" && echo "$(basename "$f"): $s"
	done
	for d in $(grep -aoE '[0-9]{13,19}' "$f" | sort -u); do
		sum=0 alt=0
		for ((k = ${#d} - 1; k >= 0; k--)); do
			x=${d:k:1}
			if [ $alt = 1 ]; then x=$((x * 2)); [ $x -gt 9 ] && x=$((x - 9)); fi
			sum=$((sum + x)); alt=$((1 - alt))
		done
		[ $((sum % 10)) = 0 ] && echo "$(basename "$f"): Luhn-valid $d"
	done
}
# The search finds what is there: every secret but the raw key (HAProxy hashes it) in
# the relay's record of the frames.
n=$(leaks "$T/relay.log" | grep -vcF -- "$IDEM")
[ "$n" -ge 6 ] && pass search_finds_planted_secrets ||
	fail search_finds_planted_secrets "found $n in the SPOP record, want >= 6:" "$(leaks "$T/relay.log")"
found=()
for f in "${files[@]}"; do
	mapfile -t -O "${#found[@]}" found < <(leaks "$f")
done
[ ${#found[@]} -eq 0 ] && pass no_secret_in_payspoa_output ||
	fail no_secret_in_payspoa_output "${found[@]}"

integ_done
