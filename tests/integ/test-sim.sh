#!/usr/bin/env bash
# test-sim.sh: the decision-quality simulator (bench/sim/payspoa-sim) run on shortened
# scenarios, with assertions on the direction of its results (which strategy does
# better), never on timing. Two kinds of case:
#   sim-*       the simulator itself: it runs, it is deterministic, the seed matters, its
#               oracle bounds the baselines, its detection measure sees a failover;
#   <scenario>-* what the engine must achieve against the baselines on the same traffic.
# Output: "PASS name" / "FAIL name" per case (tests/integ/lib.sh).
# A hang guard, not a speed limit: the runs below are ~130 s of CPU on a quiet 2-core
# machine (more with the other integration lane beside them), over lib.sh's 120 s default.
INTEG_TIMEOUT=${INTEG_TIMEOUT:-900}
. "$(dirname "$0")/lib.sh"

need jq
SIM=${SIM_BIN:-$BUILD/bench/sim/payspoa-sim}
S=bench/sim/scenarios
[ -x "$SIM" ] || { fail "prerequisite" "$SIM not built (make $SIM)"; integ_done; }

# run NAME SCALE SCENARIO...: one simulator run, JSON in $T/NAME.json, table in $T/NAME.txt.
run() {
	local name=$1 scale=$2
	shift 2
	"$SIM" --scale "$scale" --json "$T/$name.json" "$@" >"$T/$name.txt" 2>"$T/$name.err"
}

# val FILE SCENARIO STRATEGY FIELD: one figure (jq path under the strategy).
val() {
	jq -r --arg s "$2" --arg g "$3" ".scenarios[] | select(.scenario == \$s) | .strategies[\$g].$4" "$T/$1.json"
}

# ---- the simulator itself ----------------------------------------------------------------

if run all 0.3 $S/regional-outage.conf $S/brownout.conf $S/latency-spike.conf $S/auth-drift.conf \
	$S/eea-entities.conf $S/flash-sale.conf $S/decline-storm.conf && jq -e '.scenarios | length == 7' "$T/all.json" >/dev/null; then
	pass "sim-runs"
else
	fail "sim-runs" "exit or JSON: $(head -3 "$T/all.err")"
	integ_done
fi

# Same seed, same figures (timing fields aside); another seed, other traffic.
strip='del(.. | .decisions_per_s?, .wall_s?)'
if run det1 0.1 $S/regional-outage.conf && run det2 0.1 $S/regional-outage.conf &&
	[ "$(jq -S "$strip" "$T/det1.json")" = "$(jq -S "$strip" "$T/det2.json")" ]; then
	pass "sim-deterministic"
else
	fail "sim-deterministic" "two runs with one seed differ"
fi
if run seed2 0.1 --seed 2 $S/regional-outage.conf &&
	[ "$(jq -S "$strip" "$T/det1.json")" != "$(jq -S "$strip" "$T/seed2.json")" ]; then
	pass "sim-seed"
else
	fail "sim-seed" "--seed 2 changed nothing"
fi

# --rng-salt reseeds the engine's random streams only (a replica of one run): 0 is the
# default run, another salt moves payspoa's figures and leaves the baselines' alone.
if run salt0 0.1 --rng-salt 0 $S/regional-outage.conf && run salt7 0.1 --rng-salt 7 $S/regional-outage.conf &&
	[ "$(jq -S "$strip" "$T/det1.json")" = "$(jq -S "$strip" "$T/salt0.json")" ]; then
	check "sim-rng-salt" \
		"$(val salt7 regional-outage payspoa auth_rate) != $(val det1 regional-outage payspoa auth_rate) && $(val salt7 regional-outage round-robin auth_rate) == $(val det1 regional-outage round-robin auth_rate) && $(val salt7 regional-outage oracle auth_rate) == $(val det1 regional-outage oracle auth_rate)" \
		"payspoa $(val salt7 regional-outage payspoa auth_rate) vs $(val det1 regional-outage payspoa auth_rate)"
else
	fail "sim-rng-salt" "--rng-salt 0 is not the default run"
fi

