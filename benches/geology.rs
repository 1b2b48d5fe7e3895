//! The geology processes' figures on the default world: for each process
//! alone, then all four together as the plugins run them, over 300 frames of
//! a sixtieth of a second: the updates it generates per second of its own
//! (main-thread) time, and the overlay's main-thread cost of ingesting them
//! (`batch_update` of the frame's batch, consolidation left to run as the
//! plugin would, off the frame, so it is not counted here).
//!
//! The surface index is built ahead, before the first frame (as the plugin
//! builds it on the async compute pool at startup); its time is printed.
//!
//! `cargo bench --bench geology` prints a table and writes
//! `target/geology/results.json`. `-- --quick` runs 60 frames; `-- --frames N`
//! runs `N`; `-- --only all` (or `hydraulic`, `thermal`, `intrusion`,
//! `deposition`) runs one row, for a profiler.

use bevy_delta_overlay::parallel::Threads;
use bevy_delta_overlay::{
    DeltaConfig, DeltaStorage, Palette, WorldGen, geology::Deposition, geology::DepositionSettings,
    geology::GeologyProcess, geology::HydraulicErosion, geology::HydraulicSettings, geology::Intrusion,
    geology::IntrusionSettings, geology::Terrain, geology::ThermalErosion, geology::ThermalSettings,
    geology::Workspace,
};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Hydraulic,
    Thermal,
    Intrusion,
    Deposition,
    All,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Hydraulic => "hydraulic erosion",
            Which::Thermal => "thermal erosion",
            Which::Intrusion => "intrusion and cooling",
            Which::Deposition => "deposition and compaction",
            Which::All => "all four",
        }
    }
}

struct Figures {
    updates: u64,
    process: Duration,
    ingest: Duration,
    frame_ingest_max: Duration,
    frame_process_max: Duration,
    /// Consolidation's time (off the frame with the plugin).
    consolidation: Duration,
    /// Each process's own time: intrusion, hydraulic, thermal, deposition.
    each: [Duration; 4],
}

