# lib.sh - shared by bench/run.sh, balance.sh, guard.sh and cache.sh
# (sourced, not run): CPU pinning, bookkeeping of the processes a benchmark
# starts (stopped only by their PID), and their CPU time from /proc. Needs
# nothing but POSIX sh and awk.

# pin_cpus TEXT: PIN_P / PIN_L (taskset prefixes for the proxy's CPU PCPU
# and the load side's LCPU), PIN_TEXT ("pinned to CPU ...; TEXT") and TCK;
# no pinning on one CPU (said with `note`, which the caller defines).
pin_cpus() {
	NCPU=$(getconf _NPROCESSORS_ONLN)
	if [ "$NCPU" -ge 2 ]; then
		PIN_P="taskset -c $PCPU"
		PIN_L="taskset -c $LCPU"
		PIN_TEXT="pinned to CPU $PCPU; $1"
	else
		PIN_P=""
		PIN_L=""
		PIN_TEXT="not pinned (one CPU)"
		note "only $NCPU CPU: no pinning, numbers are not comparable with pinned runs"
	fi
	TCK=$(getconf CLK_TCK)
}

STARTED=""

# A process that has been waited for leaves STARTED, so that cleanup never
# signals a PID that may have been reused.
forget() {
	STARTED=$(echo " $STARTED " | sed "s/ $1 / /; s/^ *//; s/ *$//")
}

# Stops one process we started: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
	forget "$1"
	kill -TERM "$1" 2>/dev/null || return 0
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

cleanup() {
	for p in $STARTED; do
		stop_pid "$p"
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# Prints $1 and the PIDs of all its descendants (nginx's worker, say).
descendants() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
	{ pid = $1; s = $0; sub(/^[0-9]+ \(.*\) /, "", s); split(s, f, " "); parent[pid] = f[2] }
	END {
		tree[root] = 1; grow = 1
		while (grow) { grow = 0; for (p in parent) if (!(p in tree) && (parent[p] in tree)) { tree[p] = 1; grow = 1 } }
		for (p in tree) printf "%s ", p
	}'
}

# "UTIME+STIME UTIME" in clock ticks, summed over the PIDs given. The
# figures of /proc/PID/stat cover all threads of the process.
cpu_ticks() {
	for p in $1; do cat "/proc/$p/stat"; done 2>/dev/null |
		awk '{ sub(/^[0-9]+ \(.*\) /, ""); t += $12 + $13; u += $12 } END { print t + 0, u + 0 }'
}
