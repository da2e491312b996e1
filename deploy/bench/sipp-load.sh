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
# call (announce policy). While sipp runs, rtp_probe (deploy/bench/rtp_probe.rs, a packet
# socket on lo) times the daemon's outgoing RTP against its 20 ms schedule. Then the same
# load runs against sipp as a UAS that only answers and streams PCMU (uas_stream.xml): the
# baseline for "answer and stream RTP" on this machine. Loopback only, bounded by sipp's -m,
# -l and -timeout. With root and `unshare`, the run gets a private network namespace, so
# the UDP counters are its own and fixed ports are free (the probe needs root).
#
# usage: deploy/bench/sipp-load.sh [N ...]              concurrent calls (default 50 100 200)
#        BURST=1 deploy/bench/sipp-load.sh [RATE ...]   call setup bursts (default 100)
#
# Per N, a detail line as the level ends, and at the end one table, a row per N:
#   failed       calls sipp counted as failed
#   misrouted    completed calls without a repair draft (the key 2 did not reach the menu)
#   CPU %        the daemon's CPU over the level (user + system) in % of one core, and the
#                same per 1,000 concurrent calls
#   UAS /1k      the sipp UAS baseline's CPU per 1,000 calls under the same caller load;
#                ratio = daemon / baseline
#   RTP dev      how late each outgoing RTP packet left against its stream's 20 ms schedule
#                (p50 / p99 / max ms; the stream's earliest packet is 0)
#   prompt       the latest prompt start after the end of the prompt before it (ms), and how
#                many of the measured starts were over 20 ms: rtp_probe recognises the prompts'
#                frames on the wire (see rtp_probe.rs); back to back is 0
#   setup        INVITE -> 200 OK per call, p50 / p99 ms (sipp's response time 1: from the
#                call's start, when sipp sends the INVITE, to the 200; whole ms)
#   RSS/call     (the daemon's peak VmRSS during the level - its VmRSS before) / N, KiB;
#                the detail line has the idle RSS before and after (growth check)
#   PG CPU %     the private PostgreSQL's CPU (server and its connections), % of one core
# Burst mode: short calls (2 s, no key) at RATE new calls/s for 10 s (RATE * 10 calls), one
# row per RATE: calls, failed, setups/s achieved (200 OKs over the time between the first
# and the last), setup p50 / p99 ms, the daemon's and PostgreSQL's CPU %.
#
# env:   CALL_SECONDS (default 20)  length of each call
#        (at least 16: the key is pressed 15 s in, during the main menu)
#        HOTLINED     a built daemon (default: cargo build --release, target dir honoured)
#        RTP_PROBE    a built rtp_probe (default: cargo build --release --example rtp_probe)
#        BASELINE=0   skip the sipp UAS baseline
#        MEDIA_PRIORITY  the daemon's media.realtime_priority (default 10; 0: normal scheduling)
#        SOAK_MINUTES soak mode: the first N for this many minutes, a sample a minute (RSS,
#                     file descriptors and hotline_live_objects: calls, media sessions, RTP
#                     port pairs, timers, SIP transactions, dialogs) and one after the calls
#        BURST=1      burst mode (above)
#        KEEP=1       keep the work folder (logs, sipp CSVs, probe output) and print its path
#        TMPDIR       where the work folder goes (default /tmp; the postgres user must reach it)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BURST=${BURST:-0}
LEVELS=("$@")
if [ "$BURST" = 1 ]; then
  # Short calls: a second to answer and play, a second more, then BYE.
  CALL_SECONDS=2
  [ ${#LEVELS[@]} -gt 0 ] || LEVELS=(100)
else
  CALL_SECONDS=${CALL_SECONDS:-20}
  [ "$CALL_SECONDS" -ge 16 ] || { echo "sipp-load: CALL_SECONDS must be at least 16" >&2; exit 2; }
  [ ${#LEVELS[@]} -gt 0 ] || LEVELS=(50 100 200)
fi
for n in "${LEVELS[@]}"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "sipp-load: levels and rates are positive numbers, not \"$n\"" >&2; exit 2; }
done

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
# The probe opens a packet socket: root only (and inside our namespace, it sees only our lo).
# Bursts do not use it.
if [ "$BURST" != 1 ] && [ "$(id -u)" = 0 ] && [ -z "${RTP_PROBE:-}" ]; then
  (cd "$ROOT" && cargo build --release --quiet --example rtp_probe)
  RTP_PROBE="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/rtp_probe"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hotline-load.XXXXXX")
chmod 755 "$WORK"   # the private PostgreSQL runs as the postgres user and must reach it
DAEMON_PID=""
# Helpers started per level (sipp, the probe, the baseline UAS), stopped on any exit.
HELPER_PIDS=()
cleanup() {
  for pid in "${HELPER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  [ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then echo "work folder: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT


# Ports: fixed in a private namespace; otherwise derived from our PID (a figure, not a test).
if [ -n "${SIPP_LOAD_NETNS:-}" ]; then BASE=20000; else BASE=$((21000 + ($$ % 200) * 50)); fi
SIP_PORT=$BASE; GRPC_PORT=$((BASE + 1)); SIPP_PORT=$((BASE + 2)); SIPP_MEDIA=$((BASE + 4))
# sipp binds its media port and the one 2 above (video).
UAS_PORT=$((BASE + 10)); UAS_MEDIA=$((BASE + 12)); METRICS_PORT=$((BASE + 20))
MAX_N=0; for n in "${LEVELS[@]}"; do [ "$n" -gt "$MAX_N" ] && MAX_N=$n; done
RATE_LIMIT=1000
# A burst at RATE calls/s of 2 s calls has about 2 * RATE open (more while setups lag).
if [ "$BURST" = 1 ]; then RATE_LIMIT=$((MAX_N * 2 > 1000 ? MAX_N * 2 : 1000)); MAX_N=$((3 * MAX_N)); fi
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

[metrics]
listen = "127.0.0.1:$METRICS_PORT"

[[grpc.tokens]]
name = "bench"
role = "admin"
token = "$TOKEN"

[sip]
listen = "127.0.0.1:$SIP_PORT"
max_calls = $((MAX_N + 20))
reserved_for_leaks = 10
rate_limit_per_second = $RATE_LIMIT.0
rate_limit_burst = $RATE_LIMIT.0

[media]
rtp_port_min = $RTP_MIN
rtp_port_max = $RTP_MAX
sounds_dir = "$ROOT/sounds/zh-CN"
recordings_dir = "$WORK/recordings"
realtime_priority = ${MEDIA_PRIORITY:-10}
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

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# CPU ticks over a wall time in ns, as % of one core.
cpu_pct() { awk -v t="$1" -v ns="$2" -v hz="$TICKS" 'BEGIN { printf "%.1f", (ns > 0 ? 100 * t / hz / (ns / 1e9) : 0) }'; }
# Per call, from sipp's -trace_rtt files (Date_ms;response_time_ms;rtd_no): p50 and p99 of
# response time 1 (INVITE -> 200, ms), and setups/s between the first and the last 200.
setup_figures() {
  awk -F';' 'FNR > 1 && $2 ~ /^[0-9.]+$/ { print $1, $2 }' "$@" | sort -g -k2 | awk '
    function rank(f,   r, i) { r = NR * f; i = int(r); if (i < r) i++; return i < 1 ? 1 : i }
    { ms[NR] = $2; if (NR == 1 || $1 < first) first = $1; if ($1 > last) last = $1 }
    END { if (NR == 0) { print "? ? ?"; exit }
          printf "%d %d %.0f\n", ms[rank(0.50)], ms[rank(0.99)], (last > first ? (NR - 1) * 1000 / (last - first) : 0) }'
}
# One field of the probe's line (key=value pairs), or "-" without it.
probe_field() { awk -v key="$2" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) v = kv[2] } } END { print v == "" ? "-" : v }' "$1" 2>/dev/null || echo -; }
# Runs uac_media.xml callers in the background (sets SIPP_PID): folder, target SIP port,
# calls, concurrent, rate, rate period (ms), dtmf, wait_ms, hold_ms.
start_callers() {
  (cd "$1" && exec sipp -sf "$ROOT/tests/sipp/uac_media.xml" "127.0.0.1:$2" -s 4008 \
     -i 127.0.0.1 -p "$SIPP_PORT" -mi 127.0.0.1 -mp "$SIPP_MEDIA" \
     -set caller 13800000000 -set dtmf "$7" -set digits 2 \
     -set wait_ms "$8" -set hold_ms "$9" -set ends caller \
     -m "$3" -l "$4" -r "$5" -rp "$6" \
     -nostdin -timeout "${SIPP_TIMEOUT:-$((3 * CALL_SECONDS + 60))}" -timeout_error -recv_timeout 40000 \
     -trace_stat -fd 1 -trace_err -trace_rtt -rtt_freq 1 > sipp.out 2>&1) &
  SIPP_PID=$!
  HELPER_PIDS+=("$SIPP_PID")
}
# The cumulative figures of a sipp run (last row of its -trace_stat CSV, columns by name):
# successful calls, failed calls, the most concurrent calls.
sipp_counts() {
  awk -F';' '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { cur = $col["CurrentCall"] + 0; if (cur > max) max = cur; last = $0 }
    END { split(last, f, ";"); print f[col["SuccessfulCall(C)"]] + 0, f[col["FailedCall(C)"]] + 0, max + 0 }' "$1"/uac_media_*_.csv
}
# The journal writes the last records after the calls end (later under load): waits until
# nothing waits for the database (hotline_journal_backlog_records and, after a database
# hiccup, hotline_journal_spool_bytes both 0), at most 120 s, then prints the seconds it
# took and the number of drafts.
settled_drafts() {
  local waited=0 pending
  while [ "$waited" -lt 120 ]; do
    pending=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk '
      $1 == "hotline_journal_backlog_records" || $1 == "hotline_journal_spool_bytes" { n += $2; seen++ }
      END { print seen == 2 ? n : "?" }')
    [ "$pending" = 0 ] && break
    sleep 1; waited=$((waited + 1))
  done
  echo "$waited $(rows tickets)"
}

# One soak sample: seconds since start, the daemon's RSS (KiB) and open file descriptors,
# and what it holds now (hotline_live_objects, by kind, from its metrics endpoint).
soak_sample() {
  local objects
  objects=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk '
    /^hotline_live_objects\{kind="/ { split($1, a, "\""); printf " %s=%s", a[2], $2 }')
  echo "t=$(( ($(date +%s) - $1) ))s rss_kib=$(rss_kib "$DAEMON_PID") fds=$(ls "/proc/$DAEMON_PID/fd" | wc -l)$objects"
}

if [ -n "${SOAK_MINUTES:-}" ]; then
  # Soak: N concurrent calls for SOAK_MINUTES, a sample a minute, then one after the calls
  # have ended and the SIP transactions have expired (Timer J/K: 32 s): every count but RSS
  # must be back at its idle value, and none may grow while the load holds still.
  N=${LEVELS[0]}
  RUN="$WORK/soak"; mkdir -p "$RUN"; cp "$WORK/caller.ulaw" "$RUN/"
  TOTAL=$(( N * SOAK_MINUTES * 60 / CALL_SECONDS ))
  # sipp's overall bound: the soak, and the margin of a normal level.
  SIPP_TIMEOUT=$(( SOAK_MINUTES * 60 + 3 * CALL_SECONDS + 60 ))
  start=$(date +%s)
  echo "soak: $N concurrent calls of $CALL_SECONDS s for $SOAK_MINUTES min ($TOTAL calls)"
  soak_sample "$start" | tee "$RUN/samples.txt"
  start_callers "$RUN" "$SIP_PORT" "$TOTAL" "$N" "$N" $((CALL_SECONDS * 1000)) rfc4733 15000 $(( (CALL_SECONDS - 15) * 1000 ))
  ( while sleep 60; do soak_sample "$start"; done ) | tee -a "$RUN/samples.txt" &
  SAMPLER=$!
  set +e; wait "$SIPP_PID"; rc=$?; set -e
  kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true
  sleep 40
  echo "after the calls:"; soak_sample "$start" | tee -a "$RUN/samples.txt"
  read -r ok failed max_calls <<<"$(sipp_counts "$RUN")"
  read -r journal_wait drafts <<<"$(settled_drafts)"
  echo "soak: calls ok=$ok failed=$failed (sipp exit $rc), max concurrent=$max_calls, drafts $drafts"
  exit 0
fi

echo "hotlined $("$HOTLINED" --version 2>/dev/null | head -1), calls of ${CALL_SECONDS} s, RTP 20 ms PCMU both ways, $(nproc) CPUs"
TABLE=()
for N in "${LEVELS[@]}"; do
  RUN="$WORK/n$N"; mkdir -p "$RUN"; cp "$WORK/caller.ulaw" "$RUN/"
  if [ "$BURST" = 1 ]; then
    # N new calls a second for 10 s; each answers, waits 1 s, sends BYE after 1 s more.
    TOTAL=$((10 * N))
    d0=$(ticks "$DAEMON_PID"); p0=$(postgres_ticks); t0=$(date +%s%N)
    start_callers "$RUN" "$SIP_PORT" "$TOTAL" $((3 * N)) "$N" 1000 inband 1000 1000
    set +e; wait "$SIPP_PID"; rc=$?; set -e
    t1=$(date +%s%N); d1=$(ticks "$DAEMON_PID"); p1=$(postgres_ticks)
    read -r ok failed max_calls <<<"$(sipp_counts "$RUN")"
    read -r setup_p50 setup_p99 setups_per_s <<<"$(setup_figures "$RUN"/uac_media_*_rtt.csv)"
    dcpu=$(cpu_pct $((d1 - d0)) $((t1 - t0))); pcpu=$(cpu_pct $((p1 - p0)) $((t1 - t0)))
    echo "rate $N/s: calls ok=$ok failed=$failed (sipp exit $rc), max concurrent=$max_calls, setups/s $setups_per_s, INVITE->200 p50 $setup_p50 ms p99 $setup_p99 ms, wall $(( (t1 - t0) / 1000000000 )) s, hotlined CPU $dcpu%, PostgreSQL CPU $pcpu%"
    TABLE+=("| $N | $TOTAL | $failed | $setups_per_s | $setup_p50 | $setup_p99 | $dcpu | $pcpu |")
    continue
  fi

  TOTAL=$((2 * N))
  rss0=$(rss_kib "$DAEMON_PID")
  d0=$(ticks "$DAEMON_PID"); p0=$(postgres_ticks); u0=$(udp_out); k0=$(rows tickets); r0=$(rows "tickets WHERE category = 'repair'")
  l0=$(grep -c "caller look-up timed out" "$WORK/hotlined.log" || true)
  PROBE_PID=""
  if [ -n "${RTP_PROBE:-}" ]; then
    "$RTP_PROBE" "$RTP_MIN" "$RTP_MAX" "$ROOT/sounds/zh-CN" > "$RUN/probe.out" 2> "$RUN/probe.err" &
    PROBE_PID=$!; HELPER_PIDS+=("$PROBE_PID")
    sleep 0.2
    kill -0 "$PROBE_PID" 2>/dev/null || { echo "sipp-load: rtp_probe failed:" >&2; cat "$RUN/probe.err" >&2; exit 1; }
  fi
  t0=$(date +%s%N)
  start_callers "$RUN" "$SIP_PORT" "$TOTAL" "$N" "$N" $((CALL_SECONDS * 1000)) rfc4733 15000 $(( (CALL_SECONDS - 15) * 1000 ))
  # Sampled while sipp runs: drops on the daemon's RTP sockets, sipp's own CPU ticks, the
  # daemon's RSS.
  ( while sleep 1; do rtp_drops >> "$RUN/drops.txt"; ticks "$SIPP_PID" >> "$RUN/sipp_ticks.txt"
                      rss_kib "$DAEMON_PID" >> "$RUN/rss.txt"; done ) &
  SAMPLER=$!
  set +e; wait "$SIPP_PID"; rc=$?; set -e
  kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true
  t1=$(date +%s%N); d1=$(ticks "$DAEMON_PID"); p1=$(postgres_ticks); u1=$(udp_out)
  probe_cpu="-"
  if [ -n "$PROBE_PID" ]; then
    probe_cpu=$(cpu_pct "$(ticks "$PROBE_PID")" $((t1 - t0)))
    kill -TERM "$PROBE_PID"; wait "$PROBE_PID" || echo "sipp-load: rtp_probe: $(cat "$RUN/probe.err")" >&2
  fi
  read -r journal_wait k1 <<<"$(settled_drafts)"
  r1=$(rows "tickets WHERE category = 'repair'")
  rss1=$(rss_kib "$DAEMON_PID")
  rss_peak=$(sort -n "$RUN/rss.txt" | tail -1)
  read -r ok failed max_calls <<<"$(sipp_counts "$RUN")"
  read -r setup_p50 setup_p99 _ <<<"$(setup_figures "$RUN"/uac_media_*_rtt.csv)"
  drops=$(awk '{ if ($2 > m[$1]) m[$1] = $2 } END { s = 0; for (i in m) s += m[i]; print s }' "$RUN/drops.txt")
  sipp_cpu=$(cpu_pct "$(sort -n "$RUN/sipp_ticks.txt" | tail -1)" $((t1 - t0)))
  slow_lookups=$(( $(grep -c "caller look-up timed out" "$WORK/hotlined.log" || true) - l0 ))
  dcpu=$(cpu_pct $((d1 - d0)) $((t1 - t0))); pcpu=$(cpu_pct $((p1 - p0)) $((t1 - t0)))

  # The baseline: the same callers against sipp as a UAS that answers and streams PCMU.
  uas_per_1k="-"; ratio="-"; uas_cpu="-"; uas_ok="-"; uas_failed="-"
  if [ "${BASELINE:-1}" != 0 ]; then
    mkdir -p "$RUN/uas" "$RUN/uac"
    cp "$RUN/caller.ulaw" "$RUN/uac/caller.ulaw"; cp "$RUN/caller.ulaw" "$RUN/uas/uas.ulaw"
    (cd "$RUN/uas" && exec sipp -sf "$ROOT/deploy/bench/uas_stream.xml" -i 127.0.0.1 -p "$UAS_PORT" \
       -mi 127.0.0.1 -mp "$UAS_MEDIA" -nostdin -timeout $((3 * CALL_SECONDS + 90)) \
       -trace_err > sipp.out 2>&1) &
    UAS_PID=$!; HELPER_PIDS+=("$UAS_PID")
    sleep 0.5
    b0=$(ticks "$UAS_PID"); tb0=$(date +%s%N)
    start_callers "$RUN/uac" "$UAS_PORT" "$TOTAL" "$N" "$N" $((CALL_SECONDS * 1000)) rfc4733 15000 $(( (CALL_SECONDS - 15) * 1000 ))
    set +e; wait "$SIPP_PID"; set -e
    b1=$(ticks "$UAS_PID"); tb1=$(date +%s%N)
    # No -m for the UAS: it must still run here, so its ticks can be read (its -timeout bounds it).
    kill -TERM "$UAS_PID" 2>/dev/null || true; wait "$UAS_PID" 2>/dev/null || true
    read -r uas_ok uas_failed _ <<<"$(sipp_counts "$RUN/uac")"
    uas_cpu=$(cpu_pct $((b1 - b0)) $((tb1 - tb0)))
    uas_per_1k=$(awk -v c="$uas_cpu" -v n="$N" 'BEGIN { printf "%.1f", c * 1000 / n }')
    ratio=$(awk -v d="$dcpu" -v u="$uas_cpu" 'BEGIN { if (u > 0) printf "%.2f", d / u; else print "-" }')
  fi

  dev="$(probe_field "$RUN/probe.out" dev_p50_ms) / $(probe_field "$RUN/probe.out" dev_p99_ms) / $(probe_field "$RUN/probe.out" dev_max_ms)"
  prompt="$(probe_field "$RUN/probe.out" prompt_worst_ms) ($(probe_field "$RUN/probe.out" prompt_late) of $(probe_field "$RUN/probe.out" prompt_starts) > 20)"
  # wall is in ms here.
  awk -v n="$N" -v ok="$ok" -v failed="$failed" -v max="$max_calls" -v rc="$rc" \
      -v wall=$(( (t1 - t0) / 1000000 )) -v dcpu="$dcpu" -v pcpu="$pcpu" \
      -v udp=$((u1 - u0)) -v secs="$CALL_SECONDS" -v drops="$drops" -v k0="$k0" -v k1="$k1" -v r0="$r0" -v r1="$r1" \
      -v scpu="$sipp_cpu" -v slow="$slow_lookups" -v rss0="$rss0" -v rss1="$rss1" -v peak="$rss_peak" \
      -v probe="$(cat "$RUN/probe.out" 2>/dev/null)" -v probe_cpu="$probe_cpu" -v uas_cpu="$uas_cpu" \
      -v uas_ok="$uas_ok" -v uas_failed="$uas_failed" -v jw="$journal_wait" '
  function delta(a, b) { return (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/) ? b - a : "?" }
  BEGIN {
    printf "N=%d: calls ok=%d failed=%d (sipp exit %d), drafts filed %s (repair %s; journal written %s s after the last call), max concurrent=%d, wall %.0f s, " \
           "hotlined CPU %s%% of one core, PostgreSQL CPU %s%%, UDP sent per call-second %.1f, " \
           "drops on daemon RTP sockets %d, caller look-ups over 400 ms %d, sipp CPU %s%%, " \
           "hotlined RSS %d KiB idle, %d KiB peak, %d KiB idle after; " \
           "rtp_probe: %s, its CPU %s%%; baseline sipp UAS: calls ok=%s failed=%s, CPU %s%%\n",
      n, ok, failed, rc, delta(k0, k1), delta(r0, r1), jw, max, wall / 1000, dcpu, pcpu,
      (ok + failed > 0 ? udp / ((ok + failed) * secs) : 0), drops, slow, scpu,
      rss0, peak, rss1, probe == "" ? "-" : probe, probe_cpu, uas_ok, uas_failed, uas_cpu }'
  misrouted=$(awk -v ok="$ok" -v r0="$r0" -v r1="$r1" 'BEGIN { print (r0 ~ /^[0-9]+$/ && r1 ~ /^[0-9]+$/) ? ok - (r1 - r0) : "?" }')
  TABLE+=("$(awk -v n="$N" -v failed="$failed" -v mis="$misrouted" -v dcpu="$dcpu" -v uas="$uas_per_1k" -v ratio="$ratio" \
      -v dev="$dev" -v prompt="$prompt" -v s50="$setup_p50" -v s99="$setup_p99" -v rss0="$rss0" -v peak="$rss_peak" -v pcpu="$pcpu" '
    BEGIN { printf "| %d | %d | %s | %s | %.1f | %s | %s | %s | %s | %s / %s | %.1f | %s |", n, failed, mis, dcpu, dcpu * 1000 / n,
              uas, ratio, dev, prompt, s50, s99, (peak - rss0) / n, pcpu }')")
done

echo
if [ "$BURST" = 1 ]; then
  echo "| rate/s | calls | failed | setups/s | INVITE->200 p50 ms | p99 ms | hotlined CPU % | PostgreSQL CPU % |"
  echo "|---|---|---|---|---|---|---|---|"
else
  echo "| N | failed | misrouted | hotlined CPU % | CPU % per 1k calls | sipp UAS CPU % per 1k | ratio | RTP dev p50 / p99 / max ms | worst prompt start ms (late) | setup p50 / p99 ms | RSS per call KiB | PostgreSQL CPU % |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
fi
printf '%s\n' "${TABLE[@]}"
