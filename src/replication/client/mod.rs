//! The client side: the world received from the server and kept in step; the
//! app's own updates sent to the server as edit requests.
//!
//! | file | part |
//! | --- | --- |
//! | `sync.rs` | the state machine: what each server message does to the world |
//! | this file | the plugin, its resources and messages, and its thin systems |

mod sync;

use super::wire::{self, RefusedReason};
use super::{ClientWire, ServerWire};
use crate::consolidation::DeltaConfig;
use crate::coords::Aabb;
use crate::material::MaterialUpdate;
use crate::plugin::{
    ApplyUpdates, DeltaOverlaySettings, DeltaOverlaySystems, DeltaReceiver, RemoteAuthority, WorldOrigin,
};
use crate::storage::DeltaStorage;
use bevy::ecs::schedule::{InternedScheduleLabel, ScheduleLabel};
use bevy::prelude::*;
use bevy_replicon::prelude::*;
pub(crate) use sync::ClientSync;
use sync::Effect;

/// Where the client is.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplicationStatus {
    /// Not connected, or connected and waiting for the world.
    #[default]
    Waiting,
    /// Receiving the world: `nodes` of `total` nodes so far.
    Joining {
        /// Nodes received.
        nodes: u64,
        /// Nodes in the snapshot.
        total: u64,
    },
    /// The world is the server's as of `sequence`, and follows it.
    Synced {
        /// The last change applied.
        sequence: u64,
        /// The server's last sequence this client has heard of minus
        /// `sequence` (the replication lag).
        lag: u64,
    },
    /// A change was missed: a new snapshot was asked for.
    Resyncing,
    /// The client does nothing: the world does not come from a server (the
    /// core plugin's world is not `WorldSource::Server`).
    Inactive,
}

/// What the client detected and did about it, since the app started.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicationClientStats {
    /// Region digests from the server compared with this world.
    pub audits: u64,
    /// Times this world was found to differ from the server's (an audit or a
    /// snapshot's digest): each was repaired by receiving the world again.
    pub divergences: u64,
    /// New snapshots asked for (gaps, damage, local writes, divergences).
    pub resyncs: u64,
}

/// Edits of this client the server refused.
#[derive(Message, Clone, Copy, Debug, PartialEq, Eq)]
pub struct EditsRefused {
    /// Why.
    pub reason: RefusedReason,
    /// How many edits, for this reason, in one request.
    pub count: u64,
    /// The first refused edit's position.
    pub first: IVec3,
}

/// The whole world was (re)received from the server: everything may have
/// changed (a mesher rebuilds everything).
#[derive(Message, Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorldReceived {
    /// The world's bounds.
    pub bounds: Aabb,
    /// The sequence number it was received at.
    pub sequence: u64,
}

/// Makes this app a replication client: its [`DeltaStorage`] is the server's
/// world (received as a snapshot, then kept in step by every change batch),
/// and its `MaterialUpdate` messages become edit requests to the server
/// instead of local writes. **No local prediction**: a client sees its own
/// edits when the server has applied them and sent them back, one round trip
/// later; refused ones come back as [`EditsRefused`].
///
/// Consolidation runs locally as on any storage; the client's feed records
/// what it receives, so `VoxelsChanged` works on clients as on the server, and
/// [`WorldReceived`] says when the whole world was (re)received. A missed
/// change (a gap in the sequence numbers) asks the server for a new snapshot.
///
/// It acts where the app's world comes from the server
/// ([`WorldSource::Server`](crate::WorldSource::Server)): a placeholder (16³ of
/// air) until the server's arrives. Add it after bevy_replicon's
/// `RepliconPlugins`; among this crate's plugins, in any order.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy::state::app::StatesPlugin;
/// use bevy_delta_overlay::prelude::*;
/// use bevy_delta_overlay::replication::ReplicationStatus;
/// use bevy_replicon::prelude::*;
///
/// fn show(status: Res<ReplicationStatus>) {
///     if let ReplicationStatus::Synced { sequence, lag } = *status {
///         info!("the server's world as of {sequence}, {lag} behind");
///     }
/// }
///
/// App::new()
///     .add_plugins((MinimalPlugins, StatesPlugin, RepliconPlugins))
///     .add_plugins(DeltaOverlayPlugins::new(Update).world(WorldSource::Server))
///     .add_systems(Update, show)
///     // ... and a transport's client resources (bevy_replicon_renet).
///     .run();
/// ```
#[derive(Clone, Debug)]
pub struct ReplicationClientPlugin {
    /// The schedule of the overlay's systems. Default `Update`.
    pub schedule: InternedScheduleLabel,
    /// The configuration of the received world's storage.
    pub config: DeltaConfig,
    /// Queued updates sent per frame, as one request (the rest wait in a
    /// queue of at most [`PendingEdits::CAPACITY`]). Keep it at or under the
    /// server's
    /// [`max_edits_per_request`](super::ReplicationSettings::max_edits_per_request).
    /// Default 8,192.
    pub max_edits_per_frame: usize,
}

