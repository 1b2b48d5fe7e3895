//! The server's pieces without an `App`: a peer's state machine, its checks
//! and the snapshot cache.

use super::cache::{Broadcast, EncodedSnapshot, SnapshotCache};
use super::peer::{Checks, Peer, PeerState, Resync};
use super::settings::{EditPolicy, ReplicationSettings};
use super::stats::ReplicationStats;
use crate::coords::Aabb;
use crate::material::{MaterialId, MaterialUpdate, Palette};
use crate::replication::wire::RefusedReason;
use crate::storage::ChangeBatch;
use bevy::prelude::*;
use bevy_replicon::bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn snapshot(messages: usize, size: usize) -> Arc<EncodedSnapshot> {
    let messages: Vec<Bytes> = (0..messages).map(|_| Bytes::from(vec![0u8; size])).collect();
    Arc::new(EncodedSnapshot { bytes: messages.len() * size, messages, took: Duration::ZERO, sequence: 0 })
}

fn cache_with(snapshot: Arc<EncodedSnapshot>) -> SnapshotCache {
    SnapshotCache { latest: Some(snapshot), snapshot_sequence: Some(0), ..SnapshotCache::default() }
}

fn settings() -> ReplicationSettings {
    ReplicationSettings { window_bytes: 1000, max_behind_bytes: 3000, max_join_backlog: 5000, ..default() }
}

const BOUNDS: Aabb = Aabb::new(IVec3::ZERO, IVec3::splat(16));

/// A frame's broadcast of `changes` changes numbered from `first`.
fn frame(cache: &mut SnapshotCache, first: u64, changes: usize) -> Broadcast {
    let updates = (0..changes).map(|i| MaterialUpdate::new(IVec3::new(i as i32 % 16, 1, 1), MaterialId(2))).collect();
    cache.broadcast(&ChangeBatch::new(first, updates), BOUNDS, &settings())
}

#[test]
fn a_joiner_streams_under_its_window_then_follows() {
    let (s, mut cache) = (settings(), cache_with(snapshot(5, 400)));
    let (mut peer, now) = (Peer::new(10.0), Instant::now());
    // Three messages fit a window of 1000 (it may overshoot by the last one).
    let served = peer.serve(&Broadcast::Nothing, &cache, &s, now);
    assert_eq!((served.messages.len(), served.joining), (3, true));
    assert!(matches!(peer.state, PeerState::Streaming { next: 3, .. }));
    // Nothing more until the client reports what it received.
    assert!(peer.serve(&Broadcast::Nothing, &cache, &s, now).messages.is_empty());
    peer.progress(0, peer.sent, now);
    // A frame's changes during the join wait in the backlog, after the snapshot.
    let changes = frame(&mut cache, 1, 4);
    let served = peer.serve(&changes, &cache, &s, now);
    assert_eq!(served.messages.len(), 3, "two snapshot messages, then the backlog");
    assert!(matches!(peer.state, PeerState::Synced));
    let served = peer.serve(&frame(&mut cache, 5, 4), &cache, &s, now);
    assert_eq!((served.messages.len(), served.changes, served.joining), (1, 4, false));
}

#[test]
fn a_joiners_backlog_goes_under_its_window_not_at_once() {
    let (s, mut cache) = (settings(), cache_with(snapshot(1, 100)));
    let (mut peer, now) = (Peer::new(10.0), Instant::now());
    // Ten frames of changes wait while the first message is in flight.
    let mut frames = vec![peer.serve(&Broadcast::Nothing, &cache, &s, now)];
    for f in 0..10 {
        let changes = frame(&mut cache, 1 + f * 200, 200);
        frames.push(peer.serve(&changes, &cache, &s, now));
    }
    let mut most = 0;
    for _ in 0..20 {
        peer.progress(0, peer.sent, now);
        let served = peer.serve(&Broadcast::Nothing, &cache, &s, now);
        most = most.max(served.messages.iter().map(Bytes::len).sum::<usize>());
    }
    assert!(matches!(peer.state, PeerState::Synced));
    let one = frames[1].messages.first().map_or(0, Bytes::len).max(300);
    assert!(most <= 1000 + one, "at most a window and one message a frame: {most}");
}

