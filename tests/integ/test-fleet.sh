#!/usr/bin/env bash
# test-fleet.sh: a fleet of three nodes (each a real HAProxy with haproxy/haproxy.cfg and
# its own payspoa) sharing pins through a real redis-server (its own port and folder in
# the test's temp dir), the four emulated accounts shared by the nodes (issue 10):
#   (a) membership: every node sees three nodes;
#   (b) pins across nodes: keyed first attempts sent to node 1, their retries to nodes 2
#       and 3 are advised by the replicated pin (pin:idem, HAProxy's own table empty on
#       those nodes) and replayed by the account that holds the key; zero keys charged on
#       two accounts;
#   (b2) Redis frozen (SIGSTOP): commands time out, decisions go on, resync on SIGCONT;
#   (c) Redis killed mid-run: decisions go on (every request answered with payspoa's
#       verdict), each node says so (fleet_redis_down, redis_up 0, pins unpublished); a
#       node restarted while Redis is down serves;
#   (ops) `show fleet` on the admin socket and payspoa_fleet_* on /metrics agree with the
#       log's counters; redis_up goes 0 on both while Redis is killed, 1 when it is back;
#   (d) Redis back (empty): every node reconnects and resynchronises, node 1 re-publishes
#       its live pins, and the retries of the payments made during the outage, sent to
#       nodes 2 and 3, reach their first account.
# Judged by counts (the emulators' key records, verdict headers, the nodes' counters in
# their debug `fleet_stats` lines), never by a duration.
INTEG_TIMEOUT=${INTEG_TIMEOUT:-240}
. "$(dirname "$0")/lib.sh"

need_stack
need redis-server
need redis-cli

N=150   # payments per batch
# Budgets far above the test's load (nothing shed: a shed request pins nothing).
BUDGETS=('s/rate = 100.0; burst = 100.0;/rate = 100000.0; burst = 100000.0;/'
	's/rate = 25.0; burst = 25.0;/rate = 100000.0; burst = 100000.0;/')

# ---- redis ------------------------------------------------------------------------------
redis_setup
start_redis || { fail start-redis "$(tail -5 "$T/redis.log")"; exit 1; }

# ---- three nodes ------------------------------------------------------------------------
start_accounts
declare -A P_HTTPN=() P_AGENTN=() P_METN=()
for i in 1 2 3; do
	alloc_port "P_HTTPN[$i]"; alloc_port "P_AGENTN[$i]"; alloc_port "P_METN[$i]"
	policy_copy "$T/pol$i" "${BUDGETS[@]}" \
		"s|log_level = \"info\";|&\\n\\tadmin_socket = \"$T/pol$i/admin.sock\";\\n\\tmetrics = \"127.0.0.1:${P_METN[$i]}\";|" \
		"$(fleet_sed "$i")" ||
		{ fail policy "cannot derive the policy: $(head -3 "$T/pol$i/check.log" 2>/dev/null)"; exit 1; }
	start_payspoa "a$i" "${P_AGENTN[$i]}" "$T/pol$i/payspoa.conf" || { fail "start-payspoa-$i" "$(tail -5 "$T/a$i.log")"; exit 1; }
	start_haproxy "h$i" "${P_HTTPN[$i]}" "$P_US" "$P_EU" "${P_AGENTN[$i]}" ||
		{ fail "start-haproxy-$i" "$(tail -5 "$T/h$i.log")"; exit 1; }
done
for i in 1 2 3; do
	wait_until 10 hap_server_is "h$i" spoe-payspoa payspoa1 UP ||
		{ fail agent-up "node $i: spoe-payspoa/payspoa1 is '$(hap_server_status "h$i" spoe-payspoa payspoa1)'"; exit 1; }
done

# got_pins LOG MIN: the node received or loaded at least MIN pins of other nodes.
got_pins() { [ $(($(fleet_stat "$1" pins_received) + $(fleet_stat "$1" pins_loaded))) -ge "$2" ]; }