impl ReplicationClientPlugin {
    /// The client, taking the app's updates in `schedule`'s `Ingest` phase.
    pub fn new(schedule: impl ScheduleLabel) -> Self {
        Self { schedule: schedule.intern(), config: DeltaConfig::default(), max_edits_per_frame: 8192 }
    }
}

impl Default for ReplicationClientPlugin {
    fn default() -> Self {
        Self::new(Update)
    }
}

/// The app's updates waiting to go to the server, oldest first. Bounded: past
/// [`Self::CAPACITY`] updates, newer ones are dropped and counted in
/// [`dropped`](Self::dropped).
#[derive(Resource, Clone, Debug, Default)]
pub struct PendingEdits {
    /// The queued updates, oldest first.
    pub updates: Vec<MaterialUpdate>,
    /// Updates dropped because the queue was full.
    pub dropped: u64,
}

impl PendingEdits {
    /// The most updates the queue holds.
    pub const CAPACITY: usize = 1 << 20;

    /// Queues updates, dropping what does not fit.
    pub fn extend(&mut self, updates: impl IntoIterator<Item = MaterialUpdate>) {
        for u in updates {
            if self.updates.len() < Self::CAPACITY {
                self.updates.push(u);
            } else {
                self.dropped += 1;
            }
        }
    }
}

/// True when the app's world comes from a server.
fn from_server(origin: Option<Res<WorldOrigin>>) -> bool {
    origin.is_some_and(|o| *o == WorldOrigin::Server)
}

/// Takes the frame's updates (messages, and channel batches up to the overlay's
/// per-frame cap) where the overlay applies none: the server has authority,
/// they go to it as edits. Other readers still see the messages.
fn take_updates(
    mut updates: MessageReader<MaterialUpdate>,
    receiver: Res<DeltaReceiver>,
    settings: Res<DeltaOverlaySettings>,
    mut pending: ResMut<PendingEdits>,
) {
    pending.extend(updates.read().copied());
    for batch in receiver.rx.try_iter().take(settings.max_batches_per_frame) {
        pending.extend(batch);
    }
}

/// Says, once, when the client has nothing to do: the world does not come from
/// a server.
fn check_source(origin: Option<Res<WorldOrigin>>, mut status: ResMut<ReplicationStatus>) {
    if origin.is_none_or(|o| *o != WorldOrigin::Server) {
        *status = ReplicationStatus::Inactive;
        warn!(
            "replication: ReplicationClientPlugin is added but the world does not come from a server \
             (use WorldSource::Server): the client does nothing"
        );
    }
}

#[derive(Resource, Clone)]
struct ClientConfig {
    storage: DeltaConfig,
    max_edits_per_frame: usize,
}

