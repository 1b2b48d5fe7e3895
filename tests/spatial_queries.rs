//! Spatial queries over deltas against brute force: boxes, spheres and the
//! single-linkage clusters of the seed's DBSCAN-like grouping (O(n²) definition).

use bevy_delta_overlay::{Aabb, BaseIndex, ConsolidationStrategy, DeltaConfig, DeltaStorage, MaterialId};
use glam::IVec3;
use proptest::prelude::*;

const WORLD: Aabb = Aabb::new(IVec3::new(-48, -16, -48), IVec3::new(48, 32, 48));

fn points() -> impl Strategy<Value = Vec<IVec3>> {
    prop::collection::vec(
        prop_oneof![
            (WORLD.min.x..WORLD.max.x, WORLD.min.y..WORLD.max.y, WORLD.min.z..WORLD.max.z),
            (0..8, 0..8, 0..8),
        ]
        .prop_map(|(x, y, z)| IVec3::new(x, y, z)),
        0..200,
    )
}

/// A storage holding a delta at each point, some of them sealed in a job.
fn storage_with(points: &[IVec3], freeze: bool) -> (DeltaStorage, Vec<IVec3>) {
    let base = BaseIndex::uniform(WORLD, MaterialId(1)).unwrap();
    let mut s = DeltaStorage::new(base, DeltaConfig::default());
    let (first, second) = points.split_at(points.len() / 2);
    for &p in first {
        s.update(p, MaterialId(2)).unwrap();
    }
    if freeze {
        // The job is dropped unrun: its deltas stay sealed, in flight, and readable.
        let _ = s.begin_consolidation(ConsolidationStrategy::LazyThreshold);
    }
    for &p in second {
        s.update(p, MaterialId(3)).unwrap();
    }
    let mut unique = points.to_vec();
    unique.sort_by_key(|p| p.to_array());
    unique.dedup();
    (s, unique)
}

fn sorted(mut v: Vec<IVec3>) -> Vec<IVec3> {
    v.sort_by_key(|p| p.to_array());
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn boxes_and_spheres_match_brute_force(
        pts in points(),
        freeze in any::<bool>(),
        min in (-60i32..60, -20i32..40, -60i32..60),
        size in (0i32..70, 0i32..40, 0i32..70),
        center in (-50i32..50, -20i32..35, -50i32..50),
        radius in 0.0f32..40.0,
    ) {
        let (s, unique) = storage_with(&pts, freeze);
        let min = IVec3::from(min);
        let b = Aabb::new(min, min + IVec3::from(size));
        let got = sorted(s.deltas_in(b).into_iter().map(|d| d.position).collect());
        prop_assert_eq!(got, unique.iter().copied().filter(|p| b.contains(*p)).collect::<Vec<_>>());
        let c = IVec3::from(center);
        let got = sorted(s.deltas_within(c, radius).unwrap().into_iter().map(|d| d.position).collect());
        // Exact: an f32 radius squared fits an f64, and so does the distance.
        let r2 = f64::from(radius) * f64::from(radius);
        let want: Vec<_> = unique.iter().copied().filter(|p| (*p - c).as_i64vec3().length_squared() as f64 <= r2).collect();
        prop_assert_eq!(got, want);
        // Each delta reports the material it reads as.
        for d in s.deltas_in(WORLD) {
            prop_assert_eq!(s.query(d.position).unwrap(), d.material);
        }
    }

    #[test]
    fn clusters_match_the_quadratic_definition(pts in points(), radius in 0.0f32..6.0, min_size in 1usize..5) {
        let (s, unique) = storage_with(&pts, false);
        let got = s.clusters(radius, min_size).unwrap();
        // O(n²) single linkage by flood fill, straight from the definition.
        let mut seen = vec![false; unique.len()];
        let mut want = Vec::new();
        for i in 0..unique.len() {
            if seen[i] {
                continue;
            }
            seen[i] = true;
            let mut cluster = vec![unique[i]];
            let mut k = 0;
            while k < cluster.len() {
                let p = cluster[k];
                for j in 0..unique.len() {
                    if !seen[j] && (unique[j] - p).as_vec3().length_squared() <= radius * radius {
                        seen[j] = true;
                        cluster.push(unique[j]);
                    }
                }
                k += 1;
            }
            if cluster.len() >= min_size {
                want.push(sorted(cluster));
            }
        }
        let mut got: Vec<Vec<IVec3>> = got.into_iter().map(sorted).collect();
        got.sort_by_key(|c| c.iter().map(|p| p.to_array()).collect::<Vec<_>>());
        want.sort_by_key(|c: &Vec<IVec3>| c.iter().map(|p| p.to_array()).collect::<Vec<_>>());
        prop_assert_eq!(got, want);
    }
}