# load NAME NODE LIST N: N requests of LIST through node NODE's HAProxy; lines of
# $T/NAME.out: start|latency|status|instance|replayed|verdict|reason|haproxy-pin|advised
load() {
	"$LOADGEN_BIN" -a "http://127.0.0.1:${P_HTTPN[$2]}" -f "$3" -n "$4" -c 8 -t 10 -q -o X-Payapi-Instance \
		-o Idempotent-Replayed -o X-Pay-Verdict -o X-Pay-Reason -o X-Pay-Pin -o X-Pay-Backend \
		>"$T/$1.out" 2>"$T/$1.err" </dev/null
}
count() { awk -F'|' "$2" "$T/$1.out" | wc -l; }

# retried CASE NAME: every retry of NAME answered 2xx, replayed by the key's first account,
# advised by a payspoa pin (pin:...) while that node's HAProxy table held none for it.
retried() {
	local got ok pinned
	got=$(count "$2" '1')
	ok=$(count "$2" '$3 ~ /^2/ && $5 == "true"')
	pinned=$(count "$2" '$7 ~ /^pin:/ && ($8 == "" || $8 == "0")')
	if [ "$got" = "$N" ] && [ "$ok" = "$N" ] && [ "$pinned" = "$N" ]; then
		pass "${1}_${2}_same_account"
	else
		fail "${1}_${2}_same_account" "$got answers to $N retries, $ok replayed by their first account, $pinned advised by a replicated pin" \
			"$(awk -F'|' '$3 !~ /^2/ || $5 != "true" || $7 !~ /^pin:/' "$T/$2.out" | head -3)"
	fi
}

# keys_on_accounts CASE PREFIX: charged on two accounts must be 0, charged at all N.
keys_on_accounts() {
	local c=$1 prefix=$2 port both total
	: >"$T/keys-$c"
	for port in "$P_US" "$P_EU" "$P_US2" "$P_EU2"; do
		curl -sS --max-time 5 "http://127.0.0.1:$port/__payapi/keys?prefix=$prefix" |
			grep -o "\"$prefix[^\"]*\"" | sort -u >>"$T/keys-$c"
	done
	both=$(sort "$T/keys-$c" | uniq -d | wc -l)
	total=$(sort -u "$T/keys-$c" | wc -l)
	expect "${c}_zero_double_charges" "keys of $prefix charged on two accounts" "$both" 0
	expect "${c}_every_key_charged" "keys of $prefix charged" "$total" "$N"
}

