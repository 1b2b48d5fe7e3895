//! The plugin and a world file it cannot use: what the app is told, what it
//! does. Each test failed before its fix: a truncated file gave the app a
//! generated world it never saved, with nothing but a log line (invisible
//! under `MinimalPlugins`) and no way to choose otherwise; one refused commit
//! silenced the saving for good. (A writer that dies is tested in the crate,
//! `src/plugin/persist_tests.rs`: it needs an injected fault.)

use bevy::prelude::*;
use bevy_delta_overlay::persistence::{StoreError, StoreOptions};
use bevy_delta_overlay::plugin::{BadFilePolicy, WorldFile, WorldFileAction, WorldFileError, WorldOrigin};
use bevy_delta_overlay::{DeltaOverlayPlugins, DeltaOverlaySystems, DeltaStorage, MaterialId, WorldGen, WorldSource};
use std::path::{Path, PathBuf};

fn options() -> StoreOptions {
    let generator = WorldGen { min: IVec3::new(-8, 0, 0), size: IVec3::new(40, 24, 36), ..WorldGen::default() };
    StoreOptions { generator, ..StoreOptions::default() }
}

fn file(path: &Path, on_bad_file: BadFilePolicy) -> WorldSource {
    WorldSource::File { path: path.into(), options: options(), on_bad_file }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bdo-plugin-file-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An app on `source`, built and ready to update.
fn build(source: WorldSource) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins).add_plugins(DeltaOverlayPlugins::new(Update).world(source));
    app.finish();
    app.cleanup();
    app
}

/// A world file saved by the plugin, then cut to a third of its length.
fn truncated_file(path: &Path) -> Vec<u8> {
    drop(build(file(path, BadFilePolicy::Refuse)));
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 3]).unwrap();
    std::fs::read(path).unwrap()
}

/// The default: a file that cannot be opened stops the app with an error
/// before it runs a world it could not save, says why in a resource, and is
/// left byte for byte.
#[test]
fn a_bad_file_stops_the_app_and_is_left_as_it_was() {
    let d = dir("refuse");
    let path = d.join("world.redb");
    let before = truncated_file(&path);
    let mut app = build(file(&path, BadFilePolicy::default()));
    assert!(!app.world().contains_resource::<WorldFile>());
    assert_eq!(*app.world().resource::<WorldOrigin>(), WorldOrigin::Refused);
    let problem = app.world().resource::<WorldFileError>();
    assert_eq!(problem.action, WorldFileAction::Refused);
    assert_eq!(problem.path, path);
    assert!(problem.error.is_bad_file(), "{}", problem.error);
    // The first frame applies nothing to the placeholder, and the runner stops.
    app.world_mut().write_message(bevy_delta_overlay::MaterialUpdate::new(IVec3::ONE, MaterialId(3)));
    app.update();
    assert_eq!(app.world().resource::<DeltaStorage>().sequence(), 0);
    let exit = app.should_exit();
    assert!(matches!(exit, Some(AppExit::Error(_))), "exit requested: {exit:?}");
    drop(app);
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file was changed");
    let _ = std::fs::remove_dir_all(&d);
}

/// `MoveAsideAndStartFresh`: the bad file is renamed whole (never over another
/// file), a fresh world is written at the path, and it reopens as the app's
/// world with the app's changes.
#[test]
fn a_bad_file_moved_aside_leaves_a_fresh_world_that_is_saved() {
    let d = dir("aside");
    let path = d.join("world.redb");
    let before = truncated_file(&path);
    // An older file set aside is kept: the name after it is taken.
    let first = d.join("world.redb.bad-1");
    std::fs::write(&first, b"an earlier bad file").unwrap();
    let mut app = build(file(&path, BadFilePolicy::MoveAsideAndStartFresh));
    let aside = d.join("world.redb.bad-2");
    let problem = app.world().resource::<WorldFileError>();
    assert_eq!(problem.action, WorldFileAction::MovedAside { to: aside.clone() });
    assert!(problem.error.is_bad_file(), "{}", problem.error);
    assert_eq!(*app.world().resource::<WorldOrigin>(), WorldOrigin::File);
    assert_eq!(std::fs::read(&aside).unwrap(), before, "the bad file was not moved intact");
    assert_eq!(std::fs::read(&first).unwrap(), b"an earlier bad file");
    for x in 0..5 {
        app.world_mut().write_message(bevy_delta_overlay::MaterialUpdate::new(IVec3::new(x, 20, 3), MaterialId(6)));
        app.update();
    }
    assert!(app.should_exit().is_none());
    app.world_mut().write_message(AppExit::Success);
    app.update();
    let (digest, sequence) = {
        let storage = app.world().resource::<DeltaStorage>();
        (storage.digest(), storage.sequence())
    };
    assert_eq!(sequence, 5);
    drop(app);
    let reopened = build(file(&path, BadFilePolicy::Refuse));
    assert!(!reopened.world().contains_resource::<WorldFileError>());
    assert_eq!(reopened.world().resource::<DeltaStorage>().digest(), digest);
    drop(reopened);
    let _ = std::fs::remove_dir_all(&d);
}

/// A file that does not exist is no error under either policy.
#[test]
fn a_missing_file_is_created_without_a_problem() {
    let d = dir("missing");
    let app = build(file(&d.join("world.redb"), BadFilePolicy::Refuse));
    assert!(app.world().contains_resource::<WorldFile>());
    assert!(!app.world().contains_resource::<WorldFileError>());
    drop(app);
    let _ = std::fs::remove_dir_all(&d);
}

