# A highly available key broker, end to end with real processes on
# loopback: PostgreSQL 15 from Debian in a temporary folder, three `cai kbs`
# on it behind HAProxy (deploy/haproxy/cai-kbs.cfg), 32 agents releasing a
# key through the balancer while one broker is killed with SIGKILL (and
# started again) and the database is restarted. Afterwards: every
# acknowledged admin write is there, every release on record was answered
# (or lost with the killed broker's connection), no nonce was accepted
# twice, a nonce raced at two brokers is accepted by one. Prints `kbs`
# figures for 1 and 3 brokers (printed, never judged).
. "$(dirname "$0")/lib.sh"
cd "$T"

PGBIN=/usr/lib/postgresql/15/bin
for need in "$PGBIN/initdb" psql haproxy node; do
    if ! command -v "$need" >/dev/null; then
        echo "SKIP kbs_ha: $need is not installed (./run setup installs postgresql, haproxy, nodejs)"
        exit 0
    fi
done
if [ ! -d "$ROOT/node_modules/jose" ]; then
    echo "SKIP kbs_ha: node_modules absent (run ./run setup)"
    exit 0
fi
pg_prepare kbs_ha
KBS1= KBS2= KBS3= KBS4= LBPID= BG= PXPID=
cleanup() {
    [ -n "${KBS_HA_KEEP:-}" ] && cp -r "$T" "$KBS_HA_KEEP" # to read the logs after a failure
    kill -9 $KBS1 $KBS2 $KBS3 $KBS4 $LBPID $BG $PXPID 2>/dev/null
    [ -f "$PGD/data/postmaster.pid" ] && pg pg_ctl -D "$PGD/data" -m immediate stop >/dev/null 2>&1
    rm -rf "$T" "$PGD"
}
trap cleanup EXIT
pg_start

"$CAI" attest sim-init sim >/dev/null
"$CAI" kbs admin keygen -o admin >/dev/null
cat > policy.json <<'EOF'
{"version": 1, "tee": ["sim"], "tcb_status": ["UpToDate"], "reference_values": {"any": {}},
 "resources": [{"path": "cai/*", "allow": ["any"]}, {"path": "ha/*", "allow": ["any"]}]}
EOF
P1=$(free_port) P2=$(free_port) P3=$(free_port) P4=$(free_port) LB=$(free_port) STATS=$(free_port)
K1=http://127.0.0.1:$P1 K2=http://127.0.0.1:$P2 K3=http://127.0.0.1:$P3 KLB=http://127.0.0.1:$LB

