//! The server's systems: thin, the decisions are the peers' and the cache's.

use super::cache::{Broadcast, SnapshotCache};
use super::peer::{Checks, Peer, PeerState, Refusals, Resync};
use super::settings::{EditPolicy, ReplicationSettings};
use super::stats::ReplicationStats;
use crate::material::{MaterialUpdate, Palette};
use crate::plugin::{Backlog, DeltaOverlaySettings, FrameChanges};
use crate::replication::audit;
use crate::replication::wire::{self, RefusedReason, Uplink};
use crate::replication::{ClientWire, ServerWire};
use crate::storage::DeltaStorage;
use bevy::prelude::*;
use bevy_replicon::bytes::Bytes;
use bevy_replicon::prelude::*;
use bevy_replicon::shared::backend::connected_client::NetworkId;
use std::time::Instant;

/// A client was authorized: it waits for a snapshot.
pub(super) fn joined(
    add: On<Add, AuthorizedClient>,
    settings: Res<ReplicationSettings>,
    ids: Query<&NetworkId>,
    mut commands: Commands,
) {
    let mut peer = Peer::new(settings.edit_burst);
    peer.network_id = ids.get(add.entity).ok().map(|id| id.get());
    commands.entity(add.entity).insert(peer);
}

/// The outputs of [`receive`].
#[derive(bevy::ecs::system::SystemParam)]
pub(super) struct Outputs<'w> {
    updates: MessageWriter<'w, MaterialUpdate>,
    out: MessageWriter<'w, ToClients<ServerWire>>,
    disconnect: MessageWriter<'w, DisconnectRequest>,
}

/// What edits are checked against, read once a frame.
#[derive(bevy::ecs::system::SystemParam)]
pub(super) struct Rules<'w> {
    storage: Res<'w, DeltaStorage>,
    settings: Res<'w, ReplicationSettings>,
    policy: Res<'w, EditPolicy>,
    palette: Res<'w, Palette>,
    /// The overlay's ingest backlog: an edit accepted must find room in it.
    backlog: Res<'w, Backlog>,
    overlay: Res<'w, DeltaOverlaySettings>,
}

/// Handles client messages: edits validated and written as `MaterialUpdate`s
/// in arrival order (within the server's budget a frame), resync requests
/// (limited), progress reports.
pub(super) fn receive(
    mut messages: MessageReader<FromClient<ClientWire>>,
    mut peers: Query<(Entity, &mut Peer)>,
    rules: Rules,
    mut stats: ResMut<ReplicationStats>,
    mut cache: ResMut<SnapshotCache>,
    mut outputs: Outputs,
    mut commands: Commands,
) {
    let settings = &*rules.settings;
    let bounds = rules.storage.bounds();
    let now = Instant::now();
    // The frame's edits from every client, and no more than the ingest's
    // backlog takes: an edit accepted is applied, never refused later out of
    // the client's sight.
    let room = rules.overlay.max_backlog.saturating_sub(rules.backlog.len());
    let mut budget = settings.server_edits_per_frame.min(room);
    let mut dropped = Vec::new();
    for FromClient { client_id, message } in messages.read() {
        let Some(entity) = client_id.entity() else { continue };
        let Ok((_, mut peer)) = peers.get_mut(entity) else { continue };
        if dropped.contains(&entity) {
            continue;
        }
        let message = match wire::decode_from_client(&message.0, settings.max_edits_per_request) {
            Ok(m) => m,
            Err(e) => {
                stats.malformed += 1;
                stats.disconnected += 1;
                warn!("replication: client {entity} sent a malformed message ({e}); disconnecting it");
                drop_peer(entity, &mut outputs.disconnect, &mut commands);
                dropped.push(entity);
                continue;
            }
        };
        match message {
            Uplink::Progress { sequence, received } => peer.progress(sequence, received, now),
            Uplink::Resync => match peer.resync(now, settings.max_resyncs_per_minute) {
                Resync::Granted => {
                    info!("replication: client {entity} asked for a resync");
                    stats.resyncs += 1;
                }
                Resync::Ignored => stats.resyncs_ignored += 1,
                Resync::Abusive => {
                    stats.disconnected += 1;
                    warn!("replication: client {entity} asked for the world too often; disconnecting it");
                    drop_peer(entity, &mut outputs.disconnect, &mut commands);
                    dropped.push(entity);
                }
            },
            Uplink::Edits(edits) => {
                let checks = Checks {
                    bounds,
                    palette: &rules.palette,
                    settings,
                    policy: &rules.policy,
                    client: entity,
                    budget: &mut budget,
                };
                let refused = peer.admit(edits, now, checks, &mut stats, |u| {
                    outputs.updates.write(u);
                });
                let count = tell_refused(&mut peer, refused, *client_id, &mut cache, &mut outputs.out);
                if peer.refused(now, count, settings.flood_limit) {
                    stats.disconnected += 1;
                    warn!("replication: client {entity} flooded refused edits; disconnecting it");
                    drop_peer(entity, &mut outputs.disconnect, &mut commands);
                    dropped.push(entity);
                }
            }
        }
    }
}

/// Sends a client its refusals, one message a reason; returns how many count
/// toward a flood. Only what the client did wrong counts: over its rate, or
/// refused for the server's own budget, an honest client is told and may send
/// again.
fn tell_refused(
    peer: &mut Peer,
    refused: Refusals,
    client: ClientId,
    cache: &mut SnapshotCache,
    out: &mut MessageWriter<ToClients<ServerWire>>,
) -> u64 {
    let mut count = 0;
    for (reason, n, first) in refused {
        if !matches!(reason, RefusedReason::RateLimited | RefusedReason::ServerBusy) {
            count += n;
        }
        let bytes = Bytes::from(wire::refused(reason, n, first));
        peer.sent += bytes.len() as u64;
        cache.refusal_bytes += bytes.len() as u64;
        out.write(ToClients { targets: SendTargets::Single(client), message: ServerWire(bytes) });
    }
    count
}

