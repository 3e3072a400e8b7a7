# windows.awk: admissions per 1 s sliding window (10 ms steps) against a budget.
# Input lines "slot count" (slot = a 10 ms time slot; a slot may repeat: counts add up);
# -v a=NAME f=FIRST_SLOT t=END_SLOT b=BUDGET. Counts the windows that lie within slots
# [f, t) and prints "NAME max_window windows excess_sum" (nothing without input in range).
# Over-admission = excess_sum / (budget x windows), summed over accounts (ISSUE-NOTES 10).
# Used by tests/integ/test-fleet-budget.sh and bench/run-fleet-budget.
# slots as offsets from f: mawk prints big integers as %.6g array keys
{ if ($1 >= f && $1 < t) { c[$1 - f] += $2; n++ } }
END {
	if (!n) exit
	s = 0; max = 0; ex = 0; w = 0; t -= f
	for (i = 0; i < 100 && i < t; i++) s += c[i]
	for (i = 0; i + 100 <= t; i++) {
		if (i > 0) s += c[i + 99] - c[i - 1]
		if (s > max) max = s
		if (s > b) ex += s - b
		w++
	}
	printf "%s %d %d %d\n", a, max, w, ex
}
