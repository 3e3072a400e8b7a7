# demo-view.awk: one frame of `make run`'s screen (bench/demo), from payspoa's own figures.
# Reads nothing but the files bench/demo hands it and writes the frame on stdout, the
# state it judged on (for the next frame) to STATE_OUT and new events to EVENTS_OUT.
#
# Files, in this order (FILENAME tells them apart):
#   ADMIN    payspoa's admin socket: "show backends; show breakers; show forecast"
#   MNOW     GET /metrics now;  MOLD  GET /metrics WINDOW ticks ago (the same at the start)
#   LISTS    the request lists loadgen cycles through (bench/mix.list, bench/demo-flash.list)
#   LOADS    loadgen's lines of each list, sorted by start time (START|LAT|STATUS|backend|
#            class|verdict|instance): line i of a list's output is its entry (i-1) mod n
#   PREV     the state of the previous frame ("key value" lines)
#   RETRIES  the idempotent-retry prober's lines: "first-status first-instance
#            retry-status retry-instance replayed"
# Variables: NOW (epoch s), CLOCK (HH:MM:SS), WINDOW (s the rates are over), DOUBLE (keys
# charged on two accounts, from the emulators), STATE_OUT, EVENTS_OUT, URL, NLOADS.
#
# Fees mirror conf/payspoa.conf's fee_schedules (percent + fixed in minor units,
# cross_border when the card's region is not the account's, fx when the currency is not
# one it settles in, all_in UK rates); the static rule the demo compares with is the
# usual single-account set-up: every payment through stripe_us. Amounts are turned into
# US dollars at fixed demo rates, for one total.

function region(c) {
	if (c == "" || c == "US") return "us"
	if (c == "GB") return "uk"
	if (c == "CA") return "ca"
	if (index(" AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO ", " " c " ")) return "eea"
	return "other"
}

# fee(backend, amount, currency, card region, funding): minor units of the currency.
function fee(b, a, cur, reg, fund,   p, f, cb, fx, breg, settle) {
	if (b == "stripe_us" || b == "stripe_us_standby") {
		p = (b == "stripe_us") ? 2.9 : 3.4; f = 30; cb = 1.5; fx = 1.0
		breg = "us"; settle = " usd "
	} else if (b == "stripe_eu" || b == "stripe_eu_standby") {
		p = (b == "stripe_eu") ? 1.5 : 1.9; f = 25; cb = 1.75; fx = 2.0
		breg = "eea"; settle = " eur gbp "
		if (reg == "uk") return a * ((b == "stripe_eu") ? 2.5 : 2.9) / 100 + f
	} else {
		return 0
	}
	return a * (p + (reg != breg ? cb : 0) + (index(settle, " " cur " ") ? 0 : fx)) / 100 + f
}

function usd(cur, minor) {
	if (cur == "eur") return minor * 1.08 / 100
	if (cur == "gbp") return minor * 1.27 / 100
	if (cur == "cad") return minor * 0.73 / 100
	return minor / 100
}

# metric(line, name, backend, class, verdict): parses a decisions_by_route line.
function route(line, which,   v, s) {
	if (!match(line, which "=\"[^\"]*\"")) return ""
	s = substr(line, RSTART, RLENGTH)
	sub(/^[a-z]*="/, "", s); sub(/"$/, "", s)
	return s
}

function pct(x) { return sprintf("%3.0f%%", 100 * x) }

BEGIN {
	FS = "\n"
	nb = split("stripe_us stripe_eu stripe_us_standby stripe_eu_standby", BE, " ")
	nc = split("checkout capture refund standard read background", CL, " ")
}

