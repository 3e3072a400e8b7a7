# tests/integ/sdk-lib.sh: the cases test-sdk-node.sh and test-sdk-python.sh share (sourced
# instead of lib.sh, which it sources; sdk_cases once the stack runs): Stripe's own SDK
# runs the flows of
# tests/integ/sdk-<lang>/flows.* through HAProxy and payspoa in two load shapes, then the
# emulated accounts are asked what they saw.
#
# SDK_RUN (an array) is the command that runs the flows without its last five arguments:
# RUN FLOWS CONCURRENCY MAX_RETRIES PAUSE_MS. The flows are seven kinds in turn (create +
# confirm, manual capture, refunds, lists, Connect, declines, the SDK's own retry after a
# dropped first attempt), so every seventh is a retry flow.
#
# The stack runs with the default policy but for one budget, SDK_ENDPOINT_BUDGET: 2/s per
# account x endpoint (burst 6) instead of 25/s, so that both shapes are what they claim
# on any machine. Creating PaymentIntents is the busiest endpoint. usd goes to the US
# entity, eur and gbp to the EU one; each entity's standby account takes over from the
# usual one only once that one is over budget:
#   within: 1 client, 500 ms between flows, max retries 2 (the SDKs' default): at most 6
#           creates per entity in 7 flows (3 of them the retry flow's), so at most 1.7/s
#           however fast the machine, inside the budget with its burst: no shed, no
#           retry but the injected ones;
#   above:  24 clients back to back, no pause, max retries 20: some 50 creates per
#           entity, whose two accounts let 12 + 4/s of them through. The slowest machine
#           seen (3 suites side by side on 2 shared cores) ran twice this shape's
#           attempts in 4 s; unthrottled, the shape would have to last 9.5 s to stay
#           inside. So payspoa sheds with 429 + Stripe-Should-Retry: true, the SDK backs
#           off by itself (0.5 s doubling to 5 s, jittered; Retry-After is ignored) and
#           every flow completes: the budgets drain the shape in about 10 s, 20 retries
#           wait over a minute.
# Then: no Idempotency-Key created objects on two accounts, and each account dropped
# exactly as many first attempts as retry flows it finally served (a retry that landed on
# another account than its first attempt would be dropped there too, and counted twice).

INTEG_TIMEOUT=${INTEG_TIMEOUT:-300}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need jq
need_stack

SDK_ACCOUNTS="stripe_us stripe_eu stripe_us_standby stripe_eu_standby"
SDK_ENDPOINT_BUDGET="endpoint = { rate = 2.0; burst = 6.0; };"
SDK_RUN_ID=$RANDOM$$

# sdk_start_stack: start_stack with SDK_ENDPOINT_BUDGET in place of the default policy's
# endpoint budget (the run stops with a FAIL when the default's line is not found).
sdk_start_stack() {
	start_stack "s|^\([[:space:]]*\)endpoint = {.*|\1$SDK_ENDPOINT_BUDGET|"
	grep -qF "$SDK_ENDPOINT_BUDGET" "$POLICY" ||
		{ fail sdk-budget "no 'endpoint = {' line in $POLICY to set the budget"; exit 1; }
}

# sdk_flows NAME FLOWS CONCURRENCY MAX_RETRIES PAUSE_MS: output in $T/NAME.out, the
# summary's JSON in $T/NAME.json, exit status in FLOWS_RC.
sdk_flows() {
	local name=$1
	shift
	"${SDK_RUN[@]}" "$SDK_RUN_ID$name" "$@" >"$T/$name.out" 2>"$T/$name.err"
	FLOWS_RC=$?
	sed -n 's/^SUMMARY //p' "$T/$name.out" >"$T/$name.json"
}
# sj NAME EXPR: a jq expression on run NAME's summary.
sj() { jq -r "$2" "$T/$1.json" 2>/dev/null; }
sdk_bad_flows() { grep '^FLOW .* bad ' "$T/$1.out" | head -5; tail -3 "$T/$1.err"; }

