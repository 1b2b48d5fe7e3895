//! Hostile review of the paged world's file, region reads and clock (second
//! review of paging). Each test but the controls failed (or panicked, or hung,
//! bounded) before its fix: a region read of 2^32 cells, a file's batch number
//! at u64::MAX, a wait for a batch never handed over, a tile key far outside
//! the world, sectors' clocks behind the world's, a re-edit refused while its
//! batch was in flight.

use bevy_delta_overlay::base::Region;
use bevy_delta_overlay::paging::{Interest, PagedWorld, PagingSettings};
use bevy_delta_overlay::persistence::{Record, StoreError};
use bevy_delta_overlay::{Aabb, DeltaConfig, VoxelError, WorldGen, materials};
use glam::IVec3;
use redb::{Database, ReadableDatabase, TableDefinition};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

mod paging_support;
use paging_support::Dir;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const TILES: TableDefinition<(i32, i32), &[u8]> = TableDefinition::new("edit tiles");

fn generator() -> WorldGen {
    WorldGen { min: IVec3::new(-40, 0, 16), size: IVec3::new(160, 48, 112), sea_level: 26, seed: 7 }
}

fn settings() -> PagingSettings {
    PagingSettings { sector_columns: 32, ..PagingSettings::default() }
}

/// Runs `f` on a thread; fails the test when it does not end within `secs`.
fn bounded<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("did not return within {secs} s (hang)"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the worker panicked"),
    }
}

/// A file made by the crate with one durable edit at the world's minimum.
fn file_with_one_edit(dir: &Dir) -> PathBuf {
    let path = dir.file();
    let mut w = PagedWorld::open(&path, generator(), settings(), DeltaConfig::default()).unwrap();
    w.update(generator().bounds().min, materials::MAGMA).unwrap();
    let n = w.flush().unwrap().unwrap();
    w.wait_durable(n).unwrap();
    drop(w);
    path
}

/// D1. `Region::reset` (region.rs) sizes the cells with
/// `UVec3::element_product()`, a u32 product: a box of 2^32 cells overflows
/// (debug: panic; release: wraps to 0 cells, then indexing past them).
/// The base's own `fill_region` multiplies in usize. Expected: a typed error
/// (or a read) -- never a panic.
#[test]
fn a_region_read_of_2_pow_32_cells_does_not_panic() {
    let g = WorldGen { size: IVec3::new(4096, 256, 4096), sea_level: 100, ..WorldGen::default() };
    let w = PagedWorld::new(g, PagingSettings::default(), DeltaConfig::default()).unwrap();
    let bounds = w.bounds();
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut out = Region::default();
        w.read_region(bounds, &mut out).map(|_| out.as_slice().len())
    }));
    match read {
        Ok(Err(VoxelError::InvalidRegion { .. })) => {}
        Ok(Ok(cells)) => assert_eq!(cells as u64, 1u64 << 32, "a read of 2^32 cells answered {cells} cells"),
        Ok(Err(e)) => panic!("unexpected error {e}"),
        Err(_) => panic!("read_region panicked on a box of 2^32 cells inside the world"),
    }
}

