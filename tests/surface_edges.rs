//! The surface index at its edges: odd worlds, builds that must install
//! nothing (stale, foreign, not run), the log's numbering with the index off,
//! the log overflowing, a replica building ahead; snapshots held while the
//! world changes. From a hostile review; each failing case failed before its
//! fix.

mod common;

use bevy_delta_overlay::parallel::{Sequential, Threads};
use bevy_delta_overlay::surface::{Surface, SurfaceCursor};
use bevy_delta_overlay::{Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialId, Palette, WorldGen, materials};
use glam::{IVec2, IVec3};
use proptest::prelude::*;

fn air_world(bounds: Aabb) -> DeltaStorage {
    DeltaStorage::new(BaseIndex::uniform(bounds, materials::AIR).unwrap(), DeltaConfig::default())
}

/// A reader's cursor survives the index being off for a while: a read of
/// `surface_changes` while no index is kept leaves it where it is (it moved
/// it back to 0, and the reader was then told it missed every change ever
/// logged).
#[test]
fn reading_while_the_index_is_off_does_not_invent_missed_changes() {
    let palette = Palette::shipped();
    let mut world = air_world(Aabb::new(IVec3::ZERO, IVec3::splat(16)));
    world.enable_surfaces(&palette);
    let mut cursor = SurfaceCursor::default();
    assert_eq!(world.surface(3, 3).unwrap().top, None);
    for y in 0..5 {
        world.update(IVec3::new(3, y, 3), materials::GRANITE).unwrap();
    }
    let read = world.surface_changes(&mut cursor);
    assert_eq!((read.missed, read.count()), (0, 5));
    world.disable_surfaces();
    // A process runs a frame while the index is off: nothing to read.
    assert_eq!(world.surface_changes(&mut cursor).count(), 0);
    world.enable_surfaces(&palette);
    assert_eq!(world.surface(3, 3).unwrap().top, Some(4));
    world.update(IVec3::new(3, 5, 3), materials::GRANITE).unwrap();
    let changes = world.surface_changes(&mut cursor);
    let missed = changes.missed;
    assert_eq!((missed, changes.count()), (0, 1), "cursor {cursor:?}");
}

/// Writes before a build's snapshot keep no tile out: every tile goes in
/// (the tile of the last write before it was refused).
#[test]
fn a_write_before_the_snapshot_does_not_keep_its_tile_out() {
    let palette = Palette::shipped();
    let mut world = air_world(Aabb::new(IVec3::ZERO, IVec3::new(64, 32, 64)));
    world.enable_surfaces(&palette);
    world.update(IVec3::new(1, 1, 1), materials::GRANITE).unwrap(); // tile 0
    world.update(IVec3::new(40, 1, 40), materials::GRANITE).unwrap(); // tile 10, the last write
    let mut build = world.surface_build(None).unwrap();
    assert_eq!(build.sequence(), world.sequence());
    // The two written tiles were built by their writes.
    assert_eq!(build.tiles(), 14);
    build.run(&Sequential);
    // No write after the snapshot: every tile of the build goes in.
    assert_eq!(world.install_surfaces(build), 14);
    assert_eq!(world.surface_tiles(), 16);
}

