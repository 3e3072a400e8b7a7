#!/usr/bin/env bash
# test-systemd.sh: payspoa under systemd. conf/systemd/payspoa.service passes
# `systemd-analyze verify` without a warning (and a typo in a copy does not); the notify
# protocol is played by a unix datagram socket standing in for systemd (a path, then an
# abstract '@' name): READY=1 once listening, WATCHDOG=1 at half of WATCHDOG_USEC,
# RELOADING=1 with MONOTONIC_USEC then READY=1 on SIGHUP, STOPPING=1 on SIGTERM; as root,
# agent.user = "nobody" drops every uid and gid after binding, and a user that cannot be
# had stops the start with a clear error.
. "$(dirname "$0")/lib.sh"

need python3
[ -x "$PAYSPOA_BIN" ] || { fail prerequisite "$PAYSPOA_BIN not built (make)"; exit 1; }

# ---- the unit file ------------------------------------------------------------------------

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP unit_verifies (systemd-analyze not installed: apt-get install systemd)"
else
	# verify wants ExecStart's binary to exist: the built one stands in for /usr/sbin/payspoa
	bin=$(readlink -f "$PAYSPOA_BIN")
	sed -e "s|/usr/sbin/payspoa|$bin|g" conf/systemd/payspoa.service >"$T/payspoa.service"
	out=$(cd "$T" && systemd-analyze verify "$T/payspoa.service" 2>&1); rc=$?
	if [ "$rc" -eq 0 ] && [ -z "$out" ]; then pass unit_verifies
	else fail unit_verifies "rc $rc:" "$out"; fi
	sed -e 's|^Type=notify$|Type=notifyy|' "$T/payspoa.service" >"$T/typo.service"
	out=$(cd "$T" && systemd-analyze verify "$T/typo.service" 2>&1)
	if printf '%s' "$out" | grep -q "notifyy"; then pass unit_verify_catches_a_typo
	else fail unit_verify_catches_a_typo "systemd-analyze said nothing of Type=notifyy: '$out'"; fi
fi

# ---- the notify protocol -------------------------------------------------------------------

