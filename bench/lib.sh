# Shell helpers shared by the bench scripts (sourced, not run).

# utime + stime of process $1, in clock ticks (`getconf CLK_TCK` per second), from /proc/PID/stat. The fields are
# counted from the last `)`, so a command name with spaces or parentheses does not shift them.
cpu_ticks() { sed -E 's/.*\) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# Peak RSS (VmHWM) of process $1, in KiB.
rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# Waits up to 10 s for URL $1 to answer 2xx.
wait_ready() {
    for _ in $(seq 1 100); do
        curl -fs "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server did not become ready: $1" >&2; return 1
}
