//! The server's figures.

use bevy::prelude::*;

/// The server's figures, refreshed every frame.
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub struct ReplicationStats {
    /// Connected clients.
    pub peers: usize,
    /// Clients receiving a snapshot.
    pub joining: usize,
    /// Bytes handed to the transport this frame (all clients).
    pub bytes_this_frame: u64,
    /// Bytes handed to the transport since the start.
    pub bytes_total: u64,
    /// Change bytes sent since the start, and the changes they carried (for
    /// bytes per change).
    pub change_bytes: u64,
    /// Changes sent since the start (counted once per client).
    pub changes_sent: u64,
    /// The largest lag, in sequence numbers, between the server's world and a
    /// synced client's acknowledged one.
    pub max_lag: u64,
    /// Edits applied from clients.
    pub edits_applied: u64,
    /// Edits refused: outside the world.
    pub refused_out_of_bounds: u64,
    /// Edits refused: over the client's rate.
    pub refused_rate: u64,
    /// Edits refused: the authorization hook said no.
    pub refused_unauthorized: u64,
    /// Edits refused: sent before the client had the world.
    pub refused_not_joined: u64,
    /// Edits refused: the server took all it takes in a frame
    /// (`server_edits_per_frame`).
    pub refused_busy: u64,
    /// Edits refused: a material outside the palette.
    pub refused_material: u64,
    /// Messages that did not decode (damaged, hostile, oversized).
    pub malformed: u64,
    /// Clients disconnected: malformed messages, floods of refused edits or
    /// resync requests, or no acknowledgement for `ack_timeout`.
    pub disconnected: u64,
    /// Clients disconnected for not acknowledging (a part of `disconnected`).
    pub timed_out: u64,
    /// Resync requests granted (a snapshot sent again), and ignored (the client
    /// was being sent one already).
    pub resyncs: u64,
    /// Resync requests ignored.
    pub resyncs_ignored: u64,
    /// Region digests sent to synced clients (divergence audits).
    pub audits: u64,
    /// Snapshots taken for joining clients.
    pub snapshots: u64,
    /// The size of the last snapshot, in bytes of its messages.
    pub snapshot_bytes: u64,
    /// How long the last snapshot took to encode (on the async pool).
    pub snapshot_encode: std::time::Duration,
}

impl ReplicationStats {
    /// Counts a refused edit under its reason.
    pub(crate) fn count_refusal(&mut self, reason: crate::replication::RefusedReason) {
        use crate::replication::RefusedReason::*;
        let counter = match reason {
            OutOfBounds => &mut self.refused_out_of_bounds,
            RateLimited => &mut self.refused_rate,
            Unauthorized => &mut self.refused_unauthorized,
            NotJoined => &mut self.refused_not_joined,
            ServerBusy => &mut self.refused_busy,
            UnknownMaterial => &mut self.refused_material,
        };
        *counter += 1;
    }
}
