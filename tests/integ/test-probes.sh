#!/usr/bin/env bash
# test-probes.sh: active probes. stripe_eu is probed (GET /v1/balance every 0.1 s) while no
# payment reaches it: switched failing, its probes alone open its breaker, and GBP
# payments (stripe_eu is their cheapest account) go to stripe_eu_standby with the reason
# breaker:stripe_eu; switched healthy, the probes close it again and GBP goes back. Then
# TLS: probes of an `openssl s_server` with a self-signed certificate fail with the
# verification error as reason, with the certificate as CA file they pass, and against
# an address the certificate does not name they fail again (host verification).
. "$(dirname "$0")/lib.sh"

need_stack
need openssl
# A prior of 10^6 outcomes: GBP's way back is the breaker's business here, not the
# posteriors'. Without it, when the health probes closed the breaker before any payment
# was a half-open probe, the standby's ~40 approvals (the emulated API approves all:
# P(auth) 0.97 against stripe_eu's prior 0.93) and its loopback latency against
# stripe_eu's policy 280 ms kept GBP there with reason `cost` (1 run in 6).
start_stack '$a breaker = { consecutive = 3; open_s = 1.0; open_max_s = 2.0; jitter = 0.0; probes = 2; window_s = 3.0; min_calls = 5; };' \
	'$a learning = { prior_weight = 1000000.0; };' \
	'/^backends/,$ s|^\([[:space:]]*name = "stripe_eu";\)|\1 probe_url = "http://127.0.0.1:@P_EU@/v1/balance"; probe_interval_s = 0.1; probe_timeout_s = 1.0;|'