# HAProxy's servers: under maxconn (128, the default) nothing waits in a server queue; at
# maxconn 20 the flash sale's round robin queues there (the model the budget figures
# depend on: bench/sim/scenarios/README.md). A bad `haproxy` group is refused with file:line.
hq=$S/.test-haproxy-$$.conf
{ cat $S/flash-sale.conf; echo 'haproxy = { maxconn = 20; timeout_queue_s = 1.0; };'; } >"$hq"
if run hq 0.3 --strategy round-robin "$hq"; then
	check "sim-haproxy-queue" \
		"$(val hq flash-sale round-robin server_queued) > 0 && $(val all flash-sale round-robin server_queued) == 0" \
		"server-queued attempts at maxconn 20 and at the default"
else
	fail "sim-haproxy-queue" "exit: $(head -3 "$T/hq.err")"
fi
{ cat $S/flash-sale.conf; echo 'haproxy = { maxconn = 0; };'; } >"$hq"
if ! run hqbad 1 "$hq" && grep -q "test-haproxy-$$.conf:[0-9]*: 'maxconn' must be within" "$T/hqbad.err"; then
	pass "sim-haproxy-bad-maxconn"
else
	fail "sim-haproxy-bad-maxconn" "$(head -3 "$T/hqbad.err")"
fi
rm -f "$hq"

# The oracle is the upper bound on checkout success in the outage (it knows the truth),
# and the detection measure sees primary/backup's failover (10 errors in a row).
o=$(val all regional-outage oracle checkout_success)
for b in round-robin primary-backup static-cost; do
	check "sim-oracle-bounds-$b" "$o >= $(val all regional-outage "$b" checkout_success)" "outage checkout: oracle vs $b"
done
d=$(val all regional-outage primary-backup 'detect_s["us-outage"]')
check "sim-detects-failover" "\"$d\" != \"never\" && $d + 0 <= 2" "primary-backup outage detection ($d s)"

# ---- the engine against the baselines ------------------------------------------------------

# Regional outage: the breaker must move checkout off the failed region (round robin
# keeps half of everything on it).
check "outage-checkout-beats-round-robin" \
	"$(val all regional-outage payspoa checkout_success) > $(val all regional-outage round-robin checkout_success)" \
	"outage checkout success, payspoa vs round-robin"

check "brownout-checkout-beats-round-robin" \
	"$(val all brownout payspoa checkout_success) > $(val all brownout round-robin checkout_success)" \
	"brownout checkout success, payspoa vs round-robin"

check "latency-checkout-beats-round-robin" \
	"$(val all latency-spike payspoa checkout_success) > $(val all latency-spike round-robin checkout_success)" \
	"latency-spike checkout success, payspoa vs round-robin"

check "drift-auth-beats-round-robin" \
	"$(val all auth-drift payspoa auth_rate) > $(val all auth-drift round-robin auth_rate)" \
	"auth-drift authorisation rate, payspoa vs round-robin"

# EEA cards: the cost model must route to the EEA entity.
check "eea-fees-below-round-robin" \
	"$(val all eea-entities payspoa fees_bps) < $(val all eea-entities round-robin fees_bps)" \
	"EEA fees (bps), payspoa vs round-robin"
check "eea-fees-not-above-static" \
	"$(val all eea-entities payspoa fees_bps) <= $(val all eea-entities static-cost fees_bps)" \
	"EEA fees (bps), payspoa vs static-cost"

# Decline storm: customers' declines must not open a breaker or move traffic, and the
# authorisation rate must not collapse below what round robin gets.
check "declines-no-breaker-open" "$(val all decline-storm payspoa breaker_opens) == 0" \
	"breaker opens during the decline storm"
check "declines-no-false-reroute" "$(val all decline-storm payspoa away_false) == 0" \
	"routing-away episodes on healthy backends during the decline storm"
check "declines-auth-holds" \
	"$(val all decline-storm payspoa auth_rate) >= $(val all decline-storm round-robin auth_rate)" \
	"decline-storm authorisation rate, payspoa vs round-robin"

# Flash sale against a 100 req/s account: throttling must keep checkout clear of 429s and
# cut 429s overall.
check "surge-checkout-429-below-round-robin" \
	"$(val all flash-sale payspoa upstream_429_checkout) < $(val all flash-sale round-robin upstream_429_checkout)" \
	"flash-sale checkout 429s, payspoa vs round-robin"
check "surge-429-below-round-robin" \
	"$(val all flash-sale payspoa upstream_429) < $(val all flash-sale round-robin upstream_429)" \
	"flash-sale 429s, payspoa vs round-robin"
