#!/bin/sh
# The decoder fuzzer (tests/fuzz_decoders.rs) at length: 1,000,000 inputs per
# decoder in a release build (a few minutes). CI runs 10,000 in debug.
# DELTA_FUZZ_SEED=<n> explores other inputs; a failure prints the input.
set -eu
cd "$(dirname "$0")/.."
DELTA_FUZZ_ITERS="${DELTA_FUZZ_ITERS:-1000000}" \
    cargo test --release --no-default-features --features persistence,replication --test fuzz_decoders -- --nocapture "$@"
