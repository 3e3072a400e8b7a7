#!/usr/bin/env bash
# test-demo.sh: `make run` (bench/demo) as a person sees it. Runs the demo in tmux (a
# 100x30 pane) on free ports for its whole story (DEMO_DURATION), reads the screen with
# tmux capture-pane and checks it at the key moments: the view is up, USD fails over
# during the outage (breaker open, the standby takes the US account's traffic) with no
# key charged on two accounts, traffic comes back after recovery, during the flash sale
# background is shed while checkout is served, shedding stops when calm; then that the
# demo exits 0 and leaves nothing running. A second, short run is stopped with Ctrl-C.
#
# Every check waits for text on the screen with a generous upper bound (the screen is
# polled), never a fixed sleep; the story's phases are times, the test only waits for them.
INTEG_TIMEOUT=${INTEG_TIMEOUT:-300}
. "$(dirname "$0")/../integ/lib.sh"

need_stack
need tmux
DUR=100              # the story compressed into 100 s: outage at 15 s, recovery 40, sale 60, calm 80
TMUX_SOCK=$T/tmux.sock
tmx() { tmux -S "$TMUX_SOCK" "$@"; }

# run_demo NAME [VAR=VALUE...]: bench/demo in a detached 100x30 tmux session NAME on ports
# of its own; once it exits the pane prints DEMO-EXIT=<status> and waits (so the screen
# can still be read). Sets PANE_PID (its shell: the session leader of everything the
# demo starts) and DEMO_PORTS.
run_demo() {
	local name=$1 port v ports=() envs=()
	shift
	for v in HTTP US EU US2 EU2 AGENT METRICS PEER; do
		alloc_port port
		envs+=("DEMO_${v}_PORT=$port"); ports+=("$port")
	done
	DEMO_PORTS=${ports[*]}
	tmx new-session -d -s "$name" -x 100 -y 30 \
		"env ${envs[*]} BUILD=$BUILD PAYSPOA_BIN=$PAYSPOA_BIN HAPROXY_BIN=$HAPROXY_BIN $* bench/demo; echo DEMO-EXIT=\$?; read x" ||
		{ fail "$name-start" "tmux new-session failed"; exit 1; }
	PANE_PID=$(tmx display-message -p -t "$name" '#{pane_pid}')
	# The tmux server is stopped with everything else if the script ends early (its
	# panes get SIGHUP: the demo stops what it started).
	PROC[tmux]=$(tmx display-message -p '#{pid}')
}

# demo_dir: the demo's temporary folder, from the screen after it exited.
demo_dir() { sed -n 's/^demo: logs are in \(\/tmp\/payspoa-demo\.[A-Za-z0-9]*\)$/\1/p' "$T/screen" | tail -1; }

# screen NAME: the visible pane in $T/screen.
screen() { tmx capture-pane -p -t "$1" >"$T/screen" 2>/dev/null; }
# on_screen NAME ERE...: every ERE matches a line of one capture.
on_screen() {
	local name=$1 re
	shift
	screen "$name" || return 1
	for re in "$@"; do grep -Eq -- "$re" "$T/screen" || return 1; done
}
# row FIELD-NAME COLUMN: a column of the table row whose first word is FIELD-NAME.
row() { awk -v n="$1" -v c="$2" '$1 == n { print $c; exit }' "$T/screen"; }
num() { local v=${1%\%}; [[ $v =~ ^[0-9]+$ ]] && echo "$v" || echo -1; }
show_screen() { sed 's/^/| /' "$T/screen"; }

# Predicates on one capture of session "story".
failed_over() {
	on_screen story '^2/5 OUTAGE' '^stripe_us +[0-9]+% .*(open|half-open)' || return 1
	[ "$(num "$(row stripe_us_standby 2)")" -ge 50 ]
}
came_back() {
	on_screen story '^(3/5|4/5)' '^stripe_us +[0-9]+% .* closed ' || return 1
	[ "$(num "$(row stripe_us 2)")" -ge 10 ]
}
surge_held() {
	local served
	on_screen story '^4/5 FLASH SALE' '^background .*SHEDDING' '^checkout .*served' || return 1
	# checkout: allowed in the last 5 s, and at least 95 % of its decisions served
	served=$(grep '^checkout ' "$T/screen" | grep -o 'served *[0-9]*%' | grep -o '[0-9]*')
	[ "$(num "$(row checkout 2)")" -gt 0 ] && [ "${served:-0}" -ge 95 ]
}
calm() { on_screen story '^5/5 Calm' '^background .*served' && ! grep -q '^background .*SHEDDING' "$T/screen"; }