#[test]
fn a_synced_client_too_far_behind_is_rejoined_and_the_limit_is_never_under_two_windows() {
    let (s, mut cache) = (settings(), cache_with(snapshot(1, 10)));
    let mut peer = Peer::new(10.0);
    peer.state = PeerState::Synced;
    peer.sent = 5000;
    let served = peer.serve(&frame(&mut cache, 1, 1), &cache, &s, Instant::now());
    assert!(served.messages.is_empty());
    assert!(matches!(peer.state, PeerState::Waiting));
    // A limit under the window would re-join every joiner whose backlog fills it.
    let tight = ReplicationSettings { max_behind_bytes: 500, ..settings() };
    let mut peer = Peer::new(10.0);
    peer.state = PeerState::Synced;
    peer.sent = 1500;
    peer.serve(&frame(&mut cache, 2, 1), &cache, &tight, Instant::now());
    assert!(matches!(peer.state, PeerState::Synced), "1500 bytes behind is under two windows");
}

#[test]
fn a_joiner_whose_backlog_overflows_starts_over() {
    let (mut cache, s) = (cache_with(snapshot(50, 400)), ReplicationSettings { max_join_backlog: 300, ..settings() });
    let (mut peer, now) = (Peer::new(10.0), Instant::now());
    peer.serve(&Broadcast::Nothing, &cache, &s, now);
    for f in 0..40 {
        peer.serve(&frame(&mut cache, 1 + f * 100, 100), &cache, &s, now);
    }
    assert!(matches!(peer.state, PeerState::Waiting));
}

#[test]
fn a_client_that_never_acknowledges_is_stalled() {
    let (s, cache) = (settings(), cache_with(snapshot(5, 400)));
    let (mut peer, now) = (Peer::new(10.0), Instant::now());
    let timeout = Duration::from_secs(30);
    assert!(!peer.stalled(now + Duration::from_secs(60), timeout), "nothing in flight: not stalled");
    peer.serve(&Broadcast::Nothing, &cache, &s, now);
    assert!(!peer.stalled(now + Duration::from_secs(20), timeout));
    assert!(peer.stalled(now + Duration::from_secs(31), timeout));
    peer.progress(0, 400, now + Duration::from_secs(25));
    assert!(!peer.stalled(now + Duration::from_secs(31), timeout), "progress restarts the clock");
}

#[test]
fn resync_requests_are_ignored_while_joining_and_limited() {
    let (mut peer, now) = (Peer::new(10.0), Instant::now());
    assert_eq!(peer.resync(now, 3), Resync::Ignored, "waiting already");
    peer.state = PeerState::Synced;
    assert_eq!(peer.resync(now, 3), Resync::Granted);
    assert!(matches!(peer.state, PeerState::Waiting));
    assert_eq!(peer.resync(now, 3), Resync::Ignored);
    assert_eq!(peer.resync(now, 3), Resync::Abusive, "the fourth in a minute");
    assert_eq!(peer.resync(now + Duration::from_secs(61), 3), Resync::Ignored, "a new minute");
}

#[test]
fn edits_are_refused_by_reason_in_order() {
    let s = ReplicationSettings { edits_per_second: 0.0, edit_burst: 3.0, ..default() };
    let mut peer = Peer::new(3.0);
    let policy = EditPolicy::new(|e| e.position.y < 10 && e.material != MaterialId(5));
    let palette = Palette::shipped();
    let mut stats = ReplicationStats::default();
    let edit = |y, m| MaterialUpdate::new(IVec3::new(1, y, 1), MaterialId(m));
    let mut accepted = Vec::new();
    let now = Instant::now();
    let mut budget = 2;
    fn checks<'a>(p: &'a Palette, s: &'a ReplicationSettings, e: &'a EditPolicy, b: &'a mut usize) -> Checks<'a> {
        Checks { bounds: BOUNDS, palette: p, settings: s, policy: e, client: Entity::PLACEHOLDER, budget: b }
    }
    let refused =
        peer.admit(vec![edit(1, 2)], now, checks(&palette, &s, &policy, &mut budget), &mut stats, |e| accepted.push(e));
    assert_eq!(refused, vec![(RefusedReason::NotJoined, 1, IVec3::new(1, 1, 1))]);
    peer.state = PeerState::Synced;
    let edits =
        vec![edit(12, 2), edit(99, 2), edit(1, 2), edit(2, 5), edit(2, 999), edit(2, 2), edit(3, 2), edit(4, 2)];
    let refused = peer.admit(edits, now, checks(&palette, &s, &policy, &mut budget), &mut stats, |e| accepted.push(e));
    assert_eq!(accepted, vec![edit(1, 2), edit(2, 2)], "the server's budget of 2 a frame");
    assert_eq!(
        refused,
        vec![
            (RefusedReason::Unauthorized, 2, IVec3::new(1, 12, 1)),
            (RefusedReason::OutOfBounds, 1, IVec3::new(1, 99, 1)),
            (RefusedReason::UnknownMaterial, 1, IVec3::new(1, 2, 1)),
            (RefusedReason::ServerBusy, 2, IVec3::new(1, 3, 1)),
        ]
    );
    assert_eq!((stats.refused_busy, stats.refused_material, stats.refused_unauthorized), (2, 1, 2));
    // A new frame's budget; one token left of the client's own burst.
    let mut budget = 10;
    let refused =
        peer.admit(vec![edit(5, 2), edit(6, 2)], now, checks(&palette, &s, &policy, &mut budget), &mut stats, |e| {
            accepted.push(e)
        });
    assert_eq!(refused, vec![(RefusedReason::RateLimited, 1, IVec3::new(1, 6, 1))]);
    assert!(!peer.refused(now, 3, 5) && peer.refused(now, 3, 5), "a flood past the limit");
}