/// Builds that must install nothing, and the index stays exact.
#[test]
fn stale_or_foreign_builds_install_nothing() {
    let palette = Palette::shipped();
    let world_gen =
        WorldGen { min: IVec3::new(-7, -5, -9), size: IVec3::new(37, 21, 35), sea_level: 6, ..WorldGen::default() };
    let mut world = DeltaStorage::new(world_gen.build().unwrap(), DeltaConfig::default());
    world.enable_surfaces(&palette);
    // Before disable/enable.
    let mut old = world.surface_build(None).unwrap();
    old.run(&Sequential);
    world.disable_surfaces();
    world.enable_surfaces(&palette);
    assert_eq!(world.install_surfaces(old), 0);
    // From another storage (a clone: same world, another index).
    let other = world.clone();
    let mut foreign = other.surface_build(None).unwrap();
    foreign.run(&Sequential);
    assert_eq!(world.install_surfaces(foreign), 0);
    // Not run.
    let unrun = world.surface_build(None).unwrap();
    assert_eq!(world.install_surfaces(unrun), 0);
    // Writes between build and install: their tiles are left out.
    let mut build = world.surface_build(None).unwrap();
    let n = build.tiles();
    world.update(IVec3::new(0, 14, 0), materials::GRANITE).unwrap();
    world.batch_update([(IVec3::new(20, 15, 20), materials::WATER), (IVec3::new(20, 15, 20), materials::BASALT)]);
    build.run(&Threads(2));
    let installed = world.install_surfaces(build);
    assert!(installed <= n - 2, "{installed} of {n}");
    common::assert_surfaces_exact(&world, &palette);
    // Another palette mid-run: a new index, the build for the old refused.
    let mut b = world.surface_build(None);
    if let Some(b) = b.as_mut() {
        b.run(&Sequential);
    }
    let water_is_rock = Palette::from_ron_str(
        r#"[ (id: 0, name: "air", colour: (0, 0, 0), form: Gas),
             (id: 8, name: "water", colour: (0, 0, 255), form: Solid, hardness: 1.0) ]"#,
    )
    .unwrap();
    world.enable_surfaces(&water_is_rock);
    if let Some(b) = b {
        assert_eq!(world.install_surfaces(b), 0);
    }
    common::assert_surfaces_exact(&world, &water_is_rock);
}

/// The log holds 65,536 changes; a reader further behind is told how many it
/// missed, exactly.
#[test]
fn the_log_overflows_and_counts_what_was_missed() {
    let palette = Palette::shipped();
    let mut world = air_world(Aabb::new(IVec3::new(-300, -2, -300), IVec3::new(0, 3, 0)));
    world.enable_surfaces(&palette);
    let mut build = world.surface_build(None).unwrap();
    build.run(&Threads(2));
    world.install_surfaces(build);
    let mut cursor = SurfaceCursor::default();
    // 90,000 columns each get a top: 90,000 changes in one batch.
    let writes: Vec<_> =
        (-300..0).flat_map(|x| (-300..0).map(move |z| (IVec3::new(x, 0, z), materials::GRANITE))).collect();
    world.batch_update(writes);
    let changes = world.surface_changes(&mut cursor);
    assert_eq!((changes.missed, changes.count()), (90_000 - 65_536, 65_536));
    assert_eq!(world.surface_changes(&mut cursor).count(), 0);
}

