//! How the server serves its clients, and who may edit what.

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
    /// snapshot when it has caught up with what is in flight. Default 4 MiB.
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
    /// disconnected (a flood, not a slip). Default 200,000.
    pub flood_limit: u64,
    /// Change bytes kept after the cached snapshot for joiners. Past this (or
    /// past the snapshot's own size, when replaying would cost more than a
    /// new snapshot), the next joiner gets a new snapshot. Default 64 MiB.
    pub max_join_backlog: usize,
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
        }
    }
}

/// Which client may edit which voxel: the authorization hook. The default
/// allows every edit.
///
/// ```
/// use bevy::prelude::*;
/// use bevy_delta_overlay::replication::EditPolicy;
/// // Clients may only edit above y = 100.
/// let policy = EditPolicy::new(|_client: Entity, p: IVec3| p.y > 100);
/// ```
#[derive(Resource)]
pub struct EditPolicy(Box<dyn Fn(Entity, IVec3) -> bool + Send + Sync>);

impl EditPolicy {
    /// A policy asking `allow(client entity, position)` for every edit.
    pub fn new(allow: impl Fn(Entity, IVec3) -> bool + Send + Sync + 'static) -> Self {
        Self(Box::new(allow))
    }

    /// Whether `client` may edit the voxel at `position`.
    pub fn allows(&self, client: Entity, position: IVec3) -> bool {
        (self.0)(client, position)
    }
}

impl Default for EditPolicy {
    fn default() -> Self {
        Self::new(|_, _| true)
    }
}