gbp() {
	req "$HAP" POST /v1/payment_intents -d amount=1000 -d currency=gbp -d payment_method=pm_card_visa \
		-d confirm=true -H 'X-Card-Country: GB'
	echo "$CODE $(hdr x-pay-backend) $(hdr x-payapi-instance) $(hdr x-pay-reason | tr ' ' ,)" >>"$T/seen"
}
gbp_until() { # gbp_until SECONDS PATTERN: a GBP payment every 0.1 s until the last line matches
	local deadline=$((SECONDS + $1))
	while [ "$SECONDS" -lt "$deadline" ]; do
		gbp
		tail -1 "$T/seen" | grep -qE "$2" && return 0
		sleep 0.1
	done
	return 1
}
seen() { sed 's/^/    /' "$T/seen" | tail -12; }
injected() { [ "$(payapi_stat "$P_EU" injected_errors)" -ge "$1" ]; }
balance_ok() { [ "$(curl -sS --max-time 5 "http://127.0.0.1:$P_EU/__payapi/stats" | grep -o '"200":[0-9]*' | cut -d: -f2)" -ge "$1" ]; }

# healthy: probes answered 200, GBP goes to stripe_eu
: >"$T/seen"
if wait_until 10 balance_ok 5 && gbp_until 10 '^200 stripe_eu stripe_eu '; then pass healthy_probes_keep_routing
else fail healthy_probes_keep_routing "code advised instance reason:" "$(seen)"; fi

# failing: no payment is sent until the probes alone have met 6 errors (3 in a row open
# the breaker); then GBP avoids stripe_eu (to whichever account scores next: the standby,
# or stripe_us once the standby's budget is spent), a half-open batch's probe at most aside
: >"$T/seen"
payapi_mode "$P_EU" mode=failing
if wait_until 10 injected 6; then
	for i in $(seq 10); do gbp; sleep 0.05; done
	if [ "$(grep -c ' stripe_eu stripe_eu ' "$T/seen")" -le 1 ] && [ "$(grep -c '^200 ' "$T/seen")" -ge 9 ]; then
		pass probe_failures_open_the_breaker
	else
		fail probe_failures_open_the_breaker "code advised instance reason:" "$(seen)"
	fi
else
	fail probe_failures_open_the_breaker "injected errors $(payapi_stat "$P_EU" injected_errors) (probes)"
fi
grep -q '"event":"probe_failed","backend":"stripe_eu".*"reason":"HTTP status 500, expected 200"' "$T/agent.log" &&
	pass probe_failure_logged_with_reason || fail probe_failure_logged_with_reason "$(grep probe_ "$T/agent.log" | tail -3)"

# while it fails, it stays avoided (half-open batches are met by failing probes first;
# a payment may still be one of a batch's probes now and then: at most one per batch,
# and a batch at most every open_s, 1 s, so the bound follows the loop's own duration
# and not the machine's speed)
: >"$T/seen"
t0=$(date +%s%N)
for i in $(seq 15); do gbp; sleep 0.1; done
batches=$((1 + ($(date +%s%N) - t0) / 1000000000))
to_eu=$(grep -c ' stripe_eu stripe_eu ' "$T/seen")
if [ "$(grep -c '^200 ' "$T/seen")" -ge $((15 - batches)) ] && [ "$to_eu" -le "$batches" ] && [ "$to_eu" -lt 8 ]; then
	pass breaker_stays_open_while_probes_fail
else
	fail breaker_stays_open_while_probes_fail "half-open batches at most $batches; code advised instance reason:" "$(seen)"
fi

# healthy again: the probes close it, GBP goes back to stripe_eu
payapi_mode "$P_EU" mode=healthy
: >"$T/seen"
if gbp_until 20 '^200 stripe_eu stripe_eu '; then pass probes_close_the_breaker_again
else fail probes_close_the_breaker_again "code advised instance reason:" "$(seen)"; fi
# (a payment taken as a half-open probe may bring GBP back before the next health probe
# passes and logs it: the log line is awaited)
wait_until 10 grep -q '"event":"probe_recovered","backend":"stripe_eu"' "$T/agent.log" && pass probe_recovery_logged ||
	fail probe_recovery_logged "$(grep probe_ "$T/agent.log" | tail -3)"

stop agent
sent=$(grep -o '"probes_sent":"[0-9]*"' "$T/agent.log" | cut -d'"' -f4)
failed=$(grep -o '"probes_failed":"[0-9]*"' "$T/agent.log" | cut -d'"' -f4)
if [ "${sent:-0}" -ge 10 ] && [ "${failed:-0}" -ge 6 ] && [ "$failed" -lt "$sent" ]; then pass probes_counted
else fail probes_counted "probes_sent '$sent', probes_failed '$failed'"; fi

# ---- TLS ---------------------------------------------------------------------------------------

alloc_port P_TLS
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost \
	-keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl-req.log" 2>&1 || { fail tls-cert "$(cat "$T/openssl-req.log")"; exit 1; }
start_bg tls openssl s_server -quiet -accept "127.0.0.1:$P_TLS" -cert "$T/cert.pem" -key "$T/key.pem" -www
wait_port tls "$P_TLS" || { fail tls-server "$(tail -3 "$T/tls.log")"; exit 1; }
# three probes of the same server: without the CA (self-signed: refused), with it
# (passes), with it but by an address the certificate does not name (refused)
alloc_port P_TAGENT
policy_copy "$T/tls-pol" \
	"/^backends/,\$ s|^\([[:space:]]*name = \"stripe_us\";\)|\1 probe_url = \"https://localhost:$P_TLS/\"; probe_interval_s = 0.2;|" \
	"/^backends/,\$ s|^\([[:space:]]*name = \"stripe_eu\";\)|\1 probe_url = \"https://localhost:$P_TLS/\"; probe_interval_s = 0.2; probe_ca_file = \"$T/cert.pem\";|" \
	"/^backends/,\$ s|^\([[:space:]]*name = \"stripe_eu_standby\";\)|\1 probe_url = \"https://127.0.0.1:$P_TLS/\"; probe_interval_s = 0.2; probe_ca_file = \"$T/cert.pem\";|" ||
	{ fail tls-policy "$(cat "$T/tls-pol/check.log")"; exit 1; }
start_payspoa tagent "$P_TAGENT" "$POLICY" || { fail tls-payspoa "$(tail -3 "$T/tagent.log")"; exit 1; }
probe_log() { grep "\"event\":\"probe_$1\",\"backend\":\"$2\"" "$T/tagent.log" | head -1; }
if wait_until 15 eval '[ -n "$(probe_log failed stripe_us)" ] && [ -n "$(probe_log failed stripe_eu_standby)" ]'; then
	r=$(probe_log failed stripe_us)
	if echo "$r" | grep -q 'SSL certificate problem: self-signed certificate'; then pass tls_self_signed_refused
	else fail tls_self_signed_refused "$r"; fi
	r=$(probe_log failed stripe_eu_standby)
	if echo "$r" | grep -qi 'no alternative certificate subject name matches'; then pass tls_wrong_host_refused
	else fail tls_wrong_host_refused "$r"; fi
else
	fail tls_bad_certificates_refused "$(grep probe_ "$T/tagent.log" | tail -4)"
fi
# the trusted one: probes answered (s_server -www answers 200), none failed
stop tagent
if [ -z "$(probe_log failed stripe_eu)" ] && [ "$(grep -o '"probes_sent":"[0-9]*"' "$T/tagent.log" | cut -d'"' -f4)" -ge 3 ]; then
	pass tls_trusted_ca_passes
else
	fail tls_trusted_ca_passes "$(grep 'probe_' "$T/tagent.log" | tail -4)"
fi

integ_done
