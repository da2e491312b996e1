#!/usr/bin/env bash
# sipp-load.sh — how many concurrent calls hotlined carries: a figure, not a test.
#
# Starts the release hotlined with a throwaway state folder and its own private PostgreSQL,
# then for each N given (default: 50 100 200) runs sipp with N concurrent callers. Every
# caller streams RTP (µ-law, 20 ms) for the whole call while the daemon plays its prompts
# back, presses one key (RFC 4733) so the IVR files a ticket, and hangs up. It prints one
# line per N: calls completed/failed, the daemon's CPU use over the run, loopback UDP
# datagrams per call-second (about 100 when RTP flows both ways at 50 packets/s) and UDP
# receive errors. Loopback only, bounded by sipp's -m, -l and -timeout. With root and
# `unshare`, the run gets a private network namespace so the UDP counters are its own.
#
# usage: deploy/bench/sipp-load.sh [N ...]
# env:   CALL_SECONDS (default 20)  length of each call
#        HOTLINED     a built daemon (default: cargo build --release, target dir honoured)
#        KEEP=1       keep the work folder (logs, sipp CSVs) and print its path
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CALL_SECONDS=${CALL_SECONDS:-20}
LEVELS=("$@")
[ ${#LEVELS[@]} -gt 0 ] || LEVELS=(50 100 200)

for tool in sipp; do
  command -v "$tool" >/dev/null || { echo "sipp-load: $tool is missing: apt-get install sip-tester" >&2; exit 2; }
done

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

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
