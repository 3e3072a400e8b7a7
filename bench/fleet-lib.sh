# bench/fleet-lib.sh: what bench/run-fleet and bench/run-fleet-budget share (sourced):
# a temp folder cleaned on exit, free ports, a redis-server of its own, the policy copy
# and payspoa fleet nodes on it. Set FL_NAME (the scripts' name, for messages) first.
BUILD=${BUILD:-build/release}
command -v redis-server >/dev/null || { echo "$FL_NAME: redis-server not installed (apt-get install redis-server)" >&2; exit 1; }

tmp=$(mktemp -d "/tmp/$FL_NAME.XXXXXX")
pids=()
fl_cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -n "${KEEP:-}" ]; then echo "$FL_NAME: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap fl_cleanup EXIT

# free_port: a port nothing listens on (another program may take it before we do: see
# start_on_port)
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return; fi
	done
	echo "$FL_NAME: no free port found" >&2
	exit 1
}
wait_port() { # PORT PID LOG: 0 when PORT is open, 1 when PID exited (exits on a timeout)
	for _ in $(seq 1 200); do
		(exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	echo "$FL_NAME: port $1 never opened" >&2
	exit 1
}
# start_on_port LOG CMD...: runs CMD in the background with @PORT@ in its arguments
# replaced by a free port, again on another port if it exits before listening (a port
# taken in between); sets SP_PORT and SP_PID.
start_on_port() {
	local log=$1 a args try
	shift
	for try in 1 2 3 4 5; do
		SP_PORT=$(free_port)
		args=()
		for a in "$@"; do args+=("${a//@PORT@/$SP_PORT}"); done
		"${args[@]}" >"$log" 2>&1 &
		SP_PID=$!
		pids+=($SP_PID)
		wait_port "$SP_PORT" "$SP_PID" && return 0
	done
	echo "$FL_NAME: $1 exited:" >&2
	cat "$log" >&2
	exit 1
}
# field LOG EVENT NAME: NAME of the last EVENT line of LOG
field() { grep -h "\"event\":\"$2\"" "$1" | tail -1 | grep -o "\"$3\":\"[0-9]*\"" | cut -d'"' -f4; }

# fl_redis: a redis-server on a free port, nothing saved; sets rport.
fl_redis() {
	mkdir -p "$tmp/redis"
	start_on_port "$tmp/redis.log" redis-server --bind 127.0.0.1 --port @PORT@ --dir "$tmp/redis" --save '' --appendonly no
	rport=$SP_PORT
}

# fl_conf DIR SED...: conf/ copied to DIR with the seds applied to payspoa.conf (each
# must change something: the policy moves) and its own outcome socket.
fl_conf() {
	local d=$1 e
	shift
	mkdir -p "$d"
	cp -r conf/. "$d/"
	sed -i -e "s|^\([[:space:]]*outcome_socket[[:space:]]*=\).*|\1 \"$d/outcomes.sock\";|" "$d/payspoa.conf"
	for e in "$@"; do
		cp "$d/payspoa.conf" "$d/before"
		sed -i -e "$e" "$d/payspoa.conf"
		cmp -s "$d/before" "$d/payspoa.conf" && { echo "$FL_NAME: '$e' changed nothing in conf/payspoa.conf" >&2; exit 1; }
	done
	rm -f "$d/before"
}

# fl_nodes N CONF_DIR [FLEET SETTINGS]: N payspoa nodes n1..nN of CONF_DIR's policy, one
# worker each, sharing the Redis (heartbeat 100 ms, plus the settings given), their logs
# $tmp/nI.log; sets port[] and npid[]; returns when every node sees N nodes.
declare -a port npid
fl_nodes() {
	local n=$1 d=$2 extra=${3:-} i
	for i in $(seq 1 "$n"); do
		# each node its own outcome socket (the default path is one per host)
		sed -e "s|^\([[:space:]]*outcome_socket[[:space:]]*=\).*|\1 \"$d/n$i-outcomes.sock\";|" \
			"$d/payspoa.conf" >"$d/n$i.conf"
		echo "fleet = { redis = \"127.0.0.1:$rport\"; node = \"n$i\"; heartbeat_ms = 100; node_ttl_ms = 1000; $extra };" >>"$d/n$i.conf"
		start_on_port "$tmp/n$i.log" "$BUILD/payspoa" -d -f "$d/n$i.conf" -l "127.0.0.1:@PORT@" -w 1
		port[$i]=$SP_PORT
		npid[$i]=$SP_PID
	done
	for i in $(seq 1 "$n"); do
		for _ in $(seq 1 400); do
			[ "$(field "$tmp/n$i.log" fleet_stats nodes)" = "$n" ] && [ "$(field "$tmp/n$i.log" fleet_stats redis_up)" = 1 ] && break
			sleep 0.05
		done
	done
}
# fl_stop N: stop nodes 1..N (their fleet_stopped lines written)
fl_stop() {
	local i
	for i in $(seq 1 "$1"); do kill -TERM "${npid[$i]}"; wait "${npid[$i]}" || true; done
}
