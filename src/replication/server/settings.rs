//! How the server serves its clients, and who may edit what.

use crate::material::MaterialId;
use bevy::prelude::*;

/// How the server serves its clients. A reflectable resource: change it live.
#[derive(Resource, Reflect, Clone, Debug, PartialEq)]
#[reflect(Resource)]
pub struct ReplicationSettings {
    /// Bytes a client may have been sent and not yet reported received
    /// (flow control, transport-independent): a joining client's snapshot is
    /// streamed while it is below this. Keep it under the transport's channel
    /// memory (renet's default is 5 MiB). Default 1 MiB.
    pub window_bytes: u64,
    /// A synced client this many bytes behind (sent, not reported received)
    /// is too slow to follow: it stops receiving changes and is sent a fresh
    /// snapshot when it has caught up with what is in flight. At least twice
    /// `window_bytes` is used (a joiner's backlog is sent under the window, so
    /// a lower figure would re-join every joiner at once). Default 4 MiB.
    pub max_behind_bytes: u64,
    /// Edits one request may hold; a larger request is malformed (the sender
    /// is disconnected). Default 65,536.
    pub max_edits_per_request: usize,
    /// Edits each client may make per second (token bucket); the rest are
    /// refused as rate-limited. Default 50,000.
    pub edits_per_second: f32,
    /// Edits a client may make at once beyond its rate. Default 50,000.
    pub edit_burst: f32,
    /// A client whose refused edits in one second exceed this many is
    /// disconnected (a flood, not a slip). Counted: edits outside the world or
    /// the palette, refused by the policy or sent before the world was
    /// received; not those over the client's rate or the server's budget (an
    /// honest client sending much is told and may send again). Default 200,000.
    pub flood_limit: u64,
    /// Change bytes kept after the cached snapshot for joiners. Past this (or
    /// past the snapshot's own size, when replaying would cost more than a
    /// new snapshot), the next joiner gets a new snapshot. Default 64 MiB.
    pub max_join_backlog: usize,
    /// Edits the server accepts in one frame from all clients together; the
    /// rest are refused as [`ServerBusy`](crate::replication::RefusedReason::ServerBusy).
    /// Keeps a group of clients, each within its own rate, from overflowing
    /// the change feed (which would send every client the world again). Keep
    /// it well under the feed's capacity (`DeltaOverlayPlugin::change_capacity`,
    /// 1,048,576 by default). Default 65,536.
    pub server_edits_per_frame: usize,
    /// A client with bytes in flight that reports no progress for this long
    /// is disconnected (it holds a snapshot's history and a slot). Default 30 s.
    pub ack_timeout: std::time::Duration,
    /// Resync requests a client may make in a minute; one more disconnects it
    /// (each costs the server a snapshot stream). Requests while the client
    /// is already being sent the world are ignored. Default 6.
    pub max_resyncs_per_minute: u32,
    /// How often the server sends synced clients the digest of one region of
    /// the world (round robin over 64 x 64-column regions), so a client that
    /// drifted is detected and sent the world again. `Duration::ZERO` turns
    /// audits off. Default 250 ms.
    pub audit_every: std::time::Duration,
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        Self {
            window_bytes: 1 << 20,
            max_behind_bytes: 4 << 20,
            max_edits_per_request: 1 << 16,
            edits_per_second: 50_000.0,
            edit_burst: 50_000.0,
            flood_limit: 200_000,
            max_join_backlog: 64 << 20,
            server_edits_per_frame: 1 << 16,
            ack_timeout: std::time::Duration::from_secs(30),
            max_resyncs_per_minute: 6,
            audit_every: std::time::Duration::from_millis(250),
        }
    }
}

impl ReplicationSettings {
    /// The bytes behind at which a synced client is re-joined: never under
    /// twice the window.
    pub(crate) fn behind_limit(&self) -> u64 {
        self.max_behind_bytes.max(self.window_bytes.saturating_mul(2))
    }
}

/// One edit a client asked for, as the [`EditPolicy`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EditRequest {
    /// The client's entity on the server.
    pub client: Entity,
    /// The client's id from the transport (renet's netcode client id). With
    /// netcode's secure mode it is the id of the connect token, which the
    /// login step that issued it vouches for; with `Unsecure` the client chose
    /// it. `None` when the transport gave none.
    pub network_id: Option<u64>,
    /// The voxel.
    pub position: IVec3,
    /// The material asked for (one of the server's palette: others are
    /// refused before the policy is asked).
    pub material: MaterialId,
}

/// Which client may edit which voxel: the authorization hook, asked for every
/// edit that is in the world, in the palette and within the client's rate.
/// The default allows every such edit.
///
/// ```
/// use bevy_delta_overlay::replication::{EditPolicy, EditRequest};
/// use bevy_delta_overlay::materials;
/// // Clients may only edit above y = 100, and never place magma; client 1 (an
/// // admin, by the id of its connect token) may do anything.
/// let policy = EditPolicy::new(|e: &EditRequest| {
///     e.network_id == Some(1) || (e.position.y > 100 && e.material != materials::MAGMA)
/// });
/// ```
#[derive(Resource)]
pub struct EditPolicy(Box<dyn Fn(&EditRequest) -> bool + Send + Sync>);

impl EditPolicy {
    /// A policy asking `allow(request)` for every edit.
    pub fn new(allow: impl Fn(&EditRequest) -> bool + Send + Sync + 'static) -> Self {
        Self(Box::new(allow))
    }

    /// Whether the edit may be made.
    pub fn allows(&self, request: &EditRequest) -> bool {
        (self.0)(request)
    }
}

impl Default for EditPolicy {
    fn default() -> Self {
        Self::new(|_| true)
    }
}
