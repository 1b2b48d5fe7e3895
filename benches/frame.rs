//! The frame a game feels, side by side in one process.
//!
//! 1. **Erosion through the plugin**: an erosion front (a band of updates moving
//!    along x) sent as `MaterialUpdate` messages, at 4K, 20K and 100K updates a
//!    frame, for 300 frames, into `DeltaOverlayPlugin` (threshold 20K, the job on
//!    the async compute pool), against the same messages applied straight into a
//!    `BaseIndex` by a system in the frame. The figure is the main thread's time
//!    for `app.update()`: p50, p99, max and total.
//! 2. **Consolidation stalls**: a storage holding 10K, 100K and 1M deltas in an
//!    erosion band; for each strategy, the main thread's `begin_consolidation`
//!    plus `finish_consolidation`, median and max of 7 runs.
//!
//! `cargo bench --bench frame` prints both tables and writes
//! `target/frame/results.json` for `scripts/benchmarks.py`. `-- --quick` runs
//! fewer frames and sizes, for a smoke test.

mod support;

use bevy::app::{App, TaskPoolPlugin, Update};
use bevy::ecs::message::MessageReader;
use bevy::prelude::{IntoScheduleConfigs, ResMut, Resource};
use bevy_delta_overlay::prelude::*;
use bevy_delta_overlay::{Aabb, ConsolidationStrategy};
use glam::IVec3;
use std::fmt::Write as _;
use std::time::Instant;
use support::*;

/// The frames of an erosion front: `per_frame` updates a frame in a band 32
/// voxels wide that moves 2 voxels along x each frame, between heights 96 and
/// 160 (the surface and the strata under it), over the whole depth in z.
/// Materials alternate so most writes change the voxel and some revisit it.
fn erosion_front(frames: usize, per_frame: usize, seed: u64) -> Vec<Vec<(IVec3, MaterialId)>> {
    let b = world().bounds();
    let mut rng = Rng::new(seed);
    (0..frames)
        .map(|f| {
            let x0 = b.min.x + (f as i32 * 2) % (b.size().x - 32);
            let band = Aabb::new(IVec3::new(x0, 96, b.min.z), IVec3::new(x0 + 32, 160, b.max.z));
            let m = if f % 2 == 0 { A } else { B };
            (0..per_frame).map(|_| (rng.in_box(&band), m)).collect()
        })
        .collect()
}

/// The frame's updates, handed to the app as messages by a system before ingest.
#[derive(Resource, Default)]
struct Pending(Vec<(IVec3, MaterialId)>);

fn send(mut pending: ResMut<Pending>, mut out: bevy::prelude::MessageWriter<MaterialUpdate>) {
    out.write_batch(pending.0.drain(..).map(|(position, material)| MaterialUpdate { position, material }));
}

/// The direct variant's world.
#[derive(Resource)]
struct Direct(BaseIndex);

fn apply_direct(
    mut updates: MessageReader<MaterialUpdate>,
    mut base: ResMut<Direct>,
    mut buf: bevy::prelude::Local<Vec<(IVec3, MaterialId)>>,
) {
    buf.clear();
    buf.extend(updates.read().map(|u| (u.position, u.material)));
    let _ = base.0.apply_batch(&buf);
}

struct FrameFigures {
    p50: f64,
    p99: f64,
    max: f64,
    total: f64,
}

fn figures(mut ms: Vec<f64>) -> FrameFigures {
    let total = ms.iter().sum();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    FrameFigures { p50: at(0.5), p99: at(0.99), max: at(1.0), total }
}

