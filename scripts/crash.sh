#!/bin/sh
# Crash safety at length: 100 SIGKILLs of each variant of
# tests/persistence_crash.rs (default options, a queue of one, interval syncs,
# kills during recovery), with the recovery figures printed; then 100 of a
# paged world's file with eviction and reloads (tests/paging_crash.rs).
set -eu
cd "$(dirname "$0")/.."
DELTA_CRASH_RUNS="${DELTA_CRASH_RUNS:-100}" \
    cargo test --release --no-default-features --features persistence --test persistence_crash -- --nocapture --test-threads 1 "$@"
DELTA_CRASH_RUNS="${DELTA_CRASH_RUNS:-100}" \
    cargo test --release --no-default-features --features paging,persistence --test paging_crash -- --nocapture --test-threads 1 "$@"
