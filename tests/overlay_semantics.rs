//! The overlay's semantics where a simpler design goes wrong (the C# sketch the
//! crate grew from went wrong at each of them): counts, reads during a
//! consolidation, strategies applied as chosen, consolidation into the base,
//! Euclidean radius queries, exact regions, integer keys and counters, revert
//! elision against the layer beneath, backpressure, bad input, time batches.

use bevy_delta_overlay::{
    Aabb, BaseIndex, ConsolidationStrategy, DeltaConfig, DeltaStorage, MaterialId, VoxelError,
    consolidation::AdaptiveChoices, consolidation::AppliedStrategy, coords::morton, coords::voxel_at,
};
use glam::{IVec3, Vec3};

const AIR: MaterialId = MaterialId(0);
const ROCK: MaterialId = MaterialId(1);
const SAND: MaterialId = MaterialId(2);

fn storage(config: DeltaConfig) -> DeltaStorage {
    let base = BaseIndex::uniform(Aabb::new(IVec3::splat(-256), IVec3::splat(256)), ROCK).unwrap();
    DeltaStorage::new(base, config)
}

/// The count is the map's length: no counter kept beside it drifts on reverts
/// that remove nothing or on overwrites.
#[test]
fn delta_count_is_the_number_of_entries() {
    let mut s = storage(DeltaConfig::default());
    let p = IVec3::new(1, 2, 3);
    s.update(p, ROCK).unwrap(); // revert with no delta: nothing to remove
    assert_eq!(s.delta_count(), 0);
    s.update(p, SAND).unwrap();
    s.update(p, AIR).unwrap(); // overwrite: still one entry
    s.update(p, SAND).unwrap();
    assert_eq!(s.delta_count(), 1);
    s.update(p, ROCK).unwrap(); // real revert
    s.update(p, ROCK).unwrap(); // and again: no underflow
    assert_eq!(s.delta_count(), 0);
}

/// Deltas stay readable until the base holds them: no read between begin and
/// finish sees the old material.
#[test]
fn deltas_stay_readable_until_installed() {
    let mut s = storage(DeltaConfig::default());
    let p = IVec3::new(-7, 0, 9);
    s.update(p, SAND).unwrap();
    let job = s.begin_consolidation(ConsolidationStrategy::LazyThreshold).unwrap();
    assert_eq!(s.query(p).unwrap(), SAND, "frozen delta read while the job is out");
    assert_eq!(s.base().get(p).unwrap(), ROCK);
    let output = job.run();
    assert_eq!(s.query(p).unwrap(), SAND, "still readable after run, before finish");
    s.finish_consolidation(output).unwrap();
    assert_eq!(s.base().get(p).unwrap(), SAND);
    assert_eq!(s.query(p).unwrap(), SAND);
}

/// `Adaptive` applies the strategy it chose (not everything regardless).
#[test]
fn adaptive_applies_the_strategy_it_chose() {
    let mut s =
        storage(DeltaConfig { adaptive_spatial_above: 100, chunk_size: 32, spatial_share: 0.01, ..Default::default() });
    // A dense chunk and scattered deltas elsewhere.
    for x in 0..8 {
        for z in 0..8 {
            s.update(IVec3::new(x, 0, z), SAND).unwrap();
        }
    }
    for i in 0..100 {
        s.update(IVec3::new(-200 + i * 4, 100, 150), SAND).unwrap();
    }
    let report = s.consolidate(ConsolidationStrategy::Adaptive).unwrap();
    assert_eq!(report.strategy, AppliedStrategy::SpatialClustering { adaptive: true });
    // Spatial took the dense chunk, not the oldest half nor everything.
    assert_eq!(report.deltas, 64);
    assert_eq!(s.delta_count(), 100);
    assert_eq!(s.stats().consolidation.adaptive, AdaptiveChoices { lazy: 0, spatial: 1, time: 0 });

    // Few, young deltas: lazy, which takes the oldest half.
    let mut s = storage(DeltaConfig::default());
    for i in 0..10 {
        s.update(IVec3::new(i, 0, 0), SAND).unwrap();
        s.advance_clock(std::time::Duration::from_millis(10));
    }
    let report = s.consolidate(ConsolidationStrategy::Adaptive).unwrap();
    assert_eq!(report.strategy, AppliedStrategy::LazyThreshold { adaptive: true });
    assert_eq!(report.deltas, 5);
    for i in 0..5 {
        assert!(!s.has_delta(IVec3::new(i, 0, 0)).unwrap(), "the oldest went first");
    }
}

/// Spatial clustering moves its clusters into the base (not back into the
/// overlay).
#[test]
fn spatial_clustering_moves_deltas_into_the_base() {
    let mut s = storage(DeltaConfig { spatial_share: 1.0, ..Default::default() });
    let ps: Vec<_> = (0..50).map(|i| IVec3::new(i % 7, i / 7, 3)).collect();
    for &p in &ps {
        s.update(p, SAND).unwrap();
    }
    let report = s.consolidate(ConsolidationStrategy::SpatialClustering).unwrap();
    assert_eq!(report.deltas, 50);
    assert_eq!(s.delta_count(), 0);
    for p in ps {
        assert_eq!(s.base().get(p).unwrap(), SAND);
    }
}

