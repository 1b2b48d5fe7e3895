//! The main job: a geology simulation on the default world, headless.
//!
//! Rivers cut channels (erosion), the eroded material settles downstream
//! (deposition), and a magma intrusion rises from a worker thread through the
//! off-ECS channel. After `--frames N` frames it prints what happened and checks
//! every voxel it touched against its own shadow copy.
//!
//! ```text
//! cargo run --release --example headless -- --frames 600
//! ```

mod common;

use bevy::prelude::*;
use bevy_delta_overlay::prelude::*;
use common::{GeologyPlugin, Shadow};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn main() {
    let mut frames = 600u32;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--frames", Some(n)) => frames = n,
            _ => {
                eprintln!("usage: headless [--frames N]");
                std::process::exit(2);
            }
        }
    }

    let start = Instant::now();
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, DeltaOverlayPlugin::default(), GeologyPlugin));
    app.finish();
    app.cleanup();
    println!("world built in {:.2} s", start.elapsed().as_secs_f64());

    let bounds = app.world().resource::<DeltaStorage>().bounds();
    let sender = app.world().resource::<DeltaSender>().clone();
    let intrusion = common::spawn_intrusion(sender, bounds, frames / 4, Duration::from_millis(2));

    let mut frame_times = Vec::with_capacity(frames as usize);
    for _ in 0..frames {
        let t = Instant::now();
        app.update();
        frame_times.push(t.elapsed());
    }
    // Let the worker finish and the channel drain (each frame drains a bounded number).
    let (worker_shadow, worker_sent) = intrusion.join().expect("the intrusion thread panicked");
    while app.world().resource::<DeltaSender>().backlog() > 0 {
        app.update();
    }
    app.update();

    report(&mut app, &frame_times, &worker_shadow, worker_sent);
}

fn report(app: &mut App, frame_times: &[Duration], worker: &HashMap<IVec3, MaterialId>, worker_sent: u64) {
    let shadow = app.world().resource::<Shadow>();
    let storage = app.world().resource::<DeltaStorage>();
    let stats = storage.stats();
    let mut times: Vec<f64> = frame_times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
    times.sort_by(f64::total_cmp);
    let pct = |q: f64| times.get(((times.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
    println!("frames             {}", frame_times.len());
    println!(
        "updates sent       {} ({} from systems, {} from the intrusion thread)",
        shadow.sent + worker_sent,
        shadow.sent,
        worker_sent
    );
    println!("updates applied    {}", stats.updates);
    println!("updates rejected   {} (the simulation sent {} out of bounds)", stats.rejects, shadow.out_of_bounds);
    let c = &stats.consolidation;
    let by_strategy: Vec<String> =
        c.finished.named().iter().filter(|(_, n)| *n > 0).map(|(name, n)| format!("{name} {n}")).collect();
    println!(
        "consolidations     {} ({}), {} deltas merged, mean {:.2} ms, max {:.2} ms, max stall {:.2} ms",
        c.finished.total(),
        by_strategy.join(", "),
        c.deltas_merged,
        c.mean_time.as_secs_f64() * 1e3,
        c.max_time.as_secs_f64() * 1e3,
        c.max_stall.as_secs_f64() * 1e3
    );
    println!("adaptive chose     lazy {}, spatial {}, time {}", c.adaptive.lazy, c.adaptive.spatial, c.adaptive.time);
    println!("sequence           {} changes accepted", stats.sequence);
    println!("final deltas       {} ({} bytes of overlay)", stats.delta_count, stats.overlay_bytes);
    println!("frame time         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", pct(0.5), pct(0.99), pct(1.0));

    let overlap = shadow.voxels.keys().filter(|p| worker.contains_key(*p)).count();
    let expected = shadow.voxels.iter().chain(worker.iter());
    let mut checked = 0;
    let mut mismatches = 0;
    for (&p, &m) in expected {
        checked += 1;
        if storage.query(p).ok() != Some(m) {
            mismatches += 1;
        }
    }
    println!("verify             {checked} voxels checked against the shadow copy, {mismatches} mismatches");
    if mismatches > 0 || overlap > 0 || stats.rejects != shadow.out_of_bounds {
        eprintln!("verification FAILED (overlap between producers: {overlap})");
        std::process::exit(1);
    }
}
