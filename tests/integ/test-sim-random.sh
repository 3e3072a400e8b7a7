#!/usr/bin/env bash
# test-sim-random.sh: the simulator's random worlds (payspoa-sim --random, --print-world)
# and its scenario features (segment scopes, ramps, decline codes, latency under load),
# with assertions on direction only (which strategy does better, which run sees more
# errors), never on timing. A few worlds with a fixed seed: the full 200-world figures
# are a benchmark (bench/sim/scenarios/README.md, "Random worlds"), not a test.
# Output: "PASS name" / "FAIL name" per case (tests/integ/lib.sh).
. "$(dirname "$0")/lib.sh"

need jq
SIM=${SIM_BIN:-$BUILD/bench/sim/payspoa-sim}
[ -x "$SIM" ] || { fail "prerequisite" "$SIM not built (make $SIM)"; integ_done; }
N=12

# mean FILE STRATEGY: a strategy's mean checkout success over the worlds of FILE.
mean() {
	jq -r --arg s "$2" '.random.world_list | map(.headline[$s]) | add / length' "$1"
}

if "$SIM" --random $N --seed 1 --jobs 2 --json "$T/r1.json" >"$T/r1.txt" 2>"$T/r1.err" &&
	jq -e ".random.ran == $N and (.random.world_list | length) == $N" "$T/r1.json" >/dev/null; then
	pass "random-runs"
else
	fail "random-runs" "exit or JSON: $(head -3 "$T/r1.err" "$T/r1.txt")"
	integ_done
fi

# Reproducible: one worker or two, the same figures (wall clock aside); another seed,
# other worlds.
strip='del(.. | .wall_s?)'
"$SIM" --random $N --seed 1 --jobs 1 --json "$T/r1b.json" >/dev/null 2>"$T/r1b.err"
if [ "$(jq -S "$strip" "$T/r1.json")" = "$(jq -S "$strip" "$T/r1b.json")" ]; then
	pass "random-deterministic"
else
	fail "random-deterministic" "two runs of seed 1 (jobs 2, jobs 1) differ"
fi
"$SIM" --random 3 --seed 2 --json "$T/r2.json" >/dev/null 2>"$T/r2.err"
if [ "$(jq -c '.random.world_list | map(.headline)' "$T/r2.json")" != \
	"$(jq -c '.random.world_list[:3] | map(.headline)' "$T/r1.json")" ]; then
	pass "random-seed"
else
	fail "random-seed" "--seed 2 drew the worlds of seed 1"
fi

# A printed world runs alone with the figures it had in the summary.
w=$(jq -r '.random.world_list[3].world_seed' "$T/r1.json")
mkdir -p "$T/w"
if p=$("$SIM" --print-world "$w" --out "$T/w") && [ "$p" = "$T/w/world-$w.conf" ] &&
	"$SIM" --json "$T/w.json" "$p" >/dev/null 2>"$T/w.err"; then
	a=$(jq -r '.scenarios[0].strategies | [.payspoa.checkout_success, .oracle.checkout_success, .["static-cost"].checkout_success] | @tsv' "$T/w.json")
	b=$(jq -r '.random.world_list[3].headline | [.payspoa, .oracle, .["static-cost"]] | @tsv' "$T/r1.json")
	if [ "$a" = "$b" ]; then
		pass "random-print-world"
	else
		fail "random-print-world" "world $w alone: $a, in the summary: $b"
	fi
else
	fail "random-print-world" "$(head -3 "$T/w.err")"
fi

