//! The region server: each client is sent its sectors' edits, then the
//! changes in them; the sectors' stored edits are read on the async pool.

use super::peer::RegionPeer;
use super::wire::{self, PART, Up};
use super::{RegionSettings, RegionStats};
use crate::hash::{FastMap, fast_map};
use crate::material::MaterialUpdate;
use crate::paging::{ShareError, StoredEdits};
use crate::plugin::PagedStore;
use crate::replication::{ClientWire, ServerWire};
use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task, futures::check_ready};
use bevy_replicon::bytes::Bytes;
use bevy_replicon::prelude::*;
use glam::IVec2;
use std::sync::Arc;

/// A sector's edits encoded: the parts of a sector message (each an edits
/// field, and whether it is the last).
type Parts = Vec<(Vec<u8>, bool)>;

/// Sectors' stored edits being read and encoded off the main thread, and
/// those completed this frame (a sector's every edit as of this frame's
/// end: sent to every client waiting for it, then dropped).
#[derive(Resource)]
pub(super) struct SectorReads {
    /// Each read's answer, its stored edits encoded, and how many.
    tasks: FastMap<IVec2, Task<(StoredEdits, Parts, usize)>>,
    ready: FastMap<IVec2, Arc<Parts>>,
    /// Memory's edits encoded this frame (the main thread's share).
    encoded: usize,
    /// Which client is served first this frame: each in turn, so none
    /// takes every read slot frame after frame.
    turn: usize,
}

impl Default for SectorReads {
    fn default() -> Self {
        Self { tasks: fast_map(), ready: fast_map(), encoded: 0, turn: 0 }
    }
}

/// The server stopped: the reads under way are abandoned (memory would
/// otherwise keep what the file acknowledged for them, for good).
pub(super) fn forget_reads(mut reads: ResMut<SectorReads>, store: Option<ResMut<PagedStore>>) {
    let keys: Vec<IVec2> = reads.tasks.drain().map(|(k, _)| k).collect();
    reads.ready.clear();
    if let Some(mut store) = store {
        keys.into_iter().for_each(|k| store.abandon_read(k));
    }
}

/// `edits` as sector parts of at most [`PART`] edits, none of them
/// the last.
fn encode(edits: &[(glam::IVec3, crate::material::MaterialId)], parts: &mut Parts) {
    let mut part = Vec::with_capacity(edits.len().min(PART));
    for chunk in edits.chunks(PART) {
        part.clear();
        part.extend(chunk.iter().map(|&(p, m)| MaterialUpdate::new(p, m)));
        parts.push((wire::edits_field(&part), false));
    }
}

/// A client was authorized: it waits for its region.
pub(super) fn joined(add: On<Add, AuthorizedClient>, mut commands: Commands) {
    commands.entity(add.entity).insert(RegionPeer::default());
}

/// Handles client messages: regions (sectors outside the world dropped) and
/// acknowledgements; a message that does not decode, or a region whose
/// number goes back, disconnects its sender.
pub(super) fn receive(
    mut messages: MessageReader<FromClient<ClientWire>>,
    mut peers: Query<&mut RegionPeer>,
    store: Res<PagedStore>,
    mut stats: ResMut<RegionStats>,
    mut disconnect: MessageWriter<DisconnectRequest>,
    mut commands: Commands,
) {
    for FromClient { client_id, message } in messages.read() {
        let Some(client) = client_id.entity() else { continue };
        let Ok(mut peer) = peers.get_mut(client) else { continue };
        match wire::decode_up(&message.0) {
            Ok(Up::Region { epoch, sectors }) if epoch > peer.epoch => {
                peer.set_region(epoch, &sectors, |k| store.sector_bounds(k).is_some());
                stats.regions += 1;
            }
            Ok(Up::Received(bytes)) => peer.acknowledge(bytes),
            bad => {
                stats.malformed += 1;
                stats.disconnected += 1;
                warn!("region replication: client {client} sent a bad message ({bad:?}); disconnecting it");
                disconnect.write(DisconnectRequest { client });
                commands.entity(client).remove::<RegionPeer>();
            }
        }
    }
}