FILENAME == ADMIN {
	if ($0 ~ /^# name account/) { sec = "be"; next }
	if ($0 ~ /^# backend breaker/) { sec = "brk"; next }
	if ($0 ~ /^# account class/) { sec = "fc"; next }
	if ($0 == "" || $0 ~ /^#/) next
	n = split($0, w, " ")
	if (sec == "be" && n >= 10) {
		upst[w[1]] = w[3]; adm[w[1]] = w[4]; brk[w[1]] = w[5]; anom[w[1]] = w[6]
		pauth[w[1]] = w[8]; lat[w[1]] = w[9]; bload[w[1]] = w[10]
	} else if (sec == "brk" && n >= 7) {
		openfor[w[1]] = w[5]; trips[w[1]] = w[4]
	} else if (sec == "fc" && n >= 7) {
		if (w[7] == "yes") fcshed[w[2]] = fcshed[w[2]] (fcshed[w[2]] == "" ? "" : ",") w[1]
		budget[w[1]] = w[6]
	}
	next
}

FILENAME == MNOW || FILENAME == MOLD {
	if ($0 !~ /^payspoa_decisions_by_route_total\{/) next
	n = split($0, w, " ")
	b = route($0, "backend"); c = route($0, "class"); v = route($0, "verdict")
	sign = (FILENAME == MNOW) ? 1 : -1
	if (FILENAME == MNOW) tot[c, v] += w[n]
	win[c, v] += sign * w[n]
	if (v != "reject") bwin[b] += sign * w[n]
	# MOLD may be MNOW itself (first frames): a window of nothing.
	next
}

FILENAME ~ /\.list$/ {
	if (FNR == 1) LN = FILENAME
	if ($0 ~ /^#/ || $0 ~ /^[ \t]*$/) next
	if ($0 ~ /^[ \t]/) {
		if ($0 ~ /X-Card-Country:/) { s = $0; sub(/.*: */, "", s); ctry[LN, ne[LN]] = s }
		if ($0 ~ /X-Card-Funding:/) { s = $0; sub(/.*: */, "", s); fund[LN, ne[LN]] = s }
		next
	}
	ne[LN]++
	split($0, w, " ")
	if (w[1] == "POST" && w[2] == "/v1/payment_intents" && w[3] ~ /confirm=true/ && w[3] !~ /Declined/) {
		s = w[3]; amt[LN, ne[LN]] = (match(s, /amount=[0-9]+/) ? substr(s, RSTART + 7, RLENGTH - 7) : 0)
		cur[LN, ne[LN]] = (match(s, /currency=[a-z]+/) ? substr(s, RSTART + 9, RLENGTH - 9) : "")
	}
	next
}

# A load file starts with "#list PATH": the list its loadgen cycled through from entry 1.
FILENAME ~ /\.sorted$/ {
	if (FNR == 1) { LD = $0; sub(/^#list /, "", LD); seq = 0; next }
	seq++
	split($0, w, "|")
	st = w[3]
	if (w[1] >= NOW - WINDOW - 1 && w[1] < NOW - 1) { recent[substr(st, 1, 1) == "2" ? "2xx" : st]++; nrecent++ }
	sent++
	if (st ~ /^2/) ok++; else if (st == "402") declined++; else if (st == "429") shed429++; else if (st ~ /^5/ || st == "000") failed++
	if (!ne[LD]) next
	e = (seq - 1) % ne[LD] + 1
	if (st == "200" && amt[LD, e] > 0 && w[7] != "") {
		reg = region(ctry[LD, e])
		paid += usd(cur[LD, e], fee(w[7], amt[LD, e], cur[LD, e], reg, fund[LD, e]))
		static += usd(cur[LD, e], fee("stripe_us", amt[LD, e], cur[LD, e], reg, fund[LD, e]))
		charged++; volume += usd(cur[LD, e], amt[LD, e])
	}
	next
}

FILENAME == PREV { split($0, w, " "); prev[w[1]] = w[2]; hadprev = 1; next }

FILENAME == RETRIES {
	split($0, w, " ")
	pairs++
	if (w[5] == "true") replayed++
	if (w[2] == w[4] && w[2] != "-") same++
	next
}

END {
	printf "" >STATE_OUT
	# -- events: what changed since the previous frame --------------------------------
	for (i = 1; i <= nb; i++) {
		b = BE[i]
		key = "brk:" b; now = brk[b]
		if (now != "" && hadprev && prev[key] != "" && prev[key] != now)
			ev[++nev] = (now == "open" ? "breaker OPENED on " b " (trip " trips[b] ")" : "breaker " now " on " b)
		if (now != "") print key, now >STATE_OUT
		key = "anom:" b; now = anom[b]
		if (now != "" && hadprev && prev[key] != "" && prev[key] != now) ev[++nev] = "anomaly " now " on " b
		if (now != "") print key, now >STATE_OUT
		allw += (bwin[b] > 0 ? bwin[b] : 0)
	}
	for (i = 1; i <= nb; i++) {
		b = BE[i]; share[b] = allw > 0 ? (bwin[b] > 0 ? bwin[b] : 0) / allw : 0
		key = "on:" b; was = prev[key]; now = was == "" ? (share[b] >= 0.12 ? "y" : "n") : was
		if (allw >= 10) {
			if (was != "y" && share[b] >= 0.20) now = "y"
			if (was == "y" && share[b] < 0.05) now = "n"
		}
		if (hadprev && was != "" && was != now)
			ev[++nev] = (now == "y" ? "traffic moved ONTO " b sprintf(" (%.0f%% of decisions)", 100 * share[b]) : "traffic moved off " b)
		print key, now >STATE_OUT
	}
	for (i = 1; i <= nc; i++) {
		# Shedding: at least 5 % of the class refused over the window (one refusal in a
		# hundred is a budget edge, not a policy).
		c = CL[i]; key = "shed:" c; r = win[c, "reject"]; a = win[c, "allow"] + win[c, "queue"]
		now = (r > 0 && r >= 0.05 * (a + r)) ? "y" : "n"
		shedding[c] = now == "y"
		if (hadprev && prev[key] != "" && prev[key] != now)
			ev[++nev] = (now == "y" ? "SHEDDING ON: " c : "shedding off: " c)
		print key, now >STATE_OUT
	}
	for (i = 1; i <= nev; i++) print CLOCK "  " ev[i] >>EVENTS_OUT
	close(STATE_OUT); close(EVENTS_OUT)

	# -- the frame --------------------------------------------------------------------
	printf "%-18s %5s %5s %7s  %-17s %-9s %6s %-8s\n", "BACKEND", "SHARE", "AUTH", "LAT ms", "BREAKER", "ANOMALY", "BUDGET", "STATE"
	for (i = 1; i <= nb; i++) {
		b = BE[i]
		bs = brk[b]; if (bs == "open" && openfor[b] > 0) bs = bs sprintf(" %.0fs left", openfor[b])
		printf "%-18s %5s %5s %7.1f  %-17s %-9s %6s %-8s\n", b, pct(share[b]), pct(pauth[b]), lat[b], bs, anom[b], pct(bload[b]), (upst[b] (adm[b] != "enabled" ? "/" adm[b] : ""))
	}
	printf "\n%-11s %8s %8s %8s  %9s %9s %9s  %s\n", "CLASS", "allowed", "queued", "shed", "allowed", "queued", "shed", ""
	printf "%-11s %26s  %29s\n", "", "--- last " WINDOW " s ---", "--- since start ---"
	for (i = 1; i <= nc; i++) {
		c = CL[i]
		a = win[c, "allow"]; q = win[c, "queue"]; r = win[c, "reject"]
		state = (a + q + r > 0) ? sprintf("served %3.0f%%", 100 * (a + q) / (a + q + r)) : ""
		if (shedding[c]) state = state " SHEDDING"
		printf "%-11s %8d %8d %8d  %9d %9d %9d  %s\n", c, a, q, r, tot[c, "allow"], tot[c, "queue"], tot[c, "reject"], state
	}
	# Each line fits 100 columns with six-digit counts.
	printf "\nFEES      paid $%.2f vs $%.2f static (all via stripe_us): %s over %d payments\n", paid, static, (static > 0 ? sprintf("%+.1f%%", 100 * (paid - static) / static) : "-"), charged
	printf "RETRIES   %d resent with their key, %d to the same account; charged on two accounts: %d\n", pairs, same, DOUBLE
	printf "LOAD      since start ok %d dec %d shed %d fail %d | last %d s ok %d dec %d shed %d fail %d\n", ok, declined, shed429, failed, WINDOW, recent["2xx"], recent["402"], recent["429"], recent["000"] + recent["500"] + recent["502"] + recent["503"] + recent["504"]
}