# --world-learning: the world's policy gets the learning group. World 5000038 holds a
# pessimistic day-one auth_rate on the backend that is right for its US cards; with
# `explore_untested` that guess is tested and checkout success rises (policy/learning.md,
# "untested priors"); a setting out of range is refused with the policy's file:line.
mkdir -p "$T/wl"
if "$SIM" --print-world 5000038 --out "$T/w" >/dev/null &&
	"$SIM" --print-world 5000038 --out "$T/wl" --world-learning "explore_untested = 0.25;" >/dev/null &&
	grep -q '^learning = { explore_untested = 0.25; };' "$T/wl/world-5000038-policy.conf" &&
	"$SIM" --strategy payspoa --json "$T/wl0.json" "$T/w/world-5000038.conf" >/dev/null 2>"$T/wl.err" &&
	"$SIM" --strategy payspoa --json "$T/wl1.json" "$T/wl/world-5000038.conf" >/dev/null 2>>"$T/wl.err"; then
	a=$(jq -r '.scenarios[0].strategies.payspoa.checkout_success' "$T/wl0.json")
	b=$(jq -r '.scenarios[0].strategies.payspoa.checkout_success' "$T/wl1.json")
	check "random-world-learning" "$b > $a" "world 5000038 checkout: $a without explore_untested, $b with"
else
	fail "random-world-learning" "$(head -3 "$T/wl.err")"
fi
mkdir -p "$T/wlbad"
if "$SIM" --print-world 5000038 --out "$T/wlbad" --world-learning "explore_untested = 2.0;" >/dev/null &&
	! "$SIM" --strategy payspoa "$T/wlbad/world-5000038.conf" >/dev/null 2>"$T/wlbad.err" &&
	grep -q "world-5000038-policy.conf:[0-9]*.*explore_untested" "$T/wlbad.err"; then
	pass "random-world-learning-refused"
else
	fail "random-world-learning-refused" "$(head -3 "$T/wlbad.err")"
fi

# HAProxy's own queue-timeout 503s reach the engine as the log channel reports them (term
# sQ), answered without judging the backend: world 2000109's surge queues payspoa's
# decisions in HAProxy behind a backend slowed by its own load; unreported, they were
# judged missing and opened its breaker three times on a calm backend.
if "$SIM" --print-world 2000109 --out "$T/w" >/dev/null &&
	"$SIM" --strategy payspoa --json "$T/q.json" "$T/w/world-2000109.conf" >/dev/null 2>"$T/q.err"; then
	q=$(jq -r '.scenarios[0].strategies.payspoa | "\(.server_queued) \(.breaker_false)"' "$T/q.json")
	check "random-queue-timeouts-answered" "${q% *} > 1000 && ${q#* } == 0" \
		"world 2000109: requests queued in HAProxy, false breaker opens: $q"
else
	fail "random-queue-timeouts-answered" "$(head -3 "$T/q.err")"
fi

# Random worlds draw true per-endpoint limits (Stripe's payment_intents create, capture,
# retrieve; one rate on every account) and give the operator's policy the same budgets;
# half their auth drifts carry a decline code, never the customer's. 20 printed worlds
# (printing runs nothing); the JSON of the 12 run says how many limits each had.
nep=0 ndrift=0 bad=
for k in $(seq 0 19); do
	ws=$((1000000 + k))
	"$SIM" --print-world $ws --out "$T/w" >/dev/null || bad="$bad print:$ws"
	f=$T/w/world-$ws.conf
	if grep -q '^endpoint_limits = (' "$f"; then
		nep=$((nep + 1))
		while read -r r; do
			grep -qF "$r" "$T/w/world-$ws-policy.conf" || bad="$bad policy:$ws"
		done < <(grep -o 'path = "[^"]*"; rate = [0-9.]*' "$f" | sort -u)
	fi
	ndrift=$((ndrift + $(grep -c 'kind = "auth_drift";.*decline = "[a-z_]*"' "$f")))
	grep -q 'kind = "auth_drift";.*decline = "insufficient_funds"' "$f" && bad="$bad customer-drift:$ws"
done
nj=$(jq '[.random.world_list[] | select(.endpoint_limits > 0)] | length' "$T/r1.json")
check "random-endpoint-limits" "$nep >= 3 && $nep <= 17 && $ndrift >= 1 && $nj >= 1 && \"$bad\" == \"\"" \
	"worlds of 20 with endpoint_limits $nep, coded auth drifts $ndrift, run worlds with limits $nj;$bad"