/// Radius queries are Euclidean (Morton codes compared numerically are not a
/// distance), and encoding refuses what it cannot hold instead of shifting
/// negatives or truncating fractions.
#[test]
fn radius_queries_are_euclidean_and_encoding_is_checked() {
    let mut s = storage(DeltaConfig::default());
    let center = IVec3::ZERO;
    // Spatial neighbours whose Morton codes are far apart (across the sign
    // boundary), and a far voxel whose code is close to the centre's.
    let near = [IVec3::new(-1, 0, 0), IVec3::new(0, -1, 0), IVec3::new(0, 0, -1), IVec3::new(1, 1, 1)];
    let far = IVec3::new(8, 0, 0);
    for p in near.into_iter().chain([far]) {
        s.update(p, SAND).unwrap();
    }
    let code = |p| morton::encode(p).unwrap() as i128;
    assert!((code(near[0]) - code(center)).abs() > (code(far) - code(center)).abs());
    let mut found: Vec<_> = s.deltas_within(center, 2.0).unwrap().into_iter().map(|d| d.position).collect();
    found.sort_by_key(|p| p.to_array());
    let mut want = near.to_vec();
    want.sort_by_key(|p| p.to_array());
    assert_eq!(found, want);
    assert!(matches!(s.deltas_within(center, f32::NAN), Err(VoxelError::InvalidRadius { .. })));

    assert_eq!(voxel_at(Vec3::new(-0.25, 3.75, -2.0)), Ok(IVec3::new(-1, 3, -2)));
    assert!(matches!(morton::encode(IVec3::new(-(1 << 20) - 1, 0, 0)), Err(VoxelError::OutOfMortonRange { .. })));
}

/// Region queries apply the overlay.
#[test]
fn region_queries_apply_the_overlay() {
    let mut s = storage(DeltaConfig::default());
    let p = IVec3::new(5, 6, 7);
    s.update(p, SAND).unwrap();
    let region = s.query_region(Aabb::new(IVec3::ZERO, IVec3::splat(16)), 0).unwrap();
    assert_eq!(region.get(p), Some(SAND));
    assert_eq!(region.get(p + IVec3::X), Some(ROCK));
    // And deltas of an in-flight job too.
    let _job = s.begin_consolidation(ConsolidationStrategy::LazyThreshold).unwrap();
    s.update(p + IVec3::X, AIR).unwrap();
    let region = s.query_region(Aabb::new(IVec3::ZERO, IVec3::splat(16)), 0).unwrap();
    assert_eq!((region.get(p), region.get(p + IVec3::X)), (Some(SAND), Some(AIR)));
}

/// Integer keys for voxels, and counters exact under concurrent reads.
#[test]
fn integer_keys_and_exact_counters_under_concurrent_reads() {
    let mut s = storage(DeltaConfig::default());
    s.update(IVec3::ZERO, SAND).unwrap();
    assert!(matches!(voxel_at(Vec3::new(f32::NAN, 0.0, 0.0)), Err(VoxelError::NonFinite { .. })));
    let s = &s;
    std::thread::scope(|scope| {
        for t in 0..4 {
            scope.spawn(move || {
                for i in 0..10_000 {
                    let p = if i % 2 == 0 { IVec3::ZERO } else { IVec3::new(t, i % 100, 1) };
                    s.query(p).unwrap();
                }
            });
        }
    });
    let stats = s.stats();
    assert_eq!(stats.queries(), 40_000);
    assert_eq!(stats.delta_hits, 20_000);
}

/// A revert compares with the layer beneath, in-flight layers included:
/// writing the base's value over an in-flight delta keeps it as a delta.
#[test]
fn revert_compares_with_the_layer_beneath_including_in_flight() {
    let mut s = storage(DeltaConfig::default());
    let p = IVec3::new(3, 3, 3);
    s.update(p, SAND).unwrap();
    let job = s.begin_consolidation(ConsolidationStrategy::LazyThreshold).unwrap();
    s.update(p, ROCK).unwrap(); // equals the base, but not the frozen SAND beneath
    assert_eq!(s.query(p).unwrap(), ROCK);
    assert!(s.has_delta(p).unwrap());
    s.finish_consolidation(job.run()).unwrap();
    assert_eq!(s.base().get(p).unwrap(), SAND);
    assert_eq!(s.query(p).unwrap(), ROCK, "the later write still wins");
    assert_eq!(s.delta_count(), 1);
    s.update(p, SAND).unwrap(); // now a true revert to what the base holds
    assert_eq!(s.delta_count(), 0);
}