# admin NODE CMD: the answer of node NODE's admin socket; metric NODE NAME: a series'
# value on node NODE's /metrics (empty when absent).
admin() { printf '%s\n' "$2" | timeout 10 socat - "UNIX-CONNECT:$T/pol$1/admin.sock"; }
metric() {
	curl -sS --max-time 10 "http://127.0.0.1:${P_METN[$1]}/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}
fleet_field() { admin "$1" "show fleet" | awk -F': ' -v k="$2" '$1 == k { print $2 }'; }
ops_redis_up_is() { [ "$(fleet_field "$1" redis_up)" = "$2" ] && [ "$(metric "$1" payspoa_fleet_redis_up)" = "$2" ]; }

# ---- (a) membership -----------------------------------------------------------------------
for i in 1 2 3; do
	if wait_until 10 fleet_stat_eq "a$i" nodes 3; then pass "a_node${i}_sees_3_nodes"
	else fail "a_node${i}_sees_3_nodes" "nodes=$(fleet_stat "a$i" nodes)" "$(grep fleet "$T/a$i.log" | tail -3)"; fi
done
expect a_redis_node_set "members of payspoa:nodes in Redis" "$(rcli ZCARD payspoa:nodes)" 3

# ---- (ops) the fleet on the admin socket and /metrics ------------------------------------
need socat
admin 1 "show fleet" >"$T/show-fleet-1.txt"
expect ops_show_fleet_node "node in show fleet" "$(fleet_field 1 node)" n1
expect ops_show_fleet_nodes "nodes in show fleet" "$(fleet_field 1 nodes)" 3
expect ops_show_fleet_redis_up "redis_up in show fleet" "$(fleet_field 1 redis_up)" 1
admin 1 help | grep -q '^show fleet ' && pass ops_help_lists_show_fleet || fail ops_help_lists_show_fleet "$(admin 1 help)"
curl -sS --max-time 10 "http://127.0.0.1:${P_METN[1]}/metrics" >"$T/fleet-1.prom"
# every FLEET_STATS entry on both: each name of show fleet's counters as a series
missing=
for n in $(awk -F': ' 'NR > 3 { print $1 }' "$T/show-fleet-1.txt"); do
	grep -Eq "^payspoa_fleet_${n%_us}(_total|_seconds)? " "$T/fleet-1.prom" || missing="$missing $n"
done
expect ops_every_fleet_stat_on_metrics "show fleet counters missing from /metrics" "${missing:-none}" none
expect ops_metrics_nodes "payspoa_fleet_nodes" "$(awk '$1 == "payspoa_fleet_nodes" { print $2 }' "$T/fleet-1.prom")" 3
expect ops_metrics_heartbeats_is_counter "TYPE of payspoa_fleet_heartbeats_total" \
	"$(awk '$1 == "#" && $2 == "TYPE" && $3 == "payspoa_fleet_heartbeats_total" { print $4 }' "$T/fleet-1.prom")" counter
if promtool check metrics <"$T/fleet-1.prom" >"$T/fleet-promtool.out" 2>&1; then pass ops_promtool_check_metrics
else fail ops_promtool_check_metrics "$(head -5 "$T/fleet-promtool.out")"; fi
# the rules' fleet series exist on a fleet node
missing=
for n in $(grep -o 'payspoa_fleet_[a-z_]*' conf/monitoring/payspoa.rules.yml | sort -u); do
	grep -q "^$n[{ ]" "$T/fleet-1.prom" || missing="$missing $n"
done
expect ops_rules_fleet_series_exist "fleet series of the rules missing from /metrics" "${missing:-none}" none

# ---- (b) pins across nodes ---------------------------------------------------------------
pay_list "$T/b.list" 'fleet-b-{n}'
load b_first 1 "$T/b.list" "$N"
expect b_first_answered "2xx answers of $N first attempts on node 1" "$(count b_first '$3 ~ /^2/')" "$N"
# every key's pin in Redis, then received by nodes 2 and 3 (the wait is for the events)
wait_until 10 bash -c "[ \"\$(timeout 5 redis-cli -h 127.0.0.1 -p $P_REDIS --scan --pattern 'payspoa:pin:0:*' | wc -l)\" -ge $N ]" ||
	fail b_pins_in_redis "$(rcli --scan --pattern 'payspoa:pin:0:*' | wc -l) idempotency pins in Redis, $N expected"
for i in 2 3; do
	wait_until 10 fleet_stat_ge "a$i" pins_received "$N" ||
		fail "b_node${i}_received" "pins_received=$(fleet_stat "a$i" pins_received), $N expected"
done
load b_retry2 2 "$T/b.list" "$N"
retried b b_retry2
load b_retry3 3 "$T/b.list" "$N"
retried b b_retry3
keys_on_accounts b fleet-b-
lag2=$(fleet_stat a2 lag_p99_us)
echo "  replication lag on node 2: p50 $(fleet_stat a2 lag_p50_us) µs, p99 $lag2 µs ($(fleet_stat a2 lag_samples) pins)"

# ---- (b2) Redis frozen (SIGSTOP): slower than fleet.timeout_ms ---------------------------
# Its socket still accepts; nothing answers. Commands time out, decisions go on.
kill -STOP "${PROC[redis]}"
if wait_until 10 fleet_stat_ge a1 timeouts 1 && wait_until 10 fleet_stat_eq a1 redis_up 0; then pass b2_node1_times_out
else fail b2_node1_times_out "timeouts=$(fleet_stat a1 timeouts) redis_up=$(fleet_stat a1 redis_up)"; fi
pay_list "$T/b2.list" 'fleet-s-{n}'
load b2_first 1 "$T/b2.list" 40
expect b2_decided_while_frozen "answers with payspoa's verdict while Redis is frozen" \
	"$(count b2_first '$3 ~ /^2/ && $6 != ""')" 40
kill -CONT "${PROC[redis]}"
if wait_until 15 fleet_stat_ge a1 resyncs 2 && wait_until 10 fleet_stat_eq a1 redis_up 1; then pass b2_node1_resynced_after_thaw
else fail b2_node1_resynced_after_thaw "resyncs=$(fleet_stat a1 resyncs) redis_up=$(fleet_stat a1 redis_up)"; fi

# ---- (c) Redis killed mid-run -------------------------------------------------------------
stop redis KILL
for i in 1 2 3; do
	if wait_until 10 grep -q '"event":"fleet_redis_down"' "$T/a$i.log" && wait_until 10 fleet_stat_eq "a$i" redis_up 0; then
		pass "c_node${i}_says_redis_down"
	else
		fail "c_node${i}_says_redis_down" "$(grep fleet "$T/a$i.log" | tail -3)"
	fi
done
if wait_until 10 ops_redis_up_is 2 0; then pass ops_redis_down_on_admin_and_metrics
else fail ops_redis_down_on_admin_and_metrics "show fleet redis_up=$(fleet_field 2 redis_up), metric $(metric 2 payspoa_fleet_redis_up)"; fi
pay_list "$T/c.list" 'fleet-c-{n}'
load c_first 1 "$T/c.list" "$N"
expect c_first_answered "2xx answers of $N first attempts on node 1 while Redis is down" "$(count c_first '$3 ~ /^2/')" "$N"
expect c_first_decided "answers with payspoa's verdict while Redis is down" "$(count c_first '$6 != ""')" "$N"
if wait_until 10 fleet_stat_ge a1 pins_unpublished "$N"; then pass c_node1_counts_unpublished
else fail c_node1_counts_unpublished "pins_unpublished=$(fleet_stat a1 pins_unpublished), $N expected"; fi
# node 3's agent restarted while Redis is down: it starts and serves
stop a3
start_payspoa a3b "${P_AGENTN[3]}" "$T/pol3/payspoa.conf" || { fail c_restart_node3 "$(tail -5 "$T/a3b.log")"; exit 1; }
wait_until 10 hap_server_is h3 spoe-payspoa payspoa1 UP || fail c_node3_up "spoe-payspoa/payspoa1 is '$(hap_server_status h3 spoe-payspoa payspoa1)'"
pay_list "$T/c3.list" 'fleet-c3-{n}'
load c3_first 3 "$T/c3.list" 40
expect c_node3_serves_without_redis "answers with payspoa's verdict on the restarted node 3" \
	"$(count c3_first '$3 ~ /^2/ && $6 != ""')" 40

# ---- (d) Redis back: resync ---------------------------------------------------------------
start_redis || { fail restart-redis "$(tail -5 "$T/redis.log")"; exit 1; }
for n in a1 a2 a3b; do
	if wait_until 15 fleet_stat_ge "$n" resyncs 1 && wait_until 15 fleet_stat_eq "$n" redis_up 1; then
		pass "d_${n}_resynced"
	else
		fail "d_${n}_resynced" "$(grep fleet "$T/$n.log" | tail -3)"
	fi
done
if wait_until 15 ops_redis_up_is 2 1; then pass ops_redis_back_on_admin_and_metrics
else fail ops_redis_back_on_admin_and_metrics "show fleet redis_up=$(fleet_field 2 redis_up), metric $(metric 2 payspoa_fleet_redis_up)"; fi
wait_until 15 fleet_stat_ge a1 resyncs 3 || fail d_a1_third_resync "resyncs=$(fleet_stat a1 resyncs)"
if [ "$(fleet_stat a1 pins_republished)" -ge $((2 * N)) ]; then pass d_node1_republished
else fail d_node1_republished "pins_republished=$(fleet_stat a1 pins_republished), at least $((2 * N)) expected"; fi
wait_until 10 bash -c "[ \"\$(timeout 5 redis-cli -h 127.0.0.1 -p $P_REDIS --scan --pattern 'payspoa:pin:0:*' | wc -l)\" -ge $((2 * N)) ]" ||
	fail d_pins_back_in_redis "$(rcli --scan --pattern 'payspoa:pin:0:*' | wc -l) idempotency pins in Redis"
# every pin of the outage reached nodes 2 and 3, by the channel or by their own resync
wait_until 10 got_pins a2 $((2 * N)) || fail d_node2_got_pins "received $(fleet_stat a2 pins_received), loaded $(fleet_stat a2 pins_loaded)"
wait_until 10 got_pins a3b "$N" || fail d_node3_got_pins "received $(fleet_stat a3b pins_received), loaded $(fleet_stat a3b pins_loaded)"
load d_retry2 2 "$T/c.list" "$N"
retried d d_retry2
load d_retry3 3 "$T/c.list" "$N"
retried d d_retry3
keys_on_accounts d fleet-c-

# ---- (e) HAProxys sharing their pin tables (peers), one node's payspoa absent ------------
# Three more HAProxys, each naming the two others as peers of payspoa_pins; node 2's
# payspoa is stopped: its HAProxy routes retries by the table its peers filled.
declare -A P_PEERN=() P_HTTPE=()
for i in 1 2 3; do alloc_port "P_PEERN[$i]"; alloc_port "P_HTTPE[$i]"; done
agent_of=([1]="${P_AGENTN[1]}" [2]="${P_AGENTN[2]}" [3]="${P_AGENTN[3]}")
for i in 1 2 3; do
	peers=() k=1
	for j in 1 2 3; do
		[ "$j" = "$i" ] && continue
		peers+=("PAY_PEER${k}_NAME=hp$j" "PAY_PEER${k}_ADDR=127.0.0.1:${P_PEERN[$j]}")
		k=$((k + 1))
	done
	start_haproxy "hp$i" "${P_HTTPE[$i]}" "$P_US" "$P_EU" "${agent_of[$i]}" \
		"PAY_PEER_NAME=hp$i" "PAY_PEER_ADDR=127.0.0.1:${P_PEERN[$i]}" "${peers[@]}" ||
		{ fail "start-haproxy-peers-$i" "$(tail -5 "$T/hp$i.log")"; exit 1; }
done
wait_until 10 hap_server_is hp1 spoe-payspoa payspoa1 UP || fail e_agent1_up "$(hap_server_status hp1 spoe-payspoa payspoa1)"
stop a2
wait_until 10 hap_server_is hp2 spoe-payspoa payspoa1 DOWN || fail e_agent2_down "$(hap_server_status hp2 spoe-payspoa payspoa1)"
table_used() { hap_cli "$1" "show table payspoa_pins/idem" | awk 'NR == 1 { sub(/.*used:/, ""); print $0 + 0 }'; }
table_ge() { [ "$(table_used "$1")" -ge "$2" ]; }
pay_list "$T/e.list" 'fleet-e-{n}'
P_HTTPN_SAVED=${P_HTTPN[1]}
P_HTTPN[1]=${P_HTTPE[1]}; P_HTTPN[2]=${P_HTTPE[2]}
load e_first 1 "$T/e.list" "$N"
expect e_first_answered "2xx answers of $N first attempts on node 1" "$(count e_first '$3 ~ /^2/')" "$N"
if wait_until 10 table_ge hp2 "$N"; then pass e_tables_shared
else fail e_tables_shared "node 2's HAProxy holds $(table_used hp2) idempotency pins, $N expected"; fi
load e_retry2 2 "$T/e.list" "$N"
got=$(count e_retry2 '$3 ~ /^2/ && $5 == "true" && $8 != "" && $8 != "0"')
expect e_retries_without_agent_same_account "retries on node 2 (no payspoa) replayed by their first account, by HAProxy's shared pin" "$got" "$N"
keys_on_accounts e fleet-e-
P_HTTPN[1]=$P_HTTPN_SAVED

integ_done