check "surge-checkout-beats-round-robin" \
	"$(val all flash-sale payspoa checkout_success) > $(val all flash-sale round-robin checkout_success)" \
	"flash-sale checkout success, payspoa vs round-robin"
check "surge-noforecast-runs" "$(val all flash-sale payspoa-noforecast requests) > 0" \
	"the payspoa-noforecast row of the flash sale"
# The shared account (true limit 75/s, budget 100/s: README, what "upstream 429s" means).
# Forecasting vs not is reported, not asserted: the limit is beyond its headroom (README).
if run shared 0.3 $S/flash-sale-shared.conf; then
	check "surge-shared-429-below-round-robin" \
		"$(val shared flash-sale-shared payspoa upstream_429) < $(val shared flash-sale-shared round-robin upstream_429)" \
		"shared-account surge 429s, payspoa vs round-robin"
	check "surge-shared-checkout-beats-round-robin" \
		"$(val shared flash-sale-shared payspoa checkout_success) > $(val shared flash-sale-shared round-robin checkout_success)" \
		"shared-account surge checkout success, payspoa vs round-robin"
else
	fail "surge-shared-runs" "exit: $(head -3 "$T/shared.err")"
fi

# A busy account (another client takes 5 % of the 100/s, within the forecast's 10 %
# headroom): forecasting keeps the surge clear of Stripe's 429s, the budget alone meets
# some (bench/sim/sim-limit-sweep: 0 vs 28 over seeds 1-6).
if run busy 1 --strategy payspoa --strategy payspoa-noforecast $S/flash-sale-busy.conf; then
	check "surge-busy-no-checkout-429" "$(val busy flash-sale-busy payspoa upstream_429_checkout) == 0" \
		"busy-account surge checkout 429s, payspoa"
	check "surge-busy-429-below-noforecast" \
		"$(val busy flash-sale-busy payspoa upstream_429) < $(val busy flash-sale-busy payspoa-noforecast upstream_429)" \
		"busy-account surge 429s, payspoa vs payspoa-noforecast"
else
	fail "surge-busy-runs" "exit: $(head -3 "$T/busy.err")"
fi

# Seasonal week (2 days at scale 0.3, peaks ~5 % over the budget): forecasting must not
# shed far more than the budget alone does. Whole-class shedding on a noisy, retry-inflated
# estimate shed 57x as much (54,301 vs 956); proportional shedding of the excess ~1x.
if run week 0.3 --strategy payspoa --strategy payspoa-noforecast $S/seasonal-week.conf; then
	check "week-shed-not-above-2x-noforecast" \
		"$(val week seasonal-week payspoa shed_total) <= 2 * $(val week seasonal-week payspoa-noforecast shed_total)" \
		"seasonal-week sheds, payspoa vs payspoa-noforecast"
	check "week-checkout-holds" \
		"$(val week seasonal-week payspoa checkout_success) >= $(val week seasonal-week payspoa-noforecast checkout_success)" \
		"seasonal-week checkout success, payspoa vs payspoa-noforecast"
else
	fail "week-runs" "exit: $(head -3 "$T/week.err")"
fi

# Warm start (ISSUE-NOTES §8): the whole week with the engine restarted through a snapshot
# 5.8 days in sheds no more than without the restart (within 2 %: the restarted engine
# draws its exploration and shedding coins from a fresh stream; with the old stream carried
# the two runs are identical), while a restart that loses the state sheds clearly more
# (the forecasters' learned season and trend are gone).
if run wk-none 1 --strategy payspoa $S/seasonal-week.conf &&
	run wk-warm 1 --strategy payspoa --restart-at 500000 $S/seasonal-week.conf &&
	run wk-cold 1 --strategy payspoa --restart-at 500000 --restart-cold $S/seasonal-week.conf; then
	check "week-restart-sheds-no-more" \
		"$(val wk-warm seasonal-week payspoa shed_total) <= 1.02 * $(val wk-none seasonal-week payspoa shed_total)" \
		"seasonal-week sheds, restarted from a snapshot vs no restart"
	check "week-cold-restart-sheds-more" \
		"$(val wk-cold seasonal-week payspoa shed_total) > 1.05 * $(val wk-warm seasonal-week payspoa shed_total)" \
		"seasonal-week sheds, restart without the snapshot vs with it"
else
	fail "week-restart-runs" "exit: $(head -3 "$T/wk-warm.err" "$T/wk-cold.err")"
fi
integ_done