/// What [`send`] reuses each frame: the changes taken, each with its
/// sector, and one client's.
type Scratch = (Vec<MaterialUpdate>, Vec<(IVec2, MaterialUpdate)>, Vec<MaterialUpdate>);

/// The outputs of [`send`].
#[derive(bevy::ecs::system::SystemParam)]
pub(super) struct Outputs<'w, 's> {
    out: MessageWriter<'w, ToClients<ServerWire>>,
    disconnect: MessageWriter<'w, DisconnectRequest>,
    commands: Commands<'w, 's>,
}

/// Sends each client the frame's changes in its sectors sent, then the
/// sectors it waits for whose edits are read (within its window), and
/// starts the reads of the sectors waited for.
pub(super) fn send(
    mut store: ResMut<PagedStore>,
    mut reads: ResMut<SectorReads>,
    mut peers: Query<(Entity, &mut RegionPeer)>,
    settings: Res<RegionSettings>,
    mut stats: ResMut<RegionStats>,
    mut scratch: Local<Scratch>,
    outputs: Outputs,
) {
    let Outputs { mut out, mut disconnect, mut commands } = outputs;
    store.log_changes(settings.max_log);
    let (changes, keyed, mine) = &mut *scratch;
    let lost = store.take_changes(changes).is_err();
    // Each change's sector, found once for every client.
    keyed.clear();
    keyed.extend(changes.drain(..).filter_map(|u| store.sector_of(u.position).ok().map(|k| (k, u))));
    if lost {
        warn!(
            "region replication: the change log passed {} edits; every client is sent its sectors again",
            settings.max_log
        );
        stats.logs_lost += 1;
    }
    reads.encoded = 0;
    complete_reads(&mut store, &mut reads, &settings, &mut stats);
    let mut sent = 0u64;
    let world = Bytes::from(wire::world(store.generator(), store.settings().sector_columns));
    let mut order: Vec<(Entity, Mut<RegionPeer>)> = peers.iter_mut().collect();
    if !order.is_empty() {
        reads.turn = (reads.turn + 1) % order.len();
        order.rotate_left(reads.turn);
    }
    // Each client's share of the read slots a frame (at least one).
    let share = (settings.max_reads / order.len().max(1)).max(1);
    for (client, mut peer) in order {
        let mut send = |peer: &mut RegionPeer, message: Bytes| {
            peer.bytes_sent += message.len() as u64;
            sent += message.len() as u64;
            out.write(ToClients {
                targets: SendTargets::Single(ClientId::Client(client)),
                message: ServerWire(message),
            });
        };
        if !std::mem::replace(&mut peer.world_sent, true) {
            send(&mut peer, world.clone());
        }
        if lost && !peer.sent.is_empty() {
            // Its sectors are not the server's until sent again.
            peer.send_all_again();
            send(&mut peer, Bytes::from(wire::again()));
        }
        mine.clear();
        mine.extend(keyed.iter().filter(|(k, _)| peer.sent.contains(k)).map(|&(_, u)| u));
        for part in mine.chunks(PART) {
            send(&mut peer, Bytes::from(wire::changes(part)));
            stats.changes_sent += part.len() as u64;
        }
        if peer.in_flight() > settings.max_behind_bytes {
            stats.disconnected += 1;
            warn!("region replication: client {client} is {} bytes behind; disconnecting it", peer.in_flight());
            disconnect.write(DisconnectRequest { client });
            commands.entity(client).remove::<RegionPeer>();
            continue;
        }
        serve_sectors(&mut peer, (&mut reads, share), &mut store, &settings, &mut stats, &mut send);
    }
    reads.ready.clear();
    stats.clients = peers.iter().len();
    stats.reads_in_flight = reads.tasks.len();
    stats.bytes_this_frame = sent;
    stats.bytes_total += sent;
}

