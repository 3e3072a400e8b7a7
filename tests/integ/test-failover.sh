#!/usr/bin/env bash
# test-failover.sh: every currency of the default policy (conf/payspoa.conf) fails over,
# through a real HAProxy. For each currency its backends accept (read from the policy),
# tests/loadgen drives open-loop checkout traffic in that currency with a card of the
# currency's own country (ISO 4217: its first two letters; the euro's: DE), which makes
# the usual backend clear; that backend's emulated account is switched to failing
# (every answer a 500). Then:
#  - no request that started more than 1 s after the switch is advised to, or served by,
#    the failing backend, except the probes of its half-open breaker (X-Pay-Reason
#    probe:NAME);
#  - the requests that went elsewhere succeed (200);
#  - compliance holds all along: every request is advised to and served by a backend the
#    policy allows for that currency (EUR never by the US entity);
#  - healed, the account passes its breaker's probes again (a probe:NAME request
#    answered 200 by it).
# Each currency starts from a fresh payspoa (restarted with the same policy): what the
# learning loop drew from the previous currency's outage (the standby, which served it,
# has learned a success rate above its prior, and the emulated accounts authorise every
# test card) must not decide which backend is usual for the next one.
# The breaker only opens for 1 s (2 s at most) here, so that recovery takes seconds, not
# the default 20 s; what opens it (consecutive failures, failure rate) is the default.
# Judged on events and shares; the volume floors are far below what a slow machine sends.
INTEG_TIMEOUT=${INTEG_TIMEOUT:-480}
. "$(dirname "$0")/lib.sh"

need_stack
# The accounts' budgets are lifted (as in test-ops): this test is about failover, and on a
# loaded machine loadgen catching up on its schedule sends bursts that the default 25/s
# budget spills to the standby (seen: 20 of 64 AUD requests "spill"), which is the budget's
# decision, not the breaker's.
start_stack '$a breaker = { open_s = 1.0; open_max_s = 2.0; jitter = 0.0; };' \
	's/rate = 100.0; burst = 100.0;/rate = 100000.0; burst = 100000.0;/' \
	's/rate = 25.0; burst = 25.0;/rate = 100000.0; burst = 100000.0;/'
LOAD_RATE=${LOAD_RATE:-20}

# policy_backends FILE: one line per backend of the policy file: "name entity cur...".
# (The shipped layout: one key per line inside `backends = ( ... );`.)
policy_backends() {
	awk '
		/^[[:space:]]*backends[[:space:]]*=/ { inb = 1; next }
		inb && /^\);/ { inb = 0 }
		!inb { next }
		/^[[:space:]]*name[[:space:]]*=/ { split($0, q, "\""); name = q[2] }
		/^[[:space:]]*entity[[:space:]]*=/ { split($0, q, "\""); entity = q[2] }
		/^[[:space:]]*currencies[[:space:]]*=/ {
			n = split($0, q, "\""); curs = ""
			for (i = 2; i <= n; i += 2) curs = curs " " tolower(q[i])
		}
		/^[[:space:]]*}/ && name != "" { print name, entity curs; name = entity = curs = "" }
	' "$1"
}

# policy_allowed FILE CUR: the backends the policy allows for a CUR payment: they accept
# CUR and every compliance rule on CUR lets them through (by entity or backend name).
# Rules restricted to card regions are left out (a larger set: a weaker check, never a
# false failure).
policy_allowed() {
	local file=$1 cur=$2
	{
		policy_backends "$file" | sed 's/^/B /'
		awk '
			/^[[:space:]]*compliance[[:space:]]*=/ { inc = 1; next }
			inc && /^\);/ { inc = 0 }
			inc { rule = rule $0 }
			inc && /}/ { print "R " rule; rule = "" }
		' "$file"
	} | awk -v cur="$cur" '
		# the names listed in KEY = [ ... ] of rule r, space-separated, "" when absent
		function list(r, key,    s, n, q, i, out) {
			if (!match(r, key "[[:space:]]*=[[:space:]]*\\[[^]]*\\]")) return ""
			s = substr(r, RSTART, RLENGTH); n = split(s, q, "\""); out = " "
			for (i = 2; i <= n; i += 2) out = out tolower(q[i]) " "
			return out
		}
		$1 == "B" { nb++; bn[nb] = $2; be[nb] = $3; bc[nb] = " " tolower(substr($0, index($0, $4))) " " }
		$1 == "R" {
			r = substr($0, 3)
			if (list(r, "card_regions") != "") next
			c = list(r, "currencies")
			if (c != "" && index(c, " " cur " ") == 0) next
			nr++; re[nr] = list(r, "entities"); rb[nr] = list(r, "backends")
		}
		END {
			for (i = 1; i <= nb; i++) {
				if (index(bc[i], " " cur " ") == 0) continue
				ok = 1
				for (j = 1; j <= nr; j++)
					if (index(re[j], " " be[i] " ") == 0 && index(rb[j], " " bn[i] " ") == 0) ok = 0
				if (ok) print bn[i]
			}
		}'
}

