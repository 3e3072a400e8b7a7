#!/usr/bin/env bash
# test-sdk-node.sh: Stripe's official Node SDK, unmodified (npm `stripe`, pinned below),
# through a real HAProxy and payspoa against the emulated accounts. The flows
# (tests/integ/sdk-node/flows.js): create + confirm, manual capture, refunds (partial,
# the rest, nothing left; listed page by page), list calls, Connect with stripeAccount,
# declines, and idempotent retries the SDK does itself after the emulator drops a first
# attempt (Idempotency-Key containing payapi-drop-first: HAProxy answers 502, the SDK
# retries with the same key).
#
# Two load shapes, each stated with its case:
#   within: 1 client, a pause of 150 ms between flows (≤ 7 flows/s, well below the
#           default policy's 25/s per endpoint), maxNetworkRetries 2 (the SDK's default):
#           no shed, no retry but the injected ones;
#   above:  24 clients back to back, no pause (hundreds of requests/s on loopback against
#           100/s per account and 25/s per endpoint), maxNetworkRetries 10: payspoa sheds
#           with 429 + Stripe-Should-Retry: true, the SDK backs off (0.5 s doubling to 5 s,
#           jittered; the Node SDK ignores Retry-After) and every flow completes.
# Then, from the emulators: no Idempotency-Key created objects on two accounts, and each
# account dropped exactly as many first attempts as retry flows it finally served (a
# retry that landed on another account than its first attempt would be dropped there
# too, and counted twice).
#
# The SDK is installed with npm into $BUILD/sdk-node (kept between runs, npm's cache
# makes a reinstall work offline).
INTEG_TIMEOUT=${INTEG_TIMEOUT:-300}
. "$(dirname "$0")/lib.sh"

STRIPE_NODE_VERSION=23.2.0
SDK_DIR=$ROOT/$BUILD/sdk-node

need node
need npm
need_stack

installed=$(node -e 'try { console.log(require(process.argv[1] + "/node_modules/stripe/package.json").version) } catch (e) {}' "$SDK_DIR")
if [ "$installed" != "$STRIPE_NODE_VERSION" ]; then
	mkdir -p "$SDK_DIR" &&
		npm install --prefix "$SDK_DIR" --prefer-offline --no-audit --no-fund --no-save \
			"stripe@$STRIPE_NODE_VERSION" >"$T/npm.log" 2>&1 ||
		{ fail sdk-install "npm install stripe@$STRIPE_NODE_VERSION failed:" "$(tail -5 "$T/npm.log")"; exit 1; }
fi
pass "sdk_installed_stripe_$STRIPE_NODE_VERSION"

start_stack

ACCOUNTS="stripe_us stripe_eu stripe_us_standby stripe_eu_standby"
RUN=$RANDOM$$

# flows NAME FLOWS CONCURRENCY MAX_RETRIES PAUSE_MS: runs flows.js; its output in
# $T/NAME.out, the summary's JSON in $T/NAME.json.
flows() {
	local name=$1
	shift
	node tests/integ/sdk-node/flows.js "$SDK_DIR" "$P_HTTP" "$RUN$name" "$@" >"$T/$name.out" 2>"$T/$name.err"
	FLOWS_RC=$?
	sed -n 's/^SUMMARY //p' "$T/$name.out" >"$T/$name.json"
}
# sj NAME EXPR: a jq expression on run NAME's summary.
sj() { jq -r "$2" "$T/$1.json" 2>/dev/null; }
bad_flows() { grep '^FLOW .* bad ' "$T/$1.out" | head -5; tail -3 "$T/$1.err"; }

# ---- within the budgets ----------------------------------------------------------------
flows within 28 1 2 150
if [ "$FLOWS_RC" = 0 ] && [ "$(sj within .bad)" = 0 ] && [ "$(sj within .flows)" = 28 ]; then
	pass within_budget_flows_end_as_documented
else
	fail within_budget_flows_end_as_documented "$(bad_flows within)"
fi
# 4 retry flows (every 7th): 4 keys retried once, no shed. The SDK sees a dropped attempt
# as HAProxy's 502, or as a closed connection (0) when HAProxy had reused its server
# connection: it then closes the client's connection too, so that the client retries.
if [ "$(sj within '.statuses["429"] // 0')" = 0 ] && [ "$(sj within .keys_retried)" = 4 ] &&
	[ "$(sj within '(.statuses["502"] // 0) + (.statuses["0"] // 0)')" = 4 ]; then
	pass within_budget_no_shed_only_injected_retries
else
	fail within_budget_no_shed_only_injected_retries "summary: $(cat "$T/within.json")"
fi

# ---- well above the budgets ------------------------------------------------------------
flows above 168 24 10 0
echo "  above: $(cat "$T/above.json")"
if [ "$FLOWS_RC" = 0 ] && [ "$(sj above .bad)" = 0 ] && [ "$(sj above .flows)" = 168 ]; then
	pass above_budget_none_failed
else
	fail above_budget_none_failed "$(bad_flows above)" "summary: $(cat "$T/above.json")"
fi
# it really was above the budgets: payspoa shed, and the SDK retried those sheds
# (no flow expects a 429: with none failed, every 429 seen was retried by the SDK)
if [ "$(sj above '.statuses["429"] // 0')" -gt 0 ] 2>/dev/null; then
	pass above_budget_shed_and_sdk_retried
else
	fail above_budget_shed_and_sdk_retried "summary: $(cat "$T/above.json")"
fi

# ---- what the accounts saw --------------------------------------------------------------
# no key created objects on two accounts
: >"$T/keys"
for a in $ACCOUNTS; do
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
# the SDK's retries landed on the account of the first attempt
bad=() total=0
for a in $ACCOUNTS; do
	dropped=$(payapi_stat "$(backend_port "$a")" dropped_first)
	served=$(( $(sj within ".retry_flows_by_instance.$a // 0") + $(sj above ".retry_flows_by_instance.$a // 0") ))
	total=$((total + ${dropped:-0}))
	[ "${dropped:-x}" = "$served" ] || bad+=("$a: dropped $dropped first attempts, served $served retry flows")
done
if [ ${#bad[@]} -eq 0 ] && [ "$total" = $((4 + 24)) ]; then
	pass sdk_retries_land_on_first_account
else
	fail sdk_retries_land_on_first_account "dropped in all: $total, want 28" "${bad[@]}"
fi

integ_done