# Direction: the oracle is the best on average, and payspoa beats the baselines that
# do not learn (round robin, primary/backup, static cost) on average.
o=$(mean "$T/r1.json" oracle)
p=$(mean "$T/r1.json" payspoa)
for s in round-robin primary-backup static-cost; do
	v=$(mean "$T/r1.json" "$s")
	check "random-oracle-beats-$s" "$o > $v" "mean checkout success over $N worlds, oracle vs $s"
	check "random-payspoa-beats-$s" "$p > $v" "mean checkout success over $N worlds, payspoa vs $s"
done
check "random-oracle-beats-payspoa" "$o > $p" "mean checkout success over $N worlds, oracle vs payspoa"
# Net revenue (charges authorised less fees, what the engine and the oracle weigh): both keep
# more than round robin on average, and the summary's count of worlds where payspoa is
# below the best baseline by net revenue is the one the world list gives.
netm() {
	jq -r --arg s "$2" '.random.world_list | map(.net_usd[$s]) | add / length' "$1"
}
nr=$(netm "$T/r1.json" round-robin)
check "random-net-oracle-beats-round-robin" "$(netm "$T/r1.json" oracle) > $nr" "mean net revenue, oracle vs round-robin"
check "random-net-payspoa-beats-round-robin" "$(netm "$T/r1.json" payspoa) > $nr" "mean net revenue, payspoa vs round-robin"
nl=$(jq '[.random.world_list[] | .net_usd | select(([.["round-robin"], .["primary-backup"], .["static-cost"]] | max) > .payspoa)] | length' "$T/r1.json")
check "random-net-lost-count" "$nl == $(jq .random.summary.net_lost "$T/r1.json") && $nr > 0" \
	"worlds below the best baseline by net revenue: list $nl, summary $(jq .random.summary.net_lost "$T/r1.json")"

# ---- scenario features ---------------------------------------------------------------------
# world INCIDENTS [EXTRA]: a two-entity scenario at 100 req/s for 120 s (it lives beside
# the shipped ones: its includes are relative), run under round robin; JSON in $T/$1.json.
S=bench/sim/scenarios
trap 'rm -f $S/.test-feat-$$-*.conf' EXIT
feat() {
	local name=$1 inc=$2 extra=${3:-} f=$S/.test-feat-$$-$1.conf
	cat >"$f" <<-EOF2
	name = "$name"; policy = "policy/two-entities.conf"; seed = 3; duration_s = 120.0;
	headline = "checkout_success"; primary = "stripe_us";
	@include "truth-two-entities.inc"
	traffic = {
		rate = 100.0;
	@include "mix-two-entities.inc"
	};
	incidents = ( $inc );
	$extra
	EOF2
	"$SIM" --strategy round-robin --strategy oracle --json "$T/$name.json" "$f" >"$T/$name.txt" 2>"$T/$name.err"
}
fv() { jq -r --arg g "$2" ".scenarios[0].strategies[\$g].$3" "$T/$1.json"; }
bo='name = "b"; kind = "brownout"; backend = "stripe_us"; start_s = 20.0; end_s = 100.0; error_rate = 0.5;'
if feat calm "" && feat bo "{ $bo }" && feat bo-eur "{ $bo match = \"eur/*/*/*\"; }" &&
	feat bo-ramp "{ $bo ramp_s = 80.0; }"; then
	calm=$(fv calm round-robin upstream_5xx) all=$(fv bo round-robin upstream_5xx)
	eur=$(fv bo-eur round-robin upstream_5xx) ramp=$(fv bo-ramp round-robin upstream_5xx)
	check "feature-scope" "$eur > 4 * $calm && $eur < 0.5 * $all" \
		"round-robin 5xx: no incident $calm, brownout of EUR payments only $eur, of everything $all"
	check "feature-ramp" "$ramp > 0.3 * $all && $ramp < 0.7 * $all" \
		"round-robin 5xx: brownout ramped in over its whole length $ramp, at once $all"
