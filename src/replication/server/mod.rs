//! The authoritative side: snapshots for joining clients, each frame's changes
//! to every client, clients' edits validated and applied.
//!
//! | file | part |
//! | --- | --- |
//! | `settings.rs` | [`ReplicationSettings`] and the [`EditPolicy`] hook |
//! | `stats.rs` | [`ReplicationStats`] |
//! | `cache.rs` | the snapshot joiners share, and the changes since it |
//! | `peer.rs` | one client's state machine: what it is sent each frame |
//! | `systems.rs` | the systems: receive, send |

mod cache;
mod peer;
mod settings;
mod stats;
mod systems;
#[cfg(test)]
mod tests;

pub use settings::{EditPolicy, EditRequest, ReplicationSettings};
pub use stats::ReplicationStats;

use crate::material::MaterialUpdate;
use crate::plugin::DeltaOverlaySystems;
use bevy::ecs::schedule::{InternedScheduleLabel, ScheduleLabel};
use bevy::prelude::*;
use bevy_replicon::prelude::*;
use cache::SnapshotCache;
pub(crate) use cache::encode;

/// Makes this app the authoritative server of its [`DeltaStorage`](crate::DeltaStorage): every
/// frame's changes go to every synced client as one ordered, reliable
/// message; a joining client gets a snapshot streamed under a flow-control
/// window, then the changes after it; clients' edits are validated (bounds, a
/// per-client rate, the [`EditPolicy`]) and applied in arrival order, or
/// refused with a reason. Malformed messages and floods disconnect their
/// sender. Consolidation stays local to each peer: it is never on the wire.
///
/// Add it after `RepliconPlugins` (and a transport such as
/// `bevy_replicon_renet`); [`DeltaOverlayPlugins::serve`](crate::DeltaOverlayPlugins::serve)
/// does. The `multiplayer` example shows the whole setup.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy::state::app::StatesPlugin;
/// use bevy_delta_overlay::prelude::*;
/// use bevy_delta_overlay::replication::EditPolicy;
/// use bevy_replicon::prelude::*;
///
/// App::new()
///     .add_plugins((MinimalPlugins, StatesPlugin, RepliconPlugins))
///     .add_plugins(DeltaOverlayPlugins::new(Update).serve())
///     // Clients may only dig above y = 64.
///     .insert_resource(EditPolicy::new(|edit| edit.position.y >= 64))
///     // ... and a transport's server resources (bevy_replicon_renet).
///     .run();
/// ```
///
/// # Systems
///
/// `PreUpdate`, after replicon's receive: client messages handled, accepted
/// edits written as `MaterialUpdate`s (ingested in that frame's `Ingest`).
/// In the overlay's schedule, in [`DeltaOverlaySystems::Forward`]: the frame's
/// changes encoded once and sent, snapshots taken and streamed.
///
/// # Bounds
///
/// Per client, at most [`ReplicationSettings::window_bytes`] of snapshot and
/// join backlog in flight and [`ReplicationSettings::max_behind_bytes`] of
/// changes (a slower client is re-joined), [`ReplicationSettings::ack_timeout`]
/// without an acknowledgement and [`ReplicationSettings::max_resyncs_per_minute`]
/// resync requests (past either it is disconnected); for joiners,
/// [`ReplicationSettings::max_join_backlog`] of changes kept; per request,
/// [`ReplicationSettings::max_edits_per_request`]; per frame, from all clients,
/// [`ReplicationSettings::server_edits_per_frame`] edits.
///
/// # Divergence
///
/// A snapshot's end carries the world's digest; every
/// [`ReplicationSettings::audit_every`] synced clients get the digest of one
/// region of the world, and a client whose region differs receives the world
/// again (see `docs/multiplayer.md`).
#[derive(Clone, Debug)]
pub struct ReplicationServerPlugin {
    /// The schedule of the overlay's systems. Default `Update`.
    pub schedule: InternedScheduleLabel,
    /// The settings, unless the app inserted its own.
    pub settings: ReplicationSettings,
}

impl ReplicationServerPlugin {
    /// The server with the default settings, sending in `schedule`'s `Forward` phase.
    pub fn new(schedule: impl ScheduleLabel) -> Self {
        Self { schedule: schedule.intern(), settings: ReplicationSettings::default() }
    }
}

impl Default for ReplicationServerPlugin {
    fn default() -> Self {
        Self::new(Update)
    }
}

impl Plugin for ReplicationServerPlugin {
    fn build(&self, app: &mut App) {
        super::register(app);
        if !app.world().contains_resource::<ReplicationSettings>() {
            app.insert_resource(self.settings.clone());
        }
        app.register_type::<ReplicationSettings>()
            .init_resource::<EditPolicy>()
            // The palette edits are checked against (the geology's, if added;
            // an app's own inserted before or after wins).
            .init_resource::<crate::material::Palette>()
            .init_resource::<ReplicationStats>()
            .init_resource::<SnapshotCache>()
            .add_message::<MaterialUpdate>()
            .add_observer(systems::joined)
            .add_systems(OnExit(ServerState::Running), systems::forget)
            .add_systems(
                PreUpdate,
                (systems::drop_stalled, systems::receive)
                    .chain()
                    .after(ServerSystems::Receive)
                    .run_if(in_state(ServerState::Running)),
            )
            .add_systems(
                self.schedule,
                systems::send.in_set(DeltaOverlaySystems::Forward).run_if(in_state(ServerState::Running)),
            );
    }
}
