//! A world saved and loaded goes on as an uninterrupted run would: the
//! processes' state (random numbers, queues, flow memory, the growing body
//! and its cooling, burials) and the storage clock are saved with the world
//! as the app exits and read back as it loads. Before, a reloaded world's
//! processes started fresh: magma never cooled, queues were lost, and the
//! run went another way. Also: a seed changed live takes effect.

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use bevy_delta_overlay::geology::{
    DepositionSettings, HydraulicSettings, Intrusion, IntrusionSettings, Restored, RestoredStates,
};
use bevy_delta_overlay::persistence::StoreOptions;
use bevy_delta_overlay::plugin::BadFilePolicy;
use bevy_delta_overlay::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn generator() -> WorldGen {
    WorldGen { size: IVec3::new(96, 64, 96), sea_level: 24, ..WorldGen::default() }
}

/// An app on `source`, a fixed step of 1/64 s a frame; its first update
/// runs no step (no time has passed yet).
fn app(source: WorldSource, seed: u64) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins);
    app.insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_secs(1) / 64));
    app.insert_resource(Time::<Fixed>::from_hz(64.0));
    // Every step's edits applied in that step, however slow the build.
    app.insert_resource(DeltaOverlaySettings { ingest_budget: Duration::MAX, ..default() });
    app.insert_resource(HydraulicSettings { droplets_per_frame: 40, seed, ..default() })
        .insert_resource(IntrusionSettings {
            source: Some(IVec3::new(48, 8, 48)),
            radius: 6.0,
            cooling_seconds: 0.05,
            ..default()
        })
        .insert_resource(DepositionSettings { compaction_seconds: 0.5, ..default() })
        .add_plugins(DeltaOverlayPlugins::new(FixedUpdate).world(source));
    app.finish();
    app.cleanup();
    app.update();
    app
}

fn file(path: &Path) -> WorldSource {
    let options = StoreOptions { generator: generator(), ..StoreOptions::default() };
    WorldSource::File { path: path.into(), options, on_bad_file: BadFilePolicy::Refuse }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bdo-continuity-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn steps(app: &mut App, n: u32) {
    for _ in 0..n {
        app.update();
    }
}

fn world(app: &App) -> (u64, u64) {
    let storage = app.world().resource::<DeltaStorage>();
    (storage.digest(), storage.sequence())
}

const BEFORE: u32 = 90;
const AFTER: u32 = 120;

/// `BEFORE` steps, the exit's step (which saves), a reload, `AFTER` steps.
fn saved_and_continued(path: &Path, exit: bool) -> (App, (u64, u64)) {
    let mut first = app(file(path), 1);
    steps(&mut first, BEFORE);
    if exit {
        first.world_mut().write_message(AppExit::Success);
    }
    first.update();
    let molten = first.world().resource::<Intrusion>().molten();
    assert!(molten > 0, "the body is still molten when the world is saved");
    drop(first);
    let mut second = app(file(path), 1);
    steps(&mut second, AFTER);
    let w = world(&second);
    (second, w)
}

#[test]
fn save_load_and_continue_makes_the_world_of_an_uninterrupted_run() {
    let mut whole = app(WorldSource::Generate(generator()), 1);
    steps(&mut whole, BEFORE + 1 + AFTER);
    let uninterrupted = world(&whole);
    assert!(uninterrupted.1 > 2_000, "the processes ran: {uninterrupted:?}");

    let d = dir("exit");
    let (continued, w) = saved_and_continued(&d.join("world.redb"), true);
    let restored = continued.world().resource::<RestoredStates>();
    for name in ["intrusion", "hydraulic erosion", "thermal erosion", "deposition"] {
        assert_eq!(restored.0.get(name), Some(&Restored::Exactly), "{name}: {restored:?}");
    }
    assert_eq!(w, uninterrupted, "the reloaded run went another way");

    // Without the exit nothing is saved but the world: the processes start
    // fresh, and the run goes another way (what every reload did before).
    let d = dir("kill");
    let (fresh, w) = saved_and_continued(&d.join("world.redb"), false);
    assert!(fresh.world().resource::<RestoredStates>().0.is_empty());
    assert_ne!(w, uninterrupted);
}

#[test]
fn a_seed_changed_live_takes_effect_and_is_deterministic() {
    let run = |reseed: Option<u64>| {
        let mut app = app(WorldSource::Generate(generator()), 1);
        steps(&mut app, 30);
        if let Some(seed) = reseed {
            app.world_mut().resource_mut::<HydraulicSettings>().seed = seed;
        }
        steps(&mut app, 30);
        world(&app)
    };
    let kept = run(None);
    let reseeded = run(Some(7));
    assert_ne!(kept, reseeded, "the new seed changed nothing");
    assert_eq!(run(Some(7)), reseeded);
}