else
	fail "feature-scope-ramp-runs" "$(cat "$T"/calm.err "$T"/bo*.err 2>/dev/null | head -3)"
fi
# True per-endpoint limits: captures limited to 5/s on each account draw 429s (with
# `endpoint-rate`), checkout none; the oracle, which sees the buckets, stays under them.
ep='endpoint_limits = ( { account = "acct_us"; method = "POST"; path = "/v1/payment_intents/*/capture"; rate = 5.0; },
	{ account = "acct_eu"; method = "POST"; path = "/v1/payment_intents/*/capture"; rate = 5.0; } );'
if feat ep "" "$ep"; then
	check "feature-endpoint-limit" \
		"$(fv ep round-robin upstream_429) > 50 && $(fv ep round-robin upstream_429_checkout) == 0 && $(fv calm round-robin upstream_429) == 0 && $(fv ep oracle upstream_429) < $(fv ep round-robin upstream_429) / 4" \
		"upstream 429s with a 5/s capture limit (round robin, oracle) and without"
else
	fail "feature-endpoint-limit" "$(head -3 "$T/ep.err")"
fi
# Decline codes: every code of a decline storm is accepted, an unknown one refused with file:line.
if feat dc "{ name = \"s\"; kind = \"decline_storm\"; backend = \"stripe_us\"; start_s = 20.0; end_s = 60.0; factor = 0.5; decline = \"issuer_not_available\"; }" &&
	! feat dcbad "{ name = \"s\"; kind = \"decline_storm\"; start_s = 20.0; end_s = 60.0; factor = 0.5; decline = \"nope\"; }" &&
	grep -q "test-feat-$$-dcbad.conf:[0-9]*: decline must be" "$T/dcbad.err" &&
	check "feature-decline-code" "$(fv dc round-robin auth_rate) < $(fv calm round-robin auth_rate) - 1" \
		"round-robin authorisation with an issuer_not_available storm vs none"; then
	:
else
	fail "feature-decline-code" "$(cat "$T/dc.err" "$T/dcbad.err" 2>/dev/null | head -3)"
fi
# An auth drift's declines carry its `decline` code when it has one: the same cards
# decline (round robin does not learn, so the same authorisation rate), with
# processing_error instead of the usual soft codes; without the key none carry it. A
# brownout's errors are Stripe 5xx (api_error): `decline` there is refused.
ad='name = "d"; kind = "auth_drift"; backend = "stripe_us"; start_s = 20.0; end_s = 100.0; to = 0.6;'
if feat ad "{ $ad }" && feat ad-pe "{ $ad decline = \"processing_error\"; }" &&
	! feat bo-dec "{ $bo decline = \"processing_error\"; }" &&
	grep -q "test-feat-$$-bo-dec.conf:[0-9]*: decline applies to" "$T/bo-dec.err"; then
	soft() { jq -r '.scenarios[0].strategies["round-robin"].declines | .generic_decline + .do_not_honor' "$T/$1.json"; }
	check "feature-drift-decline-code" \
		"$(fv ad-pe round-robin declines.processing_error) > 100 && $(fv ad round-robin declines.processing_error) == 0 && $(soft ad-pe) < $(soft ad) - 100 && $(fv ad-pe round-robin auth_rate) == $(fv ad round-robin auth_rate)" \
		"round-robin processing_error declines with and without the drift's code, soft declines $(soft ad-pe) vs $(soft ad), auth rate"
else
	fail "feature-drift-decline-code" "$(cat "$T/ad.err" "$T/ad-pe.err" "$T/bo-dec.err" 2>/dev/null | head -3)"