currencies=$(policy_backends conf/payspoa.conf | cut -d' ' -f3- | tr ' ' '\n' | awk 'NF && !seen[$0]++')
if [ -n "$currencies" ]; then
	pass policy_read
	echo "  currencies: $(echo $currencies)"
else
	fail policy_read "no currency found in conf/payspoa.conf"
	integ_done
fi

# country CUR: a card country that makes CUR's usual backend clear.
country() {
	case $1 in
	eur) echo DE ;;
	*) echo "${1:0:2}" | tr a-z A-Z ;;
	esac
}

# window FROM TO: the load's lines HAProxy routed on payspoa's advice; window_all also
# those it routed without (payspoa answered after `timeout processing`: X-Pay-Error in
# column 8, lib.sh spoe_gave_up_load), judged apart: served, within compliance.
window_all() { load_window "$LOAD" "$@"; }
window() { window_all "$@" | spoe_advised_load 8; }
agent_answers() { req "$HAP" GET /v1/balance; [ -n "$(hdr x-pay-verdict)" ]; }
# share WHO: "k n", k of the n non-probe requests read on stdin advised to WHO.
share() { awk -F'|' -v who="$1" '$6 !~ /probe:/ { n++; if ($4 == who) k++ } END { printf "%d %d\n", k, n }'; }

