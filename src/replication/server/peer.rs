//! The server's record of one client, and the state machine that decides what
//! the client is sent each frame: plain methods, tested without an `App`.
//!
//! ```text
//!  Waiting ──(a snapshot exists, window open)──► Streaming ──(snapshot and backlog sent)──► Synced
//!     ▲                                              │                                      │
//!     └──(backlog over max_join_backlog)─────────────┘                                      │
//!     └──(more than max_behind_bytes in flight, or a resync request)────────────────────────┘
//! ```
//!
//! Everything a peer is sent goes out under its window: the snapshot, then
//! the changes kept while it streamed, so a join never puts more than
//! `window_bytes` (plus one message) in the transport's channel. A peer with
//! bytes in flight that reports no progress for `ack_timeout` is stalled (the
//! systems disconnect it); a peer asking for the world more than
//! `max_resyncs_per_minute` times is abusive.

use super::cache::{Broadcast, EncodedSnapshot, FrameBatch, SnapshotCache};
use super::settings::{EditPolicy, EditRequest, ReplicationSettings};
use super::stats::ReplicationStats;
use crate::coords::Aabb;
use crate::material::{MaterialUpdate, Palette};
use crate::replication::wire::RefusedReason;
use bevy::prelude::*;
use bevy_replicon::bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The client's id from the transport, when it gave one.
    pub network_id: Option<u64>,
    /// When the client last reported progress, or last had nothing in flight.
    heard: Instant,
    /// Resync requests in the current one-minute window, and its start.
    resyncs: u32,
    resync_window: Instant,
    tokens: f32,
    refill: Instant,
    /// Refused edits in the current one-second window, and its start.
    refused_window: u64,
    window: Instant,
}

/// Edits refused in one request: by reason, how many, and the first position.
pub(crate) type Refusals = Vec<(RefusedReason, u64, IVec3)>;

/// What a resync request leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resync {
    /// The client is sent the world again.
    Granted,
    /// The client waits for the world already: nothing to do.
    Ignored,
    /// Over `max_resyncs_per_minute`: the client is abusing the server.
    Abusive,
}