/// A system that drains the storage's change feed between `Publish` and
/// `Forward` once: the next frame's batch does not follow the last one saved.
#[derive(Resource)]
struct Steal(bool);

fn steal(mut steal: ResMut<Steal>, mut storage: ResMut<DeltaStorage>) {
    if std::mem::take(&mut steal.0) {
        storage.update(IVec3::new(1, 20, 1), MaterialId(7)).unwrap();
        drop(storage.take_changes());
    }
}

/// A batch the store refused (here: another consumer drained the feed, so the
/// next batch does not follow the last one) used to stop the saving for good:
/// every later batch was refused as a gap, and only the first error was
/// logged. Now the world is handed over whole, saving goes on, and the app
/// is told.
#[test]
fn saving_goes_on_after_a_refused_batch() {
    let d = dir("resync");
    let path = d.join("world.redb");
    let mut app = build(file(&path, BadFilePolicy::Refuse));
    app.insert_resource(Steal(false))
        .add_systems(Update, steal.after(DeltaOverlaySystems::Publish).before(DeltaOverlaySystems::Forward));
    let write = |app: &mut App, x: i32| {
        let mut storage = app.world_mut().resource_mut::<DeltaStorage>();
        storage.update(IVec3::new(x, 21, 2), MaterialId(5)).unwrap();
    };
    for x in 0..3 {
        write(&mut app, x);
        app.update();
    }
    app.world_mut().resource_mut::<Steal>().0 = true;
    app.update();
    for x in 3..10 {
        write(&mut app, x);
        app.update();
    }
    let problem = app.world().resource::<WorldFileError>();
    assert_eq!(problem.action, WorldFileAction::Resynced);
    assert!(matches!(problem.error, StoreError::Batch { .. }), "{}", problem.error);
    assert!(app.world().resource::<WorldFile>().is_saving());
    app.world_mut().write_message(AppExit::Success);
    app.update();
    let digest = app.world().resource::<DeltaStorage>().digest();
    drop(app);
    let reopened = build(file(&path, BadFilePolicy::Refuse));
    assert_eq!(reopened.world().resource::<DeltaStorage>().digest(), digest, "the file lost changes");
    drop(reopened);
    let _ = std::fs::remove_dir_all(&d);
}

/// A world the file cannot hold (another storage inserted, of other bounds):
/// saving stops, and says so, instead of refusing every frame in silence.
#[test]
fn saving_stops_loudly_when_the_world_is_not_the_files() {
    let d = dir("stop");
    let path = d.join("world.redb");
    let mut app = build(file(&path, BadFilePolicy::Refuse));
    let config = app.world().resource::<DeltaStorage>().config().clone();
    let other = WorldGen { size: IVec3::new(32, 16, 32), ..WorldGen::default() }.build().unwrap();
    let mut other = DeltaStorage::new(other, config);
    other.record_changes(1 << 10);
    app.insert_resource(other);
    for x in 0..3 {
        app.world_mut().resource_mut::<DeltaStorage>().update(IVec3::new(x, 10, 1), MaterialId(2)).unwrap();
        app.update();
    }
    let problem = app.world().resource::<WorldFileError>();
    assert_eq!(problem.action, WorldFileAction::SavingStopped);
    assert!(matches!(problem.error, StoreError::Mismatch { .. }), "{}", problem.error);
    assert!(!app.world().resource::<WorldFile>().is_saving());
    drop(app);
    let _ = std::fs::remove_dir_all(&d);
}

/// Updates the frames' ingest budget deferred were accepted: a clean exit
/// applies and saves them. Before, they died with the app's backlog (and a
/// geology state saved at exit described a world that did not have them).
#[test]
fn updates_waiting_in_the_ingest_backlog_are_saved_at_exit() {
    let d = dir("backlog");
    let path = d.join("world.redb");
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(bevy_delta_overlay::DeltaOverlaySettings {
            ingest_budget: std::time::Duration::ZERO,
            ..default()
        })
        .add_plugins(DeltaOverlayPlugins::new(Update).world(file(&path, BadFilePolicy::Refuse)));
    app.finish();
    app.cleanup();
    let at = |i: i32| IVec3::new(i % 40 - 8, (i / 40) % 24, i / 960);
    let n = 40 * 24 * 8;
    let updates: Vec<_> = (0..n).map(|i| bevy_delta_overlay::MaterialUpdate::new(at(i), MaterialId(5))).collect();
    app.world_mut().write_message_batch(updates);
    app.update();
    let waiting = app.world().resource::<bevy_delta_overlay::DeltaStats>().ingest_backlog;
    assert!(waiting > 4096, "the budget deferred updates: {waiting} wait");
    app.world_mut().write_message(AppExit::Success);
    app.update();
    // Every update is in the world (the geology processes may have moved a
    // few since, which the exit saves too).
    let storage = app.world().resource::<DeltaStorage>();
    let applied = (0..n).filter(|&i| storage.query(at(i)) == Ok(MaterialId(5))).count();
    assert!(applied >= n as usize - 64, "the backlog was applied at exit: {applied} of {n}");
    let exited = (storage.digest(), storage.sequence());
    drop(app);
    let reopened = build(file(&path, BadFilePolicy::Refuse));
    let storage = reopened.world().resource::<DeltaStorage>();
    assert_eq!((storage.digest(), storage.sequence()), exited, "the world as it exited is the file's");
}
