//! Batches from outside the ECS: worker threads and tasks.

use crate::material::MaterialUpdate;
use bevy::prelude::*;
use crossbeam_channel::{Receiver, SendError, Sender, TrySendError};

/// A batch of updates, applied in order.
type UpdateBatch = Vec<MaterialUpdate>;

/// A cloneable handle for producers outside the ECS (threads, async tasks): each
/// batch sent is applied exactly once, in order, by the ingest system.
///
/// The channel is bounded ([`DeltaOverlayPlugin::channel_capacity`] batches). When
/// it is full, [`send`](Self::send) blocks the *producer* until the ingest system
/// drains a batch (backpressure; the frame never waits), and
/// [`try_send`](Self::try_send) returns the batch to the producer instead.
///
/// [`DeltaOverlayPlugin::channel_capacity`]: super::DeltaOverlayPlugin::channel_capacity
#[derive(Resource, Clone, Debug)]
pub struct DeltaSender {
    tx: Sender<UpdateBatch>,
}

impl DeltaSender {
    /// Sends a batch, blocking while the channel is full.
    ///
    /// # Errors
    /// Returns the batch when the app (and its receiver) is gone.
    pub fn send(&self, batch: Vec<MaterialUpdate>) -> Result<(), SendError<Vec<MaterialUpdate>>> {
        self.tx.send(batch)
    }

    /// Sends a batch if there is room.
    ///
    /// # Errors
    /// [`TrySendError::Full`] with the batch when the channel is full,
    /// [`TrySendError::Disconnected`] when the app is gone.
    pub fn try_send(&self, batch: Vec<MaterialUpdate>) -> Result<(), TrySendError<Vec<MaterialUpdate>>> {
        self.tx.try_send(batch)
    }

    /// Batches waiting for the ingest system.
    pub fn backlog(&self) -> usize {
        self.tx.len()
    }
}

/// The ingest system's end of the channel.
#[derive(Resource, Debug)]
pub(crate) struct DeltaReceiver {
    pub rx: Receiver<UpdateBatch>,
}

/// A bounded channel of `capacity` batches (at least 1).
pub(crate) fn channel(capacity: usize) -> (DeltaSender, DeltaReceiver) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    (DeltaSender { tx }, DeltaReceiver { rx })
}