/// The reads done, while the frame's budget lasts: each completed with
/// memory's edits as of now; a stale one read again, a failed one counted
/// (asked again when a client still waits for it).
fn complete_reads(store: &mut PagedStore, reads: &mut SectorReads, settings: &RegionSettings, stats: &mut RegionStats) {
    let done: Vec<IVec2> = reads.tasks.iter().filter(|(_, t)| t.is_finished()).map(|(k, _)| *k).collect();
    for key in done {
        if reads.encoded >= settings.edits_per_frame {
            return;
        }
        let Some(mut task) = reads.tasks.remove(&key) else { continue };
        let Some((stored, parts, stored_edits)) = check_ready(&mut task) else {
            reads.tasks.insert(key, task);
            continue;
        };
        finish(store, reads, stats, &stored, (parts, stored_edits));
    }
}

/// Completes a read: the file's parts (encoded where it ran), then memory's
/// edits, which are later (`SHARED_EXACT`), the last part marked.
fn finish(
    store: &mut PagedStore,
    reads: &mut SectorReads,
    stats: &mut RegionStats,
    stored: &StoredEdits,
    (mut parts, stored_edits): (Parts, usize),
) {
    let key = stored.key();
    match store.complete_read(stored) {
        Ok(memory) => {
            reads.encoded += memory.len();
            stats.sector_edits_sent += (stored_edits + memory.len()) as u64;
            encode(&memory, &mut parts);
            match parts.last_mut() {
                Some(last) => last.1 = true,
                None => parts.push((wire::edits_field(&[]), true)),
            }
            reads.ready.insert(key, Arc::new(parts));
        }
        Err(ShareError::Stale) => stats.reads_again += 1,
        Err(ShareError::Read(why)) => {
            stats.read_failures += 1;
            error!("region replication: sector {key} could not be read: {why}");
        }
    }
}

/// Sends `peer` the sectors it waits for that are read, nearest first,
/// while its window has room; starts the reads of those not read, at most
/// `share` from the file this frame (the clients share the read slots; a
/// sector memory holds whole is completed at once, within the frame's
/// encoding budget).
fn serve_sectors(
    peer: &mut RegionPeer,
    (reads, share): (&mut SectorReads, usize),
    store: &mut PagedStore,
    settings: &RegionSettings,
    stats: &mut RegionStats,
    send: &mut impl FnMut(&mut RegionPeer, Bytes),
) {
    let (mut i, mut started) = (0, 0);
    while i < peer.waiting.len() && peer.in_flight() < settings.window_bytes {
        let key = peer.waiting[i];
        if let Some(parts) = reads.ready.get(&key).cloned() {
            for (edits, last) in parts.iter() {
                send(peer, Bytes::from(wire::sector_part(peer.epoch, key, *last, edits)));
            }
            peer.mark_sent_at(i);
            stats.sectors_sent += 1;
            continue;
        }
        if started < share && !reads.tasks.contains_key(&key) && reads.tasks.len() < settings.max_reads.max(1) {
            let Some(read) = store.begin_read(key) else {
                peer.waiting.remove(i);
                continue;
            };
            if read.reads_file() {
                let task = AsyncComputeTaskPool::get().spawn(async move {
                    let mut stored = read.run();
                    let (mut parts, edits) = (Parts::new(), stored.take_edits());
                    encode(&edits, &mut parts);
                    (stored, parts, edits.len())
                });
                reads.tasks.insert(key, task);
                started += 1;
            } else if reads.encoded < settings.edits_per_frame {
                // Memory holds its every edit: completed now, sent this turn.
                finish(store, reads, stats, &read.run(), (Parts::new(), 0));
                if reads.ready.contains_key(&key) {
                    continue;
                }
            } else {
                store.abandon_read(key);
            }
        }
        i += 1;
    }
}
