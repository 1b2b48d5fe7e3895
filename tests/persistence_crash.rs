//! Crash safety of the world store, with real crashes.
//!
//! The test spawns this test binary again as a child (`crash_child`, which does
//! nothing unless `DELTA_CRASH_CHILD` names a file). The child opens the store,
//! prints `start R` (the sequence it resumed at), then ingests frames of updates
//! (deterministic from its seed and R), commits each frame and prints `ack N`
//! whenever the acknowledgement moves. The parent kills it with SIGKILL at a
//! random moment (only the child it started, through its handle), reopens the
//! file and checks:
//!
//! - the reopen succeeds;
//! - it holds every acknowledged change (its sequence is at least the last ack);
//! - it equals a replay of the child's frames up to exactly its sequence, which
//!   must fall on a frame boundary: nothing partial, nothing invented.
//!
//! Variants: the default options; `queue_capacity: 1` (most commits become
//! snapshots, written as full checkpoints); `Durability::Interval`; and kills
//! during recovery (after each kill, a second child only opens the crashed
//! file and is killed at a random moment of its opening, before the parent
//! reopens and checks).
//!
//! `DELTA_CRASH_RUNS` sets the number of kills of each variant (25 for the
//! default one and 8 for each other by default, the CI run);
//! `scripts/crash.sh` runs 100 of each and prints the recovery figures.

use bevy_delta_overlay::{
    Aabb, DeltaConfig, DeltaStorage, MaterialId, WorldGen, persistence::Durability, persistence::Opened,
    persistence::StoreOptions, persistence::WorldStore,
};
use glam::IVec3;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn world() -> WorldGen {
    WorldGen { min: IVec3::new(-20, 0, 3), size: IVec3::new(80, 48, 64), sea_level: 30, ..WorldGen::default() }
}

/// The options of a variant (`DELTA_CRASH_VARIANT` in the child).
fn options(variant: &str) -> StoreOptions {
    let options = StoreOptions {
        generator: world(),
        checkpoint_every: 4000,
        config: DeltaConfig { threshold: 2000, ..Default::default() },
        ..StoreOptions::default()
    };
    match variant {
        "queue1" => StoreOptions { queue_capacity: 1, ..options },
        "interval" => StoreOptions { durability: Durability::Interval(Duration::from_millis(15)), ..options },
        _ => options,
    }
}

const PER_FRAME: usize = 150;
const MAX_FRAMES: u64 = 4000;

/// The updates of frame `f` of a child with `seed` that resumed at `start`.
fn frame(seed: u64, start: u64, f: u64, bounds: Aabb) -> Vec<(IVec3, MaterialId)> {
    let mut x = (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ start.wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ f) | 1;
    let s = bounds.size().as_uvec3();
    (0..PER_FRAME)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let p = IVec3::new(
                (x % u64::from(s.x)) as i32,
                ((x >> 21) % u64::from(s.y)) as i32,
                ((x >> 42) % u64::from(s.z)) as i32,
            );
            (bounds.min + p, MaterialId((x >> 61) as u16 + 1))
        })
        .collect()
}