# double_keys: keys (of the demo's retries, or any) held by two of the emulated accounts.
double_keys() {
	local p
	for p in $(echo "$DEMO_PORTS" | awk '{ print $2, $3, $4, $5 }'); do
		curl -s --max-time 3 "http://127.0.0.1:$p/__payapi/keys" | grep -o '"keys":\[[^]]*\]' |
			grep -o '"[^"]*"' | grep -v '^"keys"$'
	done | sort | uniq -d | wc -l
}

# left_running SID PORTS: processes of session SID but its leader, or listeners on PORTS.
left_running() {
	local sid=$1 p
	shift
	ps -eo pid=,sid=,args= | awk -v s="$sid" '$2 == s && $1 != s'
	for p in "$@"; do ss -Hltn "sport = :$p" 2>/dev/null | sed "s/^/port $p: /"; done
}

# ---- the whole story --------------------------------------------------------------------
run_demo story DEMO_DURATION=$DUR
STORY_PORTS=$DEMO_PORTS STORY_PID=$PANE_PID

# view_up: the whole view on one capture, its title on the pane's first line (a line that
# wrapped would have scrolled it away).
view_up() {
	on_screen story '^1/5 Healthy' '^BACKEND' '^stripe_us_standby ' '^checkout +[0-9]+' '^FEES +paid' '^EVENTS' &&
		head -1 "$T/screen" | grep -q '^payspoa demo '
}
if wait_until 60 view_up; then
	pass view-up
else
	fail view-up "no view within 60 s:" "$(show_screen)"
fi

if wait_until 60 failed_over; then
	pass failover-seen
	echo "  $(grep -E '^stripe_us(_standby)? ' "$T/screen" | tr -s ' ' | tr '\n' ';')"
else
	fail failover-seen "no capture with the outage caption, stripe_us's breaker open and stripe_us_standby >= 50 %:" "$(show_screen)"
fi
if wait_until 30 on_screen story 'breaker OPENED on stripe_us'; then pass breaker-event; else fail breaker-event "$(show_screen)"; fi

# Nothing charged twice: the screen's figure, and the emulators' own records.
if wait_until 30 on_screen story 'charged on two accounts: 0$' '^RETRIES +[1-9]'; then
	pass retries-shown
else
	fail retries-shown "$(show_screen)"
fi
expect no-double-charge "keys held by two accounts (GET /__payapi/keys)" "$(double_keys)" 0

if wait_until 60 came_back; then
	pass recovered
else
	fail recovered "stripe_us never closed with >= 10 % of the traffic before the sale ended:" "$(show_screen)"
fi

if wait_until 60 surge_held; then
	pass surge-checkout-held
	echo "  $(grep -E '^(checkout|background|read) ' "$T/screen" | tr -s ' ' | tr '\n' ';')"
else
	fail surge-checkout-held "no capture in the flash sale with background SHEDDING and checkout served >= 95 %:" "$(show_screen)"
fi

if wait_until 60 calm; then pass calm; else fail calm "$(show_screen)"; fi
# Since the start, checkout refusals stay under 1 % of its decisions.
a=$(row checkout 5); r=$(row checkout 7)
if [[ $a =~ ^[0-9]+$ && $r =~ ^[0-9]+$ ]] && [ "$a" -gt 0 ] && [ $((r * 100)) -le "$a" ]; then
	pass checkout-never-shed
else
	fail checkout-never-shed "checkout since start: allowed '$a', shed '$r'"
fi
expect no-double-charge-end "keys held by two accounts" "$(double_keys)" 0

if wait_until 60 on_screen story '^DEMO-EXIT=0$'; then
	pass story-exit
else
	fail story-exit "the demo did not exit 0 within 60 s of its duration:" "$(show_screen)"
fi
DIRS=$(demo_dir)
# shellcheck disable=SC2086
left=$(left_running "$STORY_PID" $STORY_PORTS)
expect story-nothing-left "processes or listeners left" "$left" ""

# ---- Ctrl-C -------------------------------------------------------------------------
run_demo ctrlc
if wait_until 60 on_screen ctrlc '^1/5 Healthy' '^BACKEND'; then
	tmx send-keys -t ctrlc C-c
	if wait_until 30 on_screen ctrlc '^DEMO-EXIT=0$'; then pass ctrl-c-exit; else fail ctrl-c-exit "$(show_screen)"; fi
	DIRS="$DIRS $(demo_dir)"
else
	fail ctrl-c-exit "no view within 60 s:" "$(show_screen)"
fi
# shellcheck disable=SC2086
left=$(left_running "$PANE_PID" $DEMO_PORTS)
expect ctrl-c-nothing-left "processes or listeners left" "$left" ""

# By pid (TERM, then KILL): the server ends even if its socket file is gone.
stop tmux
# The demo keeps its logs for a person to read; the test keeps them only when it failed.
if [ "$INTEG_FAILED" = 0 ]; then
	for d in $DIRS; do rm -rf "$d"; done
else
	echo "  demo logs: $DIRS"
fi
integ_done
