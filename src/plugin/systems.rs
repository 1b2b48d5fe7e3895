//! The plugin's systems: settings, ingest, change messages, the consolidation
//! driver.
//!
//! Bookkeeping (the clock, settings, draining the feed, consolidations) goes
//! through `bypass_change_detection`, so `Res<DeltaStorage>::is_changed()` is
//! true exactly in frames where a voxel's value changed.

use super::backlog::Backlog;
use super::{ConsolidationFinished, FrameChanges, VoxelsChanged};
use super::{ConsolidationTask, DeltaOverlaySettings, DeltaReceiver, FlushDeltas, IngestCounts};
use crate::consolidation::ConsolidationStrategy;
use crate::error::VoxelError;
use crate::material::MaterialUpdate;
use crate::parallel::Executor;
use crate::storage::{DeltaStorage, RejectedUpdate};
use bevy::log::{info_span, warn};
use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, TaskPool, futures::check_ready};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pushes changed settings into the storage and advances its clock by the
/// frame's time (when a `Time` resource exists).
pub(crate) fn apply_settings(
    settings: Res<DeltaOverlaySettings>,
    time: Option<Res<Time>>,
    mut storage: ResMut<DeltaStorage>,
) {
    let storage = storage.bypass_change_detection();
    if settings.is_changed() && *storage.config() != settings.config.clone().normalized() {
        storage.set_config(settings.config.clone());
    }
    if let Some(time) = time {
        storage.advance_clock(time.delta());
    }
}

/// Reject logging at most once per second, with a count of what was suppressed.
#[derive(Default)]
pub(crate) struct RejectLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RejectLog {
    fn report(&mut self, rejected: &RejectedUpdate) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            warn!("delta overlay: {} more updates rejected in the last second", self.suppressed);
        }
        warn!("delta overlay: update rejected: {}", rejected.error);
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// Queues this frame's `MaterialUpdate` messages behind the backlog (in
/// message order, the last write to a voxel wins), then channel batches while
/// the backlog has room (up to `max_batches_per_frame`), and applies the
/// backlog oldest first within `ingest_budget`, never past the overlay's hard
/// cap while a consolidation can catch up (see `backlog.rs`). Not run on a
/// replica ([`ApplyUpdates`](super::ApplyUpdates)).
#[allow(clippy::too_many_arguments)] // a system: each parameter is one resource or message
pub(crate) fn ingest(
    mut storage: ResMut<DeltaStorage>,
    mut updates: MessageReader<MaterialUpdate>,
    mut rejected: MessageWriter<RejectedUpdate>,
    receiver: Res<DeltaReceiver>,
    settings: Res<DeltaOverlaySettings>,
    mut backlog: ResMut<Backlog>,
    mut counts: ResMut<IngestCounts>,
    mut log: Local<RejectLog>,
) {
    let _span = info_span!("delta_overlay::ingest").entered();
    let start = Instant::now();
    let before = storage.sequence();
    let mut reject = |r: RejectedUpdate, counts: &mut IngestCounts| {
        counts.rejects += 1;
        log.report(&r);
        rejected.write(r);
    };
    let capacity = settings.max_backlog.max(1);
    if !updates.is_empty() {
        let mut refused = Vec::new();
        backlog.push_iter(updates.read().copied(), capacity, |u| refused.push(u));
        for update in refused {
            let error = VoxelError::Backlogged { capacity };
            reject(RejectedUpdate { update, error }, &mut counts);
        }
    }
    // Channel batches wait in their bounded channel while the backlog is full.
    for _ in 0..settings.max_batches_per_frame {
        if !backlog.has_room(capacity) {
            break;
        }
        let Ok(batch) = receiver.rx.try_recv() else { break };
        backlog.push_run(batch);
    }
    let world = storage.bypass_change_detection();
    // With consolidation left to the app, nothing would bring the overlay
    // under its cap: the storage's own backpressure applies then.
    let wait_at_cap = settings.auto_consolidate;
    let applied = backlog.apply(world, start, settings.ingest_budget, wait_at_cap);
    counts.updates += applied.outcome.applied as u64;
    counts.backlog = backlog.len();
    for r in applied.outcome.rejected {
        reject(r, &mut counts);
    }
    if storage.sequence() != before {
        storage.set_changed();
    }
    counts.time += start.elapsed();
}

