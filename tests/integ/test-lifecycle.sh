#!/usr/bin/env bash
# test-lifecycle.sh: nothing an operator or a neighbour does stops the daemon. Regression
# tests named after the bugs: a SIGHUP as soon as the port accepts (killed 20 of 20),
# an @include of a FIFO or a directory on reload (hang, exit 2), a second instance on the
# same unix socket (stole it), a stale socket left by a SIGKILL (must be replaced); and
# payspoa -c --haproxy both ways. Each payspoa -c runs under timeout: a hang (the FIFO)
# fails its case instead of stalling the script.
. "$(dirname "$0")/lib.sh"

need socat
policy_copy "$T/conf" || { fail setup "policy_copy"; exit 1; }

# log_has NAME TEXT: TEXT is in NAME's log.
log_has() { grep -qF -- "$2" "$T/$1.log"; }
# events NAME EVENT: how many lines of NAME's log are EVENT; more NAME EVENT N: more than N.
events() { grep -c "\"event\":\"$2\"" "$T/$1.log"; }
more() { [ "$(events "$1" "$2")" -gt "$3" ]; }
# unix_up PATH: something accepts on the unix socket PATH.
unix_up() { socat -u OPEN:/dev/null "UNIX-CONNECT:$1" 2>/dev/null; }

# hup_served: the SIGHUP was taken as a reload, or the process is gone.
hup_served() { log_has hup '"event":"reloaded"' || ! alive hup; }
# --- sighup_at_first_accept: 20 starts, each sent SIGHUP the moment its port accepts.
survived=0 details=() hp=
for i in $(seq 20); do
	alloc_port hp
	start_bg hup "$PAYSPOA_BIN" -f "$POLICY" -l "127.0.0.1:$hp"
	for k in $(seq 2000); do
		port_busy "$hp" && break
		alive hup || break
		sleep 0.005
	done
	kill -HUP "${PROC[hup]}" 2>/dev/null
	if wait_until 10 hup_served && alive hup; then
		survived=$((survived + 1))
	else
		details+=("try $i: $(tail -2 "$T/hup.log" | tr '\n' ' ')")
	fi
	stop hup
done
[ "$survived" = 20 ] && pass sighup_at_first_accept ||
	fail sighup_at_first_accept "$survived of 20 survived a SIGHUP at the first accept" "${details[@]:0:3}"

# --- reload with an @include of a FIFO, then of a directory: refused with file:line,
# the daemon keeps serving and still stops on SIGTERM.
alloc_port P
start_payspoa main "$P" "$POLICY" || { fail reload_include_fifo "did not start"; exit 1; }
cp "$POLICY" "$T/policy.good"
mkfifo "$T/conf/fifo.conf"
mkdir "$T/conf/dir.conf"
for kind in fifo dir; do
	cp "$T/policy.good" "$POLICY"
	echo "@include \"$kind.conf\"" >>"$POLICY"
	line=$(wc -l <"$POLICY")
	n=$(events main reload_failed)
	kill -HUP "${PROC[main]}"
	if wait_until 10 more main reload_failed "$n" &&
		grep '"event":"reload_failed"' "$T/main.log" | tail -1 | grep -qF "payspoa.conf:$line: @include" &&
		alive main && port_busy "$P"; then
		pass "reload_include_$kind"
	else
		fail "reload_include_$kind" "$(tail -3 "$T/main.log")"
	fi
	# payspoa -c says the same, file:line, and exits 1 (libconfig's exit 2 is gone)
	timeout -k 5 20 "$PAYSPOA_BIN" -c -f "$POLICY" >"$T/check.out" 2>&1
	rc=$?
	if [ "$rc" = 1 ] && grep -qF "payspoa.conf:$line: @include" "$T/check.out"; then
		pass "check_include_$kind"
	else
		fail "check_include_$kind" "exit $rc: $(head -2 "$T/check.out")"
	fi
done
cp "$T/policy.good" "$POLICY"
n=$(events main reloaded)
kill -HUP "${PROC[main]}"
wait_until 10 more main reloaded "$n" && pass reload_after_refusals ||
	fail reload_after_refusals "$(tail -3 "$T/main.log")"
pid=${PROC[main]}
kill -TERM "$pid"
wait_until 10 bash -c "! kill -0 $pid 2>/dev/null" && log_has main '"event":"stopped"' &&
	pass sigterm_after_refusals || fail sigterm_after_refusals "$(tail -3 "$T/main.log")"
unset "PROC[main]"

# --- max_connections = 4294967297 (read as 1 by libconfig): -c refuses it with file:line.
sed 's/^\([[:space:]]*max_connections[[:space:]]*=\).*/\1 4294967297;/' "$T/policy.good" >"$POLICY"
grep -q 'max_connections = 4294967297' "$POLICY" || sed -i 's/^agent = {/agent = {\n\tmax_connections = 4294967297;/' "$POLICY"
timeout -k 5 20 "$PAYSPOA_BIN" -c -f "$POLICY" >"$T/check.out" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "payspoa.conf:[0-9]*: integer 4294967297 is out of range" "$T/check.out" &&
	pass max_connections_2_32_refused || fail max_connections_2_32_refused "exit $rc: $(head -2 "$T/check.out")"
