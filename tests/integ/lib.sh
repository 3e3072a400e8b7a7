# tests/integ/lib.sh: shared helpers for the integration tests (sourced, bash).
# Real components only: emulated payment API instances (tests/payapi/), the payspoa daemon, a real haproxy.
# Everything listens on 127.0.0.1 ports picked here; every wait has a deadline; every
# process started through start_bg is stopped on any exit; a watchdog ends the whole
# script after INTEG_TIMEOUT seconds so nothing can hang.
#
# Environment: PAYSPOA_BIN (default ./payspoa), BUILD (default build/release; payapi is
# $BUILD/tests/payapi/payapi, the load generator $BUILD/tests/loadgen/loadgen), HAPROXY_BIN
# (default haproxy), INTEG_TIMEOUT (default 120), INTEG_KEEP=1 keeps the temporary
# directory even when everything passed, TEST_TIME_SCALE (default 1; 5 when PAYSPOA_BIN is
# a sanitizer build; tests/run sets it from the build name): every deadline of a wait
# (wait_until, wait_port, stop, stop_load, curl's --max-time, INTEG_TIMEOUT) is multiplied
# by it; scenario durations ("send for 3 s") never are.
#
# Load: tests drive HAProxy with tests/loadgen (start_load), never with process-per-request
# curl loops, and judge behaviour relative to the load actually achieved (shares, counts
# after an event, order of events), never a request rate.
#
# Output contract (tests/run counts it): one "PASS name" or "FAIL name" line per case,
# details on following lines indented by two spaces; exit status non-zero on any FAIL.

set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
ROOT=$PWD
BUILD=${BUILD:-build/release}
PAYSPOA_BIN=${PAYSPOA_BIN:-./payspoa}
PAYAPI_BIN=${PAYAPI_BIN:-$BUILD/tests/payapi/payapi}
LOADGEN_BIN=${LOADGEN_BIN:-$BUILD/tests/loadgen/loadgen}
HAPROXY_BIN=${HAPROXY_BIN:-haproxy}
case $PAYSPOA_BIN in *asan*|*tsan*) TEST_TIME_SCALE=${TEST_TIME_SCALE:-5} ;; esac
export TEST_TIME_SCALE=${TEST_TIME_SCALE:-1}
# scaled SECONDS: a wait's deadline times TEST_TIME_SCALE, in whole seconds (rounded up).
scaled() { awk -v s="$1" -v k="$TEST_TIME_SCALE" 'BEGIN { v = s * k; printf "%d\n", v == int(v) ? v : int(v) + 1 }'; }
INTEG_TIMEOUT=$(scaled "${INTEG_TIMEOUT:-120}")

T=$(mktemp -d /tmp/payspoa-integ.XXXXXX) || exit 2
declare -A PROC=()       # name → pid of processes started with start_bg
declare -A USED_PORT=()  # ports handed out by alloc_port
INTEG_FAILED=0
INTEG_CASES=0

# ---- results -------------------------------------------------------------------------

pass() { INTEG_CASES=$((INTEG_CASES + 1)); echo "PASS $1"; }
# fail NAME [DETAIL...]: each DETAIL becomes an indented line.
fail() {
	local name=$1 d
	shift
	INTEG_CASES=$((INTEG_CASES + 1)); INTEG_FAILED=1
	echo "FAIL $name"
	for d in "$@"; do printf '%s\n' "$d" | sed 's/^/  /'; done
}
# expect NAME WHAT GOT WANTED: pass when GOT equals WANTED.
expect() {
	if [ "$3" = "$4" ]; then pass "$1"; else fail "$1" "$2: got '$3', want '$4'"; fi
}
# check NAME "A OP B" DETAIL: passes when the awk comparison holds (numbers only).
check() {
	local name=$1 expr=$2 detail=$3
	if awk "BEGIN { exit !($expr) }" </dev/null 2>/dev/null; then
		pass "$name"
	else
		fail "$name" "$detail: $expr does not hold"
	fi
}
# need CMD...: a prerequisite; without it the script stops with a FAIL (never a skip:
# a test that cannot run has not passed).
need() {
	command -v "$1" >/dev/null 2>&1 || { fail "prerequisite" "$1 not found"; exit 1; }
}

# ---- processes ------------------------------------------------------------------------

