//! The authoritative side: snapshots for joining clients, each frame's changes
//! to every client, clients' edits validated and applied.

use super::wire::{self, RefusedReason, Uplink};
use super::{ClientWire, ServerWire};
use crate::plugin::{DeltaOverlaySchedule, DeltaOverlaySystems, FrameChanges};
use crate::{Aabb, DeltaStorage, MaterialUpdate, WorldSnapshot};
use bevy::ecs::schedule::ScheduleLabel;
use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task, futures::check_ready};
use bevy_replicon::bytes::Bytes;
use bevy_replicon::prelude::*;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

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
/// use bevy_delta_overlay::EditPolicy;
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
}

impl Default for EditPolicy {
    fn default() -> Self {
        Self::new(|_, _| true)
    }
}

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
    /// Messages that did not decode (damaged, hostile, oversized).
    pub malformed: u64,
    /// Clients disconnected for malformed messages or floods.
    pub disconnected: u64,
    /// Snapshots taken for joining clients.
    pub snapshots: u64,
    /// The size of the last snapshot, in bytes of its messages.
    pub snapshot_bytes: u64,
    /// How long the last snapshot took to encode (on the async pool).
    pub snapshot_encode: std::time::Duration,
}

/// A snapshot encoded as the messages of a join: begin, chunks, end.
struct EncodedSnapshot {
    messages: Vec<Bytes>,
    /// The messages' total size.
    bytes: usize,
    /// The time it took to encode.
    took: std::time::Duration,
}

/// Where a client is.
enum PeerState {
    /// Connected, waiting for a snapshot.
    Waiting,
    /// Receiving a snapshot; the changes after it wait in `backlog`.
    Streaming { snapshot: Arc<EncodedSnapshot>, next: usize, backlog: VecDeque<Bytes>, backlog_bytes: usize },
    /// Has the world; receives every frame's changes.
    Synced,
}

/// The server's record of a connected client.
#[derive(Component)]
pub(crate) struct Peer {
    state: PeerState,
    /// The client's reported sequence (its world is the server's as of it).
    applied: u64,
    /// Bytes sent to it, and bytes it reported received.
    sent: u64,
    received: u64,
    tokens: f32,
    refill: Instant,
    /// Refused edits in the current one-second window, and its start.
    refused_window: u64,
    window: Instant,
}

impl Peer {
    fn new(burst: f32) -> Self {
        let now = Instant::now();
        Self {
            state: PeerState::Waiting,
            applied: 0,
            sent: 0,
            received: 0,
            tokens: burst,
            refill: now,
            refused_window: 0,
            window: now,
        }
    }

