//! The spine of the test suite: random interleavings of updates, batches, reverts,
//! bad positions, consolidation steps (begin, run and finish at random points, with
//! updates in between), cancellations, flushes, clock and config changes, checked
//! after every step against a plain map of every voxel, on a world whose bounds
//! are whole bricks on no axis.
//!
//! The change feed is checked too: after every step its batch is drained, its
//! numbers must follow on from the last, no change may write the value a voxel
//! already holds, replaying every change onto the initial world must give the
//! storage's world, and a second storage fed the batches through
//! `apply_changes` must read the same.

mod common;

use bevy_delta_overlay::{
    Aabb, BaseIndex, ConsolidationStrategy, DeltaConfig, DeltaStorage, MaterialId, VoxelError,
    consolidation::ConsolidationError, consolidation::ConsolidationJob, consolidation::ConsolidationOutput,
    parallel::Threads,
};
use common::Dense;
use glam::IVec3;
use proptest::prelude::*;
use std::time::Duration;

const WORLD: Aabb = Aabb::new(IVec3::new(-13, -1, -16), IVec3::new(19, 15, 30));

#[derive(Clone, Debug)]
enum Op {
    Update(IVec3, u16),
    Batch(Vec<(IVec3, u16)>),
    Begin(ConsolidationStrategy),
    Run,
    /// Run the job's pieces on three threads.
    RunThreaded,
    Finish,
    Cancel,
    Flush,
    Consolidate(ConsolidationStrategy),
    IfNeeded,
    Advance(u32),
    Config {
        threshold: usize,
        hard_cap: usize,
        chunk: u32,
        max_age_ms: u64,
    },
}

fn position() -> impl Strategy<Value = IVec3> {
    // Mostly inside, a few just outside on every face; clustered in a hot corner
    // half the time so bricks fill and strategies have dense chunks to find.
    prop_oneof![
        8 => (WORLD.min.x..WORLD.max.x, WORLD.min.y..WORLD.max.y, WORLD.min.z..WORLD.max.z)
            .prop_map(|(x, y, z)| IVec3::new(x, y, z)),
        8 => (0..6, 0..4, 0..6).prop_map(|(x, y, z)| IVec3::new(x, y, z)),
        1 => prop_oneof![
            Just(WORLD.min - IVec3::X),
            Just(WORLD.max),
            Just(IVec3::new(0, WORLD.min.y - 1, 0)),
            Just(IVec3::new(0, WORLD.max.y, 0)),
            Just(IVec3::new(WORLD.max.x, 0, 0)),
        ],
    ]
}

/// The voxels of the hot corner `position` favours.
fn hot_corner() -> impl Iterator<Item = IVec3> {
    (0..6).flat_map(|x| (0..4).flat_map(move |y| (0..6).map(move |z| IVec3::new(x, y, z))))
}