/// Odd worlds: one voxel thick, negative corners, sizes not multiples of 16,
/// liquid from the floor, liquid over an overhang, a top turned into liquid
/// or gas, the same column written many times in a batch, a material the
/// palette does not list. After each step every column equals a scan.
#[test]
fn odd_worlds_stay_exact() {
    let palette = Palette::shipped();
    for bounds in [
        Aabb::new(IVec3::new(-17, 5, -33), IVec3::new(2, 6, -1)),
        Aabb::new(IVec3::new(-1, -40, -1), IVec3::new(0, 40, 0)),
        Aabb::new(IVec3::new(-20, -17, 3), IVec3::new(13, 16, 21)),
    ] {
        let mut world = air_world(bounds);
        world.enable_surfaces(&palette);
        let (lo, hi) = (bounds.min, bounds.max);
        let c = IVec2::new(lo.x, lo.z);
        let p = |y: i32| IVec3::new(c.x, y.clamp(lo.y, hi.y - 1), c.y);
        // Liquid from the floor.
        world.batch_update((lo.y..hi.y.min(lo.y + 3)).map(|y| (p(y), materials::WATER)));
        common::assert_surfaces_exact(&world, &palette);
        // Prebuild half, read the rest lazily.
        if let Some(mut b) = world.surface_build(Some(Aabb::new(lo, IVec3::new(lo.x + 8, hi.y, hi.z)))) {
            b.run(&Sequential);
            world.install_surfaces(b);
        }
        // Overhang with liquid on it and gas below.
        let mid = (lo.y + hi.y) / 2;
        world.batch_update([
            (p(mid), materials::GRANITE),
            (p(mid + 1), materials::WATER),
            (p(mid + 2), materials::WATER),
        ]);
        common::assert_surfaces_exact(&world, &palette);
        // The top turned into liquid, then into gas, then an unlisted id.
        world.update(p(mid), materials::WATER).unwrap();
        common::assert_surfaces_exact(&world, &palette);
        world.update(p(mid), materials::AIR).unwrap();
        common::assert_surfaces_exact(&world, &palette);
        world.update(p(mid), MaterialId(999)).unwrap();
        common::assert_surfaces_exact(&world, &palette);
        // One column written many times in one batch, ending in each class.
        for last in [materials::AIR, materials::WATER, materials::SEDIMENT] {
            let mut writes = Vec::new();
            for k in 0..50 {
                let m = [materials::WATER, materials::GRANITE, materials::AIR][k % 3];
                writes.push((p(lo.y + (k as i32 % (hi.y - lo.y))), m));
            }
            writes.push((p(lo.y), last));
            world.batch_update(writes);
            common::assert_surfaces_exact(&world, &palette);
        }
        // A flush and a consolidation between.
        world.flush();
        common::assert_surfaces_exact(&world, &palette);
    }
}

/// A world's bounds, its voxels written, then more writes, a box to read and
/// whether to flush between.
type Case = (Aabb, Vec<(IVec3, u16)>, Vec<(IVec3, u16)>, Aabb, bool);

fn world_strategy() -> impl Strategy<Value = Case> {
    ((-40..10i32, -40..10i32, -40..10i32, 1..50i32, 1..40i32, 1..50i32), 0..4u8, any::<bool>()).prop_flat_map(
        |((x, y, z, sx, sy, sz), _mode, flush)| {
            let bounds = Aabb::new(IVec3::new(x, y, z), IVec3::new(x + sx, y + sy, z + sz));
            let pos = (x..x + sx, y..y + sy, z..z + sz).prop_map(|(a, b, c)| IVec3::new(a, b, c));
            let pos2 = pos.clone();
            let box_ = (x - 20..x + sx + 20, y - 20..y + sy + 20, z - 20..z + sz + 20, 0..40i32, 0..40i32, 0..40i32)
                .prop_map(|(a, b, c, d, e, f)| Aabb::new(IVec3::new(a, b, c), IVec3::new(a + d, b + e, c + f)));
            (
                Just(bounds),
                prop::collection::vec((pos, 0..6u16), 0..300),
                prop::collection::vec((pos2, 0..6u16), 0..100),
                box_,
                Just(flush),
            )
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// A snapshot reads as the storage did when it was taken, whatever is
    /// written after: `read_region` and `deltas_in`.
    #[test]
    fn a_snapshot_reads_as_the_storage_did((bounds, before, after, probe, flush) in world_strategy()) {
        let config = DeltaConfig { threshold: 40, hard_cap: 120, chunk_size: 16, ..DeltaConfig::default() };
        let mut world = DeltaStorage::new(BaseIndex::uniform(bounds, MaterialId(1)).unwrap(), config);
        world.batch_update(before.iter().map(|&(p, m)| (p, MaterialId(m))));
        if flush {
            let _ = world.begin_consolidation(bevy_delta_overlay::ConsolidationStrategy::Adaptive);
        }
        let snapshot = world.snapshot();
        let region = world.query_region(probe, 0);
        let mut deltas = world.deltas_in(probe);
        let digest = world.digest();
        for &(p, m) in &after {
            world.update(p, MaterialId(m)).unwrap();
        }
        world.flush();
        let mut out = bevy_delta_overlay::base::Region::default();
        let read = snapshot.read_region(probe, &mut out);
        match region {
            Ok(r) => {
                prop_assert!(read.is_ok());
                prop_assert_eq!(r.as_slice(), out.as_slice());
            }
            Err(e) => prop_assert_eq!(read.err(), Some(e)),
        }
        let mut snap_deltas = snapshot.deltas_in(probe);
        let key = |d: &bevy_delta_overlay::storage::DeltaEntry| (d.position.z, d.position.y, d.position.x);
        deltas.sort_by_key(key);
        snap_deltas.sort_by_key(key);
        prop_assert_eq!(deltas, snap_deltas);
        prop_assert_eq!(snapshot.digest(), digest);
    }
}

/// Snapshots taken every frame, each held while the next frame writes, do
/// not pile up sealed layers (one at most per 16K deltas written).
#[test]
fn snapshots_do_not_pile_up_layers() {
    let config = DeltaConfig { threshold: 1 << 30, hard_cap: 1 << 30, ..DeltaConfig::default() };
    let mut world = DeltaStorage::new(
        BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(256)), MaterialId(1)).unwrap(),
        config,
    );
    let mut held = Vec::new();
    let mut n = 0;
    for _frame in 0..20 {
        // A mesher holds last frame's snapshot while this frame writes.
        held.push(world.snapshot());
        if held.len() > 1 {
            held.remove(0);
        }
        for _ in 0..2000 {
            let p = IVec3::new(n % 256, (n / 256) % 256, n / 65536);
            world.update(p, MaterialId(2)).unwrap();
            n += 1;
        }
    }
    let stats = world.stats();
    assert!(stats.sealed_layers <= 3, "{} sealed layers after 20 frames", stats.sealed_layers);
    let _ = Surface { top: None, material: MaterialId::AIR, liquid: None };
}