# start_bg NAME CMD...: runs CMD in the background, output in $T/NAME.log.
start_bg() {
	local name=$1
	shift
	"$@" >"$T/$name.log" 2>&1 </dev/null &
	PROC[$name]=$!
	disown "$!"   # bash would report a job killed on purpose as "Killed"
}

alive() { [ -n "${PROC[$1]:-}" ] && kill -0 "${PROC[$1]}" 2>/dev/null; }

# stop NAME [SIGNAL]: signals the process (TERM by default), waits up to 5 s (scaled),
# then KILLs.
stop() {
	local name=$1 sig=${2:-TERM} pid=${PROC[$1]:-} deadline
	[ -n "$pid" ] || return 0
	kill "-$sig" "$pid" 2>/dev/null
	deadline=$((SECONDS + $(scaled 5)))
	while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null
	unset "PROC[$name]"
}

integ_cleanup() {
	local name
	trap - EXIT TERM INT
	for name in "${!PROC[@]}"; do stop "$name"; done
	[ -n "${INTEG_WATCHDOG:-}" ] && kill "$INTEG_WATCHDOG" 2>/dev/null
	if [ "$INTEG_FAILED" -ne 0 ] || [ "${INTEG_KEEP:-0}" = 1 ]; then
		echo "  logs kept in $T"
	else
		rm -rf "$T"
	fi
}

integ_timeout() {
	fail "time-limit" "the script ran longer than ${INTEG_TIMEOUT}s"
	exit 1
}

trap integ_cleanup EXIT
trap integ_timeout TERM
trap 'exit 1' INT
# The watchdog's own sleep dies with it (its TERM trap), so nothing outlives the script.
( trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  sleep "$INTEG_TIMEOUT" & sp=$!
  wait "$sp" && kill -TERM $$ 2>/dev/null ) >/dev/null 2>&1 &
INTEG_WATCHDOG=$!
disown "$INTEG_WATCHDOG"   # so that a test's own "wait" never waits for it

# integ_done: the last line of a test script. Every process not stopped on purpose must
# still be running: a crash fails the script even when the cases it broke passed.
integ_done() {
	local name
	[ "$INTEG_CASES" -gt 0 ] || fail "no-cases" "the script ran no case"
	for name in "${!PROC[@]}"; do
		alive "$name" || fail "process-$name" "exited unexpectedly:" "$(tail -5 "$T/$name.log")"
	done
	exit "$INTEG_FAILED"
}

# ---- ports ----------------------------------------------------------------------------

# port_busy PORT: something accepts connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ports are picked below the kernel's ephemeral range, so that no outgoing connection
# (HAProxy's, curl's) can be holding the port we are about to listen on.
read -r INTEG_EPH_LOW _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || INTEG_EPH_LOW=32768
[ "${INTEG_EPH_LOW:-0}" -gt 12000 ] 2>/dev/null || INTEG_EPH_LOW=32768

# INTEG_PORT_SLICE=I/N (tests/run all: the layer against two HAProxy versions side by
# side): this run picks its ports in the I-th of N equal slices of that range only, so two
# runs never pick the same port between one's check and its listen.
INTEG_PORT_LOW=10000 INTEG_PORT_SPAN=$((INTEG_EPH_LOW - 10000))
if [[ "${INTEG_PORT_SLICE:-}" =~ ^([0-9]+)/([1-9][0-9]*)$ ]] && [ "${BASH_REMATCH[1]}" -lt "${BASH_REMATCH[2]}" ]; then
	INTEG_PORT_SPAN=$((INTEG_PORT_SPAN / BASH_REMATCH[2]))
	INTEG_PORT_LOW=$((INTEG_PORT_LOW + BASH_REMATCH[1] * INTEG_PORT_SPAN))
fi

# alloc_port VAR: a free loopback port not handed out before, stored in VAR.
alloc_port() {
	local p i
	for i in $(seq 200); do
		p=$((INTEG_PORT_LOW + (RANDOM * 32768 + RANDOM) % INTEG_PORT_SPAN))
		[ -n "${USED_PORT[$p]:-}" ] && continue
		port_busy "$p" && continue
		if command -v ss >/dev/null 2>&1 && [ -n "$(ss -Htan "sport = :$p" 2>/dev/null)" ]; then
			continue
		fi
		USED_PORT[$p]=1
		printf -v "$1" '%s' "$p"
		return 0
	done
	fail "alloc-port" "no free port found"
	exit 1
}