/// What an edit request is checked against, beside the peer's own state.
pub(crate) struct Checks<'a> {
    pub bounds: Aabb,
    pub palette: &'a Palette,
    pub settings: &'a ReplicationSettings,
    pub policy: &'a EditPolicy,
    pub client: Entity,
    /// Edits the server still takes this frame, from every client together.
    pub budget: &'a mut usize,
}

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
            network_id: None,
            heard: now,
            resyncs: 0,
            resync_window: now,
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
    pub fn progress(&mut self, sequence: u64, received: u64, now: Instant) {
        self.applied = self.applied.max(sequence);
        let received = received.min(self.sent);
        if received > self.received {
            self.heard = now;
        }
        self.received = self.received.max(received);
    }

    /// True when bytes have been in flight for `timeout` with no progress
    /// reported: the client stopped acknowledging.
    pub fn stalled(&self, now: Instant, timeout: Duration) -> bool {
        self.in_flight() > 0 && now.saturating_duration_since(self.heard) > timeout
    }

    /// A resync request: granted unless the client waits for the world
    /// already, abusive past `limit` requests in a minute.
    pub fn resync(&mut self, now: Instant, limit: u32) -> Resync {
        if now.saturating_duration_since(self.resync_window) >= Duration::from_secs(60) {
            self.resync_window = now;
            self.resyncs = 0;
        }
        self.resyncs += 1;
        if self.resyncs > limit {
            return Resync::Abusive;
        }
        match self.state {
            // A client that asks while streaming dropped what it had (a
            // damaged message): the stream starts over.
            PeerState::Synced | PeerState::Streaming { .. } => {
                self.state = PeerState::Waiting;
                Resync::Granted
            }
            PeerState::Waiting => Resync::Ignored,
        }
    }

    /// Checks a request's edits in order; the accepted go to `accept`, the
    /// refused are counted by reason (with the first position of each).
    pub fn admit(
        &mut self,
        edits: Vec<MaterialUpdate>,
        now: Instant,
        checks: Checks<'_>,
        stats: &mut ReplicationStats,
        mut accept: impl FnMut(MaterialUpdate),
    ) -> Refusals {
        let synced = matches!(self.state, PeerState::Synced);
        let mut refused: Refusals = Vec::new();
        let mut refuse = |reason, p| match refused.iter_mut().find(|r| r.0 == reason) {
            Some(r) => r.1 += 1,
            None => refused.push((reason, 1, p)),
        };
        let settings = checks.settings;
        let elapsed = now.duration_since(self.refill).as_secs_f32();
        self.tokens = (self.tokens + elapsed * settings.edits_per_second).min(settings.edit_burst);
        self.refill = now;
        for edit in edits {
            let (p, material) = (edit.position, edit.material);
            let request = EditRequest { client: checks.client, network_id: self.network_id, position: p, material };
            let reason = if !synced {
                Some(RefusedReason::NotJoined)
            } else if !checks.bounds.contains(p) {
                Some(RefusedReason::OutOfBounds)
            } else if checks.palette.get(material).is_none() {
                Some(RefusedReason::UnknownMaterial)
            } else if self.tokens < 1.0 {
                Some(RefusedReason::RateLimited)
            } else if *checks.budget == 0 {
                Some(RefusedReason::ServerBusy)
            } else if !checks.policy.allows(&request) {
                Some(RefusedReason::Unauthorized)
            } else {
                None
            };
            match reason {
                Some(reason) => {
                    stats.count_refusal(reason);
                    refuse(reason, p);
                }
                None => {
                    self.tokens -= 1.0;
                    *checks.budget -= 1;
                    stats.edits_applied += 1;
                    accept(edit);
                }
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
    pub fn serve(
        &mut self,
        frame: &Broadcast,
        cache: &SnapshotCache,
        settings: &ReplicationSettings,
        now: Instant,
    ) -> Served {
        let mut out = Served::default();
        if self.in_flight() == 0 {
            // Nothing owed: the acknowledgement clock starts with the next send.
            self.heard = now;
        }
        let fresh = match frame {
            Broadcast::Changes(batch) => Some(batch),
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
                match fresh.filter(|_| !started).map(|batch| batch.after(snapshot.sequence)) {
                    // The batch overlaps an older snapshot than the cache's:
                    // its part after it was not encoded. Join again.
                    Some(None) => PeerState::Waiting,
                    Some(Some(Some(bytes))) => {
                        backlog_bytes += bytes.len();
                        backlog.push_back(bytes);
                        self.stream(snapshot, next, backlog, backlog_bytes, settings, &mut out)
                    }
                    Some(Some(None)) | None => self.stream(snapshot, next, backlog, backlog_bytes, settings, &mut out),
                }
            }
        };
        self.sent += out.messages.iter().map(|m| m.len() as u64).sum::<u64>();
        out
    }

    /// A synced client gets the frame's changes, unless it is too far behind:
    /// then it is re-joined.
    fn follow(&self, fresh: Option<&FrameBatch>, settings: &ReplicationSettings, out: &mut Served) -> PeerState {
        let Some(batch) = fresh else { return PeerState::Synced };
        if self.in_flight() > settings.behind_limit() {
            warn!("replication: a client fell {} bytes behind; re-joining it", self.in_flight());
            return PeerState::Waiting;
        }
        out.messages.push(batch.bytes.clone());
        out.change_bytes += batch.bytes.len() as u64;
        out.changes += batch.changes;
        PeerState::Synced
    }

    /// A joining client gets the snapshot's next messages, then the backlog,
    /// while its window allows, and is synced when both are sent.
    fn stream(
        &self,
        snapshot: Arc<EncodedSnapshot>,
        mut next: usize,
        mut backlog: VecDeque<Bytes>,
        mut backlog_bytes: usize,
        settings: &ReplicationSettings,
        out: &mut Served,
    ) -> PeerState {
        if backlog_bytes > settings.max_join_backlog {
            return PeerState::Waiting;
        }
        let mut in_flight = self.in_flight();
        while next < snapshot.messages.len() && in_flight < settings.window_bytes {
            in_flight += snapshot.messages[next].len() as u64;
            out.messages.push(snapshot.messages[next].clone());
            next += 1;
        }
        if next == snapshot.messages.len() {
            while in_flight < settings.window_bytes
                && let Some(message) = backlog.pop_front()
            {
                in_flight += message.len() as u64;
                backlog_bytes -= message.len();
                out.messages.push(message);
            }
            if backlog.is_empty() {
                return PeerState::Synced;
            }
        }
        PeerState::Streaming { snapshot, next, backlog, backlog_bytes }
    }
}
