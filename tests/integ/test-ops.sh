#!/usr/bin/env bash
# test-ops.sh: operating payspoa through a real HAProxy: the metrics endpoint moves as
# traffic flows (decisions, reasons, outcomes from pay-response, latency histograms, SPOP
# frames) and passes `promtool check metrics`; the admin socket forces a breaker open and
# the advice HAProxy applies moves off that backend, which /metrics shows; the alert rules
# pass `promtool check rules` and `promtool test rules`; every payspoa_* series the rules
# and the Grafana dashboard name exists in a live scrape.
. "$(dirname "$0")/lib.sh"

need_stack
need promtool
need socat
need jq
alloc_port MPORT
start_stack 's/rate = 100.0; burst = 100.0;/rate = 100000.0; burst = 100000.0;/' \
	's/rate = 25.0; burst = 25.0;/rate = 100000.0; burst = 100000.0;/' \
	"s|log_level = \"info\";|&\\n\\tadmin_socket = \"$T/admin.sock\";\\n\\tmetrics = \"127.0.0.1:$MPORT\";\\n\\tstate_file = \"$T/state.msgpack\";|"

scrape() { curl -sS --max-time 10 "http://127.0.0.1:$MPORT/metrics" >"$T/$1.prom" 2>"$T/curl.err"; }
# val FILE SERIES: the value of the series written exactly so (0 when absent).
val() { awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }' "$T/$1.prom"; }
admin() { printf '%s\n' "$1" | timeout 10 socat - "UNIX-CONNECT:$T/admin.sock"; }
usd() { burst "$HAP/v1/payment_intents" "$1" 4 -d amount=1000 -d currency=usd -d payment_method=pm_card_visa \
	-d confirm=true -H 'X-Card-Country: US'; }

# ---- counters move with traffic ------------------------------------------------------------
scrape m0
usd 40 >"$T/b1.out"
# Requests HAProxy gave up on (payspoa's answer later than `timeout processing`, lib.sh
# spoe_gave_up_burst) are routed by haproxy.cfg's fallback and carry no decision: they
# must be served, and the decision counters are judged on the advised ones.
served=$(grep -c '^200 ' "$T/b1.out")
advised=$(spoe_advised_burst <"$T/b1.out" | wc -l)
gave_up=$(spoe_gave_up_burst <"$T/b1.out" | wc -l)
# every advised answer allowed; the non-exploring ones on stripe_us (an exploring one,
# reason "explore", may try the standby)
allowed=$(grep -c '^200 allow ' "$T/b1.out")
plain=$(spoe_advised_burst <"$T/b1.out" | grep -vc ' explore')
ok=$(spoe_advised_burst <"$T/b1.out" | grep -v ' explore' | grep -c '^200 allow stripe_us ')
# outcomes come back by haproxy.cfg's channel (the log line by default, pay-response with
# PAY_OUTCOMES=spoe): wait until every one is counted
want=$(( $(val m0 'payspoa_outcomes_total{kind="success"}') + allowed ))
wait_until 10 sh -c "curl -s http://127.0.0.1:$MPORT/metrics | awk '\$1 == \"payspoa_outcomes_total{kind=\\\"success\\\"}\" && \$2 >= $want { f = 1 } END { exit !f }'"
scrape m1
d_dec=$(( $(val m1 payspoa_decisions_total) - $(val m0 payspoa_decisions_total) ))
d_route=$(( $(val m1 'payspoa_decisions_by_route_total{backend="stripe_us",class="checkout",verdict="allow"}') -
	$(val m0 'payspoa_decisions_by_route_total{backend="stripe_us",class="checkout",verdict="allow"}') ))
d_ok=$(( $(val m1 'payspoa_outcomes_total{kind="success"}') - $(val m0 'payspoa_outcomes_total{kind="success"}') ))
d_lat=$(( $(val m1 payspoa_decision_latency_seconds_count) - $(val m0 payspoa_decision_latency_seconds_count) ))
# upstream latency: whichever channel reported it
d_up=$(( $(val m1 'payspoa_upstream_latency_seconds_count{channel="spoe"}') + $(val m1 'payspoa_upstream_latency_seconds_count{channel="log"}') -
	$(val m0 'payspoa_upstream_latency_seconds_count{channel="spoe"}') - $(val m0 'payspoa_upstream_latency_seconds_count{channel="log"}') ))
d_frames=$(( $(val m1 payspoa_spoa_frames_in_total) - $(val m0 payspoa_spoa_frames_in_total) ))
echo "  40 requests: $served served, $advised advised ($allowed allowed, $ok of $plain not exploring on stripe_us), $gave_up routed without advice"
if [ "$served" = 40 ] && [ "$advised" -ge 20 ] && [ "$allowed" = "$advised" ] && [ "$ok" = "$plain" ] &&
	[ "$d_dec" -ge "$advised" ] && [ "$d_route" -ge "$ok" ] && [ "$d_ok" -ge "$allowed" ] && [ "$d_lat" -ge "$advised" ] && [ "$d_up" -ge "$ok" ] &&
	[ "$d_frames" -ge "$advised" ] && [ "$(val m1 payspoa_spoa_protocol_errors_total)" = 0 ]; then
	pass metrics_move_with_traffic