/// A build over an area outside the world has nothing to build.
#[test]
fn a_build_of_an_area_outside_the_world_is_none() {
    let palette = Palette::shipped();
    let mut world = air_world(Aabb::new(IVec3::ZERO, IVec3::splat(32)));
    world.enable_surfaces(&palette);
    let far = Aabb::new(IVec3::splat(100), IVec3::splat(120));
    assert!(world.surface_build(Some(far)).is_none());
    let empty = Aabb::new(IVec3::splat(5), IVec3::splat(5));
    assert!(world.surface_build(Some(empty)).map(|b| b.tiles()).unwrap_or(0) == 0);
}

/// A replica building its index ahead while the server's batches arrive
/// (`apply_changes` between `surface_build` and `install_surfaces`): the
/// tiles the batch reached are left out, the index stays exact.
#[test]
fn a_replica_building_ahead_stays_exact() {
    let palette = Palette::shipped();
    let world_gen =
        WorldGen { min: IVec3::new(-9, -4, -20), size: IVec3::new(50, 40, 45), sea_level: 12, ..WorldGen::default() };
    let mut server = DeltaStorage::new(world_gen.build().unwrap(), DeltaConfig::default());
    let mut replica = DeltaStorage::new(world_gen.build().unwrap(), DeltaConfig::default());
    server.record_changes(1 << 16);
    replica.enable_surfaces(&palette);
    for round in 0..6 {
        let mut build = replica.surface_build(None);
        let writes: Vec<_> = (0..40)
            .map(|k| {
                let x = -9 + (k * 7 + round * 13) % 50;
                let z = -20 + (k * 11 + round * 5) % 45;
                let y = -4 + (k * 3 + round) % 40;
                (IVec3::new(x, y, z), [materials::AIR, materials::WATER, materials::GRANITE][(k + round) as usize % 3])
            })
            .collect();
        server.batch_update(writes);
        replica.apply_changes(&server.take_changes()).unwrap();
        if let Some(b) = build.as_mut() {
            b.run(&Sequential);
        }
        if let Some(b) = build {
            replica.install_surfaces(b);
        }
        common::assert_surfaces_exact(&replica, &palette);
        assert_eq!(replica.digest(), server.digest());
    }
}
