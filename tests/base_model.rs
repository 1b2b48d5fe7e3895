//! Model-based tests of the base index against a dense oracle: reads, LOD reads
//! against a brute-force majority pyramid, regions at several levels, pruning and
//! bounds errors, on worlds of any bounds (whole bricks or not).

mod common;

use bevy_delta_overlay::{Aabb, BaseIndex, MaterialId, VoxelError, coords::morton};
use common::{Dense, pyramid_get};
use glam::IVec3;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// The example of a world that is whole bricks on no axis.
const ODD_WORLD: Aabb = Aabb::new(IVec3::new(-40, -20, -40), IVec3::new(60, 44, 70));

fn world_bounds() -> impl Strategy<Value = Aabb> {
    prop_oneof![
        // Whole bricks.
        ((-2i32..=1, -2i32..=1, -2i32..=1), (1i32..=3, 1i32..=2, 1i32..=3)).prop_map(|((x, y, z), (sx, sy, sz))| {
            let min = IVec3::new(x, y, z) * 16;
            Aabb::new(min, min + IVec3::new(sx, sy, sz) * 16)
        }),
        // Any corner and size, down to one voxel.
        ((-40i32..40, -40i32..40, -40i32..40), (1i32..=50, 1i32..=40, 1i32..=50)).prop_map(
            |((x, y, z), (sx, sy, sz))| {
                let min = IVec3::new(x, y, z);
                Aabb::new(min, min + IVec3::new(sx, sy, sz))
            }
        ),
        Just(ODD_WORLD),
    ]
}

/// A world, an initial material and batches of writes inside it. Writes cluster in
/// a few hot spots so bricks fill up, become uniform and collapse.
fn scenario() -> impl Strategy<Value = (Aabb, MaterialId, Vec<Vec<(IVec3, MaterialId)>>)> {
    (world_bounds(), 0u16..3).prop_flat_map(|(bounds, m0)| {
        let s = bounds.size();
        let write = (0..s.x, 0..s.y, 0..s.z, 0u16..3, prop::bool::ANY).prop_map(move |(x, y, z, m, hot)| {
            let p = if hot { IVec3::new(x % 5, y % 4, z % 6) } else { IVec3::new(x, y, z) };
            (bounds.min + p, MaterialId(m))
        });
        (Just(bounds), Just(MaterialId(m0)), prop::collection::vec(prop::collection::vec(write, 0..300), 1..6))
    })
}

