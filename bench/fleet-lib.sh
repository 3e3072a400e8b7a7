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
	rm -rf "$tmp"
}
trap fl_cleanup EXIT

used=" "
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 40000))
		case $used in *" $p "*) continue ;; esac
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then used="$used$p "; echo "$p"; return; fi
	done
	echo "$FL_NAME: no free port found" >&2
	exit 1
}
wait_port() { # PORT PID LOG
	for _ in $(seq 1 200); do
		(exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || { echo "$FL_NAME: exited:" >&2; cat "$3" >&2; exit 1; }
		sleep 0.05
	done
	echo "$FL_NAME: port $1 never opened" >&2
	exit 1
}
# field LOG EVENT NAME: NAME of the last EVENT line of LOG
field() { grep -h "\"event\":\"$2\"" "$1" | tail -1 | grep -o "\"$3\":\"[0-9]*\"" | cut -d'"' -f4; }

# fl_redis: a redis-server on a free port, nothing saved; sets rport.
fl_redis() {
	rport=$(free_port)
	mkdir -p "$tmp/redis"
	redis-server --bind 127.0.0.1 --port "$rport" --dir "$tmp/redis" --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
	pids+=($!)
	wait_port "$rport" "$!" "$tmp/redis.log"
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
		port[$i]=$(free_port)
		"$BUILD/payspoa" -d -f "$d/n$i.conf" -l "127.0.0.1:${port[$i]}" -w 1 >"$tmp/n$i.log" 2>&1 &
		npid[$i]=$!
		pids+=($!)
		wait_port "${port[$i]}" "$!" "$tmp/n$i.log"
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
