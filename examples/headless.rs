//! The main job: a geology simulation on the default world, headless.
//!
//! The crate's four processes run on it (feature `geology`): rain droplets
//! erode and deposit, loose slopes slide, a magma intrusion rises and cools,
//! submerged sediment settles and buried sediment compacts. Each frame is a
//! sixtieth of a second of game time. After `--frames N` frames it prints what
//! each process and the overlay did, checks every voxel the frame's updates
//! touched against its own shadow copy, and prints the world's digest (a hash
//! of every voxel).
//!
//! With `--save PATH` (feature `persistence`) the world lives in a file: loaded
//! from it when it exists (`loaded world from PATH: sequence N`), generated and
//! written otherwise, every frame's changes committed on a background thread
//! (`durable through sequence N`, at least once a second), synced at the end.
//! `--frames 0` only loads and prints the digest. A file that cannot be opened
//! (damaged, truncated, another world) stops the run with the error and exit
//! status 1, the file untouched; with `--move-aside` it is renamed to
//! `PATH.bad-N` instead and a new world starts at PATH.
//!
//! The schedules run on Bevy's single-threaded executor: the frame's systems
//! are one chain (the processes share one view of the world, the overlay
//! ingests what they wrote), so a parallel executor has nothing to run side by
//! side, and on a machine of few cores its hand-offs between threads cost more
//! than the systems it could overlap (about 1 ms a frame on a 2-core VM, see
//! BENCHMARKS.md). `--multi-threaded` keeps Bevy's default executor, to compare.
//!
//! The main job's ingest has no time budget (`ingest_budget` = `Duration::MAX`),
//! so its world, and the digest it prints, are the same on any machine.
//! `--flood N` sends a burst of N random updates in the first frame (and the
//! next ones with `--flood-frames K`): past the frame's ingest budget they wait
//! in the plugin's backlog and are applied over the next frames while
//! consolidation catches up on the pool. The run goes on until the backlog is
//! empty and reports the store's worst frame.
//!
//! ```text
//! cargo run --release --example headless -- --frames 600
//! cargo run --release --example headless -- --frames 60 --flood 1500000
//! cargo run --release --features persistence --example headless -- --save world.redb --frames 600
//! cargo run --release --features persistence --example headless -- --save world.redb --frames 0
//! cargo run --release --example headless -- --frames 600 --multi-threaded
//! ```

mod common;

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use bevy_delta_overlay::prelude::*;
use common::{ExampleGeology, Shadow};
use std::time::{Duration, Instant};

fn usage() -> ! {
    eprintln!(
        "usage: headless [--frames N] [--save PATH [--move-aside]] [--multi-threaded] [--flood N] [--flood-frames K]\n       \
         headless --size X,Y,Z --wander SPEED [--frames N] [--budget-mib M] [--radius R] [--droplets D] [--save PATH]   (feature `paging`)"
    );
    std::process::exit(2);
}

/// What the command line asks for.
struct Args {
    frames: u32,
    save: Option<std::path::PathBuf>,
    multi_threaded: bool,
    move_aside: bool,
    flood: common::flood::Flood,
    paged: PagedFlags,
}

fn args() -> Args {
    let mut a = Args {
        frames: 600,
        save: None,
        multi_threaded: false,
        move_aside: false,
        flood: common::flood::Flood { updates: 0, frames: 1 },
        paged: (None, None, 768, 160, None),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--multi-threaded" => a.multi_threaded = true,
            "--move-aside" => a.move_aside = true,
            _ => match (arg.as_str(), args.next()) {
                ("--frames", Some(n)) => a.frames = n.parse().unwrap_or_else(|_| usage()),
                ("--save", Some(path)) => a.save = Some(path.into()),
                ("--flood", Some(n)) => a.flood.updates = n.parse().unwrap_or_else(|_| usage()),
                ("--flood-frames", Some(n)) => a.flood.frames = n.parse().unwrap_or_else(|_| usage()),
                ("--size", Some(v)) => a.paged.0 = Some(size(&v)),
                ("--wander", Some(v)) => a.paged.1 = Some(v.parse().unwrap_or_else(|_| usage())),
                ("--budget-mib", Some(v)) => a.paged.2 = v.parse().unwrap_or_else(|_| usage()),
                ("--radius", Some(v)) => a.paged.3 = v.parse().unwrap_or_else(|_| usage()),
                ("--droplets", Some(v)) => a.paged.4 = Some(v.parse().unwrap_or_else(|_| usage())),
                _ => usage(),
            },
        }
    }
    a
}