# wait_port NAME PORT [SECONDS]: until PORT accepts, while process NAME lives.
wait_port() {
	local name=$1 port=$2 deadline=$((SECONDS + $(scaled "${3:-10}")))
	while [ "$SECONDS" -lt "$deadline" ]; do
		port_busy "$port" && return 0
		alive "$name" || { echo "  $name exited: $(tail -3 "$T/$name.log" | tr '\n' ' ')"; return 1; }
		sleep 0.05
	done
	echo "  $name: port $port not open after $(scaled "${3:-10}")s"
	return 1
}

# wait_until SECONDS CMD...: polls CMD every 0.1 s until it succeeds or time runs out
# (SECONDS scaled by TEST_TIME_SCALE).
wait_until() {
	local deadline=$((SECONDS + $(scaled "$1")))
	shift
	while :; do
		"$@" && return 0
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

# ---- components -----------------------------------------------------------------------

# start_payapi NAME PORT: an emulated payment API instance called NAME.
start_payapi() {
	start_bg "$1" "$PAYAPI_BIN" -l "127.0.0.1:$2" -n "$1" && wait_port "$1" "$2"
}

# payapi_mode PORT PARAMS...: POST /__payapi/mode (e.g. mode=failing error_rate=0.5).
payapi_mode() {
	local port=$1 a args=()
	shift
	for a in "$@"; do args+=(-d "$a"); done
	curl -sS --max-time "$(scaled 5)" -o /dev/null -w '%{http_code}' "${args[@]}" \
		"http://127.0.0.1:$port/__payapi/mode" | grep -qx 200
}

# payapi_stat PORT FIELD: a top-level number from GET /__payapi/stats.
payapi_stat() {
	curl -sS --max-time "$(scaled 5)" "http://127.0.0.1:$1/__payapi/stats" |
		grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2
}

# policy_copy DIR [SED-EXPR...]: conf/ copied into DIR; in the policy file (POLICY_FILE,
# relative to conf/, default payspoa.conf; or POLICY_SRC, a file anywhere, copied in
# beside conf/'s) the admin socket, metrics and state file are moved off the shared
# defaults, then each SED-EXPR is applied. Sets POLICY to the file and POLICY_METRICS to
# its metrics port; the file must pass payspoa -c.
policy_copy() {
	local dir=$1 e f
	shift
	mkdir -p "$dir" && cp -r conf/. "$dir/" || return 1
	f=$dir/${POLICY_FILE:-payspoa.conf}
	if [ -n "${POLICY_SRC:-}" ]; then
		cp "$POLICY_SRC" "$dir/" || return 1
		f=$dir/$(basename "$POLICY_SRC")
	fi
	alloc_port POLICY_METRICS
	sed -i -e "s|^\([[:space:]]*admin_socket[[:space:]]*=\).*|\1 \"$dir/admin.sock\";|" \
		-e "s|^\([[:space:]]*metrics[[:space:]]*=\).*|\1 \"127.0.0.1:$POLICY_METRICS\";|" \
		-e "s|^\([[:space:]]*state_file[[:space:]]*=\).*|\1 \"$dir/state.msgpack\";|" \
		-e "s|^\([[:space:]]*outcome_socket[[:space:]]*=\).*|\1 \"$dir/outcomes.sock\";|" \
		"$f" || return 1
	# HAProxy started from now on sends its outcome log lines to this copy's socket.
	export PAY_OUTCOME_SOCK=$dir/outcomes.sock
	for e in "$@"; do sed -i -e "$e" "$f" || return 1; done
	POLICY=$f
	"$PAYSPOA_BIN" -c -f "$POLICY" >"$dir/check.log" 2>&1 || {
		echo "  payspoa -c -f $POLICY failed: $(head -3 "$dir/check.log" | tr '\n' ' ')"
		return 1
	}
}

# start_payspoa NAME PORT POLICY: the daemon in the foreground on 127.0.0.1:PORT.
start_payspoa() {
	start_bg "$1" "$PAYSPOA_BIN" -d -f "$3" -l "127.0.0.1:$2" && wait_port "$1" "$2"
}

# start_haproxy NAME HTTP_PORT US_PORT EU_PORT AGENT_PORT [VAR=VALUE...]: haproxy in the
# foreground with haproxy/haproxy.cfg; the stats socket is $T/NAME.sock; the pin tables'
# local peer gets a port of its own (HAP_PEER[NAME]), so instances never share tables.
# The standby backends (stripe_us_standby, stripe_eu_standby) point at P_US2 and P_EU2,
# allocated here (nothing listening) when start_accounts did not run.
declare -A HAP_PEER=()
start_haproxy() {
	local name=$1 http=$2 us=$3 eu=$4 agent=$5 peer
	shift 5
	alloc_port peer
	HAP_PEER[$name]=$peer
	[ -n "${P_US2:-}" ] || alloc_port P_US2
	[ -n "${P_EU2:-}" ] || alloc_port P_EU2
	start_bg "$name" env PAY_HTTP_ADDR="127.0.0.1:$http" PAY_US_ADDR="127.0.0.1:$us" \
		PAY_EU_ADDR="127.0.0.1:$eu" PAY_US2_ADDR="127.0.0.1:$P_US2" PAY_EU2_ADDR="127.0.0.1:$P_EU2" \
		PAY_AGENT_ADDR="127.0.0.1:$agent" PAY_PEER_ADDR="127.0.0.1:$peer" \
		PAY_STATS_SOCK="$T/$name.sock" PAY_LOG_LEVEL=notice PAY_FAIL_CLOSED=0 "$@" \
		"$HAPROXY_BIN" -db -f haproxy/haproxy.cfg && wait_port "$name" "$http"
}

# need_hap_cli: hap_cli needs socat (or python3) to talk to a unix socket.
need_hap_cli() {
	command -v socat >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 ||
		{ fail prerequisite "socat not found (apt-get install socat)"; exit 1; }
}

# hap_cli NAME COMMAND: a runtime API command on haproxy NAME's stats socket.
hap_cli() {
	local sock=$T/$1.sock
	if command -v socat >/dev/null 2>&1; then
		echo "$2" | timeout "$(scaled 5)" socat - "UNIX-CONNECT:$sock"
	elif command -v python3 >/dev/null 2>&1; then
		timeout "$(scaled 5)" python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode()+b"\n")
while True:
    b=s.recv(65536)
    if not b: break
    sys.stdout.write(b.decode())' "$sock" "$2"
	else
		echo "hap_cli: neither socat nor python3" >&2
		return 1
	fi
}

