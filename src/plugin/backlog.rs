//! The ingest backlog: updates accepted and not applied yet, applied in
//! order within a time budget a frame.
//!
//! A frame's updates are applied in that frame unless applying them would
//! take longer than `DeltaOverlaySettings::ingest_budget`, or would take the
//! overlay past its hard cap while a consolidation catches up off the main
//! thread: the rest wait here, in order, and go first in the next frames.
//!
//! # Invariants
//!
//! - `ORDER`: updates leave in the order they arrived (messages of a frame,
//!   then that frame's channel batches).
//! - `BOUNDED`: at most `capacity` updates wait, plus one channel batch (a
//!   batch is taken from the channel only while the backlog is under its
//!   capacity, and queued whole). A message arriving at a full backlog is
//!   refused (a `RejectedUpdate`, counted), never dropped silently and never
//!   applied out of order; channel batches wait in their bounded channel.
//! - `CAP`: with `wait_at_cap` (the plugin consolidates on its own), the
//!   backlog never takes the overlay past its hard cap, so the storage's
//!   synchronous backpressure (a stall) never runs from the plugin's ingest.

use crate::material::MaterialUpdate;
use crate::storage::{BatchOutcome, DeltaStorage};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Updates applied between two looks at the clock: a random update deep in
/// the world costs up to about 10 µs with the surface index kept (its column
/// is walked again), so a chunk overruns the budget by 10 ms at most. Chunks
/// are counted, never timed, so where a frame's updates split into batches
/// does not depend on the machine: as long as a frame stays within its
/// budget, the world it makes does not either.
const CHUNK: usize = 1024;

/// Updates waiting to be applied, in order.
#[derive(Debug, Default, bevy::prelude::Resource)]
pub(crate) struct Backlog {
    /// Runs of updates; the front run is applied from `offset`.
    runs: VecDeque<Vec<MaterialUpdate>>,
    offset: usize,
    len: usize,
    /// Emptied runs kept for the next frames' messages (no allocation a frame).
    spare: Vec<Vec<MaterialUpdate>>,
}

/// Emptied runs kept for reuse, at most.
const SPARE: usize = 4;

/// What a frame of [`Backlog::apply`] did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Updates applied (and refused by the storage: out of bounds).
    pub outcome: BatchOutcome,
    /// True when it stopped at the hard cap (waiting for a consolidation).
    pub at_cap: bool,
}

impl Backlog {
    /// Updates waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Queues `updates` in order while the backlog holds fewer than
    /// `capacity`, and returns how many did not fit (passed to `refuse`, in
    /// order).
    pub fn push_iter(
        &mut self,
        updates: impl Iterator<Item = MaterialUpdate>,
        capacity: usize,
        mut refuse: impl FnMut(MaterialUpdate),
    ) -> usize {
        let mut run = self.spare.pop().unwrap_or_default();
        // One allocation for a flood, not a doubling per power of two.
        run.reserve(updates.size_hint().0.min(capacity.saturating_sub(self.len)));
        let mut refused = 0;
        for u in updates {
            if self.len + run.len() < capacity {
                run.push(u);
            } else {
                refuse(u);
                refused += 1;
            }
        }
        self.push_run(run);
        refused
    }

    /// Queues a run whole (a channel batch: taken only while
    /// [`has_room`](Self::has_room)).
    pub fn push_run(&mut self, run: Vec<MaterialUpdate>) {
        if run.is_empty() {
            self.recycle(run);
            return;
        }
        self.len += run.len();
        self.runs.push_back(run);
    }

    /// True while fewer than `capacity` updates wait.
    pub fn has_room(&self, capacity: usize) -> bool {
        self.len < capacity
    }

    fn recycle(&mut self, mut run: Vec<MaterialUpdate>) {
        if self.spare.len() < SPARE {
            run.clear();
            self.spare.push(run);
        }
    }

