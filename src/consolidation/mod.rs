//! Consolidation: merging frozen deltas into the base index in bulk.
//!
//! Three steps, so the expensive one can run anywhere:
//!
//! 1. [`DeltaStorage::begin_consolidation`](crate::DeltaStorage::begin_consolidation)
//!    (main thread, `O(active deltas)`): the strategy picks deltas, they become
//!    frozen in place (still read by every query), the job gets a copy of them as
//!    4-byte writes, and each affected brick is snapshotted (an `Arc` clone).
//! 2. [`ConsolidationJob::run`] (any thread): builds the new bricks from the
//!    snapshots and the writes. Pure: no locks, no access to the storage.
//! 3. [`DeltaStorage::finish_consolidation`](crate::DeltaStorage::finish_consolidation)
//!    (main thread, `O(bricks * depth + their deltas)`): swaps the bricks into
//!    the tree, settles LOD and prunes, drops the frozen deltas. This is the only
//!    frame stall.
//!
//! Updates that arrive between 1 and 3 go to the active layer, above the frozen
//! one, so they win over the job's result.

mod strategy;

pub use strategy::{AppliedStrategy, CompactionStrategy, STRATEGY_NAMES};

use crate::Brick;
use crate::base::{BrickContent, BrickInstall};
use crate::overlay::BrickWrite;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A consolidation ready to run on any thread: the frozen deltas and snapshots of
/// the bricks they touch.
///
/// `Send + 'static`; running it needs nothing else. Hand its output back to the
/// storage that made it with
/// [`finish_consolidation`](crate::DeltaStorage::finish_consolidation).
#[derive(Debug)]
#[must_use = "a job does nothing until it is run and its output finished"]
pub struct ConsolidationJob {
    pub(crate) generation: u64,
    pub(crate) strategy: AppliedStrategy,
    /// Brick code (tree order), the brick's content at begin, and the range of
    /// its writes.
    pub(crate) bricks: Vec<(u64, BrickContent, std::ops::Range<usize>)>,
    /// The frozen deltas as writes, brick after brick, in voxel order.
    pub(crate) writes: Vec<BrickWrite>,
}

/// The result of [`ConsolidationJob::run`]: new bricks to install.
#[derive(Debug)]
#[must_use = "the base holds nothing until the output is finished"]
pub struct ConsolidationOutput {
    pub(crate) generation: u64,
    pub(crate) strategy: AppliedStrategy,
    pub(crate) deltas: usize,
    pub(crate) installs: Vec<BrickInstall>,
    pub(crate) run_time: Duration,
}

/// What a finished consolidation did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConsolidationReport {
    /// The strategy that picked the deltas (and, for `Adaptive`, what it chose).
    pub strategy: AppliedStrategy,
    /// Deltas merged into the base.
    pub deltas: usize,
    /// Bricks rebuilt.
    pub bricks: usize,
    /// Time spent in [`ConsolidationJob::run`] (off the main thread when spawned);
    /// zero for synchronous consolidations, which write the base in place.
    pub run_time: Duration,
    /// Time spent in `finish_consolidation`: the main-thread stall. For a
    /// synchronous consolidation, its whole time.
    pub finish_time: Duration,
}

impl ConsolidationJob {
    /// Number of deltas the job merges.
    pub fn delta_count(&self) -> usize {
        self.writes.len()
    }

    /// Number of bricks the job rebuilds.
    pub fn brick_count(&self) -> usize {
        self.bricks.len()
    }

    /// The strategy that selected this job's deltas.
    pub fn strategy(&self) -> AppliedStrategy {
        self.strategy
    }

    /// Builds the new bricks: each snapshot is copied once (8 KiB), every delta of
    /// the brick written, the LOD pyramid updated, and the brick collapsed to a
    /// uniform node if it became one material.
    pub fn run(self) -> ConsolidationOutput {
        let start = Instant::now();
        let mut installs = Vec::with_capacity(self.bricks.len());
        let mut bricks = self.bricks;
        bricks.sort_unstable_by_key(|b| b.0);
        for (brick_code, content, range) in bricks {
            let mut arc = match content {
                BrickContent::Uniform(m) => Arc::new(Brick::filled(m)),
                BrickContent::Dense(b) => b,
            };
            // The base still holds the snapshot, so this clones it straight into
            // the new allocation: one 8 KiB copy.
            let brick = Arc::make_mut(&mut arc);
            let mut dirty = 0;
            for w in &self.writes[range] {
                dirty |= brick.set(usize::from(w.local), w.material);
            }
            brick.update_pyramid(dirty);
            let content = match brick.uniform_material() {
                Some(m) => BrickContent::Uniform(m),
                None => BrickContent::Dense(arc),
            };
            installs.push(BrickInstall { brick_code, content });
        }
        ConsolidationOutput {
            generation: self.generation,
            strategy: self.strategy,
            deltas: self.writes.len(),
            installs,
            run_time: start.elapsed(),
        }
    }
}

impl ConsolidationOutput {
    /// Number of deltas merged.
    pub fn delta_count(&self) -> usize {
        self.deltas
    }

    /// Time spent building the bricks.
    pub fn run_time(&self) -> Duration {
        self.run_time
    }
}