# hap_server_status NAME BACKEND SERVER: UP, DOWN, MAINT, "UP 1/2"... from "show stat".
hap_server_status() {
	hap_cli "$1" "show stat" | awk -F, -v b="$2" -v s="$3" '$1 == b && $2 == s { print $18 }'
}

# hap_server_is NAME BACKEND SERVER STATUS: for wait_until.
hap_server_is() { [ "$(hap_server_status "$1" "$2" "$3")" = "$4" ]; }

# need_stack: the prerequisites of a test against the whole stack.
need_stack() {
	need curl
	need "$HAPROXY_BIN"
	need_hap_cli
	[ -x "$PAYAPI_BIN" ] || { fail prerequisite "$PAYAPI_BIN not built (make bench-bin)"; exit 1; }
	[ -x "$PAYSPOA_BIN" ] || { fail prerequisite "$PAYSPOA_BIN not built (make)"; exit 1; }
	[ -x "$LOADGEN_BIN" ] || { fail prerequisite "$LOADGEN_BIN not built (make loadgen)"; exit 1; }
}

# start_accounts: one emulated account per backend of haproxy/haproxy.cfg, each process
# named after its backend: stripe_us on P_US, stripe_eu on P_EU, stripe_us_standby on
# P_US2, stripe_eu_standby on P_EU2 (ports allocated here). Any failure ends the script.
start_accounts() {
	alloc_port P_US; alloc_port P_EU; alloc_port P_US2; alloc_port P_EU2
	start_payapi stripe_us "$P_US" && start_payapi stripe_eu "$P_EU" &&
		start_payapi stripe_us_standby "$P_US2" && start_payapi stripe_eu_standby "$P_EU2" ||
		{ fail start-payapi; exit 1; }
}

