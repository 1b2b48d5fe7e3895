//! The main job on a world larger than memory (`headless --size X,Y,Z
//! --wander SPEED`, feature `paging`): the world is paged by sectors around
//! an interest entity that wanders across it at SPEED voxels a second, and
//! the crate's processes run on the resident sector under it. Frames are
//! paced at 60 a second (the sectors are made beside them, on the pager
//! thread). Prints the main thread's frame times, the process's peak RSS,
//! the reads that found their sector not resident (those of the processes'
//! neighbourhood ahead of the interest apart), the page-in latencies, and
//! checks every voxel the processes edited against a shadow copy.

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use bevy_delta_overlay::geology::{
    Deposition, HydraulicErosion, HydraulicSettings, Intrusion, IntrusionSettings, PagedGeology, ThermalErosion,
};
use bevy_delta_overlay::paging::{Interest, Paged, PagingSettings};
use bevy_delta_overlay::plugin::{PagedStore, PagingPlugin, PagingSystems, WorldInterest};
use bevy_delta_overlay::{MaterialId, Palette, WorldGen};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What the paged run is asked to do.
pub struct PagedArgs {
    pub size: IVec3,
    pub wander: f32,
    pub frames: u32,
    pub budget_mib: usize,
    pub radius: i32,
    /// Rain droplets a frame on the sector; `None`: the main job's rain per
    /// column (200 a frame over 1024 x 1024 columns: 13 on a sector of 256 x
    /// 256).
    pub droplets: Option<u32>,
    /// The file that keeps the edits (feature `persistence`).
    pub file: Option<std::path::PathBuf>,
}

/// The processes, the wander and what they measured.
#[derive(Resource)]
struct Run {
    geology: PagedGeology,
    droplets: u32,
    shadow: HashMap<IVec3, MaterialId, ahash::RandomState>,
    /// Where the interest is going (unit, x and z).
    heading: Vec3,
    speed: f32,
    margin: f32,
    surface_y: i32,
    rng: u64,
    ahead_reads: u64,
    ahead_missing: u64,
}

/// Runs it; the process's exit status.
pub fn run(a: PagedArgs) -> i32 {
    let generator = WorldGen { size: a.size, sea_level: a.size.y * 150 / 256, ..WorldGen::default() };
    let bounds = generator.bounds();
    let settings = PagingSettings { resident_budget: a.budget_mib << 20, prefetch_seconds: 4.0, ..default() };
    let columns = settings.sector_columns as u32;
    let droplets = a.droplets.unwrap_or((200 * columns * columns).div_ceil(1024 * 1024));
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, TransformPlugin))
        .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_secs_f64(1.0 / 60.0)))
        .add_plugins(paging_plugin(generator, settings, a.file.clone()));
    if !app.world().contains_resource::<PagedStore>() {
        eprintln!("a world of {} cannot be made", a.size);
        return 2;
    }
    #[cfg(feature = "persistence")]
    if let Some(e) = app.world().get_resource::<bevy_delta_overlay::plugin::PagingFileError>() {
        eprintln!("{}", e.0);
        return 1;
    }
    let geology = PagedGeology::new(Palette::shipped())
        .with::<Intrusion>(IntrusionSettings { radius: 12.0, rise_per_second: 8.0, cooling_seconds: 0.05, ..default() })
        .with::<HydraulicErosion>(HydraulicSettings { droplets_per_frame: droplets, ..default() })
        .with::<ThermalErosion>(default())
        .with::<Deposition>(default());
    let surface_y = bounds.min.y + a.size.y * 150 / 256;
    let margin = a.radius as f32 + 8.0;
    let start = Vec3::new(
        bounds.min.x as f32 + 600.0f32.min(a.size.x as f32 / 2.0),
        surface_y as f32,
        bounds.min.z as f32 + 400.0f32.min(a.size.z as f32 / 2.0),
    );
    let hasher = ahash::RandomState::with_seeds(1, 2, 3, 4);
    app.insert_resource(Run {
        geology,
        droplets,
        shadow: HashMap::with_hasher(hasher),
        heading: Vec3::new(0.83, 0.0, 0.56).normalize(),
        speed: a.wander,
        margin,
        surface_y,
        rng: 7,
        ahead_reads: 0,
        ahead_missing: 0,
    })
    .add_systems(Update, (wander.before(PagingSystems::Interest), processes.after(PagingSystems::Tick)));
    app.world_mut().spawn((WorldInterest { radius: a.radius }, Transform::from_translation(start)));
    app.finish();
    app.cleanup();
    // The first sectors, before the first frame (a loading screen).
    let built = Instant::now();
    {
        let world = app.world_mut();
        let palette = world.resource::<Run>().geology.palette().clone();
        let mut store = world.resource_mut::<PagedStore>();
        store.index_surfaces(&palette);
        store.set_interest(&[Interest { center: start.as_ivec3(), radius: a.radius, velocity: Vec3::ZERO }]);
        store.tick_until_resident();
    }
    println!("first sectors      resident in {:.2} s", built.elapsed().as_secs_f64());
    let frame_times = frames(&mut app, a.frames);
    report(&a, &mut app, frame_times)
}

