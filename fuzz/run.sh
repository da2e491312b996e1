#!/usr/bin/env bash
# Builds the fuzz targets with nightly's libFuzzer instrumentation (what `cargo fuzz build`
# does, for machines without cargo-fuzz) and runs each for SECONDS (default 60).
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
#   (targets: sip_message sdp rtp rfc4733 journal_frames)
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
if [ $# -gt 0 ]; then targets=("$@"); else targets=(sip_message sdp rtp rfc4733 journal_frames); fi
triple=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions" \
  cargo +nightly build --release --bins --target "$triple"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  "$CARGO_TARGET_DIR/$triple/release/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
    -max_total_time="$seconds" -max_len=4096
done