fn main() {
    let Args { frames, save, multi_threaded, move_aside, flood, paged } = args();
    if paged.0.is_some() || paged.1.is_some() {
        paged_run(paged, frames, save);
    }

    let start = Instant::now();
    let generator = WorldGen::default();
    let bounds = generator.bounds();
    let world = match &save {
        Some(path) => persist::source(path, generator, move_aside),
        None => WorldSource::Generate(generator),
    };
    let mut app = App::new();
    app.add_plugins(MinimalPlugins);
    // Game time: a sixtieth of a second a frame, however fast frames run.
    app.insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_secs_f64(1.0 / 60.0)));
    app.add_plugins(ExampleGeology { bounds, rain: None }).add_plugins(DeltaOverlayPlugins::new(Update).world(world));
    let flooding = flood.updates > 0;
    if flooding {
        app.add_plugins(flood);
    } else {
        // The main job applies every frame's updates in that frame, whatever
        // they cost, so its digest does not depend on the machine (a burst over
        // the budget, as an intrusion's aureole baked at once, would otherwise
        // reach the processes a frame later on a slower machine). A flood
        // shows the budget at work.
        app.world_mut().resource_mut::<DeltaOverlaySettings>().ingest_budget = Duration::MAX;
    }
    if !multi_threaded {
        use bevy::ecs::schedule::{ScheduleLabel, SingleThreadedExecutor};
        for label in [First.intern(), PreUpdate.intern(), Update.intern(), PostUpdate.intern(), Last.intern()] {
            app.edit_schedule(label, |schedule| {
                schedule.set_executor(SingleThreadedExecutor::new());
            });
        }
    }
    app.finish();
    app.cleanup();
    persist::check(&app);
    match save.as_ref().and_then(|_| persist::loaded(&app)) {
        Some(sequence) => println!(
            "loaded world from {}: sequence {sequence} ({:.2} s)",
            save.as_ref().map_or(String::new(), |p| p.display().to_string()),
            start.elapsed().as_secs_f64()
        ),
        None => println!("world built in {:.2} s", start.elapsed().as_secs_f64()),
    }
    if frames == 0 {
        println!("world digest       {:016x}", app.world().resource::<DeltaStorage>().digest());
        return;
    }

    let mut frame_times = Vec::with_capacity(frames as usize);
    let mut ingest = Duration::ZERO;
    // Frames whose ingest left updates for the next (over its time budget).
    let mut deferred = 0;
    let mut reported = Instant::now();
    let mut frame = 0;
    // A flood runs on until its backlog is applied (a bounded wait).
    while frame < frames || (flooding && app.world().resource::<DeltaStats>().ingest_backlog > 0 && frame < 100_000) {
        frame += 1;
        if frame == frames && save.is_some() {
            // A clean exit: the last frame saves what the processes need to
            // go on exactly after the next load (and the storage clock).
            app.world_mut().write_message(AppExit::Success);
        }
        let t = Instant::now();
        app.update();
        frame_times.push(t.elapsed());
        ingest += app.world().resource::<DeltaStats>().ingest_time;
        deferred += usize::from(app.world().resource::<DeltaStats>().ingest_backlog > 0);
        if save.is_some() && reported.elapsed() >= Duration::from_millis(500) {
            persist::report(&app);
            reported = Instant::now();
        }
    }
    if flooding {
        for line in common::flood::report(app.world()) {
            println!("{line}");
        }
    }
    report(&mut app, &frame_times, ingest);
    println!("ingest deferred    {deferred} frames left updates for the next (over the ingest budget)");
    println!(
        "executor           {}",
        if multi_threaded { "multi-threaded (Bevy's default)" } else { "single-threaded" }
    );
    if save.is_some() {
        persist::sync(&mut app);
        persist::restored(&app);
    }
    println!("world digest       {:016x}", app.world().resource::<DeltaStorage>().digest());
}

/// `X,Y,Z`, each positive.
fn size(v: &str) -> IVec3 {
    let c: Vec<i32> = v.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    match c[..] {
        [x, y, z] if x > 0 && y > 0 && z > 0 => IVec3::new(x, y, z),
        _ => usage(),
    }
}

/// `--size` / `--wander`: the main job on a paged world; exits with its
/// status.
type PagedFlags = (Option<IVec3>, Option<f32>, usize, i32, Option<u32>);

fn paged_run(
    (size, wander, budget_mib, radius, droplets): PagedFlags,
    frames: u32,
    file: Option<std::path::PathBuf>,
) -> ! {
    #[cfg(feature = "paging")]
    {
        let size = size.unwrap_or(IVec3::new(16384, 512, 16384));
        let wander = wander.unwrap_or(20.0);
        let a = common::paged::PagedArgs { size, wander, frames, budget_mib, radius, droplets, file };
        std::process::exit(common::paged::run(a));
    }
    #[cfg(not(feature = "paging"))]
    {
        let _ = (size, wander, budget_mib, radius, droplets, frames, file);
        eprintln!(
            "--size and --wander need the `paging` feature: cargo run --release --features paging --example headless"
        );
        std::process::exit(2);
    }
}