/// Runs the frames through an app and returns each frame's main-thread time, ms.
fn run(mut app: App, frames: &[Vec<(IVec3, MaterialId)>]) -> Vec<f64> {
    app.finish();
    app.cleanup();
    app.update();
    frames
        .iter()
        .map(|f| {
            app.world_mut().resource_mut::<Pending>().0.extend_from_slice(f);
            let t = Instant::now();
            app.update();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

fn overlay_app() -> App {
    let mut app = App::new();
    let config = DeltaConfig { threshold: 20_000, ..Default::default() };
    app.insert_resource(DeltaStorage::new(world().clone(), config));
    app.add_plugins((TaskPoolPlugin::default(), DeltaOverlayPlugin::default()));
    app.init_resource::<Pending>().add_systems(Update, send.before(DeltaOverlaySystems::Ingest));
    app
}

fn direct_app() -> App {
    let mut app = App::new();
    app.add_plugins(TaskPoolPlugin::default());
    app.add_message::<MaterialUpdate>();
    app.insert_resource(Direct(world().clone()));
    app.init_resource::<Pending>().add_systems(Update, (send, apply_direct).chain());
    app
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (frames, rates): (usize, &[usize]) = if quick { (30, &[4_000]) } else { (300, &[4_000, 20_000, 100_000]) };
    let sizes: &[usize] = if quick { &[10_000] } else { &[10_000, 100_000, 1_000_000] };
    let mut json = String::from("{\n  \"frames\": [\n");
    println!("erosion through the plugin vs direct writes, {frames} frames, main-thread ms per frame");
    println!("{:>8}  {:>8}  {:>8} {:>8} {:>8} {:>9}", "rate", "variant", "p50", "p99", "max", "total");
    for (i, &rate) in rates.iter().enumerate() {
        let work = erosion_front(frames, rate, 7 + rate as u64);
        for (name, app) in [("overlay", overlay_app()), ("direct", direct_app())] {
            let f = figures(run(app, &work));
            println!("{rate:>8}  {name:>8}  {:>8.3} {:>8.3} {:>8.3} {:>9.1}", f.p50, f.p99, f.max, f.total);
            let sep = if i + 1 == rates.len() && name == "direct" { "" } else { "," };
            let _ = writeln!(
                json,
                "    {{\"rate\": {rate}, \"variant\": \"{name}\", \"p50_ms\": {:.4}, \"p99_ms\": {:.4}, \"max_ms\": {:.4}, \"total_ms\": {:.2}}}{sep}",
                f.p50, f.p99, f.max, f.total
            );
        }
    }
    json.push_str("  ],\n  \"stalls\": [\n");
    println!("\nconsolidation stall on the calling thread (begin + finish), ms, median and max of 7");
    println!("{:>9}  {:>8}  {:>8} {:>8} {:>8} {:>8}", "deltas", "strategy", "begin", "finish", "stall", "max");
    let strategies = [
        ("lazy", ConsolidationStrategy::LazyThreshold),
        ("spatial", ConsolidationStrategy::SpatialClustering),
        ("time", ConsolidationStrategy::TimeBasedBatching),
    ];
    for (i, &n) in sizes.iter().enumerate() {
        let s = band_storage(n);
        for (j, (name, strategy)) in strategies.iter().enumerate() {
            let mut runs: Vec<(f64, f64)> = (0..7)
                .map(|_| {
                    let mut s = s.clone();
                    let t = Instant::now();
                    let job = s.begin_consolidation(*strategy).expect("deltas to consolidate");
                    let begin = t.elapsed();
                    let out = job.run();
                    let t = Instant::now();
                    let report = s.finish_consolidation(out).expect("this storage's job");
                    let finish = t.elapsed();
                    std::hint::black_box(report);
                    (begin.as_secs_f64() * 1e3, finish.as_secs_f64() * 1e3)
                })
                .collect();
            runs.sort_by(|a, b| (a.0 + a.1).total_cmp(&(b.0 + b.1)));
            let (begin, finish) = runs[runs.len() / 2];
            let max = runs.iter().map(|r| r.0 + r.1).fold(0.0, f64::max);
            println!("{n:>9}  {name:>8}  {begin:>8.3} {finish:>8.3} {:>8.3} {max:>8.3}", begin + finish);
            let sep = if i + 1 == sizes.len() && j + 1 == strategies.len() { "" } else { "," };
            let _ = writeln!(
                json,
                "    {{\"deltas\": {n}, \"strategy\": \"{name}\", \"begin_ms\": {begin:.4}, \"finish_ms\": {finish:.4}, \"stall_ms\": {:.4}, \"max_ms\": {max:.4}}}{sep}",
                begin + finish
            );
        }
    }
    json.push_str("  ]\n}\n");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/frame");
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(dir.join("results.json"), json)) {
        eprintln!("cannot write target/frame/results.json: {e}");
    }
}
