//! A world larger than memory: a 16384 x 512 x 16384 world (137 billion
//! voxels, about 125 GB if it were held whole) paged by sectors around an
//! interest point that wanders across it, edits made and read back around it
//! as a simulation would, resident memory under a budget.
//!
//! ```text
//! cargo run --release --features paging --example paging
//! cargo run --release --features paging --example paging -- --size 4096,512,4096 --wander 20 --frames 3600
//! ```
//!
//! Each frame is a sixtieth of a second, paced in real time as a game's are
//! (the sectors are generated beside the frames, on their own thread);
//! `--unpaced` runs them as fast as they go. The first frame, which waits
//! for the first sectors, is reported apart. Prints the main thread's frame time, the page-in latencies,
//! the reads ahead of the interest that found their sector not resident, the
//! peak resident bytes of the world and the process's peak RSS, and checks
//! every voxel it edited against a shadow copy at the end.

use bevy_delta_overlay::paging::{Interest, PagedWorld, PagingSettings};
use bevy_delta_overlay::{DeltaConfig, MaterialId, WorldGen};
use glam::{IVec3, Vec3};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[path = "common/rss.rs"]
mod rss;
use rss::peak_rss_mib;

struct Args {
    size: IVec3,
    wander: f32,
    frames: u32,
    budget_mib: usize,
    radius: i32,
    edits: u32,
    /// Run frames as fast as they go instead of 60 a second.
    unpaced: bool,
    /// Build the whole world in memory instead, and say what it takes.
    whole: bool,
}

fn args() -> Args {
    let mut a = Args {
        size: IVec3::new(16384, 512, 16384),
        wander: 20.0,
        frames: 36_000,
        budget_mib: 768,
        radius: 160,
        edits: 64,
        unpaced: false,
        whole: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--unpaced" || flag == "--whole" {
            a.unpaced |= flag == "--unpaced";
            a.whole |= flag == "--whole";
            continue;
        }
        let value = it.next().unwrap_or_default();
        let ok = match flag.as_str() {
            "--size" => {
                let v: Vec<i32> = value.split(',').filter_map(|s| s.trim().parse().ok()).collect();
                v.len() == 3 && v.iter().all(|&c| c > 0) && {
                    a.size = IVec3::new(v[0], v[1], v[2]);
                    true
                }
            }
            "--wander" => value.parse().map(|v| a.wander = v).is_ok(),
            "--frames" => value.parse().map(|v| a.frames = v).is_ok(),
            "--budget-mib" => value.parse().map(|v| a.budget_mib = v).is_ok(),
            "--radius" => value.parse().map(|v| a.radius = v).is_ok(),
            "--edits" => value.parse().map(|v| a.edits = v).is_ok(),
            _ => false,
        };
        if !ok {
            eprintln!(
                "usage: paging [--size X,Y,Z] [--wander SPEED] [--frames N] [--budget-mib M] [--radius R] [--edits E] [--unpaced] [--whole]"
            );
            std::process::exit(2);
        }
    }
    a
}

/// splitmix64: the same edits on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next() % (hi - lo).max(1) as u64) as i32
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

/// What a wander measured.
#[derive(Default)]
struct Run {
    /// Every frame's main-thread time but the first's.
    frame_times: Vec<Duration>,
    /// The first frame's (it waits for the first sectors).
    first: Duration,
    /// The slowest frame after the first, its number, and the sectors
    /// installed and evicted in it.
    worst: (Duration, u32, u64, u64),
    ahead_reads: u64,
    ahead_missing: u64,
    edits_refused: u64,
    /// Every edit accepted, the last per voxel.
    shadow: HashMap<IVec3, MaterialId>,
    ran: Duration,
}