else
	fail metrics_move_with_traffic "served $served of 40, advised $advised (want >= 20), allowed $allowed," \
		"not exploring $plain, of which on stripe_us $ok (want all);" \
		"decisions +$d_dec, route +$d_route, success outcomes +$d_ok, decision latency count +$d_lat," \
		"upstream +$d_up, frames +$d_frames" "$(sort "$T/b1.out" | uniq -c | head -5)"
fi

if promtool check metrics <"$T/m1.prom" >"$T/promtool.out" 2>&1; then
	pass promtool_check_metrics
else
	fail promtool_check_metrics "$(head -10 "$T/promtool.out")"
fi

# no key, id or amount in any label: every label value is a policy name or a fixed word
grep -o '="[^"]*"' "$T/m1.prom" | sort -u >"$T/labels"
bad=$(grep -E '^="(pi_|req-|pm_|integ-|ch_|cus_|[0-9a-f]{16,}|1000")' "$T/labels" | head -3)
if [ -z "$bad" ] && [ "$(wc -l <"$T/labels")" -lt 200 ]; then
	pass metrics_labels_bounded
else
	fail metrics_labels_bounded "$bad" "$(wc -l <"$T/labels") distinct label values"
fi

# ---- the admin socket steers what HAProxy does ------------------------------------------
admin "set breaker stripe_us open" >"$T/a1.out"
scrape m1b
usd 20 >"$T/b2.out"
scrape m2
# Every advised answer avoids stripe_us; an exploring one (reason "explore") may pick the
# alternative for its own sake, and then the breaker did not change the choice and is not
# named, so "breaker:stripe_us" is required on the non-exploring answers only. Answers
# without advice (HAProxy gave up) are served by the fallback and judged apart.
spoe_advised_burst <"$T/b2.out" >"$T/b2.advised"
plain=$(grep -vc ' explore' "$T/b2.advised")
named=$(grep -v ' explore' "$T/b2.advised" | grep -c ' breaker:stripe_us')
d_brk=$(( $(val m2 'payspoa_reasons_total{reason="breaker"}') - $(val m1b 'payspoa_reasons_total{reason="breaker"}') ))
if [ "$(grep -c ' stripe_us ' "$T/b2.advised")" = 0 ] && [ "$(grep -c '^200 ' "$T/b2.out")" = 20 ] &&
	[ "$(val m2 'payspoa_breaker_state{backend="stripe_us",state="open"}')" = 1 ] &&
	[ "$plain" -ge 10 ] && [ "$named" = "$plain" ] && [ "$d_brk" -ge "$named" ]; then
	pass admin_breaker_open_moves_traffic
else
	fail admin_breaker_open_moves_traffic "advised $(wc -l <"$T/b2.advised") of 20, not exploring $plain (want >= 10)," \
		"of which naming breaker:stripe_us $named (want all); breaker reasons +$d_brk" \
		"$(sort "$T/b2.out" | uniq -c | head -5)" "$(cat "$T/a1.out")"
fi
admin "set breaker stripe_us auto" >/dev/null
usd 10 >"$T/b3.out"
# advised answers back on stripe_us (an exploring one may go elsewhere), all served
b3_adv=$(spoe_advised_burst <"$T/b3.out" | grep -vc ' explore')
b3_us=$(spoe_advised_burst <"$T/b3.out" | grep -v ' explore' | grep -c '^200 allow stripe_us ')
if [ "$(grep -c '^200 ' "$T/b3.out")" = 10 ] && [ "$b3_adv" -ge 5 ] && [ "$b3_us" = "$b3_adv" ]; then
	pass admin_breaker_auto_gives_back
else
	fail admin_breaker_auto_gives_back "$b3_us of $b3_adv advised non-exploring answers from stripe_us (want all of >= 5)" \
		"$(sort "$T/b3.out" | uniq -c | head -5)"
fi
if grep -q '"event":"admin_action","command":"set breaker stripe_us open","origin":"uid=' "$T/agent.log"; then
	pass admin_action_logged
else
	fail admin_action_logged "$(grep admin_action "$T/agent.log" | head -3)"
fi

# ---- alert rules and dashboard --------------------------------------------------------------
if promtool check rules conf/monitoring/payspoa.rules.yml >"$T/rules.out" 2>&1 &&
	(cd conf/monitoring && promtool test rules payspoa.rules.test.yml) >>"$T/rules.out" 2>&1; then
	pass promtool_rules
else
	fail promtool_rules "$(tail -15 "$T/rules.out")"
fi
# every payspoa_* series the rules and dashboard use exists in the live scrape
admin "save state" >/dev/null   # the snapshot gauges appear once one is written
wait_until 10 grep -q '"event":"snapshot_written"' "$T/agent.log"
scrape m3
missing=
for n in $( (jq -r '.. | .expr? // empty' conf/monitoring/grafana-dashboard.json; cat conf/monitoring/payspoa.rules.yml) |
	grep -o 'payspoa_[a-z_]*' | grep -v '^payspoa_fleet_' | sort -u); do  # fleet series: test-fleet.sh
	grep -q "^$n[{ ]" "$T/m3.prom" || missing="$missing $n"
done
expect dashboard_and_rules_series_exist "series missing from /metrics" "${missing:-none}" none

integ_done
