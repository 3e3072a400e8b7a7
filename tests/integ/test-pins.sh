#!/usr/bin/env bash
# test-pins.sh: pins that routing alone would break, through HAProxy and the accounts.
# 1. A refund names its payment in the body (payment_intent=pi_…), not the path: it must
#    reach the account that holds the payment (payapi answers 404 anywhere else), though
#    a refund carries no currency and would otherwise go to the default backend.
# 2. A retry keeps its account after the policy changes its mind: a GBP payment with a
#    UK card goes to stripe_eu (its UK rate is the cheapest); a SIGHUP reload makes the
#    EEA entity's UK rates the most expensive, so a new payment goes to stripe_us, while the retry of the
#    first one (same Idempotency-Key) must still reach stripe_eu, which replays it: on
#    stripe_us it would be a second charge.
. "$(dirname "$0")/lib.sh"

need_stack
start_stack

# ---- 1. a refund follows its payment -----------------------------------------------------
req "$HAP" POST /v1/payment_intents -d payment_method=pm_card_visa -d confirm=true \
	-d amount=2500 -d currency=eur -H 'X-Card-Country: DE'
pi=$(jfield id)
expect payment_on_stripe_eu "the payment's account" "$CODE $(hdr x-payapi-instance)" "200 stripe_eu"
req "$HAP" POST /v1/refunds -d payment_intent="$pi" -d amount=1000
if [ "$CODE" = 200 ] && [ "$(hdr x-payapi-instance)" = stripe_eu ] && [[ "$(hdr x-pay-reason)" == *pin:object* ]] &&
	[ "$(hdr x-pay-class)" = refund ]; then
	pass refund_follows_its_payment
else
	fail refund_follows_its_payment "payment $pi" "$(show_last)"
fi

# ---- 2. a retry keeps its account across a reload ---------------------------------------

pay() { req "$HAP" POST /v1/payment_intents -d payment_method=pm_card_visa -d confirm=true \
	-d amount=3100 -d currency=gbp -H 'X-Card-Country: GB' "$@"; }

KEY=pin-reload-$RANDOM$RANDOM
pay -H "Idempotency-Key: $KEY"
first_id=$(jfield id)
expect first_payment_on_stripe_eu "x-payapi-instance of the first attempt" "$CODE $(hdr x-payapi-instance)" "200 stripe_eu"

# The operator raises the EEA entity's UK rate (both its accounts): stripe_us is now the
# cheaper account.
sed -i 's/{ card_region = "uk"; percent = [0-9.]*; fixed = 25; all_in = true; }/{ card_region = "uk"; percent = 9.5; fixed = 25; all_in = true; }/' "$POLICY"
if [ "$(grep -c 'card_region = "uk"; percent = 9.5;' "$POLICY")" -ne 2 ] ||
	! "$PAYSPOA_BIN" -c -f "$POLICY" >/dev/null 2>&1; then
	fail reload_policy_edited "the edit did not apply or the policy is invalid"
	integ_done
fi
kill -HUP "${PROC[agent]}"
if wait_until 5 grep -q '"event":"reloaded"' "$T/agent.log"; then
	pass agent_reloaded
else
	fail agent_reloaded "$(tail -3 "$T/agent.log")"
fi

pay -H "Idempotency-Key: other-$KEY"
expect new_payment_prefers_stripe_us "x-payapi-instance of a new payment after the reload" \
	"$CODE $(hdr x-payapi-instance)" "200 stripe_us"

us0=$(payapi_stat "$P_US" requests)
pay -H "Idempotency-Key: $KEY"
us1=$(payapi_stat "$P_US" requests)
if [ "$CODE" = 200 ] && [ "$(hdr x-payapi-instance)" = stripe_eu ] && [ "$(jfield id)" = "$first_id" ] &&
	[ "$(hdr idempotent-replayed)" = true ] && [[ "$(hdr x-pay-reason)" == *pin:idem* ]] && [ "$us1" = "$us0" ]; then
	pass retry_keeps_its_account_after_reload
else
	fail retry_keeps_its_account_after_reload "first $first_id; stripe_us requests $us0 → $us1" "$(show_last)"
fi
integ_done