fi
# Time series and plots: the CSV holds every strategy's series; the page is one
# self-contained file (inline SVG, no script, nothing fetched) with 4 panels per strategy
# and the incident marked.
mkdir -p "$T/plot"
if "$SIM" --scale 0.2 --series "$T/s.csv" --plot "$T/plot" $S/regional-outage.conf >/dev/null 2>"$T/plot.err"; then
	h=$T/plot/regional-outage.html
	nstrat=$(awk -F, 'NR > 1 { print $2 }' "$T/s.csv" | sort -u | wc -l)
	nser=$(awk -F, 'NR > 1 && $2 == "payspoa" { print $4 }' "$T/s.csv" | sort -u | tr '\n' ' ')
	expect "feature-series-csv" "strategies in the CSV; payspoa's series" "$nstrat; $nser" \
		"5; auth_rate charges share:stripe_eu share:stripe_us shed:background shed:capture shed:checkout shed:read upstream_429 "
	if [ "$(grep -c '<svg ' "$h")" = 20 ] && ! grep -qi '<script\|<link\|src=\|href=' "$h" &&
		[ "$(grep -o 'http[^"]*' "$h" | sort -u)" = "http://www.w3.org/2000/svg" ] &&
		grep -q '<title>us-outage 60-84 s</title>' "$h"; then
		pass "feature-plot-html"
	else
		fail "feature-plot-html" "$(grep -c '<svg ' "$h") panels; $(grep -o '<title>[^<]*' "$h" | sort -u | head -3)"
	fi
else
	fail "feature-series" "$(head -3 "$T/plot.err")"
fi
# The time series as JSON (--series FILE.json, or --series-format json): valid JSON with
# the CSV's columns and, row for row, the CSV's rows; the CSV is unchanged by the option.
if "$SIM" --scale 0.2 --series "$T/s.json" $S/regional-outage.conf >/dev/null 2>"$T/sj.err" &&
	"$SIM" --scale 0.2 --series-format json --series "$T/s.out" $S/regional-outage.conf >/dev/null 2>>"$T/sj.err" &&
	"$SIM" --scale 0.2 --series-format csv --series "$T/s2.json" $S/regional-outage.conf >/dev/null 2>>"$T/sj.err" &&
	python3 -m json.tool "$T/s.json" >/dev/null && cmp -s "$T/s.json" "$T/s.out" && cmp -s "$T/s.csv" "$T/s2.json"; then
	r=$(python3 - "$T/s.json" "$T/s.csv" <<-'EOF2'
	import csv, json, sys
	j = json.load(open(sys.argv[1]))
	rows = list(csv.reader(open(sys.argv[2])))
	same = rows[0] == j["columns"] and len(rows) - 1 == len(j["rows"]) and all(
	    [r[0], r[1], float(r[2]), r[3], float(r[4])] == [o[k] for k in j["columns"]]
	    for r, o in zip(rows[1:], j["rows"]))
	print("%d %d %s" % (len(rows) - 1, len(j["rows"]), same))
	EOF2
	)
	case $r in
	0\ *) fail "feature-series-json" "no rows: $r" ;;
	*True) pass "feature-series-json" ;;
	*) fail "feature-series-json" "CSV rows, JSON rows, same: $r" ;;
	esac
else
	fail "feature-series-json" "$(head -3 "$T/sj.err")"
fi
# Warm start: the state payspoa learned on one seed, loaded at t = 0 of a run on another.
if "$SIM" --scale 0.2 --seed 11 --strategy payspoa --save-state "$T/state" $S/eea-entities.conf >/dev/null 2>"$T/ws1.err" &&
	"$SIM" --scale 0.2 --seed 12 --strategy payspoa --warm-start "$T/state" $S/eea-entities.conf >/dev/null 2>"$T/ws2.err" &&
	grep -q "warm start (payspoa): [1-9][0-9]* records.*learned yes" "$T/ws2.err" &&
	! "$SIM" --scale 0.2 --strategy payspoa --warm-start "$T/nothing" $S/eea-entities.conf >/dev/null 2>&1; then
	pass "feature-warm-start"
else
	fail "feature-warm-start" "$(head -3 "$T/ws1.err" "$T/ws2.err")"
fi
integ_done