# Columns of a load's lines: start|latency|status|advised|instance|reason|served-by|error.
for cur in $currencies; do
	cc=$(country "$cur")
	allowed=" $(policy_allowed conf/payspoa.conf "$cur" | tr '\n' ' ')"
	LOAD=load-$cur
	# a fresh agent, answering before any payment is sent (fail-open requests would go to
	# HAProxy's default_backend, whatever compliance says)
	stop agent
	start_payspoa agent "$P_AGENT" "$POLICY" || { fail start-payspoa "$(tail -5 "$T/agent.log")"; exit 1; }
	if ! wait_until 15 agent_answers; then
		fail "${cur}_agent_answers" "no X-Pay-Verdict 15 s after the restart" "$(show_last)"
		continue
	fi
	printf 'POST /v1/payment_intents amount=1000&currency=%s&payment_method=pm_card_visa&confirm=true\n\tX-Card-Country: %s\n\tX-Card-Brand: visa\n' \
		"$cur" "$cc" >"$T/$cur.list"
	t0=$(now)
	start_load "$LOAD" "$T/$cur.list" -r "$LOAD_RATE" -c 256 -t 5 \
		-o x-pay-backend -o x-payapi-instance -o x-pay-reason -o x-pay-served-by -o x-pay-error

	# ---- healthy: the usual backend is clear --------------------------------------------
	sleep 2.5
	pref=$(window "$(plus "$t0" 1)" "$(now)" | awk -F'|' '$6 !~ /probe:/ { n[$4]++ } END { for (b in n) print n[b], b }' |
		sort -rn | head -1 | cut -d' ' -f2)
	read -r k n < <(window "$(plus "$t0" 1)" "$(now)" | share "$pref")
	port=$(backend_port "$pref")
	if [ "$n" -ge 10 ] && [ "$k" -ge $((n * 9 / 10)) ] && [[ "$allowed" == *" $pref "* ]] && [ -n "$port" ]; then
		pass "${cur}_usual_backend_clear"
		echo "  $cur with a $cc card: $k of $n on $pref; allowed:$allowed"
	else
		fail "${cur}_usual_backend_clear" "$k of $n advised to '$pref' (want >= 90 % of >= 10); allowed:$allowed" \
			"$(window "$t0" "$(now)" | tail -5)"
		stop_load "$LOAD" >/dev/null
		continue
	fi

	# ---- the usual backend's account fails ----------------------------------------------
	payapi_mode "$port" mode=failing || { fail switch-failing "payapi refused the mode"; exit 1; }
	t_fail=$(now)
	sleep 3
	payapi_mode "$port" mode=healthy || { fail switch-healthy "payapi refused the mode"; exit 1; }
	t_heal=$(now)

	# ---- healed: the breaker's probes find it healthy ------------------------------------
	probe_ok() {
		window "$t_heal" "$(now)" | awk -F'|' -v b="$pref" '$5 == b && $3 == 200 && $6 ~ ("probe:" b "( |$)")' | grep -q .
	}
	if wait_until 15 probe_ok; then
		pass "${cur}_healed_${pref}_probed"
	else
		fail "${cur}_healed_${pref}_probed" "no probe:$pref answered 200 by it within 15 s of the heal" \
			"$(window "$t_heal" "$(now)" | tail -5)"
	fi
	stop_load "$LOAD" >/dev/null   # every request has ended and has its line

	# Judged once every request has its line: nothing advised to or served by the failing
	# backend from 1 s after the switch until the heal, probes excepted...
	stale=$(window "$(plus "$t_fail" 1)" "$t_heal" |
		awk -F'|' -v b="$pref" '$6 !~ /probe:/ && ($4 == b || $5 == b || $7 == b)')
	read -r k n < <(window "$(plus "$t_fail" 1)" "$t_heal" | share "$pref")
	last=$(window "$t_fail" "$t_heal" | awk -F'|' -v b="$pref" '$6 !~ /probe:/ && $4 == b { t = $1 } END { print t }')
	echo "  $cur: last request advised to $pref $(awk -v a="$t_fail" -v b="${last:-$t_fail}" 'BEGIN { printf "%.3f", b - a }') s after the switch;" \
		"from 1 s on, $((n - k)) requests elsewhere:" \
		"$(window "$(plus "$t_fail" 1)" "$t_heal" | awk -F'|' '$6 !~ /probe:/ { print $4 }' | sort | uniq -c | tr '\n' ' ')"
	if [ -z "$stale" ] && [ "$n" -ge 10 ]; then
		pass "${cur}_moved_off_${pref}_within_1s"
	else
		fail "${cur}_moved_off_${pref}_within_1s" "$((n - k)) of $n requests from 1 s after the switch elsewhere (want all of >= 10); on $pref:" \
			"$(printf '%s\n' "$stale" | head -5)"
	fi
	# ... the requests that went elsewhere succeeded...
	read -r moved bad < <(window "$t_fail" "$t_heal" |
		awk -F'|' -v b="$pref" '$6 !~ /probe:/ && $4 != b { n++; if ($3 != 200 || $5 != $4 || $7 != $4) k++ } END { printf "%d %d\n", n, k }')
	if [ "$moved" -ge 10 ] && [ "$bad" -eq 0 ]; then
		pass "${cur}_moved_requests_succeed"
	else
		fail "${cur}_moved_requests_succeed" "$bad of $moved requests advised elsewhere not answered 200 by the advised backend" \
			"$(window "$t_fail" "$t_heal" | awk -F'|' -v b="$pref" '$6 !~ /probe:/ && $4 != b && ($3 != 200 || $5 != $4 || $7 != $4)' | head -5)"
	fi
	# ... the requests HAProxy routed without advice were answered...
	gave=$(window_all "$t0" "$(now)" | spoe_gave_up_load 8)
	unanswered=$(printf '%s\n' "$gave" | awk -F'|' 'NF > 3 && $3 == "000"')
	if [ -z "$unanswered" ]; then
		pass "${cur}_unadvised_requests_served"
		echo "  $cur: $(printf '%s\n' "$gave" | grep -c .) requests routed without advice (HAProxy gave up on payspoa)"
	else
		fail "${cur}_unadvised_requests_served" "requests routed without advice and not answered:" \
			"$(printf '%s\n' "$unanswered" | head -5)"
	fi
	# ... and every request of the run, advised or not, stayed within what the policy allows.
	outside=$(window_all "$t0" "$(now)" | awk -F'|' -v ok="$allowed " '
		function out(b) { return b != "" && index(ok, " " b " ") == 0 }
		out($4) || out($5) || out($7)')
	if [ -z "$outside" ] && [ "$(window_all "$t0" "$(now)" | wc -l)" -ge 20 ]; then
		pass "${cur}_compliance_holds"
	else
		fail "${cur}_compliance_holds" "requests advised to or served by a backend outside:$allowed" \
			"$(printf '%s\n' "$outside" | head -5)"
	fi
done

integ_done
