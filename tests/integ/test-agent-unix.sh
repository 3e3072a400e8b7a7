#!/usr/bin/env bash
# test-agent-unix.sh: the default transport between HAProxy and payspoa, a unix stream
# socket (conf/payspoa.conf's listener, haproxy.cfg's PAY_AGENT_ADDR default: unix@ + the
# same path; the other integration tests use loopback TCP), through real HAProxy: payspoa makes
# the socket file 0660, HAProxy's spop-check marks the agent UP over it, payspoa's advice
# routes payments, outcomes come back by the log channel, and a stopped agent's socket is
# refused and HAProxy fails open. The path is this test's own (the default lives in /tmp,
# shared by every instance on a host).
. "$(dirname "$0")/lib.sh"

need_stack
alloc_port P_HTTP; alloc_port MPORT
HAP=http://127.0.0.1:$P_HTTP
S=$T/agent.sock
start_accounts
policy_copy "$T/pol" "s|log_level = \"info\";|&\\n\\tmetrics = \"127.0.0.1:$MPORT\";|" ||
	{ fail policy "cannot derive the policy: $(head -3 "$T/pol/check.log" 2>/dev/null)"; exit 1; }
start_bg agent "$PAYSPOA_BIN" -d -f "$POLICY" -l "unix:$S" || { fail start-payspoa; exit 1; }
wait_until 10 test -S "$S" || { fail start-payspoa "no socket $S: $(tail -3 "$T/agent.log")"; exit 1; }

if [ "$(stat -c %a "$S")" = 660 ]; then pass agent_socket_mode_0660; else fail agent_socket_mode_0660 "$(ls -l "$S")"; fi

# the AGENT_PORT argument is not used: PAY_AGENT_ADDR comes after it and wins
start_haproxy hap "$P_HTTP" "$P_US" "$P_EU" 1 PAY_AGENT_ADDR="unix@$S" ||
	{ fail start-haproxy "$(tail -5 "$T/hap.log")"; exit 1; }
if wait_until 10 hap_server_is hap spoe-payspoa payspoa1 UP; then
	pass spop_check_up_over_unix
else
	fail spop_check_up_over_unix "spoe-payspoa/payspoa1 is '$(hap_server_status hap spoe-payspoa payspoa1)'"
fi

outcomes() {
	curl -sS --max-time 10 "http://127.0.0.1:$MPORT/metrics" 2>/dev/null |
		awk '$1 == "payspoa_outcomes_total{kind=\"success\"}" { print $2 + 0; f = 1 } END { if (!f) print 0 }'
}
o0=$(outcomes)
# Every payment gets advice (x-pay-backend) and the account that answers is the one
# advised (x-payapi-instance): an EUR payment an account of the EEA entity, a USD one of
# the US entity (conf/payspoa.conf; which of the two accounts, exploration may vary).
ok=0 seen=
for i in $(seq 10); do
	if [ $((i % 2)) = 0 ]; then cur=eur cc=FR want=stripe_eu; else cur=usd cc=US want=stripe_us; fi
	req "$HAP" POST /v1/payment_intents -d amount=1000 -d currency=$cur -d payment_method=pm_card_visa \
		-d confirm=true -H "X-Card-Country: $cc" -H "Idempotency-Key: unix-$$-$i"
	seen="$seen $CODE:$(hdr x-pay-backend):$(hdr x-payapi-instance)"
	case $(hdr x-pay-backend) in $want | ${want}_standby) ;; *) continue ;; esac
	[ "$CODE" = 200 ] && [ "$(hdr x-payapi-instance)" = "$(hdr x-pay-backend)" ] && ok=$((ok + 1))
done
if [ "$ok" = 10 ]; then pass advice_routes_over_unix; else fail advice_routes_over_unix "$ok of 10 as advised:$seen"; fi
if wait_until 10 sh -c "[ \$(curl -sS --max-time 5 http://127.0.0.1:$MPORT/metrics 2>/dev/null | awk '\$1 == \"payspoa_outcomes_total{kind=\\\"success\\\"}\" { print \$2 + 0 }') -ge $((o0 + 10)) ]"; then
	pass outcomes_learned
else
	fail outcomes_learned "success outcomes $o0 -> $(outcomes), want +10"
fi

# The agent stopped: its socket file goes, HAProxy's check marks it DOWN and payments are
# served without advice (fail open, haproxy.cfg's default).
stop agent
if wait_until 10 hap_server_is hap spoe-payspoa payspoa1 DOWN; then pass agent_down_when_stopped; else
	fail agent_down_when_stopped "spoe-payspoa/payspoa1 is '$(hap_server_status hap spoe-payspoa payspoa1)'"; fi
[ -e "$S" ] && fail socket_removed_at_exit "$(ls -l "$S")" || pass socket_removed_at_exit
req "$HAP" POST /v1/payment_intents -d amount=1000 -d currency=eur -d payment_method=pm_card_visa \
	-d confirm=true -H "X-Card-Country: FR"
if [ "$CODE" = 200 ] && [ -z "$(hdr x-pay-backend)" ]; then pass fails_open_without_agent; else
	fail fails_open_without_agent "code $CODE, advice '$(hdr x-pay-backend)'"; fi

integ_done
