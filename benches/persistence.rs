//! The world store's figures, on the default world, in one process (recovery
//! in a second one it crashes on purpose).
//!
//! 1. **File and load**: the default world written to a new file (its size),
//!    then loaded, against generating it, 5 times each, interleaved.
//! 2. **Sustained durable ingest**: frames in an erosion band, one commit
//!    handed over per frame, for 10 seconds: paced at 60 frames a second with
//!    16,667 updates each (1M updates a second, a game's rhythm), and back to
//!    back with 20,000 each (the most the machine takes); updates per second
//!    until the last is synced, and the latency from handing a batch over to its
//!    acknowledgement (p50, p99, max).
//! 3. **Recovery**: a child process ingests until the log holds about a million
//!    changes (just under a checkpoint), syncs and aborts (no clean close); the
//!    reopen is timed, 3 times.
//!
//! `cargo bench --features persistence --bench persistence` prints a table and
//! writes `target/persistence/results.json`. `-- --quick` runs a smaller pass.

use bevy_delta_overlay::{
    Aabb, DeltaConfig, MaterialId, WorldGen, consolidation::ConsolidationOutput, materials, persistence::Opened,
    persistence::StoreOptions, persistence::WorldStore,
};
use glam::IVec3;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PER_FRAME: usize = 20_000;

/// Deterministic updates in the erosion band (surface and strata below it).
fn frame_updates(frame: u64, n: usize, bounds: Aabb) -> Vec<(IVec3, MaterialId)> {
    let band = Aabb::new(IVec3::new(bounds.min.x, 96, bounds.min.z), IVec3::new(bounds.max.x, 160, bounds.max.z));
    let s = band.size().as_uvec3();
    let mut x = (frame.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
    let m = if frame.is_multiple_of(2) { materials::SEDIMENT } else { materials::MAGMA };
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (
                band.min
                    + IVec3::new(
                        (x % u64::from(s.x)) as i32,
                        ((x >> 21) % u64::from(s.y)) as i32,
                        ((x >> 42) % u64::from(s.z)) as i32,
                    ),
                m,
            )
        })
        .collect()
}