# start_kbs N: broker N on the shared database. Behind the balancer every
# agent has its address: the per-address session quota is the fleet's.
start_kbs() {
    local port; eval "port=\$P$1"
    KBS_PORT=$port kbs_start "$1" "kbs$1.log" --db "${KDB:-$DB}" --master-key master.key --admin-pub admin.pub \
        --trust-sim sim --rate 0 --sessions-per-client 10000 --insecure-http "${@:2}"
}
# The balancer's view of broker N: UP, DOWN, ...
status() { curl -s "http://127.0.0.1:$STATS/;csv" | awk -F, -v s="kbs$1" '$1 == "cai_kbs" && $2 == s { print $18 }'; }
wait_status() { # wait_status N STATUS
    local i
    for i in $(seq 1 150); do
        [ "$(status "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# One broker first: it makes the schema, holds the policy and the key.
start_kbs 1 --policy policy.json || fail broker_starts "$(tail -n 3 kbs1.log)"
head -c 32 /dev/urandom > key.bin
# cai/ha/key for the agents, cai/ha/agent for `cai agent`, cai/bench/key for the figures.
for k in cai/ha/key cai/ha/agent cai/bench/key; do
    "$CAI" kbs admin --url "$K1" --key admin.key put "$k" key.bin >/dev/null || fail key_stored "$k"
done
CAI_LB_LISTEN=127.0.0.1:$LB CAI_KBS_1=127.0.0.1:$P1 CAI_KBS_2=127.0.0.1:$P2 CAI_KBS_3=127.0.0.1:$P3 \
    CAI_KBS_CHECK_TLS= CAI_LB_STATS=127.0.0.1:$STATS \
    haproxy -db -f "$ROOT/deploy/haproxy/cai-kbs.cfg" > haproxy.log 2>&1 &
LBPID=$!
wait_status 1 UP && wait_status 2 DOWN && wait_status 3 DOWN && pass balancer_checks_brokers ||
    fail balancer_checks_brokers "kbs1 $(status 1) kbs2 $(status 2) kbs3 $(status 3): $(tail -n 3 haproxy.log)"

# Figures through the balancer: one broker, then three (2 cores shared by
# the brokers, PostgreSQL, HAProxy and the agents: not a scaling result).
bench() {
    "$CAI" bench kbs --kbs "$KLB" --sim-dir sim --path cai/bench/key --clients 32 --seconds 2 --mode both 2>>bench.err |
        sed "s/^kbs /kbs $1 broker(s) via HAProxy, /"
}
bench 1
start_kbs 2 && start_kbs 3 && wait_status 2 UP && wait_status 3 UP && pass three_brokers_in_rotation ||
    fail three_brokers_in_rotation "kbs2 $(status 2) kbs3 $(status 3): $(tail -n 3 kbs2.log kbs3.log)"
bench 3
grep -q . bench.err && echo "bench: $(tail -n 2 bench.err)"

# The burst: 32 agents through the balancer and create-only admin writes.
# Each fault waits for the agents' progress (not for a clock: on a loaded
# machine, or under ASan, they may all still be making their first quote):
# after 16 releases broker 2 is killed with SIGKILL, then started again;
# after 16 more, 4 `cai agent` processes (their own retries) start and the
# database is stopped until a broker has refused a request for want of it
# (1.5 s at least); after 16 more, nonces are raced at two brokers at once
# (straight, not through the balancer), and the burst ends.
export CAI SIM=sim ADMIN_KEY=admin.key
HA="$ROOT/tests/e2e/kbs_ha.mjs"
node "$HA" agents "$KLB" 32 stop key.bin "$K1,$K2,$K3" agents.json > agents.out 2>&1 &
AG=$!
node "$HA" write "$KLB" stop acks.txt > write.out 2>&1 &
WR=$!
BG="$AG $WR"
released() { local n; n=$(cat agents.json.progress 2>/dev/null); echo "${n:-0}"; }
# after N: until N more releases than when called (90 s at most).
after() {
    local goal=$(($(released) + $1)) i
    for i in $(seq 1 900); do
        [ "$(released)" -ge "$goal" ] && return 0
        kill -0 "$AG" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
after 16 || fail agents_progress "$(released) releases: $(cat agents.out)"
kill -9 "$KBS2"
wait "$KBS2" 2>/dev/null
wait_status 2 DOWN && pass killed_broker_taken_out || fail killed_broker_taken_out "kbs2 $(status 2)"
start_kbs 2 && wait_status 2 UP && pass restarted_broker_back_in || fail restarted_broker_back_in "kbs2 $(status 2): $(tail -n 3 kbs2.log)"
after 16 || fail agents_progress "$(released) releases: $(cat agents.out)"
# `cai agent` through the database's outage. (Not through the kill: libcurl
# sends a POST again, on a new connection, when a reused one dies without an
# answer; an /attest whose broker took the nonce and died is then refused
# 401 at the next broker, and the agent gives up: docs/DEPLOY.md.)
for i in 1 2 3 4; do
    ( for j in 1 2 3; do
        "$CAI" agent get-resource kbs:///cai/ha/agent --kbs "$KLB" --tee sim --sim-dir sim --attempts 8 \
            > agent$i.$j.bin 2>> agent$i.err || echo "AGENT GAVE UP ($j)" >> agent$i.err
        sleep 1
      done ) &
    eval "CA$i=\$!"
done
BG="$AG $WR $CA1 $CA2 $CA3 $CA4"
# Down as in a failover: until a broker refused an agent for want of it.
seen() { cat kbs1.log kbs2.log kbs3.log | grep -cE "POST /kbs/v0/(auth|attest) from .*: 503 .*PostgreSQL"; }
before=$(seen)
if pg pg_ctl -D "$PGD/data" -m fast -w stop >/dev/null; then
    sleep 1.5
    for i in $(seq 1 100); do [ "$(seen)" -gt "$before" ] && break; sleep 0.1; done
    pg_up start && pass database_restarted_under_load || fail database_restarted_under_load "$(tail -n 3 "$PGD/log")"
else
    fail database_restarted_under_load "pg_ctl stop: $(tail -n 3 "$PGD/log")"
fi
after 16 || fail agents_progress "$(released) releases: $(cat agents.out)"
node "$HA" race "$K1,$K2,$K3" 24 races.json > race.out 2>&1
touch stop
wait $AG $WR $CA1 $CA2 $CA3 $CA4
BG=
cat agents.out write.out race.out

# What the agents saw, against the audit log.
sql "SELECT evidence_digest FROM audit WHERE event = 'release' AND resource = 'cai/ha/key'" > released.txt
sql "SELECT count(*), count(DISTINCT evidence_digest) FROM audit WHERE event = 'attest'" > attests.txt
python3 - agents.json released.txt attests.txt races.json "$(cat agent*.err | grep -c retrying)" <<'EOF'
import json, sys
from collections import Counter
d = json.load(open(sys.argv[1]))
att, rep = d["attempts"], d["replays"]
audited = Counter(l.strip() for l in open(sys.argv[2]) if l.strip())
by = Counter(a["outcome"] for a in att)
ok = lambda n, c, why: print(f"PASS {n}" if c else f"FAIL {n}: {why}")
print(f"  agents: {len(att)} attempts: {dict(by)}; {sum(audited.values())} releases of cai/ha/key on record")
for a in [a for a in att if a["outcome"] in ("refused", "wrong")][:3]:
    print(f"  {a['outcome']} at {a['step']}: {a['status']} {a['why']}")
per_agent = Counter(a["agent"] for a in att if a["outcome"] == "released")
ok("every_agent_released_its_key", len(per_agent) == 32 and by["refused"] == 0 and by["wrong"] == 0,
   f"{len(per_agent)} of 32 agents released, {by['refused']} refused, {by['wrong']} wrong")
ok("faults_seen_and_retried", by["retried"] + by["lost"] + int(sys.argv[5]) > 0,
   "no attempt failed: the faults came too late or too early")
answered = {a["evd"] for a in att if a["outcome"] == "released"}
lost = {a["evd"] for a in att if a["outcome"] == "lost"}
missing = [e for e in answered if e not in audited]
ok("every_answered_release_audited", not missing, f"{len(missing)} releases answered but not on record")
unanswered = [e for e in audited if e not in answered]
stray = [e for e in unanswered if e not in lost]
print(f"  {len(unanswered)} releases on record whose answer was lost in flight (broker killed or database gone)")
ok("every_audited_release_answered", not stray,
   f"{len(stray)} releases on record that no agent asked for or that were refused")
ok("no_release_audited_twice", all(v == 1 for v in audited.values()),
   f"{[e for e, v in audited.items() if v > 1][:3]}")
n, distinct = (int(x) for x in open(sys.argv[3]).read().strip().split("|"))
ok("no_attestation_accepted_twice", n == distinct and n >= len(answered), f"{n} attest records, {distinct} distinct evidence")
ok("replayed_attestations_refused", rep["accepted"] == 0 and rep["refused"] > 0,
   f"{rep}")
print(f"  replays at a broker of their own: {rep}")
races = json.load(open(sys.argv[4]))
won = sum(1 for r in races if sorted(r["codes"]) == [200, 401] and any("already used" in w for w in r["why"]))
twice = sum(1 for r in races if r["codes"] == [200, 200])
ok("nonce_raced_at_two_brokers_accepted_once", twice == 0 and won >= 20,
   f"{won} of {len(races)} races won by exactly one, {twice} accepted twice: {[r['codes'] for r in races]}")
EOF
node "$HA" check "$KLB" acks.txt

bad=0
for f in agent*.bin; do cmp -s "$f" key.bin || bad=$((bad + 1)); done
[ "$bad" = 0 ] && [ "$(ls agent*.bin | wc -l)" = 12 ] && ! grep -q "AGENT GAVE UP" agent*.err &&
    pass cai_agents_recovered || fail cai_agents_recovered "$bad wrong: $(tail -n 3 agent*.err)"
grep -qE "connection to PostgreSQL at 127.0.0.1:$PGPORT/kbs was lost|cannot reach PostgreSQL" kbs1.log kbs2.log kbs3.log &&
    pass database_restart_seen_by_brokers || fail database_restart_seen_by_brokers "no broker logged it"

# A nonce taken and its answer lost: broker 4 reaches the database through
# a proxy that drops the answer to the nonce's UPDATE (committed) and closes
# the connection. The broker reconnects and asks again: the take is its own,
# so the attestation is accepted, once (the agent is not refused for a nonce
# it never saw accepted), and it is still refused at any other broker.
PX=$(free_port)
python3 "$ROOT/tests/e2e/pg_cut_proxy.py" "$PX" "$PGPORT" "$T/cut.arm" 2>proxy.err &
PXPID=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PX") 2>/dev/null && break; sleep 0.1; done
KDB="postgresql://cai:$PW@127.0.0.1:$PX/kbs?connect_timeout=5" start_kbs 4 ||
    fail broker_through_proxy_starts "$(tail -n 3 kbs4.log proxy.err)"
touch cut.arm
err=$("$CAI" agent get-resource kbs:///cai/ha/agent --kbs "http://127.0.0.1:$P4" --tee sim --sim-dir sim \
    --attempts 1 2>&1 >cut.bin)
[ ! -e cut.arm ] && cmp -s cut.bin key.bin && grep -q "taking a session's nonce: the connection to PostgreSQL.*was lost" kbs4.log &&
    pass nonce_take_answer_lost_retried_once ||
    fail nonce_take_answer_lost_retried_once "$([ -e cut.arm ] && echo "not cut: ")$err $(grep -h "lost" kbs4.log | tail -n 2)"
kill -TERM "$KBS4"; wait "$KBS4"; KBS4=

# The brokers stop cleanly (under ASan: no leak, no error reported).
kill -TERM $KBS1 $KBS2 $KBS3
rc=0
for p in $KBS1 $KBS2 $KBS3; do wait "$p" || rc=$?; done
KBS1= KBS2= KBS3=
[ "$rc" = 0 ] && ! grep -q "Sanitizer" kbs*.log && pass brokers_stop_cleanly ||
    fail brokers_stop_cleanly "exit $rc: $(grep -A5 Sanitizer kbs*.log | head -n 12)"
! grep -qF "$PW" kbs*.log haproxy.log && pass password_never_logged || fail password_never_logged "in a log"
finish
