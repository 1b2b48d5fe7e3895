//! Hostile and extreme input through the public API: another storage's job
//! output, huge radii and boxes, bounds whose arithmetic would overflow, a
//! clock past 49 days. Each doc says what once broke; each case failed before
//! its fix.

use bevy_delta_overlay::{
    Aabb, BaseIndex, ConsolidationStrategy, DeltaConfig, DeltaStorage, MaterialId, VoxelError, WorldGen,
    consolidation::ConsolidationError,
};
use glam::IVec3;
use std::time::Duration;

const ROCK: MaterialId = MaterialId(1);
const SAND: MaterialId = MaterialId(2);
const MUD: MaterialId = MaterialId(3);

fn storage(config: DeltaConfig) -> DeltaStorage {
    DeltaStorage::new(BaseIndex::uniform(Aabb::new(IVec3::splat(-64), IVec3::splat(64)), ROCK).unwrap(), config)
}

/// `finish_consolidation` matched outputs by a per-storage job counter only: with
/// `a` and `b` each on their first job, `b.finish_consolidation(job_a.run())`
/// installed `a`'s bricks into `b` and lost `b`'s own accepted update.
#[test]
fn an_output_is_refused_by_every_storage_but_the_one_that_made_it() {
    let (mut a, mut b) = (storage(DeltaConfig::default()), storage(DeltaConfig::default()));
    let p = IVec3::new(1, 2, 3);
    a.update(p, SAND).unwrap();
    b.update(p, MUD).unwrap();
    let job_a = a.begin_consolidation(ConsolidationStrategy::LazyThreshold).unwrap();
    let job_b = b.begin_consolidation(ConsolidationStrategy::LazyThreshold).unwrap();
    assert_eq!(b.finish_consolidation(job_a.run()), Err(ConsolidationError::ForeignJob));
    assert_eq!(b.query(p), Ok(MUD), "b's update survives");
    assert_eq!(b.base().get(p), Ok(ROCK), "nothing of a's was installed");
    assert_eq!(b.stats().consolidation.discarded, 1);
    b.finish_consolidation(job_b.run()).unwrap();
    assert_eq!(b.base().get(p), Ok(MUD));

    // A clone is another storage too: its original's job is foreign to it.
    let mut c = storage(DeltaConfig::default());
    c.update(p, SAND).unwrap();
    let job = c.begin_consolidation(ConsolidationStrategy::LazyThreshold).unwrap();
    let mut clone = c.clone();
    assert!(!clone.in_flight());
    assert_eq!(clone.finish_consolidation(job.run()), Err(ConsolidationError::ForeignJob));
    assert_eq!(clone.query(p), Ok(SAND));
}

/// `deltas_within` overflowed for a huge finite radius (`1.0e10`: a panic in
/// debug, a wrong empty answer in release) and for a centre far outside the
/// world; `deltas_in` with a box far larger than the world overflowed
/// `Aabb::volume` or walked 2^69 bricks.
#[test]
fn spatial_queries_take_any_radius_centre_and_box() {
    let mut s = storage(DeltaConfig::default());
    let points = [IVec3::new(-64, -64, -64), IVec3::new(63, 63, 63), IVec3::new(0, 5, -9)];
    for &p in &points {
        s.update(p, SAND).unwrap();
    }
    let sorted = |mut v: Vec<IVec3>| {
        v.sort_by_key(|p| p.to_array());
        v
    };
    let all = sorted(points.to_vec());
    let within = |c, r| sorted(s.deltas_within(c, r).unwrap().into_iter().map(|e| e.position).collect());
    assert_eq!(within(IVec3::ZERO, 1.0e10), all);
    assert_eq!(within(IVec3::splat(i32::MAX), 1.0e10), all);
    assert_eq!(within(IVec3::splat(i32::MIN), f32::MAX), all);
    assert_eq!(within(IVec3::splat(i32::MAX), 5.0), Vec::<IVec3>::new());
    assert_eq!(within(IVec3::new(0, 5, -9), 0.0), vec![IVec3::new(0, 5, -9)]);
    let huge = Aabb::new(IVec3::splat(-(1 << 26)), IVec3::splat(1 << 26));
    assert_eq!(sorted(s.deltas_in(huge).into_iter().map(|e| e.position).collect()), all);
    let everything = Aabb::new(IVec3::splat(i32::MIN), IVec3::splat(i32::MAX));
    assert_eq!(s.deltas_in(everything).len(), 3);
    assert!(s.deltas_in(Aabb::new(IVec3::splat(i32::MAX - 1), IVec3::splat(i32::MAX))).is_empty());
}