impl Plugin for ReplicationClientPlugin {
    fn build(&self, app: &mut App) {
        super::register(app);
        app.insert_resource(RemoteAuthority)
            .insert_resource(ClientConfig {
                storage: self.config.clone(),
                max_edits_per_frame: self.max_edits_per_frame.max(1),
            })
            .init_resource::<ReplicationStatus>()
            .init_resource::<ReplicationClientStats>()
            .init_resource::<ClientSync>()
            .init_resource::<PendingEdits>()
            .add_message::<MaterialUpdate>()
            .add_message::<EditsRefused>()
            .add_message::<WorldReceived>()
            .add_systems(
                self.schedule,
                take_updates.in_set(DeltaOverlaySystems::Ingest).after(ApplyUpdates).run_if(from_server),
            )
            .add_systems(Startup, check_source)
            .add_systems(
                PreUpdate,
                receive.after(ClientSystems::Receive).run_if(in_state(ClientState::Connected)).run_if(from_server),
            )
            .add_systems(
                PostUpdate,
                send.before(ClientSystems::Send).run_if(in_state(ClientState::Connected)).run_if(from_server),
            )
            .add_systems(OnExit(ClientState::Connected), disconnected.run_if(from_server));
    }
}

/// The outputs of [`receive`].
#[derive(bevy::ecs::system::SystemParam)]
struct Outputs<'w> {
    refused: MessageWriter<'w, EditsRefused>,
    received: MessageWriter<'w, WorldReceived>,
    out: MessageWriter<'w, ClientWire>,
}

/// Applies what the server sent: snapshot parts, change batches, refusals.
fn receive(
    mut messages: MessageReader<ServerWire>,
    mut storage: ResMut<DeltaStorage>,
    mut state: ResMut<ClientSync>,
    mut status: ResMut<ReplicationStatus>,
    mut stats: ResMut<ReplicationClientStats>,
    config: Res<ClientConfig>,
    mut outputs: Outputs,
) {
    let mut effects = vec![state.check_local_writes(&storage)];
    let before = storage.sequence();
    // Bookkeeping bypasses change detection: the storage is marked changed only
    // when the world is (see the overlay plugin's docs).
    let world = storage.bypass_change_detection();
    effects.extend(messages.read().map(|ServerWire(bytes)| state.on_message(bytes, world, &config.storage)));
    let mut changed = storage.sequence() != before;
    for effect in effects.into_iter().flatten() {
        match effect {
            Effect::Resync => {
                outputs.out.write(ClientWire(wire::resync()));
            }
            Effect::Refused(r) => {
                outputs.refused.write(r);
            }
            Effect::Received(r) => {
                changed = true;
                outputs.received.write(r);
            }
        }
    }
    if changed {
        storage.set_changed();
    }
    if *status != state.status {
        *status = state.status;
    }
    if *stats != state.stats {
        *stats = state.stats;
    }
}

/// Sends the app's queued updates as one edit request, and reports progress
/// (sequence applied, bytes received) when it moved.
fn send(
    mut pending: ResMut<PendingEdits>,
    storage: Res<DeltaStorage>,
    mut state: ResMut<ClientSync>,
    config: Res<ClientConfig>,
    mut out: MessageWriter<ClientWire>,
    mut refused: MessageWriter<EditsRefused>,
) {
    if !pending.updates.is_empty() {
        if state.is_synced() {
            let n = pending.updates.len().min(config.max_edits_per_frame);
            out.write(ClientWire(wire::edits(&pending.updates[..n])));
            pending.updates.drain(..n);
        } else {
            // No world yet: the server would refuse them; say so here.
            let first = pending.updates[0].position;
            let count = pending.updates.len() as u64;
            refused.write(EditsRefused { reason: RefusedReason::NotJoined, count, first });
            pending.updates.clear();
        }
    }
    if let Some((sequence, received)) = state.report(&storage) {
        out.write(ClientWire(wire::progress(sequence, received)));
    }
}

/// Back to waiting: the next connection gets a new snapshot.
fn disconnected(mut state: ResMut<ClientSync>, mut status: ResMut<ReplicationStatus>) {
    let stats = state.stats;
    *state = ClientSync::default();
    state.stats = stats;
    *status = ReplicationStatus::Waiting;
}
