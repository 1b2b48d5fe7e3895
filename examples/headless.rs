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

use bevy::prelude::*;
use bevy_delta_overlay::prelude::*;
use bevy_delta_overlay::{STRATEGY_NAMES, UpdateBatch};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Every update the simulation sent from the main thread, last value per voxel.
#[derive(Resource, Default)]
struct Shadow {
    voxels: HashMap<IVec3, MaterialId>,
    sent: u64,
    out_of_bounds: u64,
}

/// The simulation's view of the terrain: surface height per river column.
#[derive(Resource, Default)]
struct Surface(HashMap<IVec2, i32>);

const RIVERS: i32 = 4;
const INTRUSION_DEPTH: i32 = 90; // the intrusion stays below, the rivers above

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
    app.add_plugins((MinimalPlugins, DeltaOverlayPlugin::default()))
        .init_resource::<Shadow>()
        .init_resource::<Surface>()
        .add_systems(Update, (erode_and_deposit, meteor).before(DeltaOverlaySystems::Ingest));
    app.finish();
    app.cleanup();
    println!("world built in {:.2} s", start.elapsed().as_secs_f64());

    let intrusion = spawn_intrusion(app.world().resource::<DeltaSender>().clone(), frames);

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

/// Rivers cut their bed one voxel per pass along a meandering path; the material
/// settles as sediment 24 voxels downstream.
fn erode_and_deposit(
    storage: Res<DeltaStorage>,
    mut surface: ResMut<Surface>,
    mut shadow: ResMut<Shadow>,
    mut updates: MessageWriter<MaterialUpdate>,
    mut frame: Local<i32>,
) {
    let bounds = storage.bounds();
    let size = bounds.size();
    *frame += 1;
    let f = *frame;
    for river in 0..RIVERS {
        let z0 = bounds.min.z + size.z * (2 * river + 1) / (2 * RIVERS);
        // Sweep 24 columns of the path per frame, wrapping along x.
        for step in 0..24 {
            let x = bounds.min.x + (f * 24 + step + river * 97).rem_euclid(size.x - 64);
            let z = z0 + (20.0 * (x as f32 / 53.0 + river as f32).sin()) as i32;
            for w in -1..=1 {
                let col = IVec2::new(x, z + w);
                let top = surface_at(&storage, &mut surface, col);
                if top <= INTRUSION_DEPTH + 8 {
                    continue; // bedrock of the channel reached
                }
                let carve = IVec3::new(col.x, top, col.y);
                let water = if top < 150 { geology::WATER } else { geology::AIR };
                send(&mut updates, &mut shadow, carve, water);
                surface.0.insert(col, top - 1);
                // Deposition downstream: on top of the column 24 voxels on.
                let down = IVec2::new(col.x + 24, col.y);
                if down.x < bounds.max.x {
                    let dtop = surface_at(&storage, &mut surface, down);
                    send(&mut updates, &mut shadow, IVec3::new(down.x, dtop + 1, down.y), geology::SEDIMENT);
                    surface.0.insert(down, dtop + 1);
                }
            }
        }
    }
}

/// Every 50 frames, a deposit lands above the sky: an out-of-bounds update the
/// overlay refuses and counts.
fn meteor(mut updates: MessageWriter<MaterialUpdate>, mut shadow: ResMut<Shadow>, mut frame: Local<u32>) {
    *frame += 1;
    if (*frame).is_multiple_of(50) {
        updates.write(MaterialUpdate { position: IVec3::new(10, 10_000, 10), material: geology::BASALT });
        shadow.sent += 1;
        shadow.out_of_bounds += 1;
    }
}

fn send(updates: &mut MessageWriter<MaterialUpdate>, shadow: &mut Shadow, p: IVec3, m: MaterialId) {
    updates.write(MaterialUpdate { position: p, material: m });
    shadow.sent += 1;
    shadow.voxels.insert(p, m);
}

/// Height of the topmost solid voxel of a column (cached after the first scan).
fn surface_at(storage: &DeltaStorage, surface: &mut Surface, col: IVec2) -> i32 {
    *surface.0.entry(col).or_insert_with(|| {
        let b = storage.bounds();
        (b.min.y..b.max.y)
            .rev()
            .find(|&y| {
                let m = storage.query(IVec3::new(col.x, y, col.y)).unwrap_or(geology::AIR);
                m != geology::AIR && m != geology::WATER
            })
            .unwrap_or(b.min.y)
    })
}

/// A magma body growing upward from deep in the crust, computed on a worker
/// thread and sent in batches through the bounded channel.
fn spawn_intrusion(sender: DeltaSender, frames: u32) -> std::thread::JoinHandle<(HashMap<IVec3, MaterialId>, u64)> {
    std::thread::spawn(move || {
        let mut shadow = HashMap::new();
        let mut sent = 0;
        let center = IVec3::new(600, 20, 500);
        let steps = (frames / 4).max(1) as i32;
        for step in 0..steps {
            // A vertical plume: radius grows slowly, top rises to INTRUSION_DEPTH.
            let top = 20 + (INTRUSION_DEPTH - 20) * (step + 1) / steps;
            let radius = 3 + 9 * (step + 1) / steps;
            let mut batch: UpdateBatch = Vec::new();
            for y in (top - 4).max(1)..top {
                for dz in -radius..=radius {
                    for dx in -radius..=radius {
                        if dx * dx + dz * dz <= radius * radius {
                            let p = IVec3::new(center.x + dx, y, center.z + dz);
                            batch.push((p, geology::MAGMA));
                            shadow.insert(p, geology::MAGMA);
                        }
                    }
                }
            }
            sent += batch.len() as u64;
            if sender.send(batch).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (shadow, sent)
    })
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
    let by_strategy: Vec<String> = STRATEGY_NAMES
        .iter()
        .zip(stats.consolidations)
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    println!(
        "consolidations     {} ({}), {} deltas merged, mean {:.2} ms, max {:.2} ms, max stall {:.2} ms",
        stats.total_consolidations(),
        by_strategy.join(", "),
        stats.deltas_consolidated,
        stats.mean_consolidation_time.as_secs_f64() * 1e3,
        stats.max_consolidation_time.as_secs_f64() * 1e3,
        stats.max_finish_time.as_secs_f64() * 1e3
    );
    println!(
        "adaptive chose     lazy {}, spatial {}, time {}",
        stats.adaptive_choices[0], stats.adaptive_choices[1], stats.adaptive_choices[2]
    );
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