#[cfg(feature = "persistence")]
fn paging_plugin(generator: WorldGen, settings: PagingSettings, file: Option<std::path::PathBuf>) -> PagingPlugin {
    PagingPlugin { generator, settings, file, ..default() }
}

#[cfg(not(feature = "persistence"))]
fn paging_plugin(generator: WorldGen, settings: PagingSettings, file: Option<std::path::PathBuf>) -> PagingPlugin {
    if file.is_some() {
        eprintln!(
            "--save needs the `persistence` feature: cargo run --release --features paging,persistence --example headless"
        );
        std::process::exit(2);
    }
    PagingPlugin { generator, settings, ..default() }
}

/// `n` frames at 60 a second; their main-thread times.
fn frames(app: &mut App, n: u32) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for frame in 0..n {
        let due = start + Duration::from_secs_f64(f64::from(frame) / 60.0);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let t = Instant::now();
        app.update();
        times.push(t.elapsed());
    }
    times
}

/// Moves the interest along its heading, turning back at the edges.
fn wander(
    time: Res<Time>,
    store: Res<PagedStore>,
    mut run: ResMut<Run>,
    mut q: Query<&mut Transform, With<WorldInterest>>,
) {
    let b = store.bounds();
    let dt = time.delta_secs();
    for mut t in &mut q {
        let mut pos = t.translation + run.heading * run.speed * dt;
        let m = run.margin;
        if pos.x < b.min.x as f32 + m || pos.x > b.max.x as f32 - m {
            run.heading.x = -run.heading.x;
        }
        if pos.z < b.min.z as f32 + m || pos.z > b.max.z as f32 - m {
            run.heading.z = -run.heading.z;
        }
        let lo = Vec3::new(b.min.x as f32 + m, pos.y, b.min.z as f32 + m);
        pos = pos.clamp(lo, Vec3::new(b.max.x as f32 - m, pos.y, b.max.z as f32 - m));
        t.translation = pos;
    }
}

/// The processes on the sector under the interest, their edits shadowed;
/// and reads where they look next (a second ahead).
fn processes(
    time: Res<Time>,
    mut store: ResMut<PagedStore>,
    mut run: ResMut<Run>,
    q: Query<&Transform, With<WorldInterest>>,
) {
    let Ok(t) = q.single() else { return };
    let run = &mut *run;
    let at = IVec3::new(t.translation.x as i32, run.surface_y, t.translation.z as i32);
    store.advance_clock(time.delta());
    run.geology.step(&mut store, at);
    for u in run.geology.last_edits() {
        run.shadow.insert(u.position, u.material);
    }
    let look = at.as_vec3() + run.heading * run.speed;
    let r = 48;
    for _ in 0..64 {
        let mut range = |lo: i32, hi: i32| {
            run.rng ^= run.rng << 13;
            run.rng ^= run.rng >> 7;
            run.rng ^= run.rng << 17;
            lo + (run.rng % (hi - lo) as u64) as i32
        };
        let p = IVec3::new(look.x as i32 + range(-r, r), run.surface_y + range(-24, 24), look.z as i32 + range(-r, r));
        if let Ok(answer) = store.get(p) {
            run.ahead_reads += 1;
            run.ahead_missing += u64::from(!answer.is_resident());
        }
    }
}

