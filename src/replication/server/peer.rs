//! The server's record of one client, and the state machine that decides what
//! the client is sent each frame: plain methods, tested without an `App`.
//!
//! ```text
//!  Waiting ──(a snapshot exists, window open)──► Streaming ──(all sent)──► Synced
//!     ▲                                              │                       │
//!     └──(backlog over max_join_backlog)─────────────┘                       │
//!     └──(more than max_behind_bytes in flight, or a resync request)─────────┘
//! ```

use super::cache::{Broadcast, EncodedSnapshot, SnapshotCache};
use super::settings::{EditPolicy, ReplicationSettings};
use super::stats::ReplicationStats;
use crate::coords::Aabb;
use crate::material::MaterialUpdate;
use crate::replication::wire::RefusedReason;
use bevy::prelude::*;
use bevy_replicon::bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// Where a client is.
pub(crate) enum PeerState {
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
    pub state: PeerState,
    /// The client's reported sequence (its world is the server's as of it).
    pub applied: u64,
    /// Bytes sent to it, and bytes it reported received.
    pub sent: u64,
    pub received: u64,
    tokens: f32,
    refill: Instant,
    /// Refused edits in the current one-second window, and its start.
    refused_window: u64,
    window: Instant,
}

/// Edits refused in one request: by reason, how many, and the first position.
pub(crate) type Refusals = Vec<(RefusedReason, u64, IVec3)>;

/// What one frame of [`Peer::serve`] decided.
#[derive(Default)]
pub(crate) struct Served {
    /// The messages to send the client, in order.
    pub messages: Vec<Bytes>,
    /// The client is waiting for or receiving a snapshot.
    pub joining: bool,
    /// Change bytes sent, and the changes they carried.
    pub change_bytes: u64,
    pub changes: u64,
}

