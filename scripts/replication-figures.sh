#!/usr/bin/env bash
# The multiplayer figures for BENCHMARKS.md (scripts/benchmarks.py reads the logs):
# three runs each of the erosion workload (one client, the server's geology only)
# and of eight clients each writing 1,000 random voxels a frame, over 127.0.0.1.
# Every run is bounded by the example's own deadline and by `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/replication
cargo build --release --features replication --example multiplayer
bin=target/release/examples/multiplayer
for i in 1 2 3; do
    timeout 600 "$bin" --loopback --clients 1 --edits 0 --frames 600 > "target/replication/erosion-$i.log" 2>&1
    grep -h "wire:\|joined:\|server frame:\|converged" "target/replication/erosion-$i.log"
done
for i in 1 2 3; do
    timeout 600 "$bin" --loopback --clients 8 --edits 1000 --frames 300 > "target/replication/eight-$i.log" 2>&1
    grep -h "wire:\|joined:\|server frame:\|converged" "target/replication/eight-$i.log"
done