/// Disconnects clients that stopped acknowledging what they were sent.
pub(super) fn drop_stalled(
    peers: Query<(Entity, &Peer)>,
    settings: Res<ReplicationSettings>,
    mut stats: ResMut<ReplicationStats>,
    mut disconnect: MessageWriter<DisconnectRequest>,
    mut commands: Commands,
) {
    let now = Instant::now();
    for (entity, peer) in &peers {
        if peer.stalled(now, settings.ack_timeout) {
            stats.disconnected += 1;
            stats.timed_out += 1;
            warn!("replication: client {entity} acknowledged nothing for {:?}; disconnecting it", settings.ack_timeout);
            drop_peer(entity, &mut disconnect, &mut commands);
        }
    }
}

/// Asks the transport to disconnect a client and stops serving it now (its
/// messages still in this frame's queue are ignored: it has no `Peer`).
fn drop_peer(client: Entity, disconnect: &mut MessageWriter<DisconnectRequest>, commands: &mut Commands) {
    disconnect.write(DisconnectRequest { client });
    commands.entity(client).remove::<Peer>();
}

/// Sends the frame's changes to synced clients (and queues them for joining
/// ones), takes and streams snapshots, and audits one region now and then.
#[allow(clippy::too_many_arguments, reason = "a system's parameters are its inputs")]
pub(super) fn send(
    frame: Res<FrameChanges>,
    mut storage: ResMut<DeltaStorage>,
    mut cache: ResMut<SnapshotCache>,
    mut peers: Query<(Entity, &mut Peer)>,
    settings: Res<ReplicationSettings>,
    mut stats: ResMut<ReplicationStats>,
    mut out: MessageWriter<ToClients<ServerWire>>,
    mut audits: Local<Audits>,
) {
    if cache.world != Some(storage.world_id()) {
        if cache.world.is_some() {
            // The world was replaced (a new game, a load): nothing cached
            // holds, and every client holds another world.
            info!("replication: the server's world was replaced; every client is sent the new one");
            cache.reset();
            for (_, mut peer) in &mut peers {
                peer.state = PeerState::Waiting;
            }
        }
        cache.world = Some(storage.world_id());
    }
    let broadcast = cache.broadcast(&frame.batch, storage.bounds(), &settings);
    if let Broadcast::Overflow = broadcast {
        // More changes in a frame than the feed keeps: they cannot be replayed.
        warn!("replication: the frame's changes overflowed the change feed; every client is sent a new snapshot");
        for (_, mut peer) in &mut peers {
            peer.state = PeerState::Waiting;
        }
    }
    // A peer that does not acknowledge cannot be sent a snapshot: it does not
    // make the server build one.
    let waiting =
        peers.iter().any(|(_, p)| matches!(p.state, PeerState::Waiting) && p.in_flight() < settings.window_bytes);
    cache.refresh(waiting, storage.bypass_change_detection(), &mut stats);
    let (mut sent, mut joining, mut max_lag) = (std::mem::take(&mut cache.refusal_bytes), 0, 0);
    let sequence = storage.sequence();
    let now = Instant::now();
    let audit = audits.due(now, &settings, &storage, cache.broadcast);
    for (client, mut peer) in &mut peers {
        let mut served = peer.serve(&broadcast, &cache, &settings, now);
        joining += usize::from(served.joining);
        if matches!(peer.state, PeerState::Synced) {
            max_lag = max_lag.max(sequence.saturating_sub(peer.applied));
            if let Some(audit) = &audit {
                stats.audits += 1;
                peer.sent += audit.len() as u64;
                served.messages.push(audit.clone());
            }
        }
        stats.change_bytes += served.change_bytes;
        stats.changes_sent += served.changes;
        for message in served.messages {
            sent += message.len() as u64;
            let targets = SendTargets::Single(ClientId::Client(client));
            out.write(ToClients { targets, message: ServerWire(message) });
        }
    }
    stats.peers = peers.iter().len();
    stats.joining = joining;
    stats.max_lag = max_lag;
    stats.bytes_this_frame = sent;
    stats.bytes_total += sent;
}

/// The server's audit round: when the next is due, and which region.
#[derive(Default)]
pub(super) struct Audits {
    next: Option<Instant>,
    cursor: u64,
    scratch: crate::base::Region,
}

impl Audits {
    /// The audit message to send synced clients this frame, if one is due and
    /// the world is at the last broadcast sequence (what they will hold when
    /// they read it).
    fn due(
        &mut self,
        now: Instant,
        settings: &ReplicationSettings,
        storage: &DeltaStorage,
        broadcast: u64,
    ) -> Option<Bytes> {
        if settings.audit_every.is_zero() || storage.sequence() != broadcast {
            return None;
        }
        if self.next.is_some_and(|next| now < next) {
            return None;
        }
        self.next = Some(now + settings.audit_every);
        let region = audit::region(storage.bounds(), self.cursor);
        self.cursor = (self.cursor + 1) % audit::count(storage.bounds());
        let digest = audit::digest(storage, region, &mut self.scratch)?;
        Some(Bytes::from(wire::audit(broadcast, region, digest)))
    }
}

/// The server stopped: what it cached is forgotten (a restart may come with
/// another world or sequence).
pub(super) fn forget(mut cache: ResMut<SnapshotCache>) {
    cache.reset();
}
