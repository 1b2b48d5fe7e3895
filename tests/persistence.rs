//! The world store: what is committed comes back exactly, through every path
//! (log replay, incremental checkpoints, full checkpoints after the feed or the
//! queue overflowed), and bad files are refused with the right error and left
//! untouched. Flips and truncations of a saved file never panic and never load
//! a wrong world.

mod common;

use bevy_delta_overlay::{
    DeltaStorage, Palette, persistence::Durability, persistence::Opened, persistence::Record, persistence::StoreError,
    persistence::StoreOptions, persistence::WorldStore,
};
use common::store::{dir, options, small_world, updates};
use proptest::prelude::*;
use redb::ReadableDatabase;
use std::path::Path;

/// Frames of updates through the store; returns the world's digest and sequence.
fn run(store: &mut WorldStore, world: &mut DeltaStorage, frames: usize, per_frame: usize, seed: u64) -> (u64, u64) {
    world.record_changes(1 << 20);
    for f in 0..frames {
        world.batch_update(updates(per_frame, seed + f as u64, world.bounds()));
        if f % 7 == 3 {
            world.consolidate_if_needed();
        }
        let batch = world.take_changes();
        store.commit(batch, world).unwrap();
    }
    assert_eq!(store.sync().unwrap(), world.sequence());
    (world.digest(), world.sequence())
}

fn reopen(path: &Path, options: StoreOptions) -> (WorldStore, DeltaStorage, Opened) {
    WorldStore::open(path, options).unwrap()
}

#[test]
fn a_world_comes_back_exactly_through_log_checkpoints_and_snapshots() {
    let d = dir("roundtrip");
    let path = d.join("world.redb");
    let (mut store, mut world, opened) = WorldStore::open(&path, options()).unwrap();
    assert!(matches!(opened, Opened::Created { .. }));
    assert_eq!(store.palette(), Some("[]"));
    let generated = world.digest();
    assert_eq!(generated, small_world().build().map(|b| DeltaStorage::new(b, Default::default()).digest()).unwrap());
    let (digest, sequence) = run(&mut store, &mut world, 20, 300, 1);
    drop(store);

    // The log replayed onto the generated world.
    let (store, world, opened) = reopen(&path, options());
    assert!(matches!(opened, Opened::Loaded { sequence: s, replayed: 20, .. } if s == sequence), "{opened:?}");
    assert_eq!(world.digest(), digest);

    // Incremental checkpoints: a small threshold folds the log into bricks.
    drop(store);
    let small = StoreOptions { checkpoint_every: 500, ..options() };
    let (mut store, mut world2, _) = reopen(&path, small.clone());
    assert_eq!(world2.digest(), digest);
    let (digest, sequence) = run(&mut store, &mut world2, 30, 200, 99);
    drop(store);
    let (store, world3, opened) = reopen(&path, small.clone());
    let Opened::Loaded { replayed, sequence: s, .. } = opened else { panic!("{opened:?}") };
    assert_eq!((s, world3.digest()), (sequence, digest));
    assert!(replayed < 30 * 200 / 500, "the log was trimmed: {replayed} entries left");

    // A feed that overflowed: the store writes a full snapshot instead.
    drop(store);
    let (mut store, mut world4, _) = reopen(&path, small);
    world4.record_changes(10);
    world4.batch_update(updates(500, 7, world4.bounds()));
    let incomplete = world4.take_changes();
    assert!(!incomplete.is_complete());
    store.commit(incomplete, &mut world4).unwrap();
    assert_eq!(store.sync().unwrap(), world4.sequence());
    let digest = world4.digest();
    drop(store);
    let (_, world5, opened) = reopen(&path, options());
    assert!(matches!(opened, Opened::Loaded { replayed: 0, .. }), "{opened:?}");
    assert_eq!((world5.sequence(), world5.digest()), (world4.sequence(), digest));
    let _ = world;
}