/// The number after `word` in a line of the child's output.
fn after(line: &str, word: &str) -> Option<u64> {
    let rest = &line[line.find(word)? + word.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// The child: ingest until killed (or a bounded number of frames).
#[test]
fn crash_child() {
    let Ok(path) = std::env::var("DELTA_CRASH_CHILD") else { return };
    let seed: u64 = std::env::var("DELTA_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let variant = std::env::var("DELTA_CRASH_VARIANT").unwrap_or_default();
    let (mut store, mut storage, _) = WorldStore::open(&path, options(&variant)).expect("the child opens the store");
    let start = storage.sequence();
    println!("start {start}");
    if std::env::var_os("DELTA_CRASH_OPEN_ONLY").is_some() {
        // Killed while opening, or idle after it: it writes no frame.
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    storage.record_changes(1 << 20);
    let mut acked = store.durable();
    for f in 0..MAX_FRAMES {
        storage.batch_update(frame(seed, start, f, storage.bounds()));
        storage.consolidate_if_needed();
        let batch = storage.take_changes();
        store.commit(batch, &mut storage).expect("commit");
        let durable = store.durable();
        if durable > acked {
            acked = durable;
            println!("ack {acked}");
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Starts a child on `path`; its output lines come through the receiver.
fn spawn(path: &Path, variant: &str, seed: usize, open_only: bool) -> (Child, Receiver<String>, JoinHandle<()>) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "crash_child", "--nocapture", "--test-threads", "1"])
        .env("DELTA_CRASH_CHILD", path)
        .env("DELTA_CRASH_SEED", seed.to_string())
        .env("DELTA_CRASH_VARIANT", variant)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if open_only {
        command.env("DELTA_CRASH_OPEN_ONLY", "1");
    }
    let mut child = command.spawn().expect("spawn the child");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx, reader)
}

/// SIGKILLs a child (only the one this test started, through its handle).
fn kill(mut child: Child, reader: JoinHandle<()>) {
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn runs(default: usize) -> usize {
    std::env::var("DELTA_CRASH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

#[test]
fn every_acknowledged_change_survives_sigkill() {
    kills("default", runs(25), false);
}

/// Most commits find the queue full and hand over a snapshot: full
/// checkpoints, killed in the middle.
#[test]
fn every_acknowledged_change_survives_sigkill_with_a_queue_of_one() {
    kills("queue1", runs(8), false);
}

#[test]
fn every_acknowledged_change_survives_sigkill_with_interval_syncs() {
    kills("interval", runs(8), false);
}

/// After each kill, a second child opens the crashed file and is killed while
/// it recovers it (or just after): the file still opens, with every
/// acknowledged change.
#[test]
fn a_kill_during_recovery_loses_nothing() {
    kills("default", runs(8), true);
}

/// `runs` kills of children of `variant`; with `recovery_kills`, a second
/// child killed while opening after each.
fn kills(variant: &str, runs: usize, recovery_kills: bool) {
    let dir = std::env::temp_dir().join(format!(
        "bdo-crash-{}-{variant}{}",
        std::process::id(),
        if recovery_kills { "-recovery" } else { "" }
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("world.redb");
    // The parent's model of the file's world: the generated world to begin with.
    let mut model = DeltaStorage::new(world().build().unwrap(), DeltaConfig::default());
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let (mut recoveries, mut kills_after_ack) = (Vec::new(), 0);
    for run in 0..runs {
        let lifetime = Duration::from_millis(30 + xorshift(&mut rng) % 400);
        let (child, rx, reader) = spawn(&path, variant, run, false);
        // Wait for the child to start, then let it run for a random time.
        let (mut start, mut acked) = (None, 0u64);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut started_at = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(line) => {
                    // The harness may print its own words before ours on a line.
                    if let Some(s) = after(&line, "start ") {
                        start = Some(s);
                        started_at = Some(Instant::now());
                    } else if let Some(a) = after(&line, "ack ") {
                        acked = acked.max(a);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if started_at.is_some_and(|t| t.elapsed() >= lifetime) || Instant::now() > deadline {
                break;
            }
        }
        // SIGKILL: the child gets no chance to flush anything.
        kill(child, reader);
        // Acks printed before the kill may still sit in the pipe: read them.
        for line in rx.try_iter() {
            if let Some(a) = after(&line, "ack ") {
                acked = acked.max(a);
            }
        }
        let start = start.unwrap_or_else(|| panic!("run {run}: the child never started"));
        assert_eq!(start, model.sequence(), "run {run}: the child resumed where the last reopen ended");
        kills_after_ack += usize::from(acked > start);
        if recovery_kills {
            // From before the child's start to after its open: most land in it.
            let (child, rx, reader) = spawn(&path, variant, run, true);
            std::thread::sleep(Duration::from_millis(xorshift(&mut rng) % 60));
            kill(child, reader);
            if let Some(s) = rx.try_iter().find_map(|line| after(&line, "start ")) {
                assert!(s >= acked, "run {run}: the second child recovered {s}, acknowledged {acked}");
            }
        }

        let (store, recovered, opened) =
            WorldStore::open(&path, options(variant)).unwrap_or_else(|e| panic!("run {run}: reopen failed: {e}"));
        let Opened::Loaded { sequence, took, .. } = opened else { panic!("run {run}: the file was not there") };
        recoveries.push(took);
        assert!(sequence >= acked, "run {run}: acknowledged through {acked}, recovered only {sequence}");
        // Replay the child's frames onto the model until the recovered sequence.
        let mut f = 0;
        while model.sequence() < sequence {
            assert!(f < MAX_FRAMES, "run {run}: recovered {sequence}, more than the child could write");
            model.batch_update(frame(run as u64, start, f, model.bounds()));
            f += 1;
        }
        assert_eq!(model.sequence(), sequence, "run {run}: recovered in the middle of a frame");
        assert_eq!(recovered.digest(), model.digest(), "run {run}: the recovered world is not the replay");
        drop(store);
    }
    recoveries.sort();
    println!(
        "{variant}{}: {runs} kills ({kills_after_ack} after at least one ack); recovery p50 {:.1} ms, max {:.1} ms",
        if recovery_kills { " (and kills during recovery)" } else { "" },
        recoveries[recoveries.len() / 2].as_secs_f64() * 1e3,
        recoveries[recoveries.len() - 1].as_secs_f64() * 1e3
    );
    assert!(kills_after_ack * 2 >= runs, "most kills should land after acks: {kills_after_ack} of {runs}");
    let _ = std::fs::remove_dir_all(&dir);
}