impl Peer {
    /// A client that just connected, with a full bucket of `burst` edits.
    pub fn new(burst: f32) -> Self {
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

    /// Bytes sent and not yet reported received.
    pub fn in_flight(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }

    /// The client's progress report. A report of more than was sent is a lie:
    /// the window stays shut.
    pub fn progress(&mut self, sequence: u64, received: u64) {
        self.applied = self.applied.max(sequence);
        self.received = self.received.max(received.min(self.sent));
    }

    /// Checks a request's edits in order; the accepted go to `accept`, the
    /// refused are counted by reason (with the first position of each).
    #[allow(clippy::too_many_arguments, reason = "the checks' inputs")]
    pub fn admit(
        &mut self,
        edits: Vec<MaterialUpdate>,
        now: Instant,
        bounds: Aabb,
        settings: &ReplicationSettings,
        policy: &EditPolicy,
        client: Entity,
        stats: &mut ReplicationStats,
        mut accept: impl FnMut(MaterialUpdate),
    ) -> Refusals {
        let synced = matches!(self.state, PeerState::Synced);
        let mut refused: Refusals = Vec::new();
        let mut refuse = |reason, p| match refused.iter_mut().find(|r| r.0 == reason) {
            Some(r) => r.1 += 1,
            None => refused.push((reason, 1, p)),
        };
        let elapsed = now.duration_since(self.refill).as_secs_f32();
        self.tokens = (self.tokens + elapsed * settings.edits_per_second).min(settings.edit_burst);
        self.refill = now;
        for edit in edits {
            let p = edit.position;
            if !synced {
                stats.refused_not_joined += 1;
                refuse(RefusedReason::NotJoined, p);
            } else if !bounds.contains(p) {
                stats.refused_out_of_bounds += 1;
                refuse(RefusedReason::OutOfBounds, p);
            } else if self.tokens < 1.0 {
                stats.refused_rate += 1;
                refuse(RefusedReason::RateLimited, p);
            } else if !policy.allows(client, p) {
                stats.refused_unauthorized += 1;
                refuse(RefusedReason::Unauthorized, p);
            } else {
                self.tokens -= 1.0;
                stats.edits_applied += 1;
                accept(edit);
            }
        }
        refused
    }

    /// Counts `n` refused edits in the current one-second window; true when the
    /// window's count exceeds `limit` (a flood, not a slip).
    pub fn refused(&mut self, now: Instant, n: u64, limit: u64) -> bool {
        if now.duration_since(self.window).as_secs_f32() >= 1.0 {
            self.window = now;
            self.refused_window = 0;
        }
        self.refused_window += n;
        self.refused_window > limit
    }

    /// One frame: what the client is sent, given the frame's broadcast and the
    /// cache, and where that leaves it. Counts what it sends in `sent`.
    pub fn serve(&mut self, frame: &Broadcast, cache: &SnapshotCache, settings: &ReplicationSettings) -> Served {
        let mut out = Served::default();
        let fresh = match frame {
            Broadcast::Changes(bytes, changes) => Some((bytes, *changes)),
            _ => None,
        };
        // A peer that starts streaming now gets the history, this frame's
        // batch included. One still receiving earlier messages waits: the
        // snapshot goes after them, and they would count against its window.
        let mut started = false;
        if let (PeerState::Waiting, Some(snapshot)) = (&self.state, &cache.latest)
            && self.in_flight() < settings.window_bytes
        {
            started = true;
            self.state = PeerState::Streaming {
                snapshot: Arc::clone(snapshot),
                next: 0,
                backlog: cache.history.clone(),
                backlog_bytes: cache.history_bytes,
            };
        }
        let state = std::mem::replace(&mut self.state, PeerState::Waiting);
        self.state = match state {
            PeerState::Waiting => {
                out.joining = true;
                PeerState::Waiting
            }
            PeerState::Synced => self.follow(fresh, settings, &mut out),
            PeerState::Streaming { snapshot, next, mut backlog, mut backlog_bytes } => {
                out.joining = true;
                if let Some((bytes, _)) = fresh.filter(|_| !started) {
                    backlog_bytes += bytes.len();
                    backlog.push_back(bytes.clone());
                }
                self.stream(snapshot, next, backlog, backlog_bytes, settings, &mut out)
            }
        };
        self.sent += out.messages.iter().map(|m| m.len() as u64).sum::<u64>();
        out
    }

    /// A synced client gets the frame's changes, unless it is too far behind:
    /// then it is re-joined.
    fn follow(&self, fresh: Option<(&Bytes, u64)>, settings: &ReplicationSettings, out: &mut Served) -> PeerState {
        let Some((bytes, changes)) = fresh else { return PeerState::Synced };
        if self.in_flight() > settings.max_behind_bytes {
            warn!("replication: a client fell {} bytes behind; re-joining it", self.in_flight());
            return PeerState::Waiting;
        }
        out.messages.push(bytes.clone());
        out.change_bytes += bytes.len() as u64;
        out.changes += changes;
        PeerState::Synced
    }

    /// A joining client gets the snapshot's next messages while its window
    /// allows, then the backlog, and is synced.
    fn stream(
        &self,
        snapshot: Arc<EncodedSnapshot>,
        mut next: usize,
        mut backlog: VecDeque<Bytes>,
        backlog_bytes: usize,
        settings: &ReplicationSettings,
        out: &mut Served,
    ) -> PeerState {
        let mut in_flight = self.in_flight();
        while next < snapshot.messages.len() && in_flight < settings.window_bytes {
            in_flight += snapshot.messages[next].len() as u64;
            out.messages.push(snapshot.messages[next].clone());
            next += 1;
        }
        if backlog_bytes > settings.max_join_backlog {
            PeerState::Waiting
        } else if next == snapshot.messages.len() {
            out.messages.extend(backlog.drain(..));
            PeerState::Synced
        } else {
            PeerState::Streaming { snapshot, next, backlog, backlog_bytes }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(messages: usize, size: usize) -> Arc<EncodedSnapshot> {
        let messages: Vec<Bytes> = (0..messages).map(|_| Bytes::from(vec![0u8; size])).collect();
        Arc::new(EncodedSnapshot { bytes: messages.len() * size, messages, took: std::time::Duration::ZERO })
    }

    fn cache_with(snapshot: Arc<EncodedSnapshot>) -> SnapshotCache {
        SnapshotCache { latest: Some(snapshot), ..SnapshotCache::default() }
    }

    fn settings() -> ReplicationSettings {
        ReplicationSettings { window_bytes: 1000, max_behind_bytes: 3000, max_join_backlog: 5000, ..default() }
    }

    #[test]
    fn a_joiner_streams_under_its_window_then_follows() {
        let (s, cache) = (settings(), cache_with(snapshot(5, 400)));
        let mut peer = Peer::new(10.0);
        // Three messages fit a window of 1000 (it may overshoot by the last one).
        let served = peer.serve(&Broadcast::Nothing, &cache, &s);
        assert_eq!((served.messages.len(), served.joining), (3, true));
        assert!(matches!(peer.state, PeerState::Streaming { next: 3, .. }));
        // Nothing more until the client reports what it received.
        assert!(peer.serve(&Broadcast::Nothing, &cache, &s).messages.is_empty());
        peer.progress(0, peer.sent);
        // A frame's changes during the join wait in the backlog, after the snapshot.
        let changes = Broadcast::Changes(Bytes::from(vec![7u8; 10]), 4);
        let served = peer.serve(&changes, &cache, &s);
        assert_eq!(served.messages.len(), 3, "two snapshot messages, then the backlog");
        assert_eq!(served.messages[2].len(), 10);
        assert!(matches!(peer.state, PeerState::Synced));
        let served = peer.serve(&changes, &cache, &s);
        assert_eq!((served.messages.len(), served.changes, served.joining), (1, 4, false));
    }

    #[test]
    fn a_synced_client_too_far_behind_is_rejoined() {
        let (s, cache) = (settings(), cache_with(snapshot(1, 10)));
        let mut peer = Peer::new(10.0);
        peer.state = PeerState::Synced;
        peer.sent = 5000;
        let served = peer.serve(&Broadcast::Changes(Bytes::from(vec![1u8; 10]), 1), &cache, &s);
        assert!(served.messages.is_empty());
        assert!(matches!(peer.state, PeerState::Waiting));
    }

    #[test]
    fn a_joiner_whose_backlog_overflows_starts_over() {
        let (s, cache) = (settings(), cache_with(snapshot(50, 400)));
        let mut peer = Peer::new(10.0);
        peer.serve(&Broadcast::Nothing, &cache, &s);
        let big = Broadcast::Changes(Bytes::from(vec![1u8; 6000]), 1);
        peer.serve(&big, &cache, &s);
        assert!(matches!(peer.state, PeerState::Waiting));
    }

    #[test]
    fn edits_are_refused_by_reason_in_order() {
        let s = ReplicationSettings { edits_per_second: 0.0, edit_burst: 2.0, ..default() };
        let mut peer = Peer::new(2.0);
        let bounds = Aabb::new(IVec3::ZERO, IVec3::splat(16));
        let policy = EditPolicy::new(|_, p| p.y < 10);
        let mut stats = ReplicationStats::default();
        let edit = |y| MaterialUpdate::new(IVec3::new(1, y, 1), crate::material::MaterialId(2));
        let mut accepted = Vec::new();
        let now = Instant::now();
        let refused =
            peer.admit(vec![edit(1)], now, bounds, &s, &policy, Entity::PLACEHOLDER, &mut stats, |e| accepted.push(e));
        assert_eq!(refused, vec![(RefusedReason::NotJoined, 1, IVec3::new(1, 1, 1))]);
        peer.state = PeerState::Synced;
        let edits = vec![edit(12), edit(99), edit(1), edit(2), edit(3)];
        let refused =
            peer.admit(edits, now, bounds, &s, &policy, Entity::PLACEHOLDER, &mut stats, |e| accepted.push(e));
        assert_eq!(accepted, vec![edit(1), edit(2)]);
        assert_eq!(
            refused,
            vec![
                (RefusedReason::Unauthorized, 1, IVec3::new(1, 12, 1)),
                (RefusedReason::OutOfBounds, 1, IVec3::new(1, 99, 1)),
                (RefusedReason::RateLimited, 1, IVec3::new(1, 3, 1)),
            ]
        );
        assert!(!peer.refused(now, 3, 5) && peer.refused(now, 3, 5), "a flood past the limit");
    }
}