/// Arithmetic ran before validation on hostile input: world generation and base
/// construction wrapped or panicked (a 2^24-wide world allocated 2^40 columns
/// before failing), and `Region::get` and `Aabb::volume` overflowed.
#[test]
fn hostile_input_gets_the_documented_error_or_none() {
    let wide = WorldGen { size: IVec3::new(1 << 24, 16, 1 << 24), ..WorldGen::default() };
    assert!(matches!(wide.build(), Err(VoxelError::InvalidBounds { .. })));
    let far = WorldGen { min: IVec3::splat(1 << 30), size: IVec3::splat(1 << 30), ..WorldGen::default() };
    assert!(matches!(far.build(), Err(VoxelError::InvalidBounds { .. })));
    let negative = WorldGen { size: IVec3::new(-16, 16, 16), ..WorldGen::default() };
    assert!(matches!(negative.build(), Err(VoxelError::InvalidBounds { .. })));
    let inverted = Aabb::new(IVec3::ZERO, IVec3::new(16, i32::MIN, 16));
    assert_eq!(BaseIndex::uniform(inverted, ROCK).err(), Some(VoxelError::InvalidBounds { bounds: inverted }));
    let base = BaseIndex::uniform(Aabb::new(IVec3::splat(-8), IVec3::splat(8)), ROCK).unwrap();
    let region = base.region(base.bounds(), 0).unwrap();
    assert_eq!(region.get(IVec3::splat(i32::MIN)), None);
    assert_eq!(region.get(IVec3::splat(i32::MAX)), None);
    let coarse = base.region(base.bounds(), 3).unwrap();
    assert_eq!(coarse.get(IVec3::splat(i32::MIN)), None);
    let long = Aabb::new(IVec3::new(i32::MIN, 0, 0), IVec3::new(i32::MAX, 1, 1));
    assert_eq!(long.volume(), u64::from(u32::MAX));
}

/// The storage clock was a u32 of milliseconds: once it saturated (49.7 days,
/// reached fast by a simulation that advances game time), time-based
/// consolidation never fired again, and a `max_age` beyond its range took young
/// deltas.
#[test]
fn the_clock_does_not_saturate_at_fifty_days() {
    let day = Duration::from_secs(86_400);
    let mut s =
        storage(DeltaConfig { max_age: day, strategy: ConsolidationStrategy::TimeBasedBatching, ..Default::default() });
    s.advance_clock(60 * day);
    s.update(IVec3::ZERO, SAND).unwrap();
    s.advance_clock(2 * day);
    assert!(s.should_consolidate(), "a day passed since the last attempt, 62 days in");
    assert_eq!(s.consolidate(ConsolidationStrategy::TimeBasedBatching).map(|r| r.deltas), Some(1));

    // A max_age beyond 49.7 days takes only deltas that old.
    let mut s = storage(DeltaConfig { max_age: 60 * day, ..Default::default() });
    s.update(IVec3::ZERO, SAND).unwrap();
    s.advance_clock(61 * day);
    s.update(IVec3::ONE, SAND).unwrap();
    assert_eq!(s.consolidate(ConsolidationStrategy::TimeBasedBatching).map(|r| r.deltas), Some(1));
    assert!(!s.has_delta(IVec3::ZERO).unwrap(), "61 days old: taken");
    assert!(s.has_delta(IVec3::ONE).unwrap(), "young: kept");
    assert_eq!(s.now(), 61 * day);
}

/// While a job was in flight one voxel could hold a frozen and an active delta,
/// and `delta_count()` counted both while the README called it "the number of
/// real differences". The count is now documented as what it is (entries over
/// the layers, the unit of the threshold and the cap), and equals the number of
/// differences exactly when the overlay has one layer.
#[test]
fn delta_count_is_what_its_docs_say() {
    let mut s = storage(DeltaConfig::default());
    let p = IVec3::new(4, 4, 4);
    s.update(p, SAND).unwrap();
    let job = s.begin_consolidation(ConsolidationStrategy::LazyThreshold).unwrap();
    s.update(p, MUD).unwrap();
    assert_eq!(s.delta_count(), 2, "one entry in each layer");
    assert_eq!(s.deltas_in(s.bounds()).len(), 1, "one voxel differs");
    assert_eq!(s.stats().sealed_layers, 1);
    s.finish_consolidation(job.run()).unwrap();
    assert_eq!(s.delta_count(), 1, "the sealed entry is in the base now");
    assert_eq!(s.stats().sealed_layers, 0);
    s.flush();
    assert_eq!(s.delta_count(), 0);
}
