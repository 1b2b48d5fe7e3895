//! The server's systems: thin, the decisions are the peers' and the cache's.

use super::cache::{Broadcast, SnapshotCache};
use super::peer::{Peer, PeerState};
use super::settings::{EditPolicy, ReplicationSettings};
use super::stats::ReplicationStats;
use crate::material::MaterialUpdate;
use crate::plugin::FrameChanges;
use crate::replication::wire::{self, Uplink};
use crate::replication::{ClientWire, ServerWire};
use crate::storage::DeltaStorage;
use bevy::prelude::*;
use bevy_replicon::bytes::Bytes;
use bevy_replicon::prelude::*;
use std::time::Instant;

/// A client was authorized: it waits for a snapshot.
pub(super) fn joined(add: On<Add, AuthorizedClient>, settings: Res<ReplicationSettings>, mut commands: Commands) {
    commands.entity(add.entity).insert(Peer::new(settings.edit_burst));
}

/// The outputs of [`receive`].
#[derive(bevy::ecs::system::SystemParam)]
pub(super) struct Outputs<'w> {
    updates: MessageWriter<'w, MaterialUpdate>,
    out: MessageWriter<'w, ToClients<ServerWire>>,
    disconnect: MessageWriter<'w, DisconnectRequest>,
}

/// Handles client messages: edits validated and written as `MaterialUpdate`s
/// in arrival order, resync requests, progress reports.
#[allow(clippy::too_many_arguments, reason = "a system's parameters are its inputs")]
pub(super) fn receive(
    mut messages: MessageReader<FromClient<ClientWire>>,
    mut peers: Query<&mut Peer>,
    storage: Res<DeltaStorage>,
    settings: Res<ReplicationSettings>,
    policy: Res<EditPolicy>,
    mut stats: ResMut<ReplicationStats>,
    mut cache: ResMut<SnapshotCache>,
    mut outputs: Outputs,
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
                drop_peer(entity, &mut outputs.disconnect, &mut commands);
                dropped.push(entity);
                continue;
            }
        };
        match message {
            Uplink::Progress { sequence, received } => peer.progress(sequence, received),
            Uplink::Resync => {
                info!("replication: client {entity} asked for a resync");
                peer.state = PeerState::Waiting;
            }
            Uplink::Edits(edits) => {
                let refused = peer.admit(edits, now, bounds, &settings, &policy, entity, &mut stats, |u| {
                    outputs.updates.write(u);
                });
                let mut count = 0;
                for (reason, n, first) in refused {
                    count += n;
                    let bytes = Bytes::from(wire::refused(reason, n, first));
                    peer.sent += bytes.len() as u64;
                    cache.refusal_bytes += bytes.len() as u64;
                    let target = SendTargets::Single(*client_id);
                    outputs.out.write(ToClients { targets: target, message: ServerWire(bytes) });
                }
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

/// Asks the transport to disconnect a client and stops serving it now (its
/// messages still in this frame's queue are ignored: it has no `Peer`).
fn drop_peer(client: Entity, disconnect: &mut MessageWriter<DisconnectRequest>, commands: &mut Commands) {
    disconnect.write(DisconnectRequest { client });
    commands.entity(client).remove::<Peer>();
}

/// Sends the frame's changes to synced clients (and queues them for joining
/// ones), takes and streams snapshots.
pub(super) fn send(
    frame: Res<FrameChanges>,
    mut storage: ResMut<DeltaStorage>,
    mut cache: ResMut<SnapshotCache>,
    mut peers: Query<(Entity, &mut Peer)>,
    settings: Res<ReplicationSettings>,
    mut stats: ResMut<ReplicationStats>,
    mut out: MessageWriter<ToClients<ServerWire>>,
) {
    let broadcast = cache.broadcast(&frame.batch, storage.bounds(), &settings);
    if let Broadcast::Overflow = broadcast {
        // More changes in a frame than the feed keeps: they cannot be replayed.
        warn!("replication: the frame's changes overflowed the change feed; every client is sent a new snapshot");
        for (_, mut peer) in &mut peers {
            peer.state = PeerState::Waiting;
        }
    }
    let waiting = peers.iter().any(|(_, p)| matches!(p.state, PeerState::Waiting));
    cache.refresh(waiting, storage.bypass_change_detection(), &mut stats);
    let (mut sent, mut joining, mut max_lag) = (std::mem::take(&mut cache.refusal_bytes), 0, 0);
    let now = storage.sequence();
    for (client, mut peer) in &mut peers {
        let served = peer.serve(&broadcast, &cache, &settings);
        joining += usize::from(served.joining);
        if matches!(peer.state, PeerState::Synced) {
            max_lag = max_lag.max(now.saturating_sub(peer.applied));
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