# sdk_cases: every case, both shapes.
sdk_cases() {
	local a dropped served total=0 dups nkeys bad=()

	sdk_flows within 28 1 2 500
	if [ "$FLOWS_RC" = 0 ] && [ "$(sj within .bad)" = 0 ] && [ "$(sj within .flows)" = 28 ]; then
		pass within_budget_flows_end_as_documented
	else
		fail within_budget_flows_end_as_documented "$(sdk_bad_flows within)"
	fi
	# 4 retry flows: 4 keys retried once, no shed. The SDK sees a dropped attempt as
	# HAProxy's 502, or as a closed connection (0) when HAProxy had reused its server
	# connection: it then closes the client's connection too, so that the client retries.
	if [ "$(sj within '.statuses["429"] // 0')" = 0 ] && [ "$(sj within .keys_retried)" = 4 ] &&
		[ "$(sj within '(.statuses["502"] // 0) + (.statuses["0"] // 0)')" = 4 ]; then
		pass within_budget_no_shed_only_injected_retries
	else
		fail within_budget_no_shed_only_injected_retries "summary: $(cat "$T/within.json")"
	fi

	sdk_flows above 84 24 20 0
	echo "  above: $(cat "$T/above.json")"
	if [ "$FLOWS_RC" = 0 ] && [ "$(sj above .bad)" = 0 ] && [ "$(sj above .flows)" = 84 ]; then
		pass above_budget_none_failed
	else
		fail above_budget_none_failed "$(sdk_bad_flows above)" "summary: $(cat "$T/above.json")"
	fi
	# it really was above the budgets: payspoa shed. No flow expects a 429: with none
	# failed, every 429 seen was retried by the SDK.
	if [ "$(sj above '.statuses["429"] // 0')" -gt 0 ] 2>/dev/null; then
		pass above_budget_shed_and_sdk_retried
	else
		fail above_budget_shed_and_sdk_retried "summary: $(cat "$T/above.json")"
	fi

	: >"$T/keys"
	for a in $SDK_ACCOUNTS; do
		curl -sS --max-time 5 "http://127.0.0.1:$(backend_port "$a")/__payapi/keys" |
			jq -r '.keys[]' | sort -u | sed "s/^/$a /" >>"$T/keys"
	done
	dups=$(awk '{ print $2 }' "$T/keys" | sort | uniq -d)
	nkeys=$(wc -l <"$T/keys")
	if [ -z "$dups" ] && [ "$nkeys" -gt 100 ]; then
		pass no_key_charged_on_two_accounts
	else
		fail no_key_charged_on_two_accounts "$nkeys keys; on two accounts: $(echo "$dups" | head -5 | tr '\n' ' ')"
	fi
	for a in $SDK_ACCOUNTS; do
		dropped=$(payapi_stat "$(backend_port "$a")" dropped_first)
		served=$(( $(sj within ".retry_flows_by_instance.$a // 0") + $(sj above ".retry_flows_by_instance.$a // 0") ))
		total=$((total + ${dropped:-0}))
		[ "${dropped:-x}" = "$served" ] || bad+=("$a: dropped $dropped first attempts, served $served retry flows")
	done
	if [ ${#bad[@]} -eq 0 ] && [ "$total" = $((4 + 12)) ]; then
		pass sdk_retries_land_on_first_account
	else
		fail sdk_retries_land_on_first_account "dropped in all: $total, want 16" "${bad[@]}"
	fi
}

# sdk_install_lock / sdk_install_unlock: around the check and install of $SDK_DIR, kept
# in the build folder, which the layer's two runs side by side (tests/run all) share.
sdk_install_lock() {
	exec 9>"$SDK_DIR.lock"
	flock -w "$(scaled 600)" 9 || { fail sdk-install "$SDK_DIR.lock held for $(scaled 600) s"; exit 1; }
}
sdk_install_unlock() { exec 9>&-; }