    /// Applies waiting updates to `storage`, oldest first, until the backlog
    /// is empty, `budget` has passed since `start` (at least `CHUNK` updates
    /// are applied a frame, so it always moves), or, with `wait_at_cap`, the next
    /// chunk could take the overlay past its hard cap.
    pub fn apply(
        &mut self,
        storage: &mut DeltaStorage,
        start: Instant,
        budget: Duration,
        wait_at_cap: bool,
    ) -> Applied {
        let mut out = Applied::default();
        let mut done = 0;
        while self.len > 0 {
            if done >= CHUNK && start.elapsed() >= budget {
                break;
            }
            // Each update makes at most one delta: stay at or under the cap.
            let room = match wait_at_cap {
                true => storage.config().hard_cap.saturating_sub(storage.delta_count()),
                false => usize::MAX,
            };
            if room == 0 {
                out.at_cap = true;
                break;
            }
            let Some(run) = self.runs.front() else { break };
            let end = (self.offset + CHUNK.min(room)).min(run.len());
            done += end - self.offset;
            let outcome = storage.batch_update(run[self.offset..end].iter().copied());
            out.outcome.applied += outcome.applied;
            out.outcome.rejected.extend(outcome.rejected);
            self.len -= end - self.offset;
            self.offset = end;
            if self.offset == run.len() {
                if let Some(done) = self.runs.pop_front() {
                    self.recycle(done);
                }
                self.offset = 0;
            }
        }
        debug_assert_eq!(self.len, self.runs.iter().map(Vec::len).sum::<usize>() - self.offset, "counted");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Aabb, BaseIndex, DeltaConfig, MaterialId};
    use glam::IVec3;

    fn world(hard_cap: usize) -> DeltaStorage {
        let base = BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(64)), MaterialId(1)).unwrap();
        DeltaStorage::new(base, DeltaConfig { threshold: 100, hard_cap, ..DeltaConfig::default() })
    }

    fn updates(n: usize, m: u16) -> Vec<MaterialUpdate> {
        (0..n as i32).map(|i| MaterialUpdate::new(IVec3::new(i % 64, (i / 64) % 64, i / 4096), MaterialId(m))).collect()
    }

    #[test]
    fn updates_wait_in_order_and_never_pass_the_cap() {
        let mut storage = world(10_000);
        let mut backlog = Backlog::default();
        backlog.push_run(updates(30_000, 2));
        assert_eq!(backlog.push_iter(updates(5, 3).into_iter(), 1 << 20, |_| ()), 0);
        let applied = backlog.apply(&mut storage, Instant::now(), Duration::from_secs(60), true);
        assert!(applied.at_cap && storage.delta_count() <= 10_000);
        assert_eq!(storage.stats().consolidation.finished.backpressure, 0, "no stall");
        storage.flush();
        while backlog.len() > 0 {
            backlog.apply(&mut storage, Instant::now(), Duration::from_secs(60), true);
            storage.flush();
        }
        // The later writes to the first five voxels won.
        assert_eq!(storage.query(IVec3::new(4, 0, 0)).unwrap(), MaterialId(3));
        assert_eq!(storage.query(IVec3::new(5, 0, 0)).unwrap(), MaterialId(2));
        assert_eq!(storage.sequence(), 30_000 + 5);
    }

    #[test]
    fn a_full_backlog_refuses_and_a_zero_budget_still_moves() {
        let mut backlog = Backlog::default();
        let mut refused = Vec::new();
        assert_eq!(backlog.push_iter(updates(10, 2).into_iter(), 15, |u| refused.push(u)), 0);
        assert_eq!(backlog.push_iter(updates(10, 4).into_iter(), 15, |u| refused.push(u)), 5);
        assert_eq!((backlog.len(), refused.len()), (15, 5));
        assert_eq!(refused[0], updates(10, 4)[5], "the last ones are refused, in order");
        assert!(!backlog.has_room(15));
        let mut storage = world(1 << 20);
        backlog.apply(&mut storage, Instant::now(), Duration::ZERO, true);
        assert_eq!(backlog.len(), 0, "one chunk a frame whatever the budget");
    }
}