/// Drains the change feed into [`FrameChanges`] and writes [`VoxelsChanged`]
/// when the frame had changes.
pub(crate) fn publish_changes(
    mut storage: ResMut<DeltaStorage>,
    mut frame: ResMut<FrameChanges>,
    mut changed: MessageWriter<VoxelsChanged>,
) {
    let world = storage.bypass_change_detection();
    let batch = world.take_changes();
    let bricks = world.take_changed_bricks();
    if batch.is_empty() {
        if !frame.batch.is_empty() {
            frame.batch = Arc::new(batch);
        }
        return;
    }
    changed.write(VoxelsChanged { bricks, sequences: batch.sequences() });
    frame.batch = Arc::new(batch);
}

/// Polls the task in flight, handles flush requests, and starts a consolidation
/// on the async compute pool when the strategy says one is due. Never blocks.
pub(crate) fn drive_consolidation(
    mut storage: ResMut<DeltaStorage>,
    mut task: ResMut<ConsolidationTask>,
    mut flushes: MessageReader<FlushDeltas>,
    settings: Res<DeltaOverlaySettings>,
) {
    let storage = storage.bypass_change_detection();
    if let Some(running) = task.0.as_mut() {
        if !storage.in_flight() {
            // Cancelled by backpressure or a direct flush: drop (and so cancel) it.
            task.0 = None;
        } else if let Some(output) = check_ready(running) {
            task.0 = None;
            let _span = info_span!("delta_overlay::finish").entered();
            // Refused only if the job was cancelled meanwhile: counted in stats.
            let _ = storage.finish_consolidation(output);
        }
    }
    if flushes.read().count() > 0 {
        task.0 = None;
        let _span = info_span!("delta_overlay::flush").entered();
        storage.flush();
    }
    if task.0.is_none() && settings.auto_consolidate && storage.should_consolidate() {
        // At the hard cap the ingest waits for this job: it must bring the
        // overlay down whatever the strategy (time-based batching takes
        // nothing from a young flood), so it merges the oldest half.
        let strategy = match storage.delta_count() >= storage.config().hard_cap {
            true => ConsolidationStrategy::LazyThreshold,
            false => storage.config().strategy,
        };
        let job = {
            let _span = info_span!("delta_overlay::begin").entered();
            storage.begin_consolidation(strategy)
        };
        if let Some(job) = job {
            let pool = AsyncComputeTaskPool::get();
            task.0 = Some(pool.spawn(async move {
                let _span = info_span!("delta_overlay::run").entered();
                job.run_on(&PoolExecutor(pool))
            }));
        }
    }
}

/// Writes a [`ConsolidationFinished`] for every consolidation that finished
/// since the last frame's (including those the hard cap forced during ingest).
pub(crate) fn publish_consolidations(
    mut storage: ResMut<DeltaStorage>,
    mut finished: MessageWriter<ConsolidationFinished>,
) {
    for f in storage.bypass_change_detection().take_finished_consolidations() {
        finished.write(ConsolidationFinished { report: f.report, bricks: f.bricks });
    }
}

/// Runs a consolidation's pieces on a Bevy task pool, the calling task's thread
/// included: as many at once as the pool has threads (`TaskPoolPlugin` sets how
/// many the async compute pool gets).
pub(crate) struct PoolExecutor(pub &'static TaskPool);

impl Executor for PoolExecutor {
    fn width(&self) -> usize {
        self.0.thread_num().max(1)
    }

    fn map<R: Send + 'static>(&self, n: usize, f: &(dyn Fn(usize) -> R + Sync)) -> Vec<R> {
        // Spawned from the scope's closure, so the results come back in order.
        self.0.scope(|s| {
            for i in 0..n {
                s.spawn(async move { f(i) });
            }
        })
    }
}