/// D2. The file's "edit batch" number is taken as is (`read_batch`): a file
/// saying u64::MAX opens, and the next flush overflows `next_batch += 1`
/// (edits.rs take_batch). Expected: refused at open as Corrupt, or a flush
/// that works -- not a panic on the caller's thread.
#[test]
fn a_file_whose_last_batch_is_u64_max_is_refused_or_flushes() {
    let dir = Dir::new("u64max");
    let path = file_with_one_edit(&dir);
    {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            let record = bevy_delta_overlay::fuzzing::frame(7, &u64::MAX.to_le_bytes());
            meta.insert("edit batch", record.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let outcome = std::panic::catch_unwind(|| {
        match PagedWorld::open(&path, generator(), settings(), DeltaConfig::default()) {
            Err(e) => Err(e.to_string()),
            Ok(w) => {
                // Not dropped: its Drop flushes too and would panic again
                // during the unwinding (an abort).
                let mut w = std::mem::ManuallyDrop::new(w);
                w.update(IVec3::new(0, 10, 40), materials::SAND).unwrap();
                w.flush().map_err(|e| e.to_string())
            }
        }
    });
    assert!(outcome.is_ok(), "opening a file whose last batch is u64::MAX, then one flush, panicked");
}

/// D3. `wait_durable(n)` for a number never handed over (here: the next
/// one, nothing flushed) spins forever: it waits only for the writer's
/// error or the acknowledgement. Expected: returns (an error) at once.
#[test]
fn waiting_for_a_batch_never_handed_over_returns() {
    let dir = Dir::new("wait");
    let path = dir.file();
    let mut w = PagedWorld::open(&path, generator(), settings(), DeltaConfig::default()).unwrap();
    let next = w.durable() + 1;
    let (_result, w) = bounded(5, move || (w.wait_durable(next).map_err(|e| e.to_string()), w));
    drop(w);
    drop(dir);
}

/// D4. `decode_tile` computes `corner = bounds.min + tile * 16` (saturating
/// only the product) before it checks the tile: a tile key far outside the
/// world overflows i32 (a panic caught at open), and the file is refused as
/// "the database engine failed reading it" (NotADatabase), not as the
/// `Corrupt { EditTile }` CHECKED_AT_OPEN promises.
#[test]
fn a_tile_key_far_outside_the_world_is_refused_as_a_corrupt_tile() {
    let dir = Dir::new("tilekey");
    let path = file_with_one_edit(&dir);
    {
        let db = Database::open(&path).unwrap();
        let record = {
            let read = db.begin_read().unwrap();
            let tiles = read.open_table(TILES).unwrap();
            tiles.get((0, 0)).unwrap().expect("tile (0, 0)").value().to_vec()
        };
        let txn = db.begin_write().unwrap();
        {
            let mut tiles = txn.open_table(TILES).unwrap();
            tiles.insert((-(1 << 27), 0), record.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    match PagedWorld::open(&path, generator(), settings(), DeltaConfig::default()) {
        Err(StoreError::Corrupt { record: Record::EditTile { .. }, .. }) => {}
        Err(e) => panic!("refused, but not as a corrupt tile: {e:?}"),
        Ok(_) => panic!("a tile outside the world opened"),
    }
    assert!(std::fs::read(&path).unwrap() == before, "the refused file was written");
}

/// D5. `advance_clock` gives each resident storage `dt`, which it truncates
/// to whole milliseconds, while the world's clock keeps nanoseconds; a
/// sector installed later is set to the world's clock. After one second of
/// 60 Hz frames, a sector resident all along is 40 ms behind one paged in
/// now: the "one clock for all of them" is not one.
#[test]
fn every_resident_sector_shows_the_worlds_clock() {
    let mut w = PagedWorld::new(generator(), settings(), DeltaConfig::default()).unwrap();
    let a = IVec3::new(-30, 10, 20);
    let b = IVec3::new(100, 10, 110);
    w.set_interest(&[Interest { center: a, radius: 1, ..Default::default() }]);
    w.tick_until_resident();
    for _ in 0..60 {
        w.advance_clock(Duration::from_nanos(16_666_667));
    }
    w.set_interest(&[
        Interest { center: a, radius: 1, ..Default::default() },
        Interest { center: b, radius: 1, ..Default::default() },
    ]);
    w.tick_until_resident();
    let (old, new) = (w.sector_storage(a).unwrap().now(), w.sector_storage(b).unwrap().now());
    assert_eq!(old, new, "world clock {:?}: the sector resident all along shows {old:?}, the new one {new:?}", w.now());
}

/// D6. `update`'s docs: Backlogged is "for a voxel not edited before when
/// max_edits voxels are kept". A voxel edited and flushed (its batch not yet
/// acknowledged) is edited again: refused, because `Edits::record` looks for
/// it in `unsaved` only.
#[test]
fn a_voxel_edited_before_is_not_refused_while_its_batch_is_in_flight() {
    let dir = Dir::new("reedit");
    let path = dir.file();
    let s = PagingSettings { max_edits: 1, ..settings() };
    let mut w = PagedWorld::open(&path, generator(), s, DeltaConfig::default()).unwrap();
    let p = IVec3::new(0, 10, 40);
    w.update(p, materials::SAND).unwrap();
    assert!(w.flush().unwrap().is_some());
    let again = w.update(p, materials::MAGMA);
    assert!(again.is_ok(), "a re-edit of a voxel edited before was refused: {again:?}");
}

/// Control: hostile whole files (empty, garbage, truncated) are refused with
/// a typed error and left untouched (passes: recorded as checked).
#[test]
fn empty_garbage_and_truncated_files_are_refused_untouched() {
    let dir = Dir::new("garbage");
    let good = std::fs::read(file_with_one_edit(&dir)).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("garbage", (0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
        ("half", good[..good.len() / 2].to_vec()),
        ("head", good[..4096.min(good.len())].to_vec()),
    ];
    for (name, bytes) in cases {
        let path = dir.0.join(format!("{name}.redb"));
        std::fs::write(&path, &bytes).unwrap();
        let opened = std::panic::catch_unwind(|| {
            PagedWorld::open(&path, generator(), settings(), DeltaConfig::default()).map(|_| ())
        });
        match opened {
            Ok(Err(e)) => assert!(e.is_bad_file() || matches!(e, StoreError::NotAWorldStore { .. }), "{name}: {e:?}"),
            Ok(Ok(())) => panic!("{name}: opened"),
            Err(_) => panic!("{name}: panicked"),
        }
        assert!(std::fs::read(&path).unwrap() == bytes, "{name}: the refused file was written");
    }
}

/// Control: a sector size near i32::MAX on a world whose minimum is positive
/// is refused or works (passes: suspected overflow in `sector_bounds` not
/// confirmed).
#[test]
fn a_huge_sector_size_is_refused_or_works() {
    let g = WorldGen { min: IVec3::new(100, 0, 100), size: IVec3::new(64, 32, 64), sea_level: 10, seed: 1 };
    let s = PagingSettings { sector_columns: i32::MAX - 15, ..PagingSettings::default() };
    let run = std::panic::catch_unwind(move || match PagedWorld::new(g, s, DeltaConfig::default()) {
        Err(_) => {}
        Ok(mut w) => {
            let _ = w.get_blocking(IVec3::new(120, 5, 120));
            w.set_interest(&[Interest { center: IVec3::new(120, 5, 120), radius: 4, ..Default::default() }]);
            w.tick_until_resident();
        }
    });
    assert!(run.is_ok(), "a sector size of i32::MAX - 15 panicked");
}

/// Control: a region read at the world's edge through partial sectors with
/// coarse values kept equals the exact read once resident (passes).
#[test]
fn a_region_read_across_partial_edge_sectors_is_exact_where_resident() {
    let g = generator();
    let mut w = PagedWorld::new(g.clone(), settings(), DeltaConfig::default()).unwrap();
    let b = w.bounds();
    w.set_interest(&[Interest { center: b.max - IVec3::ONE, radius: 200, ..Default::default() }]);
    w.tick_until_resident();
    let mut out = Region::default();
    let read = w.read_region(b, &mut out).unwrap();
    assert!(read.is_complete());
    let whole = g.build().unwrap();
    let mut exact = Region::default();
    whole.read_region(b, 0, &mut exact).unwrap();
    assert!(out.as_slice() == exact.as_slice());
    let _ = Aabb::default();
}