fn sub_box(bounds: Aabb) -> impl Strategy<Value = Aabb> {
    let s = bounds.size();
    (0..s.x, 0..s.y, 0..s.z, 1..=s.x, 1..=s.y, 1..=s.z).prop_map(move |(x, y, z, w, h, d)| {
        let min = bounds.min + IVec3::new(x, y, z);
        Aabb::new(min, (min + IVec3::new(w, h, d)).min(bounds.max))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn reads_lod_and_regions_match_the_oracle(
        (bounds, m0, batches) in scenario(),
        probe in any::<prop::sample::Index>(),
        region_seed in any::<u64>(),
    ) {
        let mut base = BaseIndex::uniform(bounds, m0).unwrap();
        let mut oracle = Dense::filled(bounds, m0);
        for batch in &batches {
            base.apply_batch(batch).unwrap();
            for &(p, m) in batch {
                oracle.set(p, m);
            }
            // Every voxel, through one region read, and single reads on the batch.
            let all = base.region(bounds, 0).unwrap();
            prop_assert_eq!(all.as_slice(), &oracle.cells[..]);
            for &(p, _) in batch {
                prop_assert_eq!(base.get(p).unwrap(), oracle.get(p));
            }
        }
        let pyramid = oracle.pyramid(base.max_lod());
        let s = bounds.size();
        let p = bounds.min + {
            let i = probe.index((s.x * s.y * s.z) as usize) as i32;
            IVec3::new(i % s.x, (i / s.x) % s.y, i / (s.x * s.y))
        };
        for lod in 0..=base.max_lod() {
            prop_assert_eq!(base.get_lod(p, lod).unwrap(), pyramid_get(&pyramid, bounds.min, p, lod), "lod {}", lod);
        }
        // Regions of a pseudo-random sub-box at every level, cell by cell.
        let mut runner = proptest::test_runner::TestRunner::new_with_rng(
            Default::default(),
            proptest::test_runner::TestRng::from_seed(
                proptest::test_runner::RngAlgorithm::ChaCha,
                &[region_seed as u8; 32],
            ),
        );
        let sub = sub_box(bounds).new_tree(&mut runner).unwrap().current();
        for lod in 0..=base.max_lod() {
            let r = base.region(sub, lod).unwrap();
            prop_assert!(r.world_bounds().contains_box(&sub));
            let size = r.size();
            for z in 0..size.z {
                for y in 0..size.y {
                    for x in 0..size.x {
                        let cell_min = r.origin() + (IVec3::new(x, y, z) << i32::from(lod));
                        prop_assert_eq!(
                            r.get(cell_min),
                            Some(pyramid_get(&pyramid, bounds.min, cell_min, lod)),
                            "lod {} cell {}", lod, cell_min
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn writing_everything_back_prunes_to_the_original_node_count(
        (bounds, m0, batches) in scenario(),
    ) {
        let mut base = BaseIndex::uniform(bounds, m0).unwrap();
        for batch in &batches {
            base.apply_batch(batch).unwrap();
        }
        let touched: Vec<_> = batches.iter().flatten().map(|&(p, _)| (p, m0)).collect();
        base.apply_batch(&touched).unwrap();
        let stats = base.stats();
        prop_assert_eq!(stats.nodes(), 1, "{:?}", stats);
        prop_assert_eq!(stats.uniform_fraction, 1.0);
    }

    #[test]
    fn one_bad_position_rejects_the_whole_batch(
        (bounds, m0, batches) in scenario(),
        at in any::<prop::sample::Index>(),
        outside in prop_oneof![Just(IVec3::X), Just(IVec3::NEG_Y), Just(IVec3::Z)],
    ) {
        let mut base = BaseIndex::uniform(bounds, m0).unwrap();
        let mut batch = batches[0].clone();
        let bad = if outside.min_element() < 0 { bounds.min + outside } else { bounds.max - IVec3::ONE + outside };
        batch.insert(at.index(batch.len() + 1), (bad, MaterialId(7)));
        let before = base.region(bounds, 0).unwrap();
        prop_assert_eq!(
            base.apply_batch(&batch),
            Err(VoxelError::OutOfBounds { position: bad, bounds })
        );
        prop_assert_eq!(base.region(bounds, 0).unwrap(), before);
        prop_assert!(base.get(bad).is_err());
    }

    #[test]
    fn morton_round_trips(x in morton::COORD_MIN..=morton::COORD_MAX, y in morton::COORD_MIN..=morton::COORD_MAX, z in morton::COORD_MIN..=morton::COORD_MAX) {
        let p = IVec3::new(x, y, z);
        prop_assert_eq!(morton::decode(morton::encode(p).unwrap()), Ok(p));
    }
}

#[test]
fn morton_edges_round_trip_and_out_of_range_is_an_error() {
    let (lo, hi) = (morton::COORD_MIN, morton::COORD_MAX);
    for x in [lo, lo + 1, -1, 0, 1, hi - 1, hi] {
        for y in [lo, -1, 0, hi] {
            for z in [lo, 0, hi] {
                let p = IVec3::new(x, y, z);
                let code = morton::encode(p).unwrap();
                assert!(code < morton::CODE_END);
                assert_eq!(morton::decode(code), Ok(p));
            }
        }
    }
    for bad in [IVec3::new(hi + 1, 0, 0), IVec3::new(0, lo - 1, 0), IVec3::new(0, 0, i32::MAX)] {
        assert_eq!(morton::encode(bad), Err(VoxelError::OutOfMortonRange { position: bad }));
    }
    assert!(morton::decode(morton::CODE_END).is_err());
}

#[test]
fn a_uniform_world_costs_one_node_whatever_its_size() {
    for size in [32, 256, 4096, 1 << 20] {
        let bounds = Aabb::new(IVec3::splat(-size / 2), IVec3::splat(size / 2));
        let base = BaseIndex::uniform(bounds, MaterialId(3)).unwrap();
        let stats = base.stats();
        assert_eq!(stats.nodes(), 1);
        assert_eq!(stats.bricks, 0);
        assert!(stats.bytes < 256, "{stats:?}");
    }
}

#[test]
fn one_dense_brick_costs_8_kib_plus_a_small_constant() {
    let bounds = Aabb::new(IVec3::ZERO, IVec3::splat(16));
    let mut base = BaseIndex::uniform(bounds, MaterialId(1)).unwrap();
    let empty = base.stats().bytes;
    base.apply_batch(&[(IVec3::new(1, 2, 3), MaterialId(2))]).unwrap();
    let stats = base.stats();
    assert_eq!(stats.bricks, 1);
    let brick = stats.bytes - empty;
    assert!((8192..=8192 + 192).contains(&brick), "a brick costs {brick} bytes");
}

#[test]
fn invalid_bounds_are_refused() {
    let bad = [
        Aabb::new(IVec3::ZERO, IVec3::ZERO),
        Aabb::new(IVec3::splat(5), IVec3::new(6, 5, 6)),
        Aabb::new(IVec3::ZERO, IVec3::new(1 << 21, 16, 16)),
        Aabb::new(IVec3::new(-(1 << 20) - 1, 0, 0), IVec3::ONE),
        // A max component of i32::MIN: empty, refused before `max - 1` could wrap.
        Aabb::new(IVec3::ZERO, IVec3::new(i32::MIN, 16, 16)),
        Aabb::new(IVec3::splat(i32::MIN), IVec3::splat(i32::MAX)),
    ];
    for bounds in bad {
        assert_eq!(BaseIndex::uniform(bounds, MaterialId(0)).err(), Some(VoxelError::InvalidBounds { bounds }));
    }
}

#[test]
fn worlds_of_any_size_read_and_refuse_like_their_bounds() {
    for bounds in
        [ODD_WORLD, Aabb::new(IVec3::splat(-3), IVec3::splat(-2)), Aabb::new(IVec3::ZERO, IVec3::new(17, 1, 33))]
    {
        let mut base = BaseIndex::uniform(bounds, MaterialId(1)).unwrap();
        let corner = bounds.max - IVec3::ONE;
        base.apply_batch(&[(bounds.min, MaterialId(3)), (corner, MaterialId(2))]).unwrap();
        assert_eq!(base.get(corner), Ok(MaterialId(2)));
        if corner != bounds.min {
            assert_eq!(base.get(bounds.min), Ok(MaterialId(3)));
        }
        for outside in [bounds.max, bounds.min - IVec3::ONE, IVec3::new(bounds.max.x, bounds.min.y, bounds.min.z)] {
            assert_eq!(base.get(outside), Err(VoxelError::OutOfBounds { position: outside, bounds }));
            assert!(base.apply_batch(&[(outside, MaterialId(2))]).is_err());
        }
    }
}

#[test]
fn lod_and_region_errors() {
    let bounds = Aabb::new(IVec3::ZERO, IVec3::splat(32));
    let base = BaseIndex::uniform(bounds, MaterialId(0)).unwrap();
    assert_eq!(base.max_lod(), 5);
    assert!(matches!(base.get_lod(IVec3::ONE, 6), Err(VoxelError::LodOutOfRange { lod: 6, max: 5 })));
    let outside = Aabb::new(IVec3::splat(-1), IVec3::splat(4));
    assert!(matches!(base.region(outside, 0), Err(VoxelError::InvalidRegion { .. })));
    assert!(matches!(base.region(Aabb::default(), 0), Err(VoxelError::InvalidRegion { .. })));
}
