# Shared by the scripts that run a test server in the background (ferretdb.sh, seaweedfs.sh):
# sourced, not run.

# A TCP port nobody listens on (bound, read and released).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Running and not a zombie (a server that died at start-up stays our zombie until reaped).
alive() {
    local state
    state="$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)" || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# stop_pidfile FILE SECONDS: SIGTERM to the process group (else the process) the file names,
# SIGKILL after SECONDS, and wait until it is gone; removes the file.
stop_pidfile() {
    local pidfile="$1" patience="$2"
    [ -f "$pidfile" ] || return 0
    local pid
    pid="$(cat "$pidfile")"
    if alive "$pid"; then
        kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + patience))
        while alive "$pid"; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
            fi
            sleep 0.05
        done
    fi
    rm -f "$pidfile"
}