cp "$T/policy.good" "$POLICY"

# --- a second instance on a live unix socket is refused; the first keeps it.
S=$T/agent.sock
start_bg first "$PAYSPOA_BIN" -f "$POLICY" -l "unix:$S"
wait_until 10 unix_up "$S" || { fail second_instance_refused "first instance not up: $(tail -2 "$T/first.log")"; exit 1; }
start_bg second "$PAYSPOA_BIN" -f "$POLICY" -l "unix:$S"
if wait_until 10 bash -c "! kill -0 ${PROC[second]} 2>/dev/null" &&
	log_has second 'another process is serving this socket' && alive first && unix_up "$S"; then
	pass second_instance_refused
else
	fail second_instance_refused "$(tail -2 "$T/second.log")"
fi
unset "PROC[second]"
# --- a SIGKILLed instance leaves its socket file: the next start replaces it.
stop first KILL
[ -S "$S" ] || fail stale_socket_replaced "no socket file left by the SIGKILL"
start_bg third "$PAYSPOA_BIN" -f "$POLICY" -l "unix:$S"
wait_until 10 unix_up "$S" && alive third && pass stale_socket_replaced ||
	fail stale_socket_replaced "$(tail -2 "$T/third.log")"

# --- payspoa -c --haproxy: the shipped haproxy.cfg matches the default policy; a copy with
# stripe_eu renamed to stripe_apac fails both ways (a policy backend it lacks, a backend
# the policy does not know), exit 1; so does an agent address the policy does not listen on.
timeout -k 5 20 "$PAYSPOA_BIN" -c -f conf/payspoa.conf --haproxy haproxy/haproxy.cfg >"$T/hc.out" 2>&1
rc=$?
[ "$rc" = 0 ] && grep -q "every backend matches the policy" "$T/hc.out" && pass check_haproxy_matches ||
	fail check_haproxy_matches "exit $rc: $(tail -2 "$T/hc.out")"
sed 's/\bstripe_eu\b/stripe_apac/g' haproxy/haproxy.cfg >"$T/hap-renamed.cfg"
timeout -k 5 20 "$PAYSPOA_BIN" -c -f conf/payspoa.conf --haproxy "$T/hap-renamed.cfg" >"$T/hc.out" 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -q "backend 'stripe_eu' of the policy" "$T/hc.out" &&
	grep -q "backend 'stripe_apac' is not in the policy" "$T/hc.out"; then
	pass check_haproxy_mismatch_both_ways
else
	fail check_haproxy_mismatch_both_ways "exit $rc:" "$(cat "$T/hc.out")"
fi
# HAProxy's agent server pointed where the policy does not listen (the environment
# overrides haproxy.cfg's presetenv, as in HAProxy): exit 1, naming both sides.
PAY_AGENT_ADDR=127.0.0.1:1 timeout -k 5 20 "$PAYSPOA_BIN" -c -f conf/payspoa.conf --haproxy haproxy/haproxy.cfg >"$T/hc.out" 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -q "server payspoa1 connects to 127.0.0.1:1, where payspoa does not listen" "$T/hc.out"; then
	pass check_haproxy_agent_address
else
	fail check_haproxy_agent_address "exit $rc:" "$(cat "$T/hc.out")"
fi

# --- the identifier key: a key file that cannot be read stops the start with a clear
# error; a readable one is used (no id_key_random warning); none: the warning says so.
# (its own outcome socket: the main instance still serves the policy's)
key_policy() { sed -e "s|^\([[:space:]]*\)idle_timeout_ms = 30000;|&\n\1id_key_file = \"$1\";|" \
	-e "s|^\([[:space:]]*outcome_socket[[:space:]]*=\).*|\1 \"$T/keyed-outcomes.sock\";|" "$T/policy.good" >"$POLICY"; }
key_policy "$T/no-such-key"
alloc_port KP
timeout -k 5 20 "$PAYSPOA_BIN" -f "$POLICY" -l "127.0.0.1:$KP" >"$T/key.out" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q '"event":"start_failed".*id_key_file .*no-such-key' "$T/key.out" &&
	pass id_key_file_unreadable_refused || fail id_key_file_unreadable_refused "exit $rc: $(tail -2 "$T/key.out")"
head -c 32 /dev/urandom >"$T/id.key"
key_policy "$T/id.key"
start_bg keyed "$PAYSPOA_BIN" -f "$POLICY" -l "127.0.0.1:$KP"
if wait_port keyed "$KP" && ! log_has keyed id_key_random && log_has main id_key_random; then
	pass id_key_file_used
else
	fail id_key_file_used "$(head -3 "$T/keyed.log")"
fi
stop keyed
cp "$T/policy.good" "$POLICY"

integ_done
