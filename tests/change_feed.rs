//! The change feed's guarantees that the storage model test does not see on its
//! own: numbering in input order inside dense batches, the recording bound and
//! its policy, resumed numbering, and `apply_changes` refusing bad batches whole.

use bevy_delta_overlay::{
    Aabb, BaseIndex, ChangeBatch, ConsolidationStrategy, DeltaConfig, DeltaStorage, MaterialId, MaterialUpdate,
    storage::FeedError,
};
use glam::IVec3;

const ROCK: MaterialId = MaterialId(1);

fn storage() -> DeltaStorage {
    let mut s = DeltaStorage::new(
        BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(64)), ROCK).unwrap(),
        Default::default(),
    );
    s.record_changes(1 << 16);
    s
}

#[test]
fn a_dense_batch_is_numbered_in_input_order() {
    let mut s = storage();
    // Hundreds of writes to two bricks, interleaved: the dense path groups them
    // by brick, but the feed numbers them as they came.
    let writes: Vec<(IVec3, MaterialId)> = (0..600)
        .map(|i| {
            let brick = if i % 2 == 0 { IVec3::ZERO } else { IVec3::new(32, 0, 0) };
            (brick + IVec3::new(i % 16, (i / 16) % 16, i / 256), MaterialId(2 + (i % 3) as u16))
        })
        .collect();
    s.batch_update(writes.iter().copied());
    let batch = s.take_changes();
    assert_eq!(batch.sequences(), 1..=600);
    let got: Vec<(IVec3, MaterialId)> = batch.changes().iter().map(|c| (c.position, c.material)).collect();
    assert_eq!(got, writes);
}

#[test]
fn no_op_writes_and_consolidations_are_not_changes() {
    let mut s = storage();
    s.update(IVec3::ONE, ROCK).unwrap();
    s.update(IVec3::ONE, MaterialId(2)).unwrap();
    s.update(IVec3::ONE, MaterialId(2)).unwrap();
    s.batch_update([(IVec3::ONE, MaterialId(2)), (IVec3::ZERO, ROCK)]);
    assert_eq!(s.sequence(), 1);
    let job = s.begin_consolidation(ConsolidationStrategy::LazyThreshold).unwrap();
    s.finish_consolidation(job.run()).unwrap();
    s.update(IVec3::ONE, MaterialId(2)).unwrap(); // the base holds it now: still no change
    s.flush();
    assert_eq!(s.sequence(), 1);
    assert_eq!(s.take_changes().changes(), &[MaterialUpdate { position: IVec3::ONE, material: MaterialId(2) }]);
}

#[test]
fn past_its_capacity_the_feed_numbers_on_and_says_what_it_lacks() {
    let mut s = storage();
    s.record_changes(3);
    for x in 0..5 {
        s.update(IVec3::new(x, 0, 0), MaterialId(2)).unwrap();
    }
    let batch = s.take_changes();
    assert_eq!(batch.sequences(), 1..=5);
    assert_eq!(batch.len(), 3, "a prefix is kept");
    assert!(!batch.is_complete());
    assert_eq!(s.stats().changes_dropped, 2);
    // The next batch starts where that one ended, complete again.
    s.update(IVec3::new(9, 9, 9), MaterialId(3)).unwrap();
    let next = s.take_changes();
    assert_eq!((next.sequences(), next.is_complete()), (6..=6, true));
    // A mirror refuses the incomplete batch, whole.
    let mut mirror = DeltaStorage::new(BaseIndex::uniform(s.bounds(), ROCK).unwrap(), DeltaConfig::default());
    assert_eq!(mirror.apply_changes(&batch), Err(FeedError::Incomplete { first: 1, last: 5 }));
    assert_eq!((mirror.sequence(), mirror.delta_count()), (0, 0));
}

#[test]
fn recording_is_off_by_default_and_numbering_is_not() {
    let mut s = DeltaStorage::new(
        BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(16)), ROCK).unwrap(),
        Default::default(),
    );
    assert!(!s.is_recording_changes());
    s.update(IVec3::ONE, MaterialId(2)).unwrap();
    assert_eq!(s.sequence(), 1);
    assert!(s.take_changes().changes().is_empty());
}

#[test]
fn a_resumed_storage_numbers_on_and_apply_changes_checks_gaps_and_bounds() {
    let base = BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(16)), ROCK).unwrap();
    let mut s = DeltaStorage::resume(base, DeltaConfig::default(), 41);
    s.record_changes(16);
    let c = |x, m| MaterialUpdate { position: IVec3::new(x, 0, 0), material: MaterialId(m) };
    assert_eq!(s.apply_changes(&ChangeBatch::new(43, vec![c(0, 2)])), Err(FeedError::Gap { expected: 42, found: 43 }));
    let bad = ChangeBatch::new(42, vec![c(0, 2), c(99, 2)]);
    assert_eq!(s.apply_changes(&bad), Err(FeedError::OutOfBounds { sequence: 43, position: IVec3::new(99, 0, 0) }));
    assert_eq!((s.sequence(), s.delta_count()), (41, 0), "a refused batch changes nothing");
    s.apply_changes(&ChangeBatch::new(42, vec![c(0, 2), c(1, 3), c(0, 4)])).unwrap();
    assert_eq!(s.sequence(), 44);
    assert_eq!(s.query(IVec3::ZERO), Ok(MaterialId(4)));
    s.update(IVec3::new(5, 5, 5), MaterialId(7)).unwrap();
    let drained = s.take_changes();
    assert_eq!(drained.sequences(), 42..=45);
    assert_eq!(
        drained.changes().last(),
        Some(&MaterialUpdate { position: IVec3::new(5, 5, 5), material: MaterialId(7) })
    );
}
