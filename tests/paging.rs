//! Paging: reads with eviction and reload equal the reads of the same world
//! held wholly in memory, under random edits and interest moves (a model
//! test against a plain world as the oracle); a sector generated alone is
//! the whole world's generator's voxels there.

use bevy_delta_overlay::paging::{Interest, Paged, PagedWorld, PagingSettings};
use bevy_delta_overlay::{DeltaConfig, DeltaStorage, MaterialId, WorldGen};
use glam::{IVec3, Vec3};
use proptest::prelude::*;

fn generator() -> WorldGen {
    WorldGen { min: IVec3::new(-40, 0, 16), size: IVec3::new(160, 48, 112), sea_level: 26, seed: 7 }
}

#[test]
fn a_sector_generated_alone_holds_the_whole_worlds_voxels() {
    let g = generator();
    let whole = g.build().unwrap();
    let settings = PagingSettings { sector_columns: 32, ..PagingSettings::default() };
    let mut paged = PagedWorld::new(g.clone(), settings, DeltaConfig::default()).unwrap();
    let b = g.bounds();
    for x in b.min.x..b.max.x {
        for z in (b.min.z..b.max.z).step_by(3) {
            for y in b.min.y..b.max.y {
                let p = IVec3::new(x, y, z);
                assert_eq!(paged.get_blocking(p), whole.get(p), "{p}");
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Edit(IVec3, u16),
    Move(IVec3, i32, Vec3),
    Tick,
    Settle,
}

fn position() -> impl Strategy<Value = IVec3> {
    let b = generator().bounds();
    (b.min.x..b.max.x, b.min.y..b.max.y, b.min.z..b.max.z).prop_map(|(x, y, z)| IVec3::new(x, y, z))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (position(), 1u16..12).prop_map(|(p, m)| Op::Edit(p, m)),
        2 => (position(), 0i32..40, -30.0f32..30.0, -30.0f32..30.0)
            .prop_map(|(p, r, vx, vz)| Op::Move(p, r, Vec3::new(vx, 0.0, vz))),
        2 => Just(Op::Tick),
        1 => Just(Op::Settle),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Every read that answers `Resident` is the oracle's value, and a
    /// blocking read always is, through edits, moves, page-ins and
    /// evictions under a budget of about two sectors.
    #[test]
    fn paged_reads_equal_a_world_held_in_memory(ops in prop::collection::vec(op(), 1..60), probes in prop::collection::vec(position(), 40)) {
        let g = generator();
        let mut oracle = DeltaStorage::new(g.build().unwrap(), DeltaConfig::default());
        let settings = PagingSettings { sector_columns: 32, resident_budget: 300_000, prefetch_seconds: 1.0, ..PagingSettings::default() };
        let mut paged = PagedWorld::new(g, settings, DeltaConfig::default()).unwrap();
        for op in ops {
            match op {
                Op::Edit(p, m) => {
                    paged.update(p, MaterialId(m)).unwrap();
                    oracle.update(p, MaterialId(m)).unwrap();
                }
                Op::Move(center, radius, velocity) => paged.set_interest(&[Interest { center, radius, velocity }]),
                Op::Tick => paged.tick(),
                Op::Settle => paged.tick_until_resident(),
            }
            for &p in &probes {
                match paged.get(p).unwrap() {
                    Paged::Resident(m) => prop_assert_eq!(Ok(m), oracle.query(p), "{}", p),
                    Paged::Coarse(_) | Paged::NotResident => {}
                }
            }
        }
        let evicted = paged.stats().evicted;
        for &p in &probes {
            prop_assert_eq!(paged.get_blocking(p), oracle.query(p), "{} (after {} evictions)", p, evicted);
        }
    }
}

#[test]
fn a_moving_interest_is_resident_ahead_and_memory_stays_under_the_budget() {
    let g = WorldGen { size: IVec3::new(2048, 64, 256), sea_level: 30, ..WorldGen::default() };
    let settings =
        PagingSettings { sector_columns: 64, resident_budget: 6 << 20, prefetch_seconds: 2.0, ..Default::default() };
    let mut paged = PagedWorld::new(g, settings, DeltaConfig::default()).unwrap();
    let mut x = 40.0f32;
    let speed = 20.0;
    let mut ahead = (0, 0);
    // 60 s at 60 frames a second, crossing 1,200 columns.
    for frame in 0..3600 {
        let center = IVec3::new(x as i32, 40, 128);
        paged.set_interest(&[Interest { center, radius: 48, velocity: Vec3::new(speed, 0.0, 0.0) }]);
        if frame == 0 {
            paged.tick_until_resident();
        }
        paged.tick();
        if frame % 10 == 0 {
            // The reads a process makes ahead of the interest.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let probe = IVec3::new((x + 40.0) as i32, 30, 128);
        ahead.0 += 1;
        if !paged.get(probe).unwrap().is_resident() {
            ahead.1 += 1;
        }
        x += speed / 60.0;
    }
    let stats = paged.stats();
    assert!(stats.evicted > 0, "{stats:?}");
    assert!(stats.peak_resident_bytes <= (6 << 20) + (2 << 20), "{stats:?}");
    assert!(ahead.1 * 1000 <= ahead.0, "{} of {} reads ahead found their sector not resident", ahead.1, ahead.0);
}

#[test]
fn an_evicted_sector_answers_its_bricks_coarse_values() {
    let g = generator();
    let whole = g.build().unwrap();
    let settings = PagingSettings { sector_columns: 32, resident_budget: 1, ..PagingSettings::default() };
    let mut paged = PagedWorld::new(g.clone(), settings, DeltaConfig::default()).unwrap();
    let (here, there) = (IVec3::new(-30, 10, 20), IVec3::new(100, 10, 100));
    paged.set_interest(&[Interest { center: here, radius: 1, ..Default::default() }]);
    paged.tick_until_resident();
    paged.set_interest(&[Interest { center: there, radius: 1, ..Default::default() }]);
    paged.tick_until_resident();
    assert!(paged.stats().coarse_sectors >= 1, "{:?}", paged.stats());
    let b = g.bounds();
    for y in (b.min.y..b.max.y).step_by(5) {
        for x in -40..-8 {
            let p = IVec3::new(x, y, 20);
            assert_eq!(paged.get(p).unwrap(), Paged::Coarse(whole.get_lod(p, 4).unwrap()), "{p}");
        }
    }
    // A region read there is filled with the same coarse values.
    let bounds = bevy_delta_overlay::Aabb::new(IVec3::new(-40, 0, 16), IVec3::new(-9, 48, 48));
    let mut cells = bevy_delta_overlay::base::Region::default();
    let read = paged.read_region(bounds, &mut cells).unwrap();
    assert_eq!(read.coarse, vec![bounds]);
    for z in (bounds.min.z..bounds.max.z).step_by(3) {
        for y in bounds.min.y..bounds.max.y {
            for x in bounds.min.x..bounds.max.x {
                let p = IVec3::new(x, y, z);
                assert_eq!(Paged::Coarse(cells.get(p).unwrap()), paged.get(p).unwrap(), "{p}");
            }
        }
    }
    // Resident again: exact answers, the coarse values let go of.
    paged.set_interest(&[Interest { center: here, radius: 1, ..Default::default() }]);
    paged.tick_until_resident();
    assert_eq!(paged.get(here).unwrap(), Paged::Resident(whole.get(here).unwrap()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A region read is the oracle's voxels wherever its sectors are
    /// resident, and names exactly the parts that were not.
    #[test]
    fn region_reads_are_exact_where_resident_and_name_what_was_missing(
        edits in prop::collection::vec((position(), 1u16..12), 0..40),
        center in position(),
        corner in position(),
        size in (1i32..80, 1i32..20, 1i32..80),
    ) {
        let g = generator();
        let mut oracle = DeltaStorage::new(g.build().unwrap(), DeltaConfig::default());
        let settings = PagingSettings { sector_columns: 32, ..PagingSettings::default() };
        let mut paged = PagedWorld::new(g.clone(), settings, DeltaConfig::default()).unwrap();
        for (p, m) in edits {
            paged.update(p, MaterialId(m)).unwrap();
            oracle.update(p, MaterialId(m)).unwrap();
        }
        paged.set_interest(&[Interest { center, radius: 20, ..Default::default() }]);
        paged.tick_until_resident();
        let bounds = bevy_delta_overlay::Aabb::new(corner, corner + IVec3::new(size.0, size.1, size.2))
            .intersection(&g.bounds());
        let mut cells = bevy_delta_overlay::base::Region::default();
        let read = paged.read_region(bounds, &mut cells).unwrap();
        let exact = oracle.query_region(bounds, 0).unwrap();
        for z in bounds.min.z..bounds.max.z {
            for y in bounds.min.y..bounds.max.y {
                for x in bounds.min.x..bounds.max.x {
                    let p = IVec3::new(x, y, z);
                    let missing = read.missing.iter().any(|m| m.contains(p));
                    prop_assert_eq!(missing, !paged.get(p).unwrap().is_resident(), "{}", p);
                    if !missing {
                        prop_assert_eq!(cells.get(p), exact.get(p), "{}", p);
                    }
                }
            }
        }
    }
}