fn main() {
    let a = args();
    let generator = WorldGen { size: a.size, sea_level: a.size.y * 150 / 256, ..WorldGen::default() };
    if a.whole {
        whole(&a, &generator);
        return;
    }
    let settings =
        PagingSettings { resident_budget: a.budget_mib << 20, prefetch_seconds: 4.0, ..PagingSettings::default() };
    let Ok(mut world) = PagedWorld::new(generator, settings, DeltaConfig::default()) else {
        eprintln!("a world of {} cannot be made", a.size);
        std::process::exit(2);
    };
    let mut run = wander(&a, &mut world);
    report(&a, &world, &mut run);
    if verify(&mut world, &run.shadow) > 0 {
        std::process::exit(1);
    }
}

/// Builds the whole world in memory, and says what it takes.
fn whole(a: &Args, generator: &WorldGen) {
    let start = Instant::now();
    match generator.build() {
        Ok(base) => println!(
            "whole world        {} x {} x {}: {:.1} MiB of base index, built in {:.1} s; process RSS peak {:.1} MiB",
            a.size.x,
            a.size.y,
            a.size.z,
            base.stats().bytes as f64 / 1048576.0,
            start.elapsed().as_secs_f64(),
            peak_rss_mib()
        ),
        Err(e) => println!("whole world        cannot be built: {e}"),
    }
}

