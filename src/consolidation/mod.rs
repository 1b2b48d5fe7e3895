//! Consolidation: merging deltas into the base index in bulk. Everything about
//! it lives in this module; [`DeltaStorage`](crate::storage::DeltaStorage) only forwards.
//!
//! | file | part |
//! | --- | --- |
//! | `config.rs` | the policy's tunables: threshold, hard cap, strategy and its parameters |
//! | `strategy.rs` | the strategies, and what `Adaptive` chooses |
//! | `selection.rs` | the input layers merged, the strategy's pick, the split into writes and the layer that stays |
//! | `job.rs` | the job handed out, its `run`, its output |
//! | `lifecycle.rs` | when one is due, begin, finish, cancel, the synchronous path, backpressure |
//! | `stats.rs` | figures with a named field per count |
//!
//! # Steps
//!
//! 1. [`begin_consolidation`](crate::DeltaStorage::begin_consolidation) (calling
//!    thread, **O(1)**): the overlay's active layer is sealed, and the job gets
//!    `Arc`s of every sealed layer and of the base tree's root. Nothing is
//!    copied, selected or sorted here.
//! 2. [`ConsolidationJob::run`] (any thread, `O(deltas)`): the layers are merged
//!    into one delta per voxel, the strategy picks among them, the picked ones
//!    are written into copies of their bricks (the one brick rebuild, shared with
//!    the synchronous path), and the rest become one new layer.
//! 3. [`finish_consolidation`](crate::DeltaStorage::finish_consolidation) (calling
//!    thread, `O(bricks * depth)`): the bricks are swapped into the tree, LOD
//!    settled and pruned, and the new layer replaces the layers the job merged.
//!
//! Reads never wait: until step 3 the sealed layers answer for every delta the
//! job merges, and writes made meanwhile land in the active layer, above them.
//! A consolidation never changes what any voxel reads as at level 0; coarse LOD
//! levels, which come from the base, change when bricks are installed.
//!
//! `flush`, `consolidate`, `consolidate_if_needed` and backpressure run the same
//! selection synchronously and write the base in place.

mod config;
mod job;
mod lifecycle;
mod selection;
mod stats;
mod strategy;

pub use config::DeltaConfig;
pub use job::{ConsolidationJob, ConsolidationOutput};
pub use stats::{AdaptiveChoices, ConsolidationStats, StrategyCounts};
pub use strategy::{AppliedStrategy, ConsolidationStrategy};

pub(crate) use lifecycle::{Consolidator, Finished, JobId, Parts};

use std::time::Duration;

/// What a finished consolidation did.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub struct ConsolidationReport {
    /// The strategy that picked the deltas (and, for `Adaptive`, what it chose).
    pub strategy: AppliedStrategy,
    /// Deltas merged into the base.
    pub deltas: usize,
    /// Bricks rebuilt.
    pub bricks: usize,
    /// Deltas the strategy left in the overlay, in the layer that replaced the
    /// merged ones.
    pub kept: usize,
    /// Time spent in `begin_consolidation` (calling thread).
    pub begin_time: Duration,
    /// Time spent in [`ConsolidationJob::run`] (off the calling thread when
    /// spawned); zero for synchronous consolidations.
    pub run_time: Duration,
    /// Time spent in `finish_consolidation` (calling thread). For a synchronous
    /// consolidation, its whole time.
    pub finish_time: Duration,
}

impl ConsolidationReport {
    /// Everything the calling thread waited for: `begin_time + finish_time`.
    pub fn stall(&self) -> Duration {
        self.begin_time + self.finish_time
    }

    /// `begin_time + run_time + finish_time`.
    pub fn total_time(&self) -> Duration {
        self.begin_time + self.run_time + self.finish_time
    }
}

/// Why [`finish_consolidation`](crate::DeltaStorage::finish_consolidation)
/// refused an output. The storage is unchanged; the refusal is counted in
/// [`ConsolidationStats::discarded`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsolidationError {
    /// The output of a job another storage began.
    ForeignJob,
    /// The output of a job this storage cancelled (by `flush`, `consolidate`,
    /// backpressure or `cancel_consolidation`) or already finished.
    Cancelled {
        /// Which of this storage's jobs it was.
        generation: u64,
    },
}

impl std::fmt::Display for ConsolidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ForeignJob => write!(f, "the consolidation output belongs to another storage"),
            Self::Cancelled { generation } => {
                write!(f, "consolidation {generation} was cancelled or already finished; its output is stale")
            }
        }
    }
}

impl std::error::Error for ConsolidationError {}