fn run(base: &bevy_delta_overlay::BaseIndex, which: Which, frames: u32) -> Figures {
    let palette = Palette::shipped();
    let mut storage = DeltaStorage::new(base.clone(), DeltaConfig::default());
    storage.enable_surfaces(&palette);
    if let Some(mut build) = storage.surface_build(None) {
        build.run(&Threads(2));
        storage.install_surfaces(build);
    }
    let mut workspace = Workspace::new();
    // Every process's random numbers seeded by 1, whatever its settings' seed.
    let (hs, ts, is, ds) = (
        HydraulicSettings::default(),
        ThermalSettings::default(),
        IntrusionSettings::default(),
        DepositionSettings::default(),
    );
    let mut h = HydraulicErosion::new(&HydraulicSettings { seed: 1, ..hs.clone() });
    let mut t = ThermalErosion::new(&ThermalSettings { seed: 1, ..ts.clone() });
    let mut i = Intrusion::new(&IntrusionSettings { seed: 1, ..is.clone() });
    let mut d = Deposition::new(&DepositionSettings { seed: 1, ..ds.clone() });
    let mut f = Figures {
        updates: 0,
        process: Duration::ZERO,
        ingest: Duration::ZERO,
        frame_ingest_max: Duration::ZERO,
        frame_process_max: Duration::ZERO,
        consolidation: Duration::ZERO,
        each: [Duration::ZERO; 4],
    };
    for _ in 0..frames {
        let start = Instant::now();
        {
            let mut terrain = Terrain::new(&storage, &palette, &mut workspace);
            let mut timed = |k: usize, run: &mut dyn FnMut(&mut Terrain<'_>)| {
                let start = Instant::now();
                run(&mut terrain);
                f.each[k] += start.elapsed();
            };
            if matches!(which, Which::Intrusion | Which::All) {
                timed(0, &mut |t| i.step(t, &is));
            }
            if matches!(which, Which::Hydraulic | Which::All) {
                timed(1, &mut |t| h.step(t, &hs));
            }
            if matches!(which, Which::Thermal | Which::All) {
                timed(2, &mut |tr| t.step(tr, &ts));
            }
            if matches!(which, Which::Deposition | Which::All) {
                timed(3, &mut |t| d.step(t, &ds));
            }
        }
        let edits = workspace.take_edits();
        let took = start.elapsed();
        f.process += took;
        f.frame_process_max = f.frame_process_max.max(took);
        f.updates += edits.len() as u64;
        let start = Instant::now();
        storage.batch_update(edits);
        let took = start.elapsed();
        f.ingest += took;
        f.frame_ingest_max = f.frame_ingest_max.max(took);
        // Consolidation as the plugin runs it: off the frame (here, in
        // between, untimed).
        let start = Instant::now();
        storage.consolidate_if_needed();
        f.consolidation += start.elapsed();
        storage.advance_clock(Duration::from_secs_f64(1.0 / 60.0));
    }
    f
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    let quick = args.iter().any(|a| a == "--quick");
    let frames = value("--frames").and_then(|n| n.parse().ok()).unwrap_or(if quick { 60 } else { 300 });
    let only = value("--only").cloned();
    let t = Instant::now();
    let base = WorldGen::default().build().expect("the default world builds");
    println!("default world built in {:.2} s; {frames} frames of 1/60 s each", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let mut indexed = DeltaStorage::new(base.clone(), DeltaConfig::default());
    indexed.enable_surfaces(&Palette::shipped());
    if let Some(mut build) = indexed.surface_build(None) {
        build.run(&Threads(2));
        let tiles = indexed.install_surfaces(build);
        println!(
            "surface index built ahead: {tiles} tiles in {:.1} ms on 2 threads (before each row, untimed)",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    println!(
        "{:<26} {:>10} {:>12} {:>14} {:>14} {:>14} {:>14} {:>12} {:>14}",
        "process",
        "updates",
        "per frame",
        "updates/s",
        "process ms/f",
        "ingest ns/upd",
        "ingest ms/f",
        "process/ingest",
        "consol. ms/f"
    );
    let mut json = String::from("{\n");
    let mut all_four: Option<[Duration; 4]> = None;
    let all = [Which::Hydraulic, Which::Thermal, Which::Intrusion, Which::Deposition, Which::All];
    for (k, which) in all.into_iter().enumerate() {
        if only.as_deref().is_some_and(|o| !which.name().starts_with(o)) {
            continue;
        }
        let f = run(&base, which, frames);
        if which == Which::All {
            all_four = Some(f.each);
        }
        let per_second = f.updates as f64 / f.process.as_secs_f64().max(1e-9);
        let ns_per_update = f.ingest.as_nanos() as f64 / f.updates.max(1) as f64;
        let process_ms = f.process.as_secs_f64() * 1e3 / f64::from(frames);
        let ingest_ms = f.ingest.as_secs_f64() * 1e3 / f64::from(frames);
        // The process's own time per update over the overlay's ingest time per
        // update: both per update, so the ratio of the totals.
        let ratio = f.process.as_secs_f64() / f.ingest.as_secs_f64().max(1e-12);
        println!(
            "{:<26} {:>10} {:>12.0} {:>14.0} {:>14.3} {:>14.1} {:>14.3} {:>12.1}x {:>14.3}",
            which.name(),
            f.updates,
            f.updates as f64 / f64::from(frames),
            per_second,
            process_ms,
            ns_per_update,
            ingest_ms,
            ratio,
            f.consolidation.as_secs_f64() * 1e3 / f64::from(frames)
        );
        let _ = writeln!(
            json,
            "  \"{}\": {{\"updates\": {}, \"updates_per_frame\": {:.1}, \"updates_per_second\": {:.0}, \"process_ms_per_frame\": {:.4}, \"process_ms_max\": {:.4}, \"ingest_ns_per_update\": {:.2}, \"ingest_ms_per_frame\": {:.4}, \"ingest_ms_max\": {:.4}, \"process_to_ingest\": {:.2}}}{}",
            which.name(),
            f.updates,
            f.updates as f64 / f64::from(frames),
            per_second,
            process_ms,
            f.frame_process_max.as_secs_f64() * 1e3,
            ns_per_update,
            ingest_ms,
            f.frame_ingest_max.as_secs_f64() * 1e3,
            ratio,
            if k + 1 < all.len() { "," } else { "" }
        );
    }
    if let Some(each) = all_four {
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / f64::from(frames);
        println!(
            "all four, each process's ms/f: intrusion {:.3}, hydraulic {:.3}, thermal {:.3}, deposition {:.3}",
            ms(each[0]),
            ms(each[1]),
            ms(each[2]),
            ms(each[3])
        );
    }
    json.push('}');
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/geology");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("results.json"), json);
}
