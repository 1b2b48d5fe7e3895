//! A consolidation job: what `begin` hands out, what `run` builds anywhere, and
//! what `finish` installs.

use super::selection::{SelectionParams, SplitChunk, remainder, select};
use super::{AppliedStrategy, JobId};
use crate::base::{BaseSnapshot, BrickInstall, rebuild};
use crate::overlay::Layer;
use crate::parallel::{Executor, Sequential};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A consolidation ready to run on any thread: the sealed layers it merges and
/// a snapshot of the base, all shared by `Arc`, so handing it out cost O(1).
///
/// `Send + 'static`; running it needs nothing else. Hand its output back to the
/// storage that made it with
/// [`finish_consolidation`](crate::storage::DeltaStorage::finish_consolidation).
#[derive(Debug)]
#[must_use = "a job does nothing until it is run and its output finished"]
pub struct ConsolidationJob {
    pub(super) id: JobId,
    pub(super) params: SelectionParams,
    /// The layers to merge, top first; the base lies beneath the last.
    pub(super) layers: Vec<Arc<Layer>>,
    pub(super) base: BaseSnapshot,
    /// What the previous consolidation left to free, dropped by this job on its
    /// thread (freeing a large layer or thousands of bricks is not free).
    pub(super) retired: super::lifecycle::Retired,
    pub(super) begin_time: Duration,
}

/// The result of [`ConsolidationJob::run`]: new bricks to install and the layer
/// that replaces the job's input layers.
#[derive(Debug)]
#[must_use = "the base holds nothing until the output is finished"]
pub struct ConsolidationOutput {
    pub(super) id: JobId,
    pub(super) strategy: AppliedStrategy,
    pub(super) layers: usize,
    pub(super) deltas: usize,
    pub(super) installs: Vec<BrickInstall>,
    pub(super) remainder: Layer,
    pub(super) begin_time: Duration,
    pub(super) run_time: Duration,
}

impl ConsolidationJob {
    /// Number of deltas in the job's input layers (a voxel held by several
    /// layers counts once per layer); the strategy picks among them in
    /// [`run`](Self::run).
    pub fn delta_count(&self) -> usize {
        self.layers.iter().map(|l| l.len()).sum()
    }

    /// The strategy that will select this job's deltas.
    pub fn strategy(&self) -> AppliedStrategy {
        self.params.strategy
    }

    /// Merges the input layers, picks deltas by the strategy, and builds the new
    /// bricks (one 8 KiB copy of each snapshot brick, every picked delta written,
    /// the LOD pyramid updated, collapsed when uniform) and the layer of the
    /// deltas not picked, on the calling thread.
    pub fn run(self) -> ConsolidationOutput {
        self.run_on(&Sequential)
    }

    /// [`run`](Self::run), with the independent pieces (merging runs of bricks,
    /// splitting them, rebuilding bricks) run side by side by `exec`; the result
    /// is the same whatever the executor.
    pub fn run_on(self, exec: &impl Executor) -> ConsolidationOutput {
        let start = Instant::now();
        drop(self.retired);
        let layers: Vec<&Layer> = self.layers.iter().map(|l| &**l).collect();
        let splits = select(&layers, &self.params, exec);
        let base = &self.base;
        let splits_ref = &splits;
        let installs: Vec<Vec<BrickInstall>> = exec.map(splits.len(), &|i| build(base, &splits_ref[i]));
        let deltas = splits.iter().map(|s| s.writes.len()).sum();
        let remainder = remainder(&splits);
        drop(splits);
        ConsolidationOutput {
            id: self.id,
            strategy: self.params.strategy,
            layers: self.layers.len(),
            deltas,
            installs: installs.into_iter().flatten().collect(),
            remainder,
            begin_time: self.begin_time,
            run_time: start.elapsed(),
        }
    }
}

/// The new bricks of one piece: each picked brick's snapshot with its writes.
fn build(base: &BaseSnapshot, split: &SplitChunk) -> Vec<BrickInstall> {
    split
        .bricks
        .iter()
        .map(|(brick, range)| {
            let b = brick.brick();
            let content = rebuild(base.brick(b), split.writes[range.clone()].iter().copied(), base.clip(b));
            BrickInstall::new(brick.code(), content)
        })
        .collect()
}

impl ConsolidationOutput {
    /// Number of deltas merged into the base.
    pub fn delta_count(&self) -> usize {
        self.deltas
    }

    /// Number of bricks rebuilt.
    pub fn brick_count(&self) -> usize {
        self.installs.len()
    }

    /// Time spent in [`ConsolidationJob::run`].
    pub fn run_time(&self) -> Duration {
        self.run_time
    }
}