fn strategy() -> impl Strategy<Value = ConsolidationStrategy> {
    prop_oneof![
        Just(ConsolidationStrategy::LazyThreshold),
        Just(ConsolidationStrategy::SpatialClustering),
        Just(ConsolidationStrategy::TimeBasedBatching),
        Just(ConsolidationStrategy::Adaptive),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    // Three materials: reverts to the base and to the frozen value are common.
    prop_oneof![
        20 => (position(), 0u16..3).prop_map(|(p, m)| Op::Update(p, m)),
        4 => prop::collection::vec((position(), 0u16..3), 0..60).prop_map(Op::Batch),
        // Hundreds of writes to one brick, many to the same voxel: the batch's
        // counting sort, which must keep writes to a voxel in input order.
        1 => prop::collection::vec(((0..8, 0..4, 0..8), 0u16..3), 256..600)
            .prop_map(|w| Op::Batch(w.into_iter().map(|((x, y, z), m)| (IVec3::new(x, y, z), m)).collect())),
        3 => strategy().prop_map(Op::Begin),
        2 => Just(Op::Run),
        2 => Just(Op::RunThreaded),
        3 => Just(Op::Finish),
        1 => Just(Op::Cancel),
        1 => Just(Op::Flush),
        1 => strategy().prop_map(Op::Consolidate),
        1 => Just(Op::IfNeeded),
        2 => (0u32..400).prop_map(Op::Advance),
        1 => (1usize..80, 1usize..200, 1u32..80, 0u64..600)
            .prop_map(|(threshold, hard_cap, chunk, max_age_ms)| Op::Config { threshold, hard_cap, chunk, max_age_ms }),
    ]
}

thread_local! {
    /// Every voxel of the world, listed once.
    static WORLD_VOXELS: Vec<IVec3> = (WORLD.min.z..WORLD.max.z)
        .flat_map(|z| (WORLD.min.y..WORLD.max.y).flat_map(move |y| (WORLD.min.x..WORLD.max.x).map(move |x| IVec3::new(x, y, z))))
        .collect();
}

fn initial_world() -> impl Strategy<Value = (u16, Vec<(IVec3, u16)>)> {
    (0u16..3, prop::collection::vec((position(), 0u16..3), 0..200))
}

struct Harness {
    storage: DeltaStorage,
    oracle: Dense,
    /// The initial world with every drained change applied in order.
    replay: Dense,
    /// A storage over the initial world fed the drained batches.
    mirror: DeltaStorage,
    job: Option<ConsolidationJob>,
    output: Option<ConsolidationOutput>,
    /// Outputs of cancelled jobs: finishing them must change nothing.
    stale: Vec<ConsolidationOutput>,
}

impl Harness {
    fn update(&mut self, p: IVec3, m: u16) -> Result<(), TestCaseError> {
        let r = self.storage.update(p, MaterialId(m));
        if WORLD.contains(p) {
            prop_assert_eq!(r, Ok(()));
            self.oracle.set(p, MaterialId(m));
        } else {
            let refused = matches!(r, Err(VoxelError::OutOfBounds { position, .. }) if position == p);
            prop_assert!(refused, "out-of-bounds update must be refused: {:?}", r);
        }
        Ok(())
    }

    fn cancelled(&mut self) {
        // Whatever was handed out for the cancelled job is now stale.
        if let Some(job) = self.job.take() {
            self.stale.push(job.run());
        }
        if let Some(out) = self.output.take() {
            self.stale.push(out);
        }
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        let in_flight = self.storage.in_flight();
        match op {
            Op::Update(p, m) => {
                let forced = self.forced();
                self.update(p, m)?;
                if self.forced() > forced && in_flight {
                    self.cancelled();
                }
            }
            Op::Batch(batch) => {
                let forced = self.forced();
                let rejects = self.storage.stats().rejects;
                let updates = self.storage.stats().updates;
                let outcome = self.storage.batch_update(batch.iter().map(|&(p, m)| (p, MaterialId(m))));
                let bad: Vec<IVec3> = batch.iter().map(|&(p, _)| p).filter(|p| !WORLD.contains(*p)).collect();
                prop_assert_eq!(self.storage.stats().updates, updates + outcome.applied as u64, "updates counted once");
                prop_assert_eq!(outcome.applied, batch.len() - bad.len());
                prop_assert_eq!(outcome.rejected.iter().map(|r| r.update.position).collect::<Vec<_>>(), bad.clone());
                prop_assert_eq!(self.storage.stats().rejects, rejects + bad.len() as u64);
                for &(p, m) in &batch {
                    if WORLD.contains(p) {
                        self.oracle.set(p, MaterialId(m));
                    }
                }
                if self.forced() > forced && in_flight {
                    self.cancelled();
                }
            }
            Op::Begin(s) => {
                let job = self.storage.begin_consolidation(s);
                if in_flight {
                    prop_assert!(job.is_none(), "at most one job in flight");
                } else if let Some(job) = job {
                    prop_assert!(job.delta_count() > 0);
                    self.job = Some(job);
                }
            }
            Op::Run => {
                if let Some(job) = self.job.take() {
                    // Run on another thread: the job is Send + 'static.
                    let out = std::thread::spawn(move || job.run()).join().unwrap();
                    self.output = Some(out);
                }
            }
            Op::RunThreaded => {
                if let Some(job) = self.job.take() {
                    self.output = Some(job.run_on(&Threads(3)));
                }
            }
            Op::Finish => {
                if let Some(out) = self.output.take() {
                    let deltas = out.delta_count();
                    let report = self.storage.finish_consolidation(out);
                    prop_assert!(report.is_ok(), "{:?}", report);
                    prop_assert_eq!(report.unwrap().deltas, deltas);
                    prop_assert!(!self.storage.in_flight());
                } else if let Some(stale) = self.stale.pop() {
                    let before = self.storage.stats().consolidation.discarded;
                    let refused = self.storage.finish_consolidation(stale);
                    prop_assert!(matches!(refused, Err(ConsolidationError::Cancelled { .. })), "{:?}", refused);
                    prop_assert_eq!(self.storage.stats().consolidation.discarded, before + 1);
                }
            }
            Op::Cancel => {
                prop_assert_eq!(self.storage.cancel_consolidation(), in_flight);
                self.cancelled();
            }
            Op::Flush => {
                self.storage.flush();
                self.cancelled();
                prop_assert_eq!(self.storage.delta_count(), 0);
            }
            Op::Consolidate(s) => {
                self.storage.consolidate(s);
                self.cancelled();
            }
            Op::IfNeeded => {
                if !in_flight {
                    self.storage.consolidate_if_needed();
                }
            }
            Op::Advance(ms) => self.storage.advance_clock(Duration::from_millis(u64::from(ms))),
            Op::Config { threshold, hard_cap, chunk, max_age_ms } => {
                let forced = self.forced();
                self.storage.set_config(DeltaConfig {
                    threshold,
                    hard_cap,
                    chunk_size: chunk,
                    max_age: Duration::from_millis(max_age_ms),
                    adaptive_spatial_above: threshold,
                    adaptive_age: Duration::from_millis(max_age_ms),
                    ..self.storage.config().clone()
                });
                if self.forced() > forced && in_flight {
                    self.cancelled();
                }
            }
        }
        self.check_feed()?;
        self.check()
    }

    fn forced(&self) -> u64 {
        self.storage.stats().consolidation.finished.backpressure
    }

    /// Drains the feed and checks it: contiguous numbers, only real changes,
    /// and a replay (and a mirror storage) that reads as the storage does.
    fn check_feed(&mut self) -> Result<(), TestCaseError> {
        let batch = self.storage.take_changes();
        prop_assert!(batch.is_complete());
        prop_assert_eq!(batch.first_sequence(), self.mirror.sequence() + 1, "numbers follow on");
        prop_assert_eq!(batch.last_sequence(), self.storage.sequence());
        for (_, c) in batch.iter() {
            prop_assert_ne!(self.replay.get(c.position), c.material, "a change writes a new value at {}", c.position);
            self.replay.set(c.position, c.material);
        }
        prop_assert_eq!(&self.replay.cells, &self.oracle.cells, "the replayed feed equals the world");
        let applied = self.mirror.apply_changes(&batch);
        prop_assert!(applied.is_ok(), "{:?}", applied);
        prop_assert_eq!(self.mirror.sequence(), self.storage.sequence());
        // Replaying the same batch again is a gap: refused, nothing applied.
        if !batch.is_empty() {
            prop_assert!(self.mirror.apply_changes(&batch).is_err());
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let s = &self.storage;
        let exact = s.query_region(WORLD, 0).unwrap();
        prop_assert_eq!(exact.as_slice(), &self.oracle.cells[..], "query_region differs from the oracle");
        for p in [WORLD.min, WORLD.max - IVec3::ONE, IVec3::new(1, 2, 3), IVec3::new(5, 3, 5)] {
            prop_assert_eq!(s.query(p).unwrap(), self.oracle.get(p), "query at {}", p);
        }
        // A reader sweeping columns around the hot corner (its brick cache hits,
        // misses and switches between bricks and layers) reads what query reads.
        let mut reader = s.reader();
        for x in -4..12 {
            for z in -4..12 {
                for y in WORLD.min.y..WORLD.max.y {
                    let p = IVec3::new(x, y, z);
                    prop_assert_eq!(reader.get(p).unwrap(), self.oracle.get(p), "reader at {}", p);
                }
            }
        }
        prop_assert!(reader.get(WORLD.max).is_err());
        prop_assert!(s.delta_count() <= s.config().hard_cap, "hard cap holds");
        prop_assert_eq!(s.stats().delta_count, s.delta_count());
        // The deltas a spatial query lists read as the oracle, and are exactly the
        // voxels `has_delta` reports (checked over the hot corner).
        let listed = s.deltas_in(WORLD);
        for e in &listed {
            prop_assert_eq!(e.material, self.oracle.get(e.position), "listed delta at {}", e.position);
        }
        let listed: std::collections::HashSet<IVec3> = listed.iter().map(|e| e.position).collect();
        for p in hot_corner() {
            prop_assert_eq!(s.has_delta(p).unwrap(), listed.contains(&p), "has_delta at {}", p);
        }
        // Every voxel that differs from the base holds a delta: nothing is lost.
        let base = s.base().region(WORLD, 0).unwrap();
        let differing: std::collections::HashSet<IVec3> =
            WORLD_VOXELS.with(|all| all.iter().copied().filter(|&p| base.get(p) != Some(self.oracle.get(p))).collect());
        prop_assert!(differing.is_subset(&listed), "a difference from the base is not listed");
        prop_assert!(s.delta_count() >= listed.len(), "each listed voxel holds at least one delta");
        if s.stats().sealed_layers == 0 {
            // One layer: every delta is a real difference from the base, and the
            // count is exactly the number of differences.
            prop_assert_eq!(s.delta_count(), differing.len(), "delta_count is the number of differences");
            prop_assert_eq!(listed.len(), differing.len(), "spatial queries list every difference, nothing else");
        }
        let mirrored = self.mirror.query_region(WORLD, 0).unwrap();
        prop_assert_eq!(mirrored.as_slice(), &self.oracle.cells[..], "the mirror fed by apply_changes");
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn storage_matches_a_plain_map_under_any_interleaving(
        (m0, seeded) in initial_world(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let mut base = BaseIndex::uniform(WORLD, MaterialId(m0)).unwrap();
        let mut oracle = Dense::filled(WORLD, MaterialId(m0));
        let seeded: Vec<_> = seeded.into_iter().filter(|(p, _)| WORLD.contains(*p)).map(|(p, m)| (p, MaterialId(m))).collect();
        base.apply_batch(&seeded).unwrap();
        for &(p, m) in &seeded {
            oracle.set(p, m);
        }
        let config = DeltaConfig { threshold: 16, hard_cap: 120, chunk_size: 16, ..DeltaConfig::default() };
        let mut storage = DeltaStorage::new(base.clone(), config.clone());
        storage.record_changes(1 << 16);
        let mirror = DeltaStorage::new(base, config);
        let replay = oracle.clone();
        let mut h = Harness { storage, oracle, replay, mirror, job: None, output: None, stale: Vec::new() };
        for op in ops {
            h.apply(op)?;
        }
        // Whatever is left in flight lands, and then a flush leaves it all in the base.
        if let Some(job) = h.job.take() {
            h.output = Some(job.run());
        }
        if let Some(out) = h.output.take() {
            prop_assert!(h.storage.finish_consolidation(out).is_ok());
        }
        h.storage.flush();
        h.check_feed()?;
        h.check()?;
        prop_assert_eq!(h.storage.delta_count(), 0);
        prop_assert_eq!(h.storage.stats().sealed_layers, 0);
        let base = h.storage.base().region(WORLD, 0).unwrap();
        prop_assert_eq!(base.as_slice(), &h.oracle.cells[..]);
    }
}