fn dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/persistence");
    let _ = std::fs::create_dir_all(&d);
    d
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// The child of part 3: fill the log to just under a checkpoint, then abort.
fn child(path: &str) -> ! {
    let options = StoreOptions::default();
    let under = options.checkpoint_every - 2 * PER_FRAME;
    let (mut store, mut world, _) = WorldStore::open(path, options).expect("the child opens the store");
    world.record_changes(1 << 20);
    let mut frame = 1_000_000;
    let start = world.sequence();
    while world.sequence() - start < under as u64 {
        world.batch_update(frame_updates(frame, PER_FRAME, world.bounds()));
        frame += 1;
        let batch = world.take_changes();
        store.commit(batch, &mut world).expect("commit");
    }
    store.sync().expect("sync");
    println!("logged {}", world.sequence() - start);
    // No Drop, no clean close: the next open finds a file mid-session.
    std::process::abort();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(args.get(i + 1).map(String::as_str).unwrap_or_default());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let path = dir().join("world.redb");
    let _ = std::fs::remove_file(&path);
    let mut json = String::from("{\n");

    // 1. File size, load against generation.
    let (store, world, opened) = WorldStore::open(&path, StoreOptions::default()).expect("create");
    let Opened::Created { written, .. } = opened else { panic!("the file existed") };
    let digest = world.digest();
    drop((store, world));
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let (mut gen_ms, mut load_ms) = (Vec::new(), Vec::new());
    for _ in 0..if quick { 2 } else { 5 } {
        let t = Instant::now();
        let base = WorldGen::default().build().expect("the default world");
        gen_ms.push(ms(t.elapsed()));
        drop(base);
        let t = Instant::now();
        let (store, world, _) = WorldStore::open(&path, StoreOptions::default()).expect("load");
        load_ms.push(ms(t.elapsed()));
        assert_eq!(world.digest(), digest, "the loaded world is the generated one");
        drop((store, world));
    }
    let voxels = WorldGen::default().bounds().volume();
    println!(
        "default world file  {:.1} MB ({:.3} bytes per voxel), written in {:.2} s",
        size as f64 / 1e6,
        size as f64 / voxels as f64,
        written.as_secs_f64()
    );
    println!(
        "generate            {:.0}-{:.0} ms; load {:.0}-{:.0} ms (ratio {:.2}-{:.2}, each load against its own generation)",
        gen_ms.iter().cloned().fold(f64::MAX, f64::min),
        gen_ms.iter().cloned().fold(0.0, f64::max),
        load_ms.iter().cloned().fold(f64::MAX, f64::min),
        load_ms.iter().cloned().fold(0.0, f64::max),
        load_ms.iter().zip(&gen_ms).map(|(l, g)| l / g).fold(f64::MAX, f64::min),
        load_ms.iter().zip(&gen_ms).map(|(l, g)| l / g).fold(0.0, f64::max),
    );
    let _ = writeln!(json, "  \"file_bytes\": {size},\n  \"generate_ms\": {gen_ms:?},\n  \"load_ms\": {load_ms:?},");

    // 2. Sustained durable ingest, a commit handed over per frame.
    let seconds = if quick { 2.0 } else { 10.0 };
    for (name, per_frame, pace) in
        [("paced 60 Hz", 16_667, Some(Duration::from_micros(16_667))), ("back to back", PER_FRAME, None)]
    {
        // Consolidation as the plugin runs it: begun when due, run on another
        // thread, finished when ready.
        let options =
            StoreOptions { config: DeltaConfig { threshold: 100_000, ..Default::default() }, ..Default::default() };
        let (mut store, mut world, _) = WorldStore::open(&path, options).expect("open");
        world.record_changes(1 << 20);
        let mut job: Option<std::thread::JoinHandle<ConsolidationOutput>> = None;
        let frames = (seconds * 1e6 / per_frame as f64) as u64;
        let mut pending: Vec<(u64, Instant)> = Vec::new();
        let (mut latency, mut frame_ms) = (Vec::new(), Vec::new());
        let start = Instant::now();
        let first = world.sequence();
        // Acknowledgements are looked for every 0.25 ms while a frame waits
        // for its turn, and after every frame.
        let observe = |pending: &mut Vec<(u64, Instant)>, latency: &mut Vec<f64>, durable: u64| {
            pending.retain(|&(last, at)| {
                if last <= durable {
                    latency.push(ms(at.elapsed()));
                    false
                } else {
                    true
                }
            });
        };
        for f in 0..frames {
            if let Some(pace) = pace {
                let due = start + pace * f as u32;
                while Instant::now() < due {
                    observe(&mut pending, &mut latency, store.durable());
                    std::thread::sleep(Duration::from_micros(250).min(due.saturating_duration_since(Instant::now())));
                }
            }
            let t = Instant::now();
            world.batch_update(frame_updates(f + 10_000 * per_frame as u64, per_frame, world.bounds()));
            let batch = world.take_changes();
            let last = batch.last_sequence();
            store.commit(batch, &mut world).expect("commit");
            let handed = Instant::now();
            if job.as_ref().is_some_and(|j| j.is_finished()) {
                let output = job.take().expect("a job").join().expect("the job ran");
                let _ = world.finish_consolidation(output);
            }
            if job.is_none() && world.should_consolidate() {
                let strategy = world.config().strategy;
                job = world.begin_consolidation(strategy).map(|j| std::thread::spawn(move || j.run()));
            }
            frame_ms.push(ms(t.elapsed()));
            pending.push((last, handed));
            observe(&mut pending, &mut latency, store.durable());
        }
        let durable = store.sync().expect("sync");
        let took = start.elapsed();
        for (_, at) in pending.drain(..) {
            latency.push(ms(at.elapsed()));
        }
        let updates = frames as usize * per_frame;
        let rate = updates as f64 / took.as_secs_f64();
        let (p50, p99, max) =
            (percentile(&mut latency, 0.5), percentile(&mut latency, 0.99), percentile(&mut latency, 1.0));
        println!(
            "durable ingest      {name}: {updates} updates ({} changes) in {:.2} s, {:.2}M updates/s durable",
            durable - first,
            took.as_secs_f64(),
            rate / 1e6
        );
        println!(
            "  acknowledgement   p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms after hand-over; frame p50 {:.2} ms, p99 {:.2} ms",
            percentile(&mut frame_ms, 0.5),
            percentile(&mut frame_ms, 0.99)
        );
        let key = if pace.is_some() { "paced" } else { "back_to_back" };
        let _ = writeln!(
            json,
            "  \"{key}\": {{\"updates\": {updates}, \"seconds\": {:.3}, \"ack_p50_ms\": {p50:.2}, \"ack_p99_ms\": {p99:.2}, \"ack_max_ms\": {max:.2}}},",
            took.as_secs_f64()
        );
        drop((store, world));
    }

    // 3. Recovery after a crash with a full log.
    let exe = std::env::current_exe().expect("this binary");
    let mut recovery = Vec::new();
    let mut logged = 0;
    for _ in 0..if quick { 1 } else { 3 } {
        let out = std::process::Command::new(&exe)
            .args(["--child", &path.to_string_lossy()])
            .output()
            .expect("spawn the child");
        logged = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("logged ")?.parse::<u64>().ok())
            .unwrap_or(0);
        let t = Instant::now();
        let (store, world, opened) = WorldStore::open(&path, StoreOptions::default()).expect("recover");
        recovery.push(ms(t.elapsed()));
        assert!(matches!(opened, Opened::Loaded { .. }));
        // Fold the log away before the next round.
        let mut store = store;
        let _ = store.checkpoint();
        let _ = store.sync();
        drop((store, world));
    }
    println!(
        "recovery            {:.0}-{:.0} ms to reopen after a crash with {logged} changes in the log (file copied, checked, log replayed)",
        recovery.iter().cloned().fold(f64::MAX, f64::min),
        recovery.iter().cloned().fold(0.0, f64::max)
    );
    let _ = writeln!(json, "  \"recovery_ms\": {recovery:?},\n  \"recovery_log_changes\": {logged}\n}}");
    if let Err(e) = std::fs::write(dir().join("results.json"), json) {
        eprintln!("cannot write target/persistence/results.json: {e}");
    }
}
