#!/bin/sh
# Crash safety at length: 100 SIGKILLs of each variant of
# tests/persistence_crash.rs (default options, a queue of one, interval syncs,
# kills during recovery), with the recovery figures printed.
set -eu
cd "$(dirname "$0")/.."
DELTA_CRASH_RUNS="${DELTA_CRASH_RUNS:-100}" \
    cargo test --release --no-default-features --features persistence --test persistence_crash -- --nocapture --test-threads 1 "$@"
