//! The client side: the world received from the server and kept in step; the
//! app's own updates sent to the server as edit requests.

use super::wire::{self, Downlink, RefusedReason};
use super::{ClientWire, ServerWire};
use crate::plugin::DeltaOverlaySettings;
use crate::{Aabb, BaseIndex, ChangeBatch, DeltaConfig, DeltaStorage, MaterialId, PendingUpdates};
use bevy::prelude::*;
use bevy_replicon::prelude::*;

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

/// A snapshot being assembled.
#[derive(Default)]
struct Assembly {
    sequence: u64,
    bounds: Aabb,
    total: u64,
    /// Record bytes announced, and held so far (never more than announced).
    bytes: u64,
    held: u64,
    records: Vec<(u64, Vec<u8>)>,
}

/// The client's replication state.
#[derive(Resource, Default)]
struct ClientSync {
    assembly: Option<Assembly>,
    /// The world's bounds once received.
    bounds: Option<Aabb>,
    /// The highest sequence number heard from the server.
    server: u64,
    /// Bytes of server messages received since connecting (for the server's
    /// flow control).
    received: u64,
    /// What was last reported to the server: sequence and bytes received.
    reported: (u64, u64),
    /// The sequence the storage is at by what was received: a storage at
    /// another one was written locally, behind the server's back.
    applied: u64,
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
/// Add it before [`DeltaOverlayPlugin`](crate::DeltaOverlayPlugin): it inserts
/// the placeholder world (16³ of air) the client shows until the server's
/// arrives, and settings that queue updates rather than apply them.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy::state::app::StatesPlugin;
/// use bevy_delta_overlay::prelude::*;
/// use bevy_delta_overlay::{ReplicationClientPlugin, ReplicationStatus};
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
///     .add_plugins((ReplicationClientPlugin::default(), DeltaOverlayPlugin::default()))
///     .add_systems(Update, show)
///     // ... and a transport's client resources (bevy_replicon_renet).
///     .run();
/// ```
#[derive(Clone, Debug)]
pub struct ReplicationClientPlugin {
    /// The configuration of the received world's storage.
    pub config: DeltaConfig,
    /// Queued updates sent per frame, as one request (the rest wait in
    /// [`PendingUpdates`], which is capped). Keep it at or under the server's
    /// [`max_edits_per_request`](crate::ReplicationSettings::max_edits_per_request).
    /// Default 8,192.
    pub max_edits_per_frame: usize,
}

impl Default for ReplicationClientPlugin {
    fn default() -> Self {
        Self { config: DeltaConfig::default(), max_edits_per_frame: 8192 }
    }
}

/// The largest change batch a client accepts (a bigger one is damage).
const MAX_BATCH: usize = 1 << 24;

/// The largest snapshot a client assembles, in record bytes (the default
/// world's is 9 MB; a 1024³ world of geology about 100 MB).
const MAX_SNAPSHOT_BYTES: u64 = 4 << 30;

#[derive(Resource, Clone)]
struct ClientConfig {
    storage: DeltaConfig,
    max_edits_per_frame: usize,
}

impl Plugin for ReplicationClientPlugin {
    fn build(&self, app: &mut App) {
        super::register(app);
        if !app.world().contains_resource::<DeltaStorage>() {
            let bounds = Aabb::new(IVec3::ZERO, IVec3::splat(crate::BRICK_SIZE));
            let base = BaseIndex::uniform(bounds, MaterialId::AIR)
                .unwrap_or_else(|_| unreachable!("16³ at the origin is a world"));
            app.insert_resource(DeltaStorage::new(base, self.config.clone()));
        }
        if !app.world().contains_resource::<DeltaOverlaySettings>() {
            let settings =
                DeltaOverlaySettings { apply_updates: false, ..DeltaOverlaySettings::from_config(self.config.clone()) };
            app.insert_resource(settings);
        }
        app.insert_resource(ClientConfig {
            storage: self.config.clone(),
            max_edits_per_frame: self.max_edits_per_frame.max(1),
        })
        .init_resource::<ReplicationStatus>()
        .init_resource::<ClientSync>()
        .add_message::<EditsRefused>()
        .add_message::<WorldReceived>()
        .add_systems(PreUpdate, receive.after(ClientSystems::Receive).run_if(in_state(ClientState::Connected)))
        .add_systems(PostUpdate, send.before(ClientSystems::Send).run_if(in_state(ClientState::Connected)))
        .add_systems(OnExit(ClientState::Connected), disconnected);
    }
}

/// Applies what the server sent: snapshot parts, change batches, refusals.
#[allow(clippy::too_many_arguments, reason = "a system's parameters are its inputs")]
fn receive(
    mut messages: MessageReader<ServerWire>,
    mut storage: ResMut<DeltaStorage>,
    mut state: ResMut<ClientSync>,
    mut status: ResMut<ReplicationStatus>,
    config: Res<ClientConfig>,
    mut refused: MessageWriter<EditsRefused>,
    mut received: MessageWriter<WorldReceived>,
    mut out: MessageWriter<ClientWire>,
) {
    if matches!(*status, ReplicationStatus::Synced { .. }) && storage.sequence() != state.applied {
        warn!(
            "replication: this client's world was written directly (write through MaterialUpdate); asking for a resync"
        );
        resync(&mut state, &mut status, &mut out);
    }
    for ServerWire(bytes) in messages.read() {
        state.received += bytes.len() as u64;
        let message = match wire::decode_from_server(bytes) {
            Ok(m) => m,
            Err(e) => {
                // Ordered and reliable: a damaged message means the stream
                // cannot be trusted from here. Start over from a snapshot.
                warn!("replication: a server message did not decode ({e}); asking for a resync");
                resync(&mut state, &mut status, &mut out);
                continue;
            }
        };
        match message {
            Downlink::SnapshotBegin { sequence, bounds, nodes, bytes } => {
                if bytes > MAX_SNAPSHOT_BYTES || nodes > bytes {
                    warn!("replication: the server announced a snapshot of {bytes} bytes, over the cap; asking again");
                    resync(&mut state, &mut status, &mut out);
                    continue;
                }
                state.assembly = Some(Assembly { sequence, bounds, total: nodes, bytes, records: Vec::new(), held: 0 });
                *status = ReplicationStatus::Joining { nodes: 0, total: nodes };
            }
            Downlink::SnapshotChunk(records) => {
                let Some(a) = &mut state.assembly else { continue };
                a.held += records.iter().map(|(_, r)| r.len() as u64).sum::<u64>();
                a.records.extend(records);
                if a.held > a.bytes || a.records.len() as u64 > a.total {
                    // More than announced: the stream is not what it says.
                    warn!("replication: a snapshot held more than it announced; asking again");
                    resync(&mut state, &mut status, &mut out);
                    continue;
                }
                *status = ReplicationStatus::Joining { nodes: a.records.len() as u64, total: a.total };
            }
            Downlink::SnapshotEnd { sequence } => {
                let Some(a) = state.assembly.take().filter(|a| a.sequence == sequence) else { continue };
                match crate::codec::world::build(a.bounds, &a.records) {
                    Ok(base) => {
                        let recording = storage.is_recording_changes();
                        let mut world = DeltaStorage::resume(base, config.storage.clone(), sequence);
                        if recording {
                            world.record_changes(DeltaStorage::DEFAULT_CHANGE_CAPACITY);
                        }
                        *storage = world;
                        state.applied = sequence;
                        state.bounds = Some(a.bounds);
                        state.server = state.server.max(sequence);
                        *status = ReplicationStatus::Synced { sequence, lag: state.server - sequence };
                        received.write(WorldReceived { bounds: a.bounds, sequence });
                    }
                    Err((_, _, e)) => {
                        warn!("replication: the snapshot did not decode ({e}); asking for a resync");
                        resync(&mut state, &mut status, &mut out);
                    }
                }
            }
            Downlink::Changes(record) => {
                let (Some(bounds), ReplicationStatus::Synced { .. }) = (state.bounds, *status) else { continue };
                let batch = match crate::codec::decode_batch(&record, bounds, MAX_BATCH) {
                    Ok(b) => b,
                    Err(e) => {
                        warn!("replication: a change batch did not decode ({e}); asking for a resync");
                        resync(&mut state, &mut status, &mut out);
                        continue;
                    }
                };
                state.server = state.server.max(batch.last_sequence());
                // A batch may overlap the snapshot it follows (changes the
                // snapshot already holds): apply only what is new.
                let expected = storage.sequence() + 1;
                let result = if batch.last_sequence() < expected {
                    Ok(())
                } else if batch.first_sequence() < expected {
                    let skip = (expected - batch.first_sequence()) as usize;
                    storage.apply_changes(&ChangeBatch::new(expected, batch.changes()[skip..].to_vec()))
                } else {
                    storage.apply_changes(&batch)
                };
                if let Err(e) = result {
                    warn!("replication: {e}; asking for a resync");
                    resync(&mut state, &mut status, &mut out);
                    continue;
                }
                state.applied = storage.sequence();
                *status =
                    ReplicationStatus::Synced { sequence: storage.sequence(), lag: state.server - storage.sequence() };
            }
            Downlink::Refused { reason, count, first } => {
                refused.write(EditsRefused { reason, count, first });
            }
        }
    }
}

fn resync(state: &mut ClientSync, status: &mut ReplicationStatus, out: &mut MessageWriter<ClientWire>) {
    state.assembly = None;
    *status = ReplicationStatus::Resyncing;
    out.write(ClientWire(wire::resync()));
}

/// Sends the app's queued updates as one edit request, and reports progress
/// (sequence applied, bytes received) when it moved.
fn send(
    mut pending: ResMut<PendingUpdates>,
    storage: Res<DeltaStorage>,
    mut state: ResMut<ClientSync>,
    status: Res<ReplicationStatus>,
    config: Res<ClientConfig>,
    mut out: MessageWriter<ClientWire>,
    mut refused: MessageWriter<EditsRefused>,
) {
    if !pending.updates.is_empty() {
        if matches!(*status, ReplicationStatus::Synced { .. }) {
            let n = pending.updates.len().min(config.max_edits_per_frame);
            out.write(ClientWire(wire::edits(&pending.updates[..n])));
            pending.updates.drain(..n);
        } else {
            // No world yet: the server would refuse them; say so here.
            let first = pending.updates[0].0;
            refused.write(EditsRefused {
                reason: RefusedReason::NotJoined,
                count: pending.updates.len() as u64,
                first,
            });
            pending.updates.clear();
        }
    }
    let sequence = if matches!(*status, ReplicationStatus::Synced { .. }) { storage.sequence() } else { 0 };
    let now = (sequence, state.received);
    if now != state.reported {
        state.reported = now;
        out.write(ClientWire(wire::progress(now.0, now.1)));
    }
}

/// Back to waiting: the next connection gets a new snapshot.
fn disconnected(mut state: ResMut<ClientSync>, mut status: ResMut<ReplicationStatus>) {
    *state = ClientSync::default();
    *status = ReplicationStatus::Waiting;
}
