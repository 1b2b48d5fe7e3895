//! The persistence plugin with a fault injected in the store's writer.

use super::{BadFilePolicy, WorldFile, WorldFileAction, WorldFileError, WorldSource};
use crate::persistence::{StoreError, StoreOptions};
use crate::{DeltaOverlayPlugins, DeltaStorage, MaterialId, WorldGen};
use bevy::prelude::*;
use std::time::{Duration, Instant};

/// A writer that panicked was reported only by a log line (invisible under
/// `MinimalPlugins`); the plugin went on handing it batches. Now the app gets
/// a `WorldFileError` saying saving stopped, with the writer's typed error.
#[test]
fn a_dead_writer_is_reported_to_the_app() {
    let d = std::env::temp_dir().join(format!("bdo-plugin-writer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let generator = WorldGen { min: IVec3::new(-8, 0, 0), size: IVec3::new(40, 24, 36), ..WorldGen::default() };
    let options = StoreOptions { generator, ..StoreOptions::default() };
    let world = WorldSource::File { path: d.join("world.redb"), options, on_bad_file: BadFilePolicy::Refuse };
    let mut app = App::new();
    // A feed of 4 changes: a frame of 10 overflows it, and the store writes
    // a snapshot as a full checkpoint, where the injected panic waits.
    app.add_plugins(MinimalPlugins).add_plugins(DeltaOverlayPlugins::new(Update).world(world).change_capacity(4));
    app.finish();
    app.cleanup();
    app.world().resource::<WorldFile>().store().inject_panic_in_full_checkpoint();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut x = 0;
    while !app.world().contains_resource::<WorldFileError>() {
        assert!(Instant::now() < deadline, "no WorldFileError for a dead writer");
        let mut storage = app.world_mut().resource_mut::<DeltaStorage>();
        for _ in 0..10 {
            storage.update(IVec3::new(x % 32, 20, 1 + x / 32 % 30), MaterialId(4)).unwrap();
            x += 1;
        }
        app.update();
        std::thread::sleep(Duration::from_millis(2));
    }
    let problem = app.world().resource::<WorldFileError>();
    assert_eq!(problem.action, WorldFileAction::SavingStopped);
    assert!(matches!(problem.error, StoreError::WriterPanicked { .. }), "{}", problem.error);
    assert!(!app.world().resource::<WorldFile>().is_saving());
    drop(app);
    let _ = std::fs::remove_dir_all(&d);
}