# A redis-server of the script's own for fleet tests: redis_setup allocates P_REDIS and the
# data folder $T/redis (after `need redis-server` and `need redis-cli`); start_redis starts
# it as process "redis" (nothing saved) and returns once it listens: call it again after
# `stop redis KILL` to bring it back on the same port; rcli ARGS...: redis-cli on it.
redis_setup() { alloc_port P_REDIS; mkdir -p "$T/redis"; }
start_redis() {
	start_bg redis redis-server --bind 127.0.0.1 --port "$P_REDIS" --dir "$T/redis" --save '' \
		--appendonly no --daemonize no --protected-mode yes && wait_port redis "$P_REDIS"
}
rcli() { timeout 5 redis-cli -h 127.0.0.1 -p "$P_REDIS" "$@"; }

# fleet_sed NODE [SETTINGS]: the policy_copy expression appending the fleet section of
# node nNODE on the script's Redis (redis_setup), heartbeats every 100 ms, a node gone
# after 1 s, Redis given up after 300 ms and retried every 200 ms at most; SETTINGS
# ("claim = false; ...") added to it.
fleet_sed() {
	echo "\$a fleet = { redis = \"127.0.0.1:$P_REDIS\"; node = \"n$1\"; heartbeat_ms = 100; node_ttl_ms = 1000; timeout_ms = 300; reconnect_max_ms = 200; ${2:-}};"
}
# fleet_stat LOG FIELD: FIELD of the last fleet_stats (or fleet_stopped) line of $T/LOG.log, 0
# before the first (the agent logs them with -d, at each heartbeat where one changed);
# fleet_stat_ge and fleet_stat_eq LOG FIELD N compare it.
fleet_stat() {
	local v
	v=$(grep -h '"event":"fleet_st' "$T/$1.log" | tail -1 | grep -o "\"$2\":\"[0-9]*\"" | cut -d'"' -f4)
	echo "${v:-0}"
}
fleet_stat_ge() { [ "$(fleet_stat "$1" "$2")" -ge "$3" ]; }
fleet_stat_eq() { [ "$(fleet_stat "$1" "$2")" = "$3" ]; }
# Three fleet nodes h<i> + a<i>-RUN (i = 1..3), ports P_HTTPN[i], P_AGENTN[i] (allocated
# by fleet_ports). fleet_agents ARG RUN: every node's payspoa (re)started with the policy
# the script's `policy NODE ARG` function leaves in POLICY, logs a<i>-RUN; returns once
# each has resynchronised with Redis. fleet_nodes_up: every node's HAProxy sees its
# payspoa UP. fstat NODE FIELD: FIELD of the node's last fleet_stats / fleet_stopped line
# (debug); fstat_ge NODE FIELD N, for wait_until.
declare -A P_HTTPN=() P_AGENTN=() AGENT=()
fleet_ports() {
	local i
	for i in 1 2 3; do alloc_port "P_HTTPN[$i]"; alloc_port "P_AGENTN[$i]"; done
}
fleet_agents() {
	local i
	for i in 1 2 3; do
		[ -n "${AGENT[$i]:-}" ] && stop "${AGENT[$i]}"
		policy "$i" "$1"
		AGENT[$i]=a$i-$2
		start_payspoa "${AGENT[$i]}" "${P_AGENTN[$i]}" "$POLICY" || { fail "start-payspoa-$i" "$(tail -5 "$T/${AGENT[$i]}.log")"; exit 1; }
	done
	for i in 1 2 3; do
		wait_until 15 grep -q '"event":"fleet_resynced"' "$T/${AGENT[$i]}.log" ||
			{ fail "resynced-$i-$2" "$(grep fleet "$T/${AGENT[$i]}.log" | tail -3)"; exit 1; }
	done
}
fleet_nodes_up() {
	local i
	for i in 1 2 3; do
		wait_until 10 hap_server_is "h$i" spoe-payspoa payspoa1 UP || return 1
	done
}
fstat() { fleet_stat "${AGENT[$1]}" "$2"; }
fstat_ge() { [ "$(fstat "$1" "$2")" -ge "$3" ]; }