    fn in_flight(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

/// The snapshot joiners are served from, and the changes since it.
#[derive(Resource, Default)]
struct SnapshotCache {
    latest: Option<Arc<EncodedSnapshot>>,
    building: Option<Task<EncodedSnapshot>>,
    /// Encoded change messages after the snapshot's sequence.
    history: VecDeque<Bytes>,
    history_bytes: usize,
    /// The last sequence number broadcast.
    broadcast: u64,
    /// Bytes of refusals sent by `receive` this frame (added to the frame's
    /// figure by `send`).
    refusal_bytes: u64,
}

impl SnapshotCache {
    fn invalidate(&mut self) {
        self.latest = None;
        self.building = None;
        self.history.clear();
        self.history_bytes = 0;
    }
}

/// Makes this app the authoritative server of its [`DeltaStorage`]: every
/// frame's changes go to every synced client as one ordered, reliable
/// message; a joining client gets a snapshot streamed under a flow-control
/// window, then the changes after it; clients' edits are validated (bounds, a
/// per-client rate, the [`EditPolicy`]) and applied in arrival order, or
/// refused with a reason. Malformed messages and floods disconnect their
/// sender. Consolidation stays local to each peer: it is never on the wire.
///
/// Add it with `RepliconPlugins` (and a transport such as
/// `bevy_replicon_renet`) and [`DeltaOverlayPlugin`](crate::DeltaOverlayPlugin);
/// the `multiplayer` example shows the whole setup.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy::state::app::StatesPlugin;
/// use bevy_delta_overlay::prelude::*;
/// use bevy_delta_overlay::{EditPolicy, ReplicationServerPlugin};
/// use bevy_replicon::prelude::*;
///
/// App::new()
///     .add_plugins((MinimalPlugins, StatesPlugin, RepliconPlugins))
///     .add_plugins((DeltaOverlayPlugin::default(), ReplicationServerPlugin::default()))
///     // Clients may only dig above y = 64.
///     .insert_resource(EditPolicy::new(|_client, p| p.y >= 64))
///     // ... and a transport's server resources (bevy_replicon_renet).
///     .run();
/// ```
///
/// # Systems
///
/// `PreUpdate`, after replicon's receive: client messages handled, accepted
/// edits written as `MaterialUpdate`s (ingested in that frame's `Ingest`).
/// In the overlay's schedule, in `Ingest` after the feed is published: the
/// frame's changes encoded once and sent, snapshots taken and streamed.
///
/// # Bounds
///
/// Per client, at most [`ReplicationSettings::window_bytes`] of snapshot in
/// flight and [`ReplicationSettings::max_behind_bytes`] of changes (a slower
/// client is re-joined); for joiners, [`ReplicationSettings::max_join_backlog`]
/// of changes kept; per request, [`ReplicationSettings::max_edits_per_request`].
#[derive(Clone, Debug, Default)]
pub struct ReplicationServerPlugin {
    /// The settings, unless the app inserted its own.
    pub settings: ReplicationSettings,
}

impl Plugin for ReplicationServerPlugin {
    fn build(&self, app: &mut App) {
        super::register(app);
        if !app.world().contains_resource::<ReplicationSettings>() {
            app.insert_resource(self.settings.clone());
        }
        app.register_type::<ReplicationSettings>()
            .init_resource::<EditPolicy>()
            .init_resource::<ReplicationStats>()
            .init_resource::<SnapshotCache>()
            .add_observer(joined)
            .add_systems(PreUpdate, receive.after(ServerSystems::Receive).run_if(in_state(ServerState::Running)));
    }

    fn finish(&self, app: &mut App) {
        let schedule = app.world().get_resource::<DeltaOverlaySchedule>().map_or(Update.intern(), |s| s.0);
        app.add_systems(
            schedule,
            send.in_set(DeltaOverlaySystems::Ingest)
                .after(crate::plugin::publish_changes)
                .run_if(in_state(ServerState::Running)),
        );
    }
}

/// A client was authorized: it waits for a snapshot.
fn joined(add: On<Add, AuthorizedClient>, settings: Res<ReplicationSettings>, mut commands: Commands) {
    commands.entity(add.entity).insert(Peer::new(settings.edit_burst));
}

/// Handles client messages: edits validated and written as `MaterialUpdate`s
/// in arrival order, resync requests, progress reports.
#[allow(clippy::too_many_arguments, reason = "a system's parameters are its inputs")]
fn receive(
    mut messages: MessageReader<FromClient<ClientWire>>,
    mut peers: Query<&mut Peer>,
    storage: Res<DeltaStorage>,
    settings: Res<ReplicationSettings>,
    policy: Res<EditPolicy>,
    mut stats: ResMut<ReplicationStats>,
    mut updates: MessageWriter<MaterialUpdate>,
    mut out: MessageWriter<ToClients<ServerWire>>,
    mut disconnect: MessageWriter<DisconnectRequest>,
    mut cache: ResMut<SnapshotCache>,
    mut commands: Commands,
) {
    let bounds = storage.bounds();
    let now = Instant::now();
    let mut dropped = Vec::new();
    for FromClient { client_id, message } in messages.read() {
        let Some(entity) = client_id.entity() else { continue };
        let Ok(mut peer) = peers.get_mut(entity) else { continue };
        if dropped.contains(&entity) {
            continue;
        }
        let message = match wire::decode_from_client(&message.0, settings.max_edits_per_request) {
            Ok(m) => m,
            Err(e) => {
                stats.malformed += 1;
                stats.disconnected += 1;
                warn!("replication: client {entity} sent a malformed message ({e}); disconnecting it");
                drop_peer(entity, &mut disconnect, &mut commands);
                dropped.push(entity);
                continue;
            }
        };
        match message {
            Uplink::Progress { sequence, received } => {
                peer.applied = peer.applied.max(sequence);
                // A report of more than was sent is a lie; the window stays shut.
                peer.received = peer.received.max(received.min(peer.sent));
            }
            Uplink::Resync => {
                info!("replication: client {entity} asked for a resync");
                peer.state = PeerState::Waiting;
            }
            Uplink::Edits(edits) => {
                let synced = matches!(peer.state, PeerState::Synced);
                let refused =
                    admit(&mut peer, edits, synced, now, bounds, &settings, &policy, entity, &mut stats, |u| {
                        updates.write(u);
                    });
                if now.duration_since(peer.window).as_secs_f32() >= 1.0 {
                    peer.window = now;
                    peer.refused_window = 0;
                }
                for (reason, count, first) in refused {
                    peer.refused_window += count;
                    let bytes = Bytes::from(wire::refused(reason, count, first));
                    peer.sent += bytes.len() as u64;
                    cache.refusal_bytes += bytes.len() as u64;
                    out.write(ToClients { targets: SendTargets::Single(*client_id), message: ServerWire(bytes) });
                }
                if peer.refused_window > settings.flood_limit {
                    stats.disconnected += 1;
                    warn!("replication: client {entity} flooded refused edits; disconnecting it");
                    drop_peer(entity, &mut disconnect, &mut commands);
                    dropped.push(entity);
                }
            }
        }
    }
}

/// Asks the transport to disconnect a client and stops serving it now (its
/// messages still in this frame's queue are ignored: it has no `Peer`).
fn drop_peer(client: Entity, disconnect: &mut MessageWriter<DisconnectRequest>, commands: &mut Commands) {
    disconnect.write(DisconnectRequest { client });
    commands.entity(client).remove::<Peer>();
}

/// Checks a request's edits in order; the accepted go to `accept`, the
/// refused are counted by reason (with the first position of each).
#[allow(clippy::too_many_arguments, reason = "the checks' inputs")]
fn admit(
    peer: &mut Peer,
    edits: Vec<(IVec3, crate::MaterialId)>,
    synced: bool,
    now: Instant,
    bounds: Aabb,
    settings: &ReplicationSettings,
    policy: &EditPolicy,
    client: Entity,
    stats: &mut ReplicationStats,
    mut accept: impl FnMut(MaterialUpdate),
) -> Vec<(RefusedReason, u64, IVec3)> {
    let mut refused: Vec<(RefusedReason, u64, IVec3)> = Vec::new();
    let mut refuse = |reason, p| match refused.iter_mut().find(|r| r.0 == reason) {
        Some(r) => r.1 += 1,
        None => refused.push((reason, 1, p)),
    };
    let elapsed = now.duration_since(peer.refill).as_secs_f32();
    peer.tokens = (peer.tokens + elapsed * settings.edits_per_second).min(settings.edit_burst);
    peer.refill = now;
    for (p, m) in edits {
        if !synced {
            stats.refused_not_joined += 1;
            refuse(RefusedReason::NotJoined, p);
        } else if !bounds.contains(p) {
            stats.refused_out_of_bounds += 1;
            refuse(RefusedReason::OutOfBounds, p);
        } else if peer.tokens < 1.0 {
            stats.refused_rate += 1;
            refuse(RefusedReason::RateLimited, p);
        } else if !(policy.0)(client, p) {
            stats.refused_unauthorized += 1;
            refuse(RefusedReason::Unauthorized, p);
        } else {
            peer.tokens -= 1.0;
            stats.edits_applied += 1;
            accept(MaterialUpdate { position: p, material: m });
        }
    }
    refused
}

/// Encodes a snapshot as the messages of a join (on a task: it reads and
/// encodes every node of the world).
fn encode(snapshot: WorldSnapshot) -> EncodedSnapshot {
    /// A chunk's size: small enough to interleave with other traffic.
    const CHUNK: usize = 16 << 10;
    let start = Instant::now();
    let sequence = snapshot.sequence();
    let bounds: Aabb = snapshot.bounds();
    let mut chunks = Vec::new();
    let (mut records, mut size, mut nodes, mut bytes) = (Vec::new(), 0, 0u64, 0u64);
    crate::codec::world::for_each_record(&snapshot, |key, record| {
        size += record.len() + 12;
        nodes += 1;
        bytes += record.len() as u64;
        records.push((key, record));
        if size >= CHUNK {
            chunks.push(Bytes::from(wire::snapshot_chunk(&records)));
            records.clear();
            size = 0;
        }
    });
    if !records.is_empty() {
        chunks.push(Bytes::from(wire::snapshot_chunk(&records)));
    }
    let mut messages = Vec::with_capacity(chunks.len() + 2);
    messages.push(Bytes::from(wire::snapshot_begin(sequence, bounds, nodes, bytes)));
    messages.extend(chunks);
    messages.push(Bytes::from(wire::snapshot_end(sequence)));
    let bytes = messages.iter().map(Bytes::len).sum();
    EncodedSnapshot { messages, bytes, took: start.elapsed() }
}

/// Sends the frame's changes to synced clients (and queues them for joining
/// ones), takes and streams snapshots.
#[allow(clippy::too_many_arguments, reason = "a system's parameters are its inputs")]
fn send(
    frame: Res<FrameChanges>,
    mut storage: ResMut<DeltaStorage>,
    mut cache: ResMut<SnapshotCache>,
    mut peers: Query<(Entity, &mut Peer)>,
    settings: Res<ReplicationSettings>,
    mut stats: ResMut<ReplicationStats>,
    mut out: MessageWriter<ToClients<ServerWire>>,
) {
    let cache = &mut *cache;
    let mut sent = std::mem::take(&mut cache.refusal_bytes);
    let mut send = |client: Entity, peer: &mut Peer, bytes: &Bytes, sent: &mut u64| {
        *sent += bytes.len() as u64;
        peer.sent += bytes.len() as u64;
        out.write(ToClients {
            targets: SendTargets::Single(ClientId::Client(client)),
            message: ServerWire(bytes.clone()),
        });
    };
    // The frame's changes, encoded once for every client; kept for joiners
    // while a snapshot is built or served (they need every change after it).
    let batch = &frame.batch;
    let mut fresh = None;
    if !batch.is_empty() && batch.last_sequence() > cache.broadcast {
        cache.broadcast = batch.last_sequence();
        if batch.is_complete() {
            let bytes = Bytes::from(crate::codec::encode_batch(batch, storage.bounds()));
            if cache.latest.is_some() || cache.building.is_some() {
                cache.history_bytes += bytes.len();
                cache.history.push_back(bytes.clone());
                let replay_limit = cache.latest.as_ref().map_or(usize::MAX, |s| s.bytes);
                if cache.history_bytes > settings.max_join_backlog.min(replay_limit) {
                    // Replaying would cost more than a new snapshot.
                    cache.invalidate();
                }
            }
            fresh = Some((bytes, batch.len() as u64));
        } else {
            // The feed overflowed (more changes in a frame than it keeps):
            // the batch cannot be replayed, so everyone gets a snapshot.
            warn!("replication: the frame's changes overflowed the change feed; every client is sent a new snapshot");
            cache.invalidate();
            for (_, mut peer) in &mut peers {
                peer.state = PeerState::Waiting;
            }
        }
    }
    // A snapshot being built lands (the history holds every batch after it);
    // one is started when someone waits. The feed was drained just before,
    // so the storage is at a batch boundary.
    if let Some(done) = cache.building.as_mut().and_then(check_ready) {
        cache.building = None;
        stats.snapshot_bytes = done.bytes as u64;
        stats.snapshot_encode = done.took;
        cache.latest = Some(Arc::new(done));
    }
    let waiting = peers.iter().any(|(_, p)| matches!(p.state, PeerState::Waiting));
    if waiting && cache.latest.is_none() && cache.building.is_none() {
        let snapshot = storage.bypass_change_detection().snapshot();
        stats.snapshots += 1;
        cache.history.clear();
        cache.history_bytes = 0;
        cache.building = Some(AsyncComputeTaskPool::get().spawn(async move { encode(snapshot) }));
    }
    let (mut joining, mut max_lag) = (0, 0);
    let now = storage.sequence();
    for (client, mut peer) in &mut peers {
        let peer = &mut *peer;
        // A peer that starts streaming now gets the history, this frame's
        // batch included. One still receiving earlier messages waits: the
        // snapshot goes after them, and they would count against its window.
        let mut started = false;
        if let PeerState::Waiting = peer.state
            && let Some(snapshot) = &cache.latest
            && peer.in_flight() < settings.window_bytes
        {
            started = true;
            peer.state = PeerState::Streaming {
                snapshot: Arc::clone(snapshot),
                next: 0,
                backlog: cache.history.clone(),
                backlog_bytes: cache.history_bytes,
            };
        }
        let mut state = std::mem::replace(&mut peer.state, PeerState::Waiting);
        match &mut state {
            PeerState::Waiting => joining += 1,
            PeerState::Synced => {
                if let Some((bytes, changes)) = &fresh {
                    if peer.in_flight() > settings.max_behind_bytes {
                        warn!("replication: client {client} fell {} bytes behind; re-joining it", peer.in_flight());
                        state = PeerState::Waiting;
                    } else {
                        send(client, peer, bytes, &mut sent);
                        stats.change_bytes += bytes.len() as u64;
                        stats.changes_sent += changes;
                    }
                }
                max_lag = max_lag.max(now.saturating_sub(peer.applied));
            }
            PeerState::Streaming { snapshot, next, backlog, backlog_bytes } => {
                joining += 1;
                if let Some((bytes, _)) = fresh.as_ref().filter(|_| !started) {
                    *backlog_bytes += bytes.len();
                    backlog.push_back(bytes.clone());
                }
                while *next < snapshot.messages.len() && peer.in_flight() < settings.window_bytes {
                    send(client, peer, &snapshot.messages[*next], &mut sent);
                    *next += 1;
                }
                if *backlog_bytes > settings.max_join_backlog {
                    state = PeerState::Waiting;
                } else if *next == snapshot.messages.len() {
                    for m in backlog.drain(..) {
                        send(client, peer, &m, &mut sent);
                    }
                    state = PeerState::Synced;
                }
            }
        }
        peer.state = state;
    }
    stats.peers = peers.iter().len();
    stats.joining = joining;
    stats.max_lag = max_lag;
    stats.bytes_this_frame = sent;
    stats.bytes_total += sent;
}
