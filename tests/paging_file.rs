//! A paged world kept in a file: reads through edits, flushes, evictions,
//! reloads from the file and reopenings equal the reads of the same world
//! held wholly in memory (a model test against a plain world); the file
//! grows with the edits, not the world; bad files are refused, untouched.
//! The SIGKILL test is in `paging_crash.rs`.

use bevy_delta_overlay::paging::{Interest, Paged, PagedWorld, PagingSettings};
use bevy_delta_overlay::persistence::{Mismatch, StoreError};
use bevy_delta_overlay::{DeltaConfig, DeltaStorage, MaterialId, WorldGen, materials};
use glam::{IVec3, Vec3};
use proptest::prelude::*;

mod paging_support;
use paging_support::Dir;

fn generator() -> WorldGen {
    WorldGen { min: IVec3::new(-40, 0, 16), size: IVec3::new(160, 48, 112), sea_level: 26, seed: 7 }
}

fn settings() -> PagingSettings {
    PagingSettings { sector_columns: 32, resident_budget: 300_000, prefetch_seconds: 1.0, ..PagingSettings::default() }
}

#[derive(Clone, Debug)]
enum Op {
    Edit(IVec3, u16),
    Move(IVec3, i32, Vec3),
    Tick,
    Flush,
    Settle,
    Reopen,
}

fn position() -> impl Strategy<Value = IVec3> {
    let b = generator().bounds();
    (b.min.x..b.max.x, b.min.y..b.max.y, b.min.z..b.max.z).prop_map(|(x, y, z)| IVec3::new(x, y, z))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (position(), 1u16..12).prop_map(|(p, m)| Op::Edit(p, m)),
        2 => (position(), 0i32..40, -30.0f32..30.0, -30.0f32..30.0)
            .prop_map(|(p, r, vx, vz)| Op::Move(p, r, Vec3::new(vx, 0.0, vz))),
        2 => Just(Op::Tick),
        2 => Just(Op::Flush),
        1 => Just(Op::Settle),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Every read that answers `Resident` is the oracle's value, and a
    /// blocking read always is, through edits, flushes (acknowledged or
    /// not yet), page-ins that read the file while the writer merges into
    /// it, evictions, and reopenings of the file.
    #[test]
    fn reads_through_the_file_equal_a_world_held_in_memory(
        ops in prop::collection::vec(op(), 1..60),
        probes in prop::collection::vec(position(), 30),
    ) {
        let dir = Dir::new("model");
        let g = generator();
        let mut oracle = DeltaStorage::new(g.build().unwrap(), DeltaConfig::default());
        let open = || PagedWorld::open(dir.file(), g.clone(), settings(), DeltaConfig::default()).unwrap();
        let mut paged = open();
        let mut edited = Vec::new();
        for op in ops {
            match op {
                Op::Edit(p, m) => {
                    paged.update(p, MaterialId(m)).unwrap();
                    oracle.update(p, MaterialId(m)).unwrap();
                    edited.push(p);
                }
                Op::Move(center, radius, velocity) => paged.set_interest(&[Interest { center, radius, velocity }]),
                Op::Tick => paged.tick(),
                Op::Flush => { paged.flush().unwrap(); }
                Op::Settle => paged.tick_until_resident(),
                // A drop hands what was not flushed and waits for it.
                Op::Reopen => { drop(paged); paged = open(); }
            }
            for &p in &probes {
                if let Paged::Resident(m) = paged.get(p).unwrap() {
                    prop_assert_eq!(Ok(m), oracle.query(p), "{}", p);
                }
            }
        }
        let evicted = paged.stats().evicted;
        drop(paged);
        let mut paged = open();
        for &p in probes.iter().chain(&edited) {
            prop_assert_eq!(paged.get_blocking(p), oracle.query(p), "{} (after {} evictions)", p, evicted);
        }
    }
}

#[test]
fn an_acknowledged_batch_is_let_go_from_memory_and_read_back_from_the_file() {
    let dir = Dir::new("let-go");
    let g = generator();
    let mut paged = PagedWorld::open(dir.file(), g.clone(), settings(), DeltaConfig::default()).unwrap();
    let here = IVec3::new(0, 10, 40);
    paged.update(here, materials::MAGMA).unwrap();
    assert_eq!(paged.stats().edits, 1);
    let batch = paged.flush().unwrap().unwrap();
    paged.wait_durable(batch).unwrap();
    paged.tick();
    let stats = paged.stats();
    assert_eq!((stats.edits, stats.durable, stats.flushing), (0, batch, 0), "{stats:?}");
    // Not resident: it comes in from the generator and the file.
    assert_eq!(paged.get(here).unwrap(), Paged::NotResident);
    assert_eq!(paged.get_blocking(here).unwrap(), materials::MAGMA);
}