# backend_port BACKEND: the port of BACKEND's emulated account (after start_accounts).
backend_port() {
	case $1 in
	stripe_us) echo "$P_US" ;;
	stripe_eu) echo "$P_EU" ;;
	stripe_us_standby) echo "$P_US2" ;;
	stripe_eu_standby) echo "$P_EU2" ;;
	*) return 1 ;;
	esac
}

# start_stack [SED-EXPR...]: the emulated accounts (start_accounts), payspoa ("agent")
# with a copy of conf/payspoa.conf edited by the SED-EXPRs (see policy_copy), and haproxy
# ("hap") with haproxy/haproxy.cfg; returns once HAProxy's spop-check sees the agent UP.
# Sets P_HTTP, P_US, P_EU, P_US2, P_EU2, P_AGENT, POLICY, and HAP (the frontend's base
# URL). In the SED-EXPRs, @P_US@, @P_EU@, @P_US2@ and @P_EU2@ become the accounts' ports
# (allocated here). Any failure ends the script with a FAIL.
start_stack() {
	alloc_port P_HTTP; alloc_port P_AGENT
	HAP=http://127.0.0.1:$P_HTTP
	start_accounts
	set -- "${@//@P_US@/$P_US}"; set -- "${@//@P_EU@/$P_EU}"
	set -- "${@//@P_US2@/$P_US2}"; set -- "${@//@P_EU2@/$P_EU2}"
	policy_copy "$T/pol" "$@" ||
		{ fail policy "cannot derive the policy: $(head -3 "$T/pol/check.log" 2>/dev/null)"; exit 1; }
	start_payspoa agent "$P_AGENT" "$POLICY" || { fail start-payspoa "$(tail -5 "$T/agent.log")"; exit 1; }
	start_haproxy hap "$P_HTTP" "$P_US" "$P_EU" "$P_AGENT" ||
		{ fail start-haproxy "$(tail -5 "$T/hap.log")"; exit 1; }
	wait_until 10 hap_server_is hap spoe-payspoa payspoa1 UP ||
		{ fail agent-up "spoe-payspoa/payspoa1 is '$(hap_server_status hap spoe-payspoa payspoa1)'"; exit 1; }
}

# pay_list FILE KEY: the four kinds of payment in turn (kind, amount, card country; the
# currency is the kind's first three letters), each with Idempotency-Key KEY (with {n} or
# {r}); request n of a run is always kind (n - 1) mod 4, so the same run again retries
# the same payments with the same keys and bodies.
pay_list() {
	local kind amount card
	while read -r kind amount card; do
		printf 'POST /v1/payment_intents amount=%s&currency=%s&payment_method=pm_card_visa&confirm=true\n' \
			"$amount" "${kind:0:3}"
		printf '\tX-Card-Country: %s\n\tIdempotency-Key: %s\n' "$card" "$2"
	done >"$1" <<-EOF
		usd 1200 US
		eur 1300 DE
		gbpus 1400 US
		gbpgb 1500 GB
	EOF
}

# ---- HTTP -----------------------------------------------------------------------------

# req BASE METHOD PATH [CURL-ARGS...]: one request; sets CODE (000 when no answer), the
# headers in $T/hdrs and the body in $T/body.
req() {
	local base=$1 method=$2 path=$3
	shift 3
	: >"$T/hdrs"; : >"$T/body"
	CODE=$(curl -sS --max-time "$(scaled 10)" -X "$method" -o "$T/body" -D "$T/hdrs" -w '%{http_code}' \
		"$@" "$base$path" 2>"$T/curl.err") || CODE=000
}

# hdr NAME: a header of the last response ("" when absent).
hdr() { grep -i "^$1:" "$T/hdrs" | tail -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }

# jfield KEY: the first string value of "KEY" in the last body.
jfield() { grep -o "\"$1\":\"[^\"]*\"" "$T/body" | head -1 | cut -d'"' -f4; }