fn report(a: &PagedArgs, app: &mut App, mut times: Vec<Duration>) -> i32 {
    let rss = super::rss::peak_rss_mib();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pct =
        |v: &[Duration], q: f64| v.get(((v.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or_default();
    let world = app.world_mut();
    let run = world.remove_resource::<Run>().expect("the run");
    let mut store = world.remove_resource::<PagedStore>().expect("the store");
    let stats = store.stats();
    let mut page_ins = store.page_in_times();
    page_ins.sort();
    let (reads, not_resident) = store.reads();
    let g = run.geology.stats();
    println!(
        "world              {} x {} x {} voxels, wandered at {} voxels a second",
        a.size.x, a.size.y, a.size.z, a.wander
    );
    println!("geology            on the sector under the interest, {} rain droplets a frame", run.droplets);
    println!("frames             {} (paced at 60 a second)", times.len());
    println!(
        "frame time         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(pct(&times, 0.5)),
        ms(pct(&times, 0.99)),
        ms(pct(&times, 1.0))
    );
    println!(
        "geology            ran {} frames, {} skipped (sector not resident), {} edits ({} refused), last {:.2} ms",
        g.frames,
        g.not_resident,
        g.edits,
        g.refused,
        ms(g.last_time)
    );
    for t in run.geology.totals() {
        let per = ms(t.time) / g.frames.max(1) as f64;
        println!("  {:<16} {:.3} ms a frame, {} edits", t.name, per, t.edits);
    }
    println!("reads              {reads}, {not_resident} found their sector not resident");
    let share = 100.0 * (run.ahead_reads - run.ahead_missing) as f64 / run.ahead_reads.max(1) as f64;
    println!(
        "reads ahead        {} of {} resident ({share:.3}%)",
        run.ahead_reads - run.ahead_missing,
        run.ahead_reads
    );
    println!(
        "page-in            p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} sectors in, {} evicted)",
        ms(pct(&page_ins, 0.5)),
        ms(pct(&page_ins, 0.99)),
        ms(pct(&page_ins, 1.0)),
        stats.generated,
        stats.evicted
    );
    println!(
        "resident           peak {:.1} MiB of sectors (budget {} MiB), {} edits kept ({:.1} MiB)",
        stats.peak_resident_bytes as f64 / 1048576.0,
        a.budget_mib,
        stats.edits,
        stats.edit_bytes as f64 / 1048576.0
    );
    println!("process RSS        peak {rss:.1} MiB during the run");
    if stats.file_bytes > 0 {
        println!(
            "file               {:.2} MiB for {} edits, batch {} durable ({} handed and not acknowledged)",
            stats.file_bytes as f64 / 1048576.0,
            g.edits,
            stats.durable,
            stats.flushing
        );
    }
    let mismatches = verify(&mut store, &run.shadow);
    i32::from(mismatches > 0 || g.refused > 0)
}

/// Reads back every voxel the processes edited, each sector brought in by
/// the pager as in the run (the budget evicts the last ones); the mismatches.
fn verify(store: &mut PagedStore, shadow: &HashMap<IVec3, MaterialId, ahash::RandomState>) -> usize {
    let mut positions: Vec<IVec3> = shadow.keys().copied().collect();
    positions.sort_by_key(|p| (p.x / 256, p.z / 256, p.x, p.y, p.z));
    let mut mismatches = 0;
    let mut sector = None;
    for p in &positions {
        if sector != Some((p.x / 256, p.z / 256)) {
            sector = Some((p.x / 256, p.z / 256));
            store.set_interest(&[Interest { center: *p, radius: 0, velocity: Vec3::ZERO }]);
            store.tick_until_resident();
        }
        let found = match store.get(*p) {
            Ok(Paged::Resident(m)) => Some(m),
            _ => None,
        };
        mismatches += usize::from(found != shadow.get(p).copied());
    }
    println!(
        "verify             {} voxels the processes edited checked against the shadow copy, {mismatches} mismatches",
        positions.len()
    );
    mismatches
}
