//! What the world store acknowledges, it can read back; what it cannot read
//! back, it refuses before acknowledging. Each test names the defect an
//! adversarial review found (it failed before its fix): an acknowledged batch
//! the file then refused, a commit of changes the world cannot hold, a file of
//! another world loaded without a word, a node error naming the wrong node, a
//! recovery that needed a copy of the whole file.

mod common;

use bevy_delta_overlay::persistence::{Mismatch, Opened, Record, StoreError, StoreOptions, WorldStore};
use bevy_delta_overlay::{ChangeBatch, DeltaConfig, MaterialId, MaterialUpdate, WorldGen};
use common::store::{dir, options, small_world, updates};
use glam::IVec3;
use std::path::Path;

/// A frame larger than `max_batch` (the feed's capacity above it) was logged as
/// one record and acknowledged; the next open refused it as "change batch
/// larger than the cap". The writer now logs it in records of at most the cap.
#[test]
fn a_batch_larger_than_max_batch_is_logged_so_the_file_reopens() {
    let d = dir("oversized");
    let path = d.join("world.redb");
    let capped = StoreOptions { max_batch: 100, ..options() };
    let (mut store, mut world, _) = WorldStore::open(&path, capped.clone()).unwrap();
    world.record_changes(10_000);
    for f in 0..3 {
        world.batch_update(updates(250 + f, f as u64, world.bounds()));
        let batch = world.take_changes();
        assert!(batch.len() > 100);
        store.commit(batch, &mut world).unwrap();
    }
    assert_eq!(store.sync().unwrap(), world.sequence());
    drop(store);
    let (_, back, opened) =
        WorldStore::open(&path, capped).unwrap_or_else(|e| panic!("acknowledged, then refused: {e}"));
    assert!(matches!(opened, Opened::Loaded { replayed, .. } if replayed >= 9), "{opened:?}");
    assert_eq!((back.sequence(), back.digest()), (world.sequence(), world.digest()));
}

/// `commit` took any batch: a change outside the world, or a batch numbered
/// after a gap, was acknowledged and then made the file unopenable; a position
/// near `i32::MAX` overflowed in the writer and killed it. Now each is refused
/// by `commit`, typed, and nothing of it is logged.
#[test]
fn commit_refuses_batches_the_file_could_not_read_back() {
    let d = dir("validate");
    let path = d.join("world.redb");
    let (mut store, mut world, _) = WorldStore::open(&path, options()).unwrap();
    world.record_changes(1 << 16);
    world.batch_update(updates(50, 1, world.bounds()));
    store.commit(world.take_changes(), &mut world).unwrap();
    let next = world.sequence() + 1;
    let at = |p: IVec3| vec![MaterialUpdate::new(p, MaterialId(3))];
    let bad = [
        ChangeBatch::new(next, at(world.bounds().max)),
        ChangeBatch::new(next, at(IVec3::splat(i32::MAX))),
        ChangeBatch::new(next, at(IVec3::splat(i32::MIN))),
        ChangeBatch::new(next + 5, at(world.bounds().min)),
        ChangeBatch::new(next - 1, at(world.bounds().min)),
    ];
    for batch in bad {
        let e = store.commit(batch.clone(), &mut world).expect_err("a batch the file could not read back");
        assert!(matches!(e, StoreError::Batch { .. }), "{e}");
        assert!(e.to_string().contains("world.redb"), "{e}");
    }
    assert!(store.error().is_none(), "a refused batch does not stop the writer");
    // The store goes on: a good batch after the refused ones is logged.
    world.batch_update(updates(10, 2, world.bounds()));
    store.commit(world.take_changes(), &mut world).unwrap();
    assert_eq!(store.sync().unwrap(), world.sequence());
    drop(store);
    let (_, back, _) = WorldStore::open(&path, options()).unwrap();
    assert_eq!((back.sequence(), back.digest()), (world.sequence(), world.digest()));
}

/// 200 one-voxel frames while full checkpoints were pending: each commit took a
/// snapshot, and each snapshot sealed an overlay layer (201 layers, 58 MiB).
/// A snapshot shares the active layer; a small one is copied by the next
/// write, a large one sealed once.
#[test]
fn snapshots_under_backpressure_do_not_pile_up_sealed_layers() {
    let d = dir("layers");
    let path = d.join("world.redb");
    let tight = StoreOptions {
        queue_capacity: 1,
        config: DeltaConfig { threshold: 1 << 30, ..Default::default() },
        ..options()
    };
    let (mut store, mut world, _) = WorldStore::open(&path, tight.clone()).unwrap();
    world.record_changes(100);
    // A large active layer (past the copy limit), and an overflowed feed: the
    // commit hands over a snapshot, a full checkpoint.
    world.batch_update(updates(40_000, 3, world.bounds()));
    store.commit(world.take_changes(), &mut world).unwrap();
    let bounds = world.bounds();
    for f in 0..200 {
        let p = bounds.min + IVec3::new(f % 90, 1, (f / 90) % 70);
        world.update(p, MaterialId(7 + (f % 3) as u16)).unwrap();
        store.commit(world.take_changes(), &mut world).unwrap();
    }
    let stats = world.stats();
    assert!(stats.sealed_layers <= 3, "{} sealed layers", stats.sealed_layers);
    assert!(stats.overlay_bytes < 16 << 20, "{} bytes in the overlay", stats.overlay_bytes);
    assert_eq!(store.sync().unwrap(), world.sequence());
    drop(store);
    let (_, back, _) = WorldStore::open(&path, tight).unwrap();
    assert_eq!(back.digest(), world.digest());
}