/// The `--save` side, with the `persistence` feature.
#[cfg(feature = "persistence")]
mod persist {
    use bevy::prelude::*;
    use bevy_delta_overlay::persistence::{Opened, StoreOptions};
    use bevy_delta_overlay::plugin::{BadFilePolicy, WorldFile, WorldFileAction, WorldFileError};
    use bevy_delta_overlay::{WorldGen, WorldSource};

    pub fn source(path: &std::path::Path, generator: WorldGen, move_aside: bool) -> WorldSource {
        let on_bad_file = if move_aside { BadFilePolicy::MoveAsideAndStartFresh } else { BadFilePolicy::Refuse };
        WorldSource::File { path: path.into(), options: StoreOptions { generator, ..default() }, on_bad_file }
    }

    /// Says what went wrong with the world file, if anything; stops when the
    /// plugin refused it (the app would exit after its first frame anyway).
    pub fn check(app: &App) {
        let Some(problem) = app.world().get_resource::<WorldFileError>() else { return };
        eprintln!("world file: {problem}");
        if problem.action == WorldFileAction::Refused {
            std::process::exit(1);
        }
    }

    pub fn loaded(app: &App) -> Option<u64> {
        match app.world().get_resource::<WorldFile>()?.opened() {
            Opened::Loaded { sequence, .. } => Some(sequence),
            Opened::Created { .. } => None,
        }
    }

    /// What became of the processes' saved state when the world loaded.
    pub fn restored(app: &App) {
        #[cfg(feature = "geology")]
        if let Some(restored) = app.world().get_resource::<bevy_delta_overlay::geology::RestoredStates>() {
            for (name, outcome) in &restored.0 {
                println!("state restored     {name}: {outcome:?}");
            }
        }
        #[cfg(not(feature = "geology"))]
        let _ = app;
    }

    pub fn report(app: &App) {
        if let Some(file) = app.world().get_resource::<WorldFile>() {
            println!("durable through sequence {}", file.durable());
        }
    }

    pub fn sync(app: &mut App) {
        if let Some(problem) = app.world().get_resource::<WorldFileError>()
            && problem.action == WorldFileAction::SavingStopped
        {
            eprintln!("saving failed: {problem}");
            std::process::exit(1);
        }
        let Some(mut file) = app.world_mut().get_resource_mut::<WorldFile>() else {
            eprintln!("the world file could not be opened: nothing was saved");
            std::process::exit(1);
        };
        match file.sync() {
            Ok(through) => println!("durable through sequence {through}"),
            Err(e) => {
                eprintln!("saving failed: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// Without the `persistence` feature, `--save` is refused.
#[cfg(not(feature = "persistence"))]
mod persist {
    use bevy::prelude::*;
    use bevy_delta_overlay::{WorldGen, WorldSource};

    pub fn source(_: &std::path::Path, _: WorldGen, _: bool) -> WorldSource {
        eprintln!(
            "--save needs the `persistence` feature: cargo run --release --features persistence --example headless"
        );
        std::process::exit(2);
    }

    pub fn check(_: &App) {}

    pub fn loaded(_: &App) -> Option<u64> {
        None
    }

    pub fn report(_: &App) {}

    pub fn sync(_: &mut App) {}

    pub fn restored(_: &App) {}
}

fn report(app: &mut App, frame_times: &[Duration], ingest: Duration) {
    let shadow = app.world().resource::<Shadow>();
    let storage = app.world().resource::<DeltaStorage>();
    let stats = storage.stats();
    let mut times: Vec<f64> = frame_times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
    times.sort_by(f64::total_cmp);
    let pct = |q: f64| times.get(((times.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
    println!("frames             {}", frame_times.len());
    for line in common::summary(app.world()) {
        println!("{line}");
    }
    println!("updates sent       {}", shadow.sent);
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
    for line in common::main_thread(app.world(), ingest, frame_times.len()) {
        println!("{line}");
    }

    let mut checked = 0;
    let mut mismatches = 0;
    for (&p, &m) in &shadow.voxels {
        checked += 1;
        if storage.query(p).ok() != Some(m) {
            mismatches += 1;
        }
    }
    println!("verify             {checked} voxels checked against the shadow copy, {mismatches} mismatches");
    if mismatches > 0 || stats.rejects != shadow.out_of_bounds {
        eprintln!("verification FAILED");
        std::process::exit(1);
    }
}