# burst URL N PARALLEL [CURL-ARGS...]: N requests to URL?n=1..N (URL without a query),
# PARALLEL at a time; one line per response on stdout: "status verdict backend
# retry-after reason". With BURST_SAVE=DIR, response I is kept whole (headers, empty
# line, body) as DIR/rI; load_saved turns one into the "last response".
burst() {
	local url=$1 n=$2 par=$3 out=(-o /dev/null)
	shift 3
	if [ -n "${BURST_SAVE:-}" ]; then
		mkdir -p "$BURST_SAVE" && out=(-i -o "$BURST_SAVE/r#1")   # -D does not expand #1
	fi
	curl -s -Z --parallel-max "$par" --max-time "$(scaled 20)" "$@" "${out[@]}" \
		-w '%{http_code} %header{x-pay-verdict} %header{x-pay-backend} %header{retry-after} %header{x-pay-reason}\n' \
		"$url?n=[1-$n]" 2>/dev/null
}

# load_saved FILE: a response saved by burst becomes the last one (CODE, hdr, jfield).
load_saved() {
	awk 'NR > 1 && /^\r?$/ { exit } { print }' "$1" >"$T/hdrs"
	awk 'f { print } /^\r?$/ { f = 1 }' "$1" >"$T/body"
	CODE=$(head -1 "$T/hdrs" | awk '{ print $2 }')
}

# show_last: the last response, indented, for FAIL details.
show_last() {
	echo "status $CODE; headers: $(grep -i '^x-pay' "$T/hdrs" | tr -d '\r' | tr '\n' ' ')"
	echo "body: $(head -c 300 "$T/body")"
}

# ---- load (tests/loadgen) -----------------------------------------------------------------

# start_load NAME LIST LOADGEN-ARGS...: tests/loadgen against $HAP in the background with
# the request list LIST (format: tests/loadgen/README.md); one line per request in
# $T/NAME.out ("start|latency_us|status|" then the -o headers), its summary in
# $T/NAME.log. It runs until stop_load NAME.
start_load() {
	local name=$1 list=$2
	shift 2
	rm -f "$T/$name.stop"
	"$LOADGEN_BIN" -a "$HAP" -f "$list" -s "$T/$name.stop" "$@" >"$T/$name.out" 2>"$T/$name.log" </dev/null &
	PROC[$name]=$!
	disown "$!"
}

# stop_load NAME: no new request; waits (up to 15 s, scaled) until every request in
# flight has ended and its line is written, then prints loadgen's summary, indented.
stop_load() {
	local name=$1 pid=${PROC[$1]:-} deadline
	[ -n "$pid" ] || return 0
	touch "$T/$name.stop"
	deadline=$((SECONDS + $(scaled 15)))
	while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
	stop "$name"
	sed 's/^/  /' "$T/$name.log"
}

# load_window NAME FROM TO: the complete lines of load NAME whose request started in
# [FROM, TO) (seconds, $EPOCHREALTIME's base), in start order.
load_window() {
	sort -n "$T/$1.out" | awk -F'|' -v a="$2" -v b="$3" 'NF > 3 && $1 >= a && $1 < b'
}

# ---- requests HAProxy routed without advice ----------------------------------------------
# When payspoa's answer does not come within the SPOE's `timeout processing` (100 ms: a
# loaded machine, a sanitizer build, the first request of a connection), HAProxy gives up
# on it: txn.pay.error is set (X-Pay-Error: 1 for a timeout) and the request is routed by
# haproxy.cfg's fallbacks (the currency's usual backend) with no X-Pay-* advice. Such a
# request must still be served; it carries no decision, so a case that judges decisions
# (verdicts, reasons, shares of advice) judges it apart, never as advised.
#
# spoe_gave_up_burst: the lines of burst output (stdin) HAProxy routed without advice
# (no verdict: the status is followed by an empty field).
spoe_gave_up_burst() { grep -E '^[0-9]{3}  ' || true; }
# spoe_advised_burst: the other lines (a verdict after the status).
spoe_advised_burst() { grep -vE '^[0-9]{3}  ' || true; }
# spoe_gave_up_load COL: the lines of a load (stdin) HAProxy routed without advice, COL
# being the column of "-o x-pay-error" in its start_load; spoe_advised_load COL the others.
spoe_gave_up_load() { awk -F'|' -v c="$1" '$c != ""'; }
spoe_advised_load() { awk -F'|' -v c="$1" 'NF >= c && $c == ""'; }

now() { echo "$EPOCHREALTIME"; }
# plus T D: T + D seconds.
plus() { awk -v t="$1" -v d="$2" 'BEGIN { printf "%.6f", t + d }'; }
