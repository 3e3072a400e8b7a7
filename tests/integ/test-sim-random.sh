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
integ_done
