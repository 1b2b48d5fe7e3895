//! The storage's side of the change feed: recording, draining, and applying
//! batches numbered elsewhere. The feed itself, and its guarantees, are in
//! `feed.rs`.

use super::DeltaStorage;
use super::feed::{ChangeBatch, FeedError, FinishedConsolidation};
use crate::coords::Aabb;

impl DeltaStorage {
    /// The sequence number of the last accepted change (0 before the first).
    pub fn sequence(&self) -> u64 {
        self.feed.sequence
    }

    /// Starts recording accepted changes for [`take_changes`](Self::take_changes),
    /// keeping at most `capacity` between two drains (past that, the batch is
    /// incomplete: see [`ChangeBatch::is_complete`]). Recording is off by default:
    /// no cost, no growth.
    pub fn record_changes(&mut self, capacity: usize) {
        self.feed.record(capacity);
    }

    /// Stops recording changes and drops what was kept.
    pub fn stop_recording_changes(&mut self) {
        self.feed.stop();
    }

    /// True while changes are recorded.
    pub fn is_recording_changes(&self) -> bool {
        self.feed.is_recording()
    }

    /// Drains the changes recorded since the last call, in order: every sequence
    /// number from the last drain's end to [`sequence`](Self::sequence). Empty
    /// when not recording.
    pub fn take_changes(&mut self) -> ChangeBatch {
        self.feed.take()
    }

    /// Drains the boxes of the bricks (`16³` from the world's minimum corner,
    /// clipped to the world) holding a change since the last call, each once,
    /// while recording: what a mesher or renderer must redo. Marked as changes
    /// arrive (a bit per brick), so draining costs the bricks, not the changes.
    pub fn take_changed_bricks(&mut self) -> Vec<Aabb> {
        self.feed.take_bricks()
    }

    /// Drains the consolidations finished since the last call, while recording
    /// (at most 64 are kept; older ones are dropped first).
    pub fn take_finished_consolidations(&mut self) -> Vec<FinishedConsolidation> {
        self.feed.take_finished()
    }

    /// Applies a batch of changes numbered elsewhere (a file's log, a server's
    /// feed) as a batch update, and takes its numbering: afterwards
    /// [`sequence`](Self::sequence) is the batch's last. Recorded changes keep the
    /// batch's numbers.
    ///
    /// # Errors
    /// [`FeedError::Gap`] unless the batch starts right after this storage's last
    /// change, [`FeedError::Incomplete`] for a batch that lacks changes,
    /// [`FeedError::OutOfBounds`] for a change outside the world. A refused batch
    /// changes nothing.
    pub fn apply_changes(&mut self, batch: &ChangeBatch) -> Result<(), FeedError> {
        if batch.is_empty() {
            return Ok(());
        }
        let expected = self.feed.sequence + 1;
        if batch.first_sequence() != expected {
            return Err(FeedError::Gap { expected, found: batch.first_sequence() });
        }
        if !batch.is_complete() {
            return Err(FeedError::Incomplete { first: batch.first_sequence(), last: batch.last_sequence() });
        }
        if let Some((sequence, c)) = batch.iter().find(|(_, c)| !self.bounds().contains(c.position)) {
            return Err(FeedError::OutOfBounds { sequence, position: c.position });
        }
        let sequence = self.feed.sequence;
        self.batch_apply(batch.changes().iter().copied(), false);
        // Every change of the batch is a change where it was numbered; number
        // them as it did, whatever this world made of them.
        self.feed.sequence = sequence;
        for c in batch.changes() {
            self.feed.push(c.position, c.material);
        }
        Ok(())
    }
}