/// The interest's wander: `a.frames` frames, paced unless `a.unpaced`.
fn wander(a: &Args, world: &mut PagedWorld) -> Run {
    let b = world.bounds();
    let mut rng = Rng(7);
    // The interest starts inside and wanders on a heading, turning back at the edges.
    let mut pos = Vec3::new(
        b.min.x as f32 + 600.0f32.min(a.size.x as f32 / 2.0),
        0.0,
        b.min.z as f32 + 400.0f32.min(a.size.z as f32 / 2.0),
    );
    let mut heading = Vec3::new(0.83, 0.0, 0.56).normalize();
    let mut run = Run::default();
    let start = Instant::now();
    for frame in 0..a.frames {
        if !a.unpaced {
            let due = start + Duration::from_secs_f64(f64::from(frame) / 60.0);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let t = Instant::now();
        let before = world.stats();
        let velocity = heading * a.wander;
        one_frame(a, world, &mut rng, (pos, velocity, frame == 0), &mut run);
        let took = t.elapsed();
        if frame == 0 {
            run.first = took;
        } else {
            run.frame_times.push(took);
            if took > run.worst.0 {
                let after = world.stats();
                run.worst = (took, frame, after.generated - before.generated, after.evicted - before.evicted);
            }
        }
        // Move, turning back at the edges (a margin of the radius).
        pos += velocity / 60.0;
        let margin = a.radius as f32 + 8.0;
        if pos.x < b.min.x as f32 + margin || pos.x > b.max.x as f32 - margin {
            heading.x = -heading.x;
        }
        if pos.z < b.min.z as f32 + margin || pos.z > b.max.z as f32 - margin {
            heading.z = -heading.z;
        }
        pos = pos.clamp(
            Vec3::new(b.min.x as f32 + margin, 0.0, b.min.z as f32 + margin),
            Vec3::new(b.max.x as f32 - margin, 0.0, b.max.z as f32 - margin),
        );
    }
    run.ran = start.elapsed();
    run
}

/// One frame's work around the interest at `pos` moving at `velocity`:
/// the residency tick, edits near the surface, and reads ahead of it (where
/// the processes look next).
fn one_frame(
    a: &Args,
    world: &mut PagedWorld,
    rng: &mut Rng,
    (pos, velocity, first): (Vec3, Vec3, bool),
    run: &mut Run,
) {
    let b = world.bounds();
    let surface_y = b.min.y + a.size.y * 150 / 256;
    let center = IVec3::new(pos.x as i32, surface_y, pos.z as i32);
    world.set_interest(&[Interest { center, radius: a.radius, velocity }]);
    if first {
        world.tick_until_resident();
    }
    world.tick();
    let r = a.radius / 2;
    for _ in 0..a.edits {
        let p = IVec3::new(center.x + rng.range(-r, r), surface_y + rng.range(-24, 24), center.z + rng.range(-r, r));
        if !b.contains(p) {
            continue;
        }
        let m = MaterialId(rng.range(1, 13) as u16);
        match world.update(p, m) {
            Ok(()) => {
                run.shadow.insert(p, m);
            }
            Err(_) => run.edits_refused += 1,
        }
    }
    let look = pos + velocity;
    for _ in 0..64 {
        let p = IVec3::new(
            look.x as i32 + rng.range(-r, r),
            surface_y + rng.range(-24, 24),
            look.z as i32 + rng.range(-r, r),
        );
        if let Ok(answer) = world.get(p) {
            run.ahead_reads += 1;
            run.ahead_missing += u64::from(!answer.is_resident());
        }
    }
}

/// Prints what the wander measured.
fn report(a: &Args, world: &PagedWorld, run: &mut Run) {
    let stats = world.stats();
    let rss_during = peak_rss_mib();
    run.frame_times.sort();
    let mut page_ins = world.page_in_times();
    page_ins.sort();
    let (reads, not_resident) = world.reads();
    let (times, worst) = (&run.frame_times, run.worst);
    println!(
        "world              {} x {} x {} ({} voxels), sectors of 256 x {} columns",
        a.size.x,
        a.size.y,
        a.size.z,
        a.size.as_i64vec3().element_product(),
        a.size.y
    );
    println!(
        "ran                {} frames ({:.0} s simulated) in {:.1} s; interest at {} voxels/s, radius {}",
        a.frames,
        a.frames as f64 / 60.0,
        run.ran.as_secs_f64(),
        a.wander,
        a.radius
    );
    println!(
        "frame (main)       p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (the first, waiting for the first sectors: {:.0} ms)",
        ms(percentile(times, 0.5)),
        ms(percentile(times, 0.99)),
        ms(percentile(times, 1.0)),
        ms(run.first)
    );
    println!(
        "slowest frame      {:.3} ms (frame {}: {} sectors installed, {} evicted in it)",
        ms(worst.0),
        worst.1,
        worst.2,
        worst.3
    );
    println!(
        "page-ins           {} sectors generated, {} evicted; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (last {})",
        stats.generated,
        stats.evicted,
        ms(percentile(&page_ins, 0.5)),
        ms(percentile(&page_ins, 0.99)),
        ms(percentile(&page_ins, 1.0)),
        page_ins.len()
    );
    let (ahead_missing, ahead_reads) = (run.ahead_missing, run.ahead_reads);
    println!(
        "reads ahead        {ahead_missing} of {ahead_reads} found their sector not resident ({:.3}%); all reads: {not_resident} of {reads}",
        100.0 * ahead_missing as f64 / ahead_reads.max(1) as f64
    );
    println!(
        "resident           peak {:.1} MiB of world (budget {} MiB), {} sectors now; {} edited voxels ({:.1} MiB); {} edits refused",
        stats.peak_resident_bytes as f64 / 1048576.0,
        a.budget_mib,
        stats.resident_sectors,
        stats.edits,
        stats.edit_bytes as f64 / 1048576.0,
        run.edits_refused
    );
    println!("process RSS        peak {rss_during:.1} MiB");
}

/// The shadow check, sector by sector under the budget: the mismatches.
fn verify(world: &mut PagedWorld, shadow: &HashMap<IVec3, MaterialId>) -> usize {
    let mut positions: Vec<IVec3> = shadow.keys().copied().collect();
    positions.sort_by_key(|p| (p.x / 256, p.z / 256, p.x, p.y, p.z));
    let mut mismatches = 0;
    world.set_interest(&[]);
    for (i, p) in positions.iter().enumerate() {
        if world.get_blocking(*p).ok() != shadow.get(p).copied() {
            mismatches += 1;
        }
        if i % 4096 == 0 {
            world.tick();
        }
    }
    println!(
        "verify             {} edited voxels checked against the shadow copy, {mismatches} mismatches",
        positions.len()
    );
    mismatches
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