# The stand-in for systemd: every datagram, as "<CLOCK_MONOTONIC µs> <message with \n as |>".
cat >"$T/notify.py" <<'PY'
import socket, sys, time
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
out = open(sys.argv[2], "a", buffering=1)
out.write("bound\n")
while True:
    m = s.recv(4096).decode(errors="replace")
    out.write("%d %s\n" % (time.monotonic_ns() // 1000, m.replace("\n", "|")))
PY

# msgs FILE: the messages received so far, one per line, without the time.
msgs() { cut -d' ' -f2- "$1" | grep -v '^bound$' || true; }
has() { msgs "$1" | grep -qx "$2"; }
count() { msgs "$1" | grep -cx "$2" || true; }

notify_run() { # notify_run NAME SOCKET
	local name=$1 sock=$2 f=$T/$1.notify port mono now
	alloc_port port
	: >"$f"
	start_bg "$name-sd" python3 "$T/notify.py" "$sock" "$f"
	wait_until 10 grep -qx bound "$f" || { fail "$name-notify-socket" "the stand-in did not bind $sock"; return; }
	start_bg "$name" env NOTIFY_SOCKET="$sock" WATCHDOG_USEC=300000 "$PAYSPOA_BIN" -f conf/payspoa.conf -l "127.0.0.1:$port"
	if wait_until 10 has "$f" READY=1 && port_busy "$port"; then pass "$name-ready"
	else fail "$name-ready" "messages: $(msgs "$f" | tr '\n' ' ')"; fi
	# WATCHDOG_USEC 300 ms: a ping every 150 ms, from the control loop
	if wait_until 10 eval '[ "$(count "$f" WATCHDOG=1)" -ge 4 ]'; then pass "$name-watchdog-pings"
	else fail "$name-watchdog-pings" "$(count "$f" WATCHDOG=1) pings: $(msgs "$f" | tr '\n' ' ')"; fi
	kill -HUP "${PROC[$name]}"
	if wait_until 10 eval '[ "$(msgs "$f" | grep -A1 "^RELOADING=1|MONOTONIC_USEC=" | grep -c "^READY=1$")" -ge 1 ]'; then
		# MONOTONIC_USEC is CLOCK_MONOTONIC (python's time.monotonic) when it was sent
		read -r now mono < <(grep 'RELOADING=1|MONOTONIC_USEC=' "$f" | head -1 | sed 's/ RELOADING=1|MONOTONIC_USEC=/ /')
		if [ -n "$mono" ] && [ "$mono" -le "$now" ] && [ $((now - mono)) -lt 5000000 ]; then
			pass "$name-reloading-then-ready"
		else
			fail "$name-reloading-then-ready" "MONOTONIC_USEC '$mono' received at $now"
		fi
	else
		fail "$name-reloading-then-ready" "messages: $(msgs "$f" | grep -v WATCHDOG | tr '\n' ' ')"
	fi
	grep -q '"event":"reloaded"' "$T/$name.log" && pass "$name-reloaded" ||
		fail "$name-reloaded" "$(tail -3 "$T/$name.log")"
	stop "$name"
	if has "$f" STOPPING=1 && [ "$(msgs "$f" | grep -v '^WATCHDOG=1$' | tail -1)" = STOPPING=1 ]; then
		pass "$name-stopping"
	else
		fail "$name-stopping" "messages: $(msgs "$f" | grep -v WATCHDOG | tr '\n' ' ')"
	fi
	stop "$name-sd"
}

notify_run path "$T/notify.sock"
notify_run abstract "@payspoa-test-$$-$RANDOM"

# A NOTIFY_SOCKET payspoa cannot use is an error at start, not a silent no-op.
alloc_port P_BAD
NOTIFY_SOCKET=relative/path timeout 10 "$PAYSPOA_BIN" -f conf/payspoa.conf -l "127.0.0.1:$P_BAD" >"$T/bad.log" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q "NOTIFY_SOCKET 'relative/path'" "$T/bad.log"; then pass bad_notify_socket_refused
else fail bad_notify_socket_refused "rc $rc: $(tail -2 "$T/bad.log")"; fi

# ---- dropping privileges -------------------------------------------------------------------

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP privilege_drop (needs root)"
else
	alloc_port P_DROP
	POLICY_FILE=payspoa.conf policy_copy "$T/drop" 's|^\([[:space:]]*log_level = "info";\)|\1 user = "nobody";|' ||
		{ fail privilege_drop-policy "$(cat "$T/drop/check.log")"; exit 1; }
	start_payspoa drop "$P_DROP" "$POLICY" || fail privilege_drop "did not start: $(tail -3 "$T/drop.log")"
	nobody=$(id -u nobody) nogroup=$(id -g nobody)
	uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/${PROC[drop]}/status")
	gids=$(awk '/^Gid:/ { print $2, $3, $4, $5 }' "/proc/${PROC[drop]}/status")
	groups=$(awk '/^Groups:/ { $1 = ""; print }' "/proc/${PROC[drop]}/status" | xargs)
	# every thread, the workers included, runs as nobody
	tuids=$(cat /proc/"${PROC[drop]}"/task/*/status | awk '/^Uid:/ { print $2 }' | sort -u | xargs)
	if [ "$uids" = "$nobody $nobody $nobody $nobody" ] && [ "$gids" = "$nogroup $nogroup $nogroup $nogroup" ] &&
		[ "$groups" = "$nogroup" ] && [ "$tuids" = "$nobody" ] && grep -q '"event":"privileges_dropped"' "$T/drop.log"; then
		pass privilege_drop_to_nobody
	else
		fail privilege_drop_to_nobody "Uid: $uids; Gid: $gids; Groups: $groups; threads' uids: $tuids (nobody $nobody/$nogroup)"
	fi
	stop drop
	# an unknown user: no start, the reason said
	sed -i 's|user = "nobody";|user = "no-such-user-payspoa";|' "$POLICY"
	alloc_port P_DROP2
	timeout 10 "$PAYSPOA_BIN" -f "$POLICY" -l "127.0.0.1:$P_DROP2" >"$T/drop2.log" 2>&1; rc=$?
	if [ "$rc" -ne 0 ] && grep -q "agent.user 'no-such-user-payspoa'" "$T/drop2.log"; then pass unknown_user_refused
	else fail unknown_user_refused "rc $rc: $(tail -2 "$T/drop2.log")"; fi
	# not root and asked to switch: refused, never silently kept
	if command -v setpriv >/dev/null 2>&1; then
		sed -i 's|user = "no-such-user-payspoa";|user = "root";|' "$POLICY"
		sed -i '/outcome_socket/d' "$POLICY"   # nobody cannot create it in the test's folder
		chmod -R a+rX "$T"
		setpriv --reuid="$nobody" --regid="$nogroup" --clear-groups timeout 10 "$PAYSPOA_BIN" -f "$POLICY" \
			-l "127.0.0.1:$P_DROP2" >"$T/drop3.log" 2>&1; rc=$?
		if [ "$rc" -ne 0 ] && grep -q "only root can switch users" "$T/drop3.log"; then pass switch_without_root_refused
		else fail switch_without_root_refused "rc $rc: $(tail -2 "$T/drop3.log")"; fi
	fi
fi

integ_done