/// A world loaded from a file (log replayed onto a checkpoint) keeps an exact
/// surface index, before and after more writes.
#[test]
fn a_loaded_world_keeps_an_exact_surface_index() {
    let d = dir("surfaces");
    let path = d.join("world.redb");
    let small = StoreOptions { checkpoint_every: 700, ..options() };
    let (mut store, mut world, _) = WorldStore::open(&path, small.clone()).unwrap();
    run(&mut store, &mut world, 12, 300, 5);
    drop(store);
    let (_, mut loaded, opened) = reopen(&path, small);
    assert!(matches!(opened, Opened::Loaded { .. }), "{opened:?}");
    let palette = Palette::shipped();
    loaded.enable_surfaces(&palette);
    common::assert_surfaces_exact(&loaded, &palette);
    loaded.batch_update(updates(2000, 77, loaded.bounds()));
    common::assert_surfaces_exact(&loaded, &palette);
}

#[test]
fn a_full_queue_costs_a_snapshot_not_a_change() {
    let d = dir("queue");
    let path = d.join("world.redb");
    let tight = StoreOptions {
        queue_capacity: 1,
        durability: Durability::Interval(std::time::Duration::from_millis(50)),
        ..options()
    };
    let (mut store, mut world, _) = WorldStore::open(&path, tight.clone()).unwrap();
    let (digest, sequence) = run(&mut store, &mut world, 60, 100, 5);
    drop(store);
    let (_, world, _) = reopen(&path, tight);
    assert_eq!((world.sequence(), world.digest()), (sequence, digest));
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn bad_files_are_refused_by_name_and_left_untouched() {
    let d = dir("bad");
    // Not a database at all.
    let junk = d.join("junk.redb");
    std::fs::write(&junk, b"this is not a database, just text that is long enough to look like something".repeat(100))
        .unwrap();
    let before = file_bytes(&junk);
    let e = WorldStore::open(&junk, options()).unwrap_err();
    assert!(matches!(e, StoreError::NotADatabase { .. }), "{e}");
    assert!(e.to_string().contains("junk.redb"), "{e}");
    assert_eq!(file_bytes(&junk), before);

    // A database, but no world in it.
    let other = d.join("other.redb");
    drop(redb::Database::create(&other).unwrap());
    let before = file_bytes(&other);
    assert!(matches!(WorldStore::open(&other, options()).unwrap_err(), StoreError::NotAWorldStore { .. }));
    assert_eq!(file_bytes(&other), before);

    // A world of another format version.
    let path = d.join("world.redb");
    let (mut store, mut world, _) = WorldStore::open(&path, options()).unwrap();
    run(&mut store, &mut world, 3, 50, 3);
    drop(store);
    {
        let db = redb::Database::open(&path).unwrap();
        let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
        let read = db.begin_read().unwrap();
        let mut header = read.open_table(meta).unwrap().get("header").unwrap().unwrap().value().to_vec();
        drop(read);
        header[1..5].copy_from_slice(&99u32.to_le_bytes());
        let body = header.len() - 8;
        let sum = xxhash_rust::xxh3::xxh3_64(&header[..body]);
        header[body..].copy_from_slice(&sum.to_le_bytes());
        let mut txn = db.begin_write().unwrap();
        txn.set_quick_repair(true);
        txn.open_table(meta).unwrap().insert("header", header.as_slice()).unwrap();
        txn.commit().unwrap();
    }
    let before = file_bytes(&path);
    let e = WorldStore::open(&path, options()).unwrap_err();
    assert!(matches!(e, StoreError::FormatVersion { found: 99, supported: 1, .. }), "{e}");
    assert_eq!(file_bytes(&path), before);

    // Truncated.
    let short = d.join("short.redb");
    std::fs::write(&short, &before[..before.len() / 2]).unwrap();
    let e = WorldStore::open(&short, options()).unwrap_err();
    assert_eq!(file_bytes(&short), &before[..before.len() / 2], "{e}");
}

/// A saved world, its bytes and digest, built once per test binary.
fn saved() -> &'static (Vec<u8>, u64) {
    static SAVED: std::sync::OnceLock<(Vec<u8>, u64)> = std::sync::OnceLock::new();
    SAVED.get_or_init(|| {
        let d = dir("saved");
        let path = d.join("world.redb");
        let (mut store, mut world, _) =
            WorldStore::open(&path, StoreOptions { checkpoint_every: 700, ..options() }).unwrap();
        let (digest, _) = run(&mut store, &mut world, 8, 200, 11);
        drop(store);
        (file_bytes(&path), digest)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn flips_and_truncations_never_panic_nor_load_a_wrong_world(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let (bytes, digest) = saved();
        let mut damaged = bytes.clone();
        for (at, mask) in &flips {
            let i = at.index(damaged.len());
            damaged[i] ^= mask;
        }
        if let Some(cut) = cut {
            damaged.truncate(cut.index(damaged.len()));
        }
        let d = dir(&format!("flip-{}", xxhash_rust::xxh3::xxh3_64(&damaged)));
        let path = d.join("world.redb");
        std::fs::write(&path, &damaged).unwrap();
        match WorldStore::open(&path, options()) {
            Ok((store, world, _)) => {
                // Opened: the damage missed every byte that matters.
                prop_assert_eq!(world.digest(), *digest, "a damaged file loaded a different world");
                drop(store);
            }
            Err(e) => {
                prop_assert_eq!(&file_bytes(&path), &damaged, "a refused file was changed: {}", e);
                let named = e.to_string().contains("world.redb");
                prop_assert!(named, "the error names the file: {}", e);
                if let StoreError::Corrupt { record, .. } = &e {
                    let known = matches!(record, Record::Header | Record::Checkpoint | Record::Node { .. } | Record::Log { .. });
                    prop_assert!(known);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// The plugin: a world generated and saved, every frame's changes committed,
/// `DeltasDurable` reported, and what was pending synced on `AppExit`.
#[cfg(feature = "plugin")]
#[test]
fn the_plugin_saves_every_frame_and_reports_what_is_durable() {
    use bevy::prelude::*;
    use bevy_delta_overlay::plugin::{DeltasDurable, PersistencePlugin, WorldFile};
    use bevy_delta_overlay::{DeltaOverlayPlugin, MaterialUpdate, WorldSource};

    #[derive(Resource, Default)]
    struct Acks(Vec<u64>);
    let d = dir("plugin");
    let path = d.join("world.redb");
    let build = || {
        let mut app = App::new();
        let world = WorldSource::File { path: path.clone(), options: options(), on_bad_file: Default::default() };
        app.add_plugins((
            bevy::app::TaskPoolPlugin::default(),
            PersistencePlugin::default(),
            DeltaOverlayPlugin { world, ..DeltaOverlayPlugin::default() },
        ));
        app.init_resource::<Acks>().add_systems(
            Update,
            (|mut r: MessageReader<DeltasDurable>, mut acks: ResMut<Acks>| acks.0.extend(r.read().map(|d| d.through)))
                .after(bevy_delta_overlay::DeltaOverlaySystems::Forward),
        );
        app.finish();
        app.cleanup();
        app
    };
    let mut app = build();
    assert!(app.world().contains_resource::<WorldFile>());
    let bounds = app.world().resource::<DeltaStorage>().bounds();
    for f in 0..20 {
        for (position, material) in updates(100, f, bounds) {
            app.world_mut().write_message(MaterialUpdate { position, material });
        }
        app.update();
    }
    let sequence = app.world().resource::<DeltaStorage>().sequence();
    // Acknowledgements arrive in order, within a few frames of each commit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.world().resource::<Acks>().0.last() != Some(&sequence) {
        assert!(std::time::Instant::now() < deadline, "no acknowledgement of {sequence}");
        std::thread::sleep(std::time::Duration::from_millis(2));
        app.update();
    }
    let acks = &app.world().resource::<Acks>().0;
    assert!(acks.windows(2).all(|w| w[0] < w[1]), "{acks:?}");
    // Changes of the last frame, synced by the exit.
    for (position, material) in updates(100, 999, bounds) {
        app.world_mut().write_message(MaterialUpdate { position, material });
    }
    app.world_mut().write_message(AppExit::Success);
    app.update();
    let digest = app.world().resource::<DeltaStorage>().digest();
    let sequence = app.world().resource::<DeltaStorage>().sequence();
    assert_eq!(app.world().resource::<WorldFile>().durable(), sequence, "AppExit synced the last frame");
    drop(app);
    let app = build();
    assert!(
        matches!(app.world().resource::<WorldFile>().opened(), Opened::Loaded { sequence: s, .. } if s == sequence)
    );
    assert_eq!(app.world().resource::<DeltaStorage>().digest(), digest);
}