#[test]
fn a_batch_overlapping_the_snapshot_is_kept_for_joiners_from_after_it() {
    let mut cache = SnapshotCache::default();
    frame(&mut cache, 1, 10);
    // A direct write after the feed was drained: the snapshot is at 12.
    cache.snapshot_sequence = Some(12);
    let Broadcast::Changes(batch) = frame(&mut cache, 11, 6) else { panic!("changes") };
    assert_eq!(cache.history.len(), 1);
    let kept = crate::codec::decode_batch(&cache.history[0], BOUNDS, 1 << 10).unwrap();
    assert_eq!((kept.first_sequence(), kept.last_sequence()), (13, 16), "only what the snapshot lacks");
    assert_eq!(kept.len(), 4);
    assert!(batch.after(12) == Some(Some(cache.history[0].clone())));
    assert!(batch.after(16) == Some(None), "a snapshot holding it all needs none of it");
    assert!(batch.after(10) == Some(Some(batch.bytes.clone())));
    assert!(batch.after(11).is_none(), "another snapshot's cut was not encoded: join again");
}

#[test]
fn a_gap_in_the_broadcast_forgets_the_snapshot() {
    let mut cache = cache_with(snapshot(1, 10_000));
    frame(&mut cache, 1, 5);
    assert!(cache.latest.is_some() && cache.history.len() == 1);
    // The server did not run for a while (stopped, restarted): a hole.
    frame(&mut cache, 40, 5);
    assert!(cache.latest.is_none() && cache.history.is_empty());
    cache.latest = Some(snapshot(1, 10));
    cache.reset();
    assert!(cache.latest.is_none());
    assert!(matches!(frame(&mut cache, 1, 2), Broadcast::Changes(_)), "after a reset, numbering starts over");
}

/// The policy sees the client's id from the transport (renet's netcode id,
/// vouched for by a connect token in secure mode), read as the client is
/// authorized.
#[test]
fn a_peer_knows_its_transport_id_and_the_policy_sees_it() {
    use bevy_replicon::prelude::AuthorizedClient;
    use bevy_replicon::shared::backend::connected_client::{NetworkId, NetworkIdMap};
    let mut app = App::new();
    app.init_resource::<NetworkIdMap>();
    app.insert_resource(ReplicationSettings::default()).add_observer(super::systems::joined);
    let client = app.world_mut().spawn(NetworkId::new(42)).id();
    app.world_mut().entity_mut(client).insert(AuthorizedClient);
    app.world_mut().flush();
    let mut peer = app.world_mut().entity_mut(client).take::<Peer>().expect("a peer for the authorized client");
    assert_eq!(peer.network_id, Some(42));
    peer.state = PeerState::Synced;
    let policy = EditPolicy::new(|e| e.network_id == Some(42) && e.client != Entity::PLACEHOLDER);
    let (palette, s, mut budget) = (Palette::shipped(), settings(), 10);
    let checks =
        Checks { bounds: BOUNDS, palette: &palette, settings: &s, policy: &policy, client, budget: &mut budget };
    let edit = MaterialUpdate::new(IVec3::ONE, MaterialId(2));
    let refused = peer.admit(vec![edit], Instant::now(), checks, &mut ReplicationStats::default(), |_| ());
    assert!(refused.is_empty(), "{refused:?}");
}
