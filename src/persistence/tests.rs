//! The writer's failure paths, with faults injected: a panic in the writer, a
//! full queue when a checkpoint is asked for, the directory sync after a new
//! file is renamed into place. Each failed before its fix.

use super::{Opened, StoreError, StoreOptions, WorldStore};
use crate::worldgen::WorldGen;
use glam::IVec3;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Faults a test injects into one store's writer (through its `Shared`).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// The writer panics at its next full checkpoint.
    pub panic_in_full_checkpoint: AtomicBool,
    /// Held by a test, the writer waits at the top of its next round.
    pub pause: Mutex<()>,
}

/// Directories synced after a rename, by every store of the test process.
pub(crate) static DIRS_SYNCED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn options() -> StoreOptions {
    let generator = WorldGen { min: IVec3::new(-8, 0, 0), size: IVec3::new(40, 24, 36), ..WorldGen::default() };
    StoreOptions { generator, ..StoreOptions::default() }
}

fn path(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bdo-writer-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d.join("world.redb")
}

/// A writer that panicked during a full checkpoint (a thread the system would
/// not spawn is enough) was silent: every later commit on the snapshot path
/// returned `Ok`, `error()` was `None`, `durable()` stopped.
#[test]
fn a_writer_that_panicked_is_reported_by_every_later_call() {
    let path = path("panic");
    let (mut store, mut world, _) = WorldStore::open(&path, options()).unwrap();
    store.shared.faults.panic_in_full_checkpoint.store(true, Ordering::Release);
    world.record_changes(4);
    world.batch_update((0..10).map(|x| (IVec3::new(x, 3, 3), crate::MaterialId(9))));
    // Incomplete: a snapshot, a full checkpoint, the panic.
    store.commit(world.take_changes(), &mut world).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !store.thread.as_ref().is_some_and(|t| t.is_finished()) {
        assert!(Instant::now() < deadline, "the writer did not panic");
        std::thread::sleep(Duration::from_millis(5));
    }
    for x in 0..3 {
        world.update(IVec3::new(x, 5, 5), crate::MaterialId(4)).unwrap();
        let e = store.commit(world.take_changes(), &mut world).unwrap_err();
        assert!(matches!(e, StoreError::WriterStopped { .. }), "{e}");
    }
    assert!(matches!(store.sync(), Err(StoreError::WriterStopped { .. })));
    assert!(matches!(store.checkpoint(), Err(StoreError::WriterStopped { .. })));
    let error = store.error().expect("error() says what happened");
    assert!(error.contains("panicked") && error.contains("injected"), "{error}");
    assert_eq!(store.durable(), 0);
    drop(store);
    // What was acknowledged is there: the generated world.
    let (_, back, opened) = WorldStore::open(&path, options()).unwrap();
    assert!(matches!(opened, Opened::Loaded { sequence: 0, .. }), "{opened:?}");
    assert_eq!(back.sequence(), 0);
}

/// `checkpoint()` was a queue slot: with the queue full, the request was
/// dropped and the log was not folded.
#[test]
fn a_checkpoint_asked_for_with_a_full_queue_is_not_dropped() {
    let path = path("checkpoint");
    let tight = StoreOptions { queue_capacity: 1, ..options() };
    let (mut store, mut world, _) = WorldStore::open(&path, tight.clone()).unwrap();
    world.record_changes(1 << 10);
    let shared = std::sync::Arc::clone(&store.shared);
    let pause = shared.faults.pause.lock().unwrap();
    // Past the writer's tick: it now waits at the top of its next round.
    std::thread::sleep(Duration::from_millis(100));
    world.batch_update((0..10).map(|x| (IVec3::new(x, 3, 3), crate::MaterialId(9))));
    store.commit(world.take_changes(), &mut world).unwrap();
    store.checkpoint().unwrap();
    drop(pause);
    assert_eq!(store.sync().unwrap(), world.sequence());
    drop(store);
    let (_, back, opened) = WorldStore::open(&path, tight).unwrap();
    assert!(matches!(opened, Opened::Loaded { replayed: 0, .. }), "the log was folded: {opened:?}");
    assert_eq!(back.digest(), world.digest());
}

/// A new file was renamed into place without syncing its directory: a power
/// cut could lose the name, with the world it holds.
#[test]
fn a_new_file_is_renamed_into_place_durably() {
    let path = path("dirsync");
    drop(WorldStore::open(&path, options()).unwrap());
    let parent = path.parent().unwrap().to_path_buf();
    if cfg!(unix) {
        assert!(DIRS_SYNCED.lock().unwrap().contains(&parent), "{} was not synced", parent.display());
    }
}

#[cfg(feature = "plugin")]
impl WorldStore {
    /// Makes the writer panic at its next full checkpoint (for the plugin's
    /// tests, outside this module).
    pub(crate) fn inject_panic_in_full_checkpoint(&self) {
        self.shared.faults.panic_in_full_checkpoint.store(true, Ordering::Release);
    }
}