/// Bounded memory: past the hard cap, updates consolidate synchronously and the
/// overlay never grows beyond the cap.
#[test]
fn hard_cap_applies_backpressure() {
    let mut s = storage(DeltaConfig { threshold: 10, hard_cap: 100, ..Default::default() });
    for i in 0..1000 {
        s.update(IVec3::new(i % 200 - 100, i / 200, 0), SAND).unwrap();
        assert!(s.delta_count() <= 100);
    }
    let stats = s.stats().consolidation;
    assert!(stats.finished.backpressure > 0);
    assert_eq!(stats.finished.total(), stats.finished.backpressure, "only the cap consolidated");
    // A lowered cap takes effect at once.
    s.set_config(DeltaConfig { threshold: 5, hard_cap: 10, ..s.config().clone() });
    assert!(s.delta_count() <= 10);
}

/// Bad input: a batch reports its bad positions, applies the rest, counts the rejects.
#[test]
fn bad_positions_are_reported_and_the_rest_applied() {
    let mut s = storage(DeltaConfig::default());
    let outcome =
        s.batch_update([(IVec3::new(1, 1, 1), SAND), (IVec3::new(300, 0, 0), SAND), (IVec3::new(2, 2, 2), SAND)]);
    assert_eq!(outcome.applied, 2);
    assert_eq!(outcome.rejected.len(), 1);
    assert_eq!(outcome.rejected[0].update.position, IVec3::new(300, 0, 0));
    assert!(matches!(outcome.rejected[0].error, VoxelError::OutOfBounds { .. }));
    assert_eq!(s.stats().rejects, 1);
    assert_eq!(s.delta_count(), 2);
    assert!(s.update(IVec3::new(0, -300, 0), SAND).is_err());
    assert_eq!(s.stats().rejects, 2);
}

/// Time-based batching takes exactly the deltas older than `max_age`.
#[test]
fn time_based_batching_takes_the_old_deltas() {
    let mut s = storage(DeltaConfig { max_age: std::time::Duration::from_secs(60), ..Default::default() });
    s.update(IVec3::new(0, 0, 0), SAND).unwrap();
    s.advance_clock(std::time::Duration::from_secs(61));
    s.update(IVec3::new(1, 0, 0), SAND).unwrap();
    assert!(s.should_consolidate(), "max_age passed since the last attempt");
    let report = s.consolidate(ConsolidationStrategy::TimeBasedBatching).unwrap();
    assert_eq!(report.deltas, 1);
    assert!(s.has_delta(IVec3::new(1, 0, 0)).unwrap());
    assert!(s.consolidate(ConsolidationStrategy::TimeBasedBatching).is_none(), "nothing old enough");
}

/// A reader taking a snapshot every frame (a mesher, a saver) while the world
/// changes between frames costs no sealed layer per snapshot: after 1,000
/// frames the overlay has as many layers and, within 2x, as much memory as
/// the same frames with no snapshot, and every snapshot read what the world
/// was when it was taken.
#[test]
fn a_snapshot_every_frame_piles_nothing_up() {
    let frames = 1000;
    let run = |snapshots: bool| {
        let mut s = storage(DeltaConfig::default());
        let mut held = None;
        let mut max_layers = 0;
        let mut max_bytes = 0;
        for f in 0..frames {
            let edits: Vec<_> = (0..100)
                .map(|i| {
                    let k = (f * 100 + i) as i32;
                    (IVec3::new(k % 61, (k / 61) % 29, (k / 1769) % 61), MaterialId((k % 5) as u16 + 2))
                })
                .collect();
            s.batch_update(edits.iter().copied());
            s.consolidate_if_needed();
            if snapshots {
                let snapshot = s.snapshot();
                let (p, m) = edits[f % edits.len()];
                assert_eq!(snapshot.sequence(), s.sequence());
                let mut region = bevy_delta_overlay::base::Region::default();
                snapshot.read_region(Aabb::new(p, p + IVec3::ONE), &mut region).unwrap();
                assert_eq!(region.get(p), Some(m));
                // Held a frame, as a mesher working on the pool would.
                held = Some(snapshot);
            }
            let stats = s.stats();
            max_layers = max_layers.max(stats.sealed_layers);
            max_bytes = max_bytes.max(stats.overlay_bytes);
        }
        drop(held);
        (max_layers, max_bytes, s.digest())
    };
    let (layers, bytes, digest) = run(false);
    let (layers_snap, bytes_snap, digest_snap) = run(true);
    eprintln!(
        "1,000 frames: at most {layers} sealed layers and {bytes} bytes without snapshots, {layers_snap} and {bytes_snap} with one a frame"
    );
    assert_eq!(digest, digest_snap);
    assert!(
        layers_snap <= (2 * layers).max(1),
        "{layers_snap} sealed layers at most, against {layers} without snapshots"
    );
    assert!(bytes_snap <= 2 * bytes, "{bytes_snap} bytes of overlay at most, against {bytes} without snapshots");
}
