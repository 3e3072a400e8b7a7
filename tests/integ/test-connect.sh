#!/usr/bin/env bash
# test-connect.sh: Stripe Connect through a real HAProxy. The policy is
# conf/examples/connect.conf with its platform backends renamed to the ones haproxy.cfg
# knows (platform_us → stripe_us, platform_eu → stripe_eu). A connected account belongs
# to one platform: every request with its Stripe-Account must reach that platform's
# account, whatever the cost or the currency says; an unknown connected account stays with
# the platform that first served it. payapi scopes objects by Stripe-Account too, so a
# request on the wrong platform answers 404.
. "$(dirname "$0")/lib.sh"

need_stack
POLICY_FILE=examples/connect.conf start_stack 's/platform_us/stripe_us/g' 's/platform_eu/stripe_eu/g'

# as ACCOUNT CURRENCY [CURL-ARGS...]: a payment for connected account ACCOUNT.
as() {
	local acct=$1 cur=$2
	shift 2
	req "$HAP" POST /v1/payment_intents -H "Stripe-Account: $acct" -d amount=1500 -d currency="$cur" \
		-d payment_method=pm_card_visa -d confirm=true "$@"
}
# on NAME BACKEND REASON: the last answer came from BACKEND, as advised, for REASON.
on() {
	if [ "$CODE" = 200 ] && [ "$(hdr x-pay-backend)" = "$2" ] && [ "$(hdr x-payapi-instance)" = "$2" ] &&
		[[ " $(hdr x-pay-reason) " == *" $3 "* ]]; then
		pass "$1"
	else
		fail "$1" "want 200 from $2 for $3" "$(show_last)"
	fi
}

# Without Stripe-Account, an EEA card in EUR goes to the cheaper EEA platform (most of
# the time: payspoa explores the other one now and then)...
n=0
for i in 1 2 3 4 5; do
	req "$HAP" POST /v1/payment_intents -d amount=1500 -d currency=eur -d payment_method=pm_card_visa \
		-d confirm=true -H 'X-Card-Country: DE'
	[ "$CODE" = 200 ] && [ "$(hdr x-payapi-instance)" = stripe_eu ] && n=$((n + 1))
done
[ "$n" -ge 3 ] && pass platform_payment_by_cost ||
	fail platform_payment_by_cost "$n of 5 EUR payments on stripe_eu" "$(show_last)"
# ...but for a seller onboarded on the US platform it must go there.
as acct_1SELLERUS000001 eur -H 'X-Card-Country: DE'
on known_connected_account_beats_cost stripe_us pin:connect
# A seller of the EEA platform, in a currency only the US platform settles: still the EEA
# platform (elsewhere the seller does not exist).
as acct_1SELLEREU000001 usd
on known_connected_account_beats_currency stripe_eu pin:connect

# An unknown connected account: wherever its first request went, it stays there.
acct=acct_1NEWSELLER$RANDOM
as "$acct" eur -H 'X-Card-Country: DE'
first=$(hdr x-payapi-instance) pi=$(jfield id)
bad=()
for cur in usd gbp eur; do
	as "$acct" "$cur" -H 'X-Card-Country: US'
	[ "$CODE" = 200 ] && [ "$(hdr x-payapi-instance)" = "$first" ] &&
		[[ "$(hdr x-pay-reason)" == *pin:account* ]] || bad+=("$cur: $(show_last)")
done
req "$HAP" GET "/v1/payment_intents/$pi" -H "Stripe-Account: $acct"
[ "$CODE" = 200 ] && [ "$(jfield id)" = "$pi" ] || bad+=("retrieve: $(show_last)")
if [ -n "$first" ] && [ ${#bad[@]} -eq 0 ]; then
	pass unknown_connected_account_sticks
else
	fail unknown_connected_account_sticks "first request served by '$first'" "${bad[@]}"
fi

integ_done