#[test]
fn the_file_grows_with_the_edits_not_the_world() {
    let dir = Dir::new("size");
    let small = WorldGen { size: IVec3::new(256, 64, 256), sea_level: 30, ..WorldGen::default() };
    let huge = WorldGen { size: IVec3::new(1 << 20, 512, 1 << 20), sea_level: 200, ..WorldGen::default() };
    let mut sizes = Vec::new();
    for (i, g) in [small, huge].into_iter().enumerate() {
        let path = dir.0.join(format!("w{i}.redb"));
        let mut paged = PagedWorld::open(&path, g, PagingSettings::default(), DeltaConfig::default()).unwrap();
        let empty = paged.stats().file_bytes;
        for k in 0..20_000 {
            paged.update(IVec3::new(k % 200, 20 + k / 4000, (k * 7) % 200), materials::SAND).unwrap();
        }
        let batch = paged.flush().unwrap().unwrap();
        paged.wait_durable(batch).unwrap();
        sizes.push((empty, paged.stats().file_bytes));
    }
    // The same edits: files of the same size, whatever the world's size
    // (2^40 columns against 2^16), and far under a byte an edit each.
    assert_eq!(sizes[0], sizes[1], "{sizes:?}");
    assert!(sizes[1].1 < 4 << 20, "{sizes:?}");
}

#[test]
fn a_file_of_another_world_or_with_a_damaged_tile_is_refused_and_left_as_it_was() {
    let dir = Dir::new("bad");
    let g = generator();
    let path = dir.file();
    {
        let mut paged = PagedWorld::open(&path, g.clone(), settings(), DeltaConfig::default()).unwrap();
        for x in 0..40 {
            paged.update(IVec3::new(x, 10, 40), materials::MAGMA).unwrap();
        }
    }
    let other = WorldGen { seed: 8, ..g.clone() };
    match PagedWorld::open(&path, other, settings(), DeltaConfig::default()) {
        Err(StoreError::Mismatch { what: Mismatch::Generator, .. }) => {}
        other => panic!("a file of another world opened: {other:?}"),
    }
    // A flipped byte inside the tiles' data: some record fails its checksum
    // (or the database's own structure refuses the file).
    let mut bytes = std::fs::read(&path).unwrap();
    let at = find_zstd(&bytes).expect("a compressed tile in the file");
    bytes[at + 6] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    match PagedWorld::open(&path, g, settings(), DeltaConfig::default()) {
        Err(e) => assert!(e.is_bad_file(), "{e}"),
        Ok(_) => panic!("a damaged file opened"),
    }
    assert!(std::fs::read(&path).unwrap() == bytes, "the refused file was written");
}

/// Where zstd's magic number first appears (a tile's compressed edits).
fn find_zstd(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == [0x28, 0xb5, 0x2f, 0xfd])
}

/// A sector read from the file before a batch of its edits was written, and
/// installed after memory let go of that batch, would lack those edits: it is
/// made again. (The pager reads the file first and then generates, so a
/// flush just after the request commits in between; tried a few times, as
/// the threads' order is the system's.)
#[test]
fn a_sector_read_before_a_batch_memory_let_go_of_is_made_again() {
    let dir = Dir::new("made-again");
    let g = WorldGen { size: IVec3::new(512, 128, 512), sea_level: 60, ..WorldGen::default() };
    let settings = PagingSettings { sector_columns: 256, ..PagingSettings::default() };
    let mut made_again = 0;
    for attempt in 0..8 {
        let mut paged = PagedWorld::open(dir.file(), g.clone(), settings.clone(), DeltaConfig::default()).unwrap();
        let p = IVec3::new(100 + attempt, 40, 100);
        paged.update(p, materials::MAGMA).unwrap();
        paged.set_interest(&[Interest { center: p, radius: 8, velocity: Vec3::ZERO }]);
        paged.tick();
        let batch = paged.flush().unwrap().unwrap();
        paged.wait_durable(batch).unwrap();
        assert_eq!(paged.stats().edits, 0);
        paged.tick_until_resident();
        assert_eq!(paged.get(p).unwrap(), Paged::Resident(materials::MAGMA), "attempt {attempt}");
        made_again += paged.stats().made_again;
    }
    assert!(made_again > 0, "the file was never read before the batch in 8 attempts");
}

/// A sector read for a follower while the world keeps writing to it and the
/// file acknowledges those batches: completed, not stale (memory keeps the
/// batches after the read began), and the stored edits then memory's are
/// the sector's every edit. Before memory held them back, every such read
/// was stale, and a follower of a busy sector never got it.
#[test]
fn a_sector_read_while_batches_touching_it_are_acknowledged_completes_exactly() {
    let dir = Dir::new("share");
    let mut world = PagedWorld::open(dir.file(), generator(), settings(), DeltaConfig::default()).unwrap();
    let mut truth = std::collections::HashMap::new();
    let mut write = |world: &mut PagedWorld, round: i32| {
        for i in 0..40 {
            let p = IVec3::new(-40 + (i * 7 + round) % 32, 5 + i % 20, 16 + (i * 3) % 32);
            let m = MaterialId((round + i) as u16 % 5);
            world.update(p, m).unwrap();
            truth.insert(p, m);
        }
        world.flush().unwrap();
        world.wait_durable(u64::MAX).unwrap();
        world.tick();
    };
    write(&mut world, 0);
    let key = world.sector_of(IVec3::new(-40, 5, 16)).unwrap();
    let read = world.begin_read(key).unwrap();
    assert!(read.reads_file());
    let mut stored = read.run();
    for round in 1..6 {
        write(&mut world, round);
    }
    let memory = world.complete_read(&stored).expect("not stale");
    let mut edits: std::collections::HashMap<IVec3, MaterialId> = stored.take_edits().into_iter().collect();
    edits.extend(memory);
    assert_eq!(edits, truth);
    // Done reading: memory lets go of the batches it held.
    world.tick();
    assert_eq!(world.stats().edits, 0);
}
