//! A paged world's file under SIGKILL, with eviction and reloads: no
//! acknowledged edit is lost, none is invented.
//!
//! The test binary is its own child (the `crash_child` test does nothing
//! unless `DELTA_PAGING_CRASH_CHILD` names a file). The child opens the file
//! with a budget of a few sectors and an interest crossing the world, so its
//! sectors are evicted and come back from the file while it edits; it makes
//! edits in chunks, flushes after each, and prints `ack N` when the edits
//! before the N-th are durable. The parent kills it at a random moment, by
//! its handle, then reopens the file: every acknowledged edit of every run
//! so far reads back, and an edit after the acknowledgement reads back as
//! itself or as the generator's voxel. The same file serves every run, so a
//! later run pages in the earlier runs' edits.
//!
//! `DELTA_CRASH_RUNS` sets the number of kills (6 by default, for CI;
//! `scripts/crash.sh` runs more).

use bevy_delta_overlay::paging::{Interest, PagedWorld, PagingSettings};
use bevy_delta_overlay::{DeltaConfig, MaterialId, WorldGen};
use glam::{IVec3, Vec3};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Edits a run makes at most, and so the stride of the runs' edit numbers.
const RUN_EDITS: u64 = 80_000;
const CHUNK: u64 = 50;

fn generator() -> WorldGen {
    WorldGen { min: IVec3::new(-40, 0, 16), size: IVec3::new(256, 64, 512), sea_level: 30, seed: 11 }
}

/// Edit `i`: distinct voxels for distinct `i` below the world's volume (a
/// prime stride through it: 100 runs' edits stay distinct), and a material.
fn edit(i: u64) -> (IVec3, MaterialId) {
    let b = generator().bounds();
    let s = b.size().as_u64vec3();
    let k = (i * 7919) % (s.x * s.y * s.z);
    let p = b.min + IVec3::new((k % s.x) as i32, (k / s.x % s.y) as i32, (k / (s.x * s.y)) as i32);
    (p, MaterialId(1 + (i % 11) as u16))
}

fn settings() -> PagingSettings {
    PagingSettings { sector_columns: 32, resident_budget: 400_000, prefetch_seconds: 1.0, ..PagingSettings::default() }
}

/// The child: edit, flush, tick, until killed (or its edits run out).
#[test]
fn crash_child() {
    let Ok(path) = std::env::var("DELTA_PAGING_CRASH_CHILD") else { return };
    let run: u64 = std::env::var("DELTA_PAGING_CRASH_RUN").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut world = PagedWorld::open(&path, generator(), settings(), DeltaConfig::default()).expect("the child opens");
    println!("start");
    let first = run * RUN_EDITS;
    let mut batches = Vec::new();
    let mut acked = 0;
    let b = generator().bounds();
    for c in 0..RUN_EDITS / CHUNK {
        for i in first + c * CHUNK..first + (c + 1) * CHUNK {
            let (p, m) = edit(i);
            world.update(p, m).expect("an edit");
        }
        if let Some(n) = world.flush().expect("a flush") {
            batches.push((n, (c + 1) * CHUNK));
        }
        // An interest sweeping the world: sectors go out and come back.
        let x = b.min.x + ((c * 3) % b.size().x as u64) as i32;
        world.set_interest(&[Interest { center: IVec3::new(x, 20, 60), radius: 20, velocity: Vec3::X * 30.0 }]);
        world.tick();
        let durable = world.durable();
        let covered = batches.iter().filter(|(n, _)| *n <= durable).map(|(_, e)| *e).max().unwrap_or(0);
        if covered > acked {
            acked = covered;
            println!("ack {acked} evicted {}", world.stats().evicted);
        }
        std::thread::sleep(Duration::from_micros(300));
    }
}

fn after(line: &str, word: &str) -> Option<u64> {
    let rest = &line[line.find(word)? + word.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn every_acknowledged_edit_survives_sigkill_with_eviction() {
    let runs: u64 = std::env::var("DELTA_CRASH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    let volume = generator().bounds().size().as_u64vec3().element_product();
    assert!(runs * RUN_EDITS <= volume, "at most {} runs keep every edit on its own voxel", volume / RUN_EDITS);
    let dir = std::env::temp_dir().join(format!("paging-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("world.redb");
    let whole = generator().build().unwrap();
    let mut acked_by_run = Vec::new();
    let mut evictions = 0;
    for run in 0..runs {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads", "1"])
            .env("DELTA_PAGING_CRASH_CHILD", &path)
            .env("DELTA_PAGING_CRASH_RUN", run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let lifetime = Duration::from_millis(150 + (run * 7919) % 500);
        let (mut started, mut acked, mut evicted) = (None, 0, 0);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && started.is_none_or(|t: Instant| t.elapsed() < lifetime) {
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(line) if line.contains("start") && started.is_none() => started = Some(Instant::now()),
                Ok(line) => {
                    acked = acked.max(after(&line, "ack ").unwrap_or(0));
                    evicted = evicted.max(after(&line, "evicted ").unwrap_or(0));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // SIGKILL, of the child this test started, by its handle.
        let _ = child.kill();
        let _ = child.wait();
        let _ = reader.join();
        acked = rx.try_iter().filter_map(|l| after(&l, "ack ")).fold(acked, u64::max);
        assert!(started.is_some(), "run {run}: the child never started");
        acked_by_run.push(acked);
        evictions += evicted;

        let mut world = PagedWorld::open(&path, generator(), PagingSettings::default(), DeltaConfig::default())
            .unwrap_or_else(|e| panic!("run {run}: reopen failed: {e}"));
        // This run's acknowledged edits, and every 7th of the earlier runs'.
        for (r, &a) in acked_by_run.iter().enumerate() {
            let step = if r as u64 == run { 1 } else { 7 };
            for i in (r as u64 * RUN_EDITS..r as u64 * RUN_EDITS + a).step_by(step) {
                let (p, m) = edit(i);
                assert_eq!(world.get_blocking(p), Ok(m), "run {run}: edit {i} of run {r} (acknowledged {a}) lost");
            }
        }
        for i in run * RUN_EDITS + acked..run * RUN_EDITS + (acked + 5000).min(RUN_EDITS) {
            let (p, m) = edit(i);
            let found = world.get_blocking(p).unwrap();
            assert!(found == m || Some(found) == whole.get(p).ok(), "run {run}: edit {i} read {found:?}, invented");
        }
        drop(world);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let acknowledging = acked_by_run.iter().filter(|&&a| a > 0).count() as u64;
    assert!(acknowledging * 2 >= runs, "most runs acknowledged edits before the kill: {acked_by_run:?}");
    assert!(evictions > 0, "the children evicted no sector");
    println!("acknowledged per run: {acked_by_run:?}; sectors evicted before the acknowledgements: {evictions}");
}