/// The bytes of a store's file while it is open after a synced commit: what a
/// crash leaves (the file needs redb's recovery to open).
fn crash_image(d: &Path) -> (Vec<u8>, u64, u64) {
    let path = d.join("live.redb");
    let (mut store, mut world, _) = WorldStore::open(&path, options()).unwrap();
    world.record_changes(1 << 16);
    for f in 0..4 {
        world.batch_update(updates(300, 40 + f, world.bounds()));
        store.commit(world.take_changes(), &mut world).unwrap();
    }
    store.sync().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (bytes, world.sequence(), world.digest())
}

/// Recovery copied the whole file to `<file>.checking` first: when the copy
/// failed (a full disk; here, a directory in its way) the file was refused and
/// the plugin ran a fresh world without saving; a panic while reading left the
/// copy behind. Now nothing is copied and nothing is left beside the file.
#[test]
fn a_crashed_file_recovers_without_a_copy_beside_it() {
    let d = dir("recover");
    let (bytes, sequence, digest) = crash_image(&d);
    let path = d.join("world.redb");
    std::fs::write(&path, &bytes).unwrap();
    let needs_recovery = redb::Database::builder().open_read_only(&path).err();
    assert!(matches!(needs_recovery, Some(redb::DatabaseError::RepairAborted)), "{needs_recovery:?}");
    // Where the copy would go, a directory: a copy cannot be made.
    std::fs::create_dir_all(d.join("world.redb.checking")).unwrap();
    let (store, back, opened) =
        WorldStore::open(&path, options()).unwrap_or_else(|e| panic!("recovery needed a copy: {e}"));
    assert!(matches!(opened, Opened::Loaded { sequence: s, .. } if s == sequence), "{opened:?}");
    assert_eq!(back.digest(), digest);
    drop(store);
    std::fs::remove_dir(d.join("world.redb.checking")).unwrap();
    let left: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "only the files this test made: {left:?}");
}

/// Writes `record` under `key` in `table` of the world file at `path`.
fn poke(path: &Path, table: &str, key: u64, record: &[u8]) {
    let db = redb::Database::open(path).unwrap();
    let t: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new(table);
    let mut txn = db.begin_write().unwrap();
    txn.set_quick_repair(true);
    txn.open_table(t).unwrap().insert(key, record).unwrap();
    txn.commit().unwrap();
}

/// A framed record (kind, payload, xxh3 checksum), as the file holds them.
fn framed(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(payload);
    let sum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// A node that breaks the tree's rules (below the brick level, past the world)
/// was reported as node 0 at level 0. Now the error names the node.
#[test]
fn a_structural_node_error_names_the_node() {
    let d = dir("node");
    let path = d.join("world.redb");
    drop(WorldStore::open(&path, options()).unwrap());
    let uniform = framed(1, &3u16.to_le_bytes());
    for (level, code) in [(2u32, 5u64), (4, 0o7777_7777), (40, 1)] {
        let copy = d.join(format!("node-{level}.redb"));
        std::fs::copy(&path, &copy).unwrap();
        poke(&copy, "nodes", u64::from(level) << 56 | code, &uniform);
        let e = WorldStore::open(&copy, options()).unwrap_err();
        assert!(
            matches!(e, StoreError::Corrupt { record: Record::Node { level: l, code: c }, .. } if l == level && c == code),
            "{e}"
        );
    }
}

/// A file made from another world (generator) or with another palette loaded
/// without a word. Now the options say what is expected, and a file that
/// differs is refused, typed, and left as it was.
#[test]
fn a_file_of_another_world_or_palette_is_refused() {
    let d = dir("mismatch");
    let path = d.join("world.redb");
    drop(WorldStore::open(&path, options()).unwrap());
    let before = std::fs::read(&path).unwrap();
    let other_seed = StoreOptions { generator: WorldGen { seed: 77, ..small_world() }, ..options() };
    let e = WorldStore::open(&path, other_seed).unwrap_err();
    assert!(matches!(e, StoreError::Mismatch { what: Mismatch::Generator, .. }), "{e}");
    let other_palette =
        StoreOptions { palette: Some(r#"[(id: 0, name: "air", colour: (1, 2, 3))]"#.into()), ..options() };
    let e = WorldStore::open(&path, other_palette).unwrap_err();
    assert!(matches!(e, StoreError::Mismatch { what: Mismatch::Palette, .. }), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // The same palette spelled otherwise is the same palette.
    assert!(WorldStore::open(&path, StoreOptions { palette: Some("[ ]".into()), ..options() }).is_ok());
    // Opting out loads whatever the file holds.
    let lenient =
        StoreOptions { generator: WorldGen { seed: 77, ..small_world() }, expect_same_world: false, ..options() };
    assert!(WorldStore::open(&path, lenient).is_ok());
    // No palette given: the file's is taken, whatever it is.
    assert!(WorldStore::open(&path, StoreOptions { palette: None, ..options() }).is_ok());
}
