#!/usr/bin/env bash
# sipp-load.sh — how many concurrent calls hotlined carries: a figure, not a test.
#
# Starts the release hotlined with a throwaway state folder and its own private PostgreSQL,
# then for each N given (default: 50 100 200) runs sipp with N concurrent callers. Every
# caller streams RTP (µ-law, 20 ms) for the whole call while the daemon plays its prompts
# back, presses 2 15 s in, when the main menu plays (RFC 4733), so the IVR queues it as a
# repair, and hangs up. Every call files a draft ticket; a repair draft says the key came
# while the menu played (if the daemon falls behind, its prompts run late and the key lands
# in the recording notice instead). The daemon runs the built-in call flow, which records every
# call (announce policy). One line per N: calls completed/failed, the most concurrent calls
# sipp saw, the daemon's CPU use (and its PostgreSQL's) over the run, UDP datagrams sent
# per call-second (about 100 when RTP flows both ways at 50 packets/s; sipp alone sends 50),
# datagrams dropped on the daemon's RTP sockets, caller look-ups that hit their 400 ms
# timeout (a sign of a saturated daemon or database) and sipp's own CPU (sipp shares the
# machine, so its figures are bounded by it too). Loopback only, bounded by sipp's -m,
# -l and -timeout. With root and `unshare`, the run gets a private network namespace, so
# the UDP counters are its own and fixed ports are free.
#
# usage: deploy/bench/sipp-load.sh [N ...]
# env:   CALL_SECONDS (default 20)  length of each call
#        (at least 16: the key is pressed 15 s in, during the main menu)
#        HOTLINED     a built daemon (default: cargo build --release, target dir honoured)
#        KEEP=1       keep the work folder (logs, sipp CSVs) and print its path
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CALL_SECONDS=${CALL_SECONDS:-20}
[ "$CALL_SECONDS" -ge 16 ] || { echo "sipp-load: CALL_SECONDS must be at least 16" >&2; exit 2; }
LEVELS=("$@")
[ ${#LEVELS[@]} -gt 0 ] || LEVELS=(50 100 200)

command -v sipp >/dev/null || { echo "sipp-load: sipp is missing: apt-get install sip-tester" >&2; exit 2; }

# Re-enter in a private network namespace (own loopback, own UDP counters) when we can.
if [ -z "${SIPP_LOAD_NETNS:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null \
   && unshare -n true 2>/dev/null; then
  export SIPP_LOAD_NETNS=1
  exec unshare -n bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "${LEVELS[@]}"
fi

if [ -z "${HOTLINED:-}" ]; then
  (cd "$ROOT" && cargo build --release --quiet --bin hotlined)
  HOTLINED="${CARGO_TARGET_DIR:-$ROOT/target}/release/hotlined"
fi

WORK=$(mktemp -d /tmp/hotline-load.XXXXXX)
chmod 755 "$WORK"   # the private PostgreSQL runs as the postgres user and must reach it
DAEMON_PID=""
cleanup() {
  [ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then echo "work folder: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT


# Ports: fixed in a private namespace; otherwise derived from our PID (a figure, not a test).
if [ -n "${SIPP_LOAD_NETNS:-}" ]; then BASE=20000; else BASE=$((21000 + ($$ % 200) * 50)); fi
SIP_PORT=$BASE; GRPC_PORT=$((BASE + 1)); SIPP_PORT=$((BASE + 2)); SIPP_MEDIA=$((BASE + 4))
MAX_N=0; for n in "${LEVELS[@]}"; do [ "$n" -gt "$MAX_N" ] && MAX_N=$n; done
RTP_MIN=30000; RTP_MAX=$((RTP_MIN + 4 * MAX_N + 99))
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

cat > "$WORK/hotline.toml" <<TOML
[daemon]
state_dir = "$WORK/var"
shutdown_grace_secs = 2

[log]
filter = "info"

[grpc]
listen = "127.0.0.1:$GRPC_PORT"

[[grpc.tokens]]
name = "bench"
role = "admin"
token = "$TOKEN"

[sip]
listen = "127.0.0.1:$SIP_PORT"
max_calls = $((MAX_N + 20))
reserved_for_leaks = 10
rate_limit_per_second = 1000.0
rate_limit_burst = 1000.0

[media]
rtp_port_min = $RTP_MIN
rtp_port_max = $RTP_MAX
sounds_dir = "$ROOT/sounds/zh-CN"
recordings_dir = "$WORK/recordings"
TOML

"$HOTLINED" --config "$WORK/hotline.toml" > "$WORK/hotlined.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 600); do
  grep -q "gRPC API serving" "$WORK/hotlined.log" && break
  kill -0 "$DAEMON_PID" 2>/dev/null || { echo "sipp-load: hotlined exited:" >&2; cat "$WORK/hotlined.log" >&2; exit 1; }
  sleep 0.1
done
grep -q "gRPC API serving" "$WORK/hotlined.log" || { echo "sipp-load: hotlined did not start in 60 s" >&2; exit 1; }

# The caller's voice: a 1 kHz tone as raw µ-law, as long as the call.
for _ in $(seq $(( (CALL_SECONDS + 4) / 5 ))); do cat "$ROOT/sounds/testdata/tone1k_5s.ulaw"; done \
  | head -c $((8000 * CALL_SECONDS)) > "$WORK/caller.ulaw"

TICKS=$(getconf CLK_TCK)
# CPU ticks (user + system) of a process; for the PostgreSQL server, add its reaped
# children and its live ones (the daemon's connections).
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
postgres_ticks() {
  local master total=0 pid
  master=$(head -1 "$WORK/var/postgres/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
  total=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$master/stat" 2>/dev/null || echo 0)
  for pid in $(pgrep -P "$master"); do total=$((total + $(ticks "$pid"))); done
  echo "$total"
}
# Rows of a table in the daemon's private database (psql over its unix socket).
rows() {
  psql -h "$WORK/var/postgres" -p 5432 -U postgres -d hotline -Atc "SELECT count(*) FROM $1" 2>/dev/null || echo "?"
}
udp_out() { awk '/^Udp:/ { if (++n == 2) print $5 }' /proc/net/snmp; }
# Datagrams dropped so far on sockets bound to the daemon's RTP ports: inode and drops.
rtp_drops() {
  awk -v lo="$RTP_MIN" -v hi="$RTP_MAX" 'NR > 1 {
    split($2, a, ":"); port = 0
    for (i = 1; i <= 4; i++) port = port * 16 + index("0123456789ABCDEF", substr(a[2], i, 1)) - 1
    if (port >= lo && port <= hi) print $10, $NF }' /proc/net/udp
}

echo "hotlined $("$HOTLINED" --version 2>/dev/null | head -1), calls of ${CALL_SECONDS} s, RTP 20 ms PCMU both ways, $(nproc) CPUs"
for N in "${LEVELS[@]}"; do
  RUN="$WORK/n$N"; mkdir -p "$RUN"; cp "$WORK/caller.ulaw" "$RUN/"
  TOTAL=$((2 * N))
  d0=$(ticks "$DAEMON_PID"); p0=$(postgres_ticks); u0=$(udp_out); k0=$(rows tickets); r0=$(rows "tickets WHERE category = 'repair'")
  l0=$(grep -c "caller look-up timed out" "$WORK/hotlined.log" || true); t0=$(date +%s%N)
  (cd "$RUN" && exec sipp -sf "$ROOT/tests/sipp/uac_media.xml" "127.0.0.1:$SIP_PORT" -s 4008 \
     -i 127.0.0.1 -p "$SIPP_PORT" -mi 127.0.0.1 -mp "$SIPP_MEDIA" \
     -set caller 13800000000 -set dtmf rfc4733 -set digits 2 \
     -set wait_ms 15000 -set hold_ms $(( (CALL_SECONDS - 15) * 1000 )) -set ends caller \
     -m "$TOTAL" -l "$N" -r "$N" -rp $((CALL_SECONDS * 1000)) \
     -nostdin -timeout $((3 * CALL_SECONDS + 60)) -timeout_error -recv_timeout 40000 \
     -trace_stat -fd 1 -trace_err > sipp.out 2>&1) &
  SIPP_PID=$!
  # Sampled while sipp runs: drops on the daemon's RTP sockets, sipp's own CPU ticks.
  ( while sleep 1; do rtp_drops >> "$RUN/drops.txt"; ticks "$SIPP_PID" >> "$RUN/sipp_ticks.txt"; done ) &
  SAMPLER=$!
  set +e
  wait "$SIPP_PID"
  rc=$?
  set -e
  kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true
  t1=$(date +%s%N); d1=$(ticks "$DAEMON_PID"); p1=$(postgres_ticks); u1=$(udp_out)
  # The journal writes the last drafts after the calls end (later under load): wait until
  # the count holds still.
  k1=$(rows tickets)
  for _ in $(seq 30); do
    sleep 1; k=$(rows tickets); [ "$k" = "$k1" ] && break; k1=$k
  done
  r1=$(rows "tickets WHERE category = 'repair'")
  CSV=$(ls "$RUN"/uac_media_*_.csv)
  # Columns by name: the last row holds the cumulative figures.
  read -r ok failed max_calls setup <<<"$(awk -F';' '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { cur = $col["CurrentCall"] + 0; if (cur > max) max = cur; last = $0 }
    END { split(last, f, ";");
          print f[col["SuccessfulCall(C)"]], f[col["FailedCall(C)"]], max, f[col["ResponseTime1(C)"]] }' "$CSV")"
  drops=$(awk '{ if ($2 > m[$1]) m[$1] = $2 } END { s = 0; for (i in m) s += m[i]; print s }' "$RUN/drops.txt")
  sipp_cpu=$(sort -n "$RUN/sipp_ticks.txt" | tail -1)
  slow_lookups=$(( $(grep -c "caller look-up timed out" "$WORK/hotlined.log" || true) - l0 ))
  # wall is in ms here.
  awk -v n="$N" -v ok="$ok" -v failed="$failed" -v max="$max_calls" -v setup="$setup" -v rc="$rc" \
      -v wall=$(( (t1 - t0) / 1000000 )) -v dcpu=$((d1 - d0)) -v pcpu=$((p1 - p0)) -v hz="$TICKS" \
      -v udp=$((u1 - u0)) -v secs="$CALL_SECONDS" -v drops="$drops" -v k0="$k0" -v k1="$k1" -v r0="$r0" -v r1="$r1" \
      -v scpu="$sipp_cpu" -v slow="$slow_lookups" '
  function delta(a, b) { return (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/) ? b - a : "?" }
  BEGIN {
    printf "N=%d: calls ok=%d failed=%d (sipp exit %d), drafts filed %s (repair %s), max concurrent=%d, setup %s, wall %.0f s, " \
           "hotlined CPU %.1f%% of one core, PostgreSQL CPU %.1f%%, UDP sent per call-second %.1f, " \
           "drops on daemon RTP sockets %d, caller look-ups over 400 ms %d, sipp CPU %.1f%%\n",
      n, ok, failed, rc, delta(k0, k1), delta(r0, r1), max, setup, wall / 1000, 100000 * dcpu / hz / wall, 100000 * pcpu / hz / wall,
      (ok + failed > 0 ? udp / ((ok + failed) * secs) : 0), drops, slow, 100000 * scpu / hz / wall }'
done
