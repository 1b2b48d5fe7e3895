//! One region client, as the server sees it: the sectors it follows, which
//! of them it was sent, and the bytes it has not acknowledged. Plain data,
//! tested without an `App`.
//!
//! # Invariants
//!
//! - `SENT_IN_REGION`: `sent` and `waiting` are disjoint and together are
//!   the region of `epoch` (sectors inside the world, each once).
//! - `CHANGES_AFTER_SECTOR`: a sector's changes are sent to a client only
//!   once its every edit was (it is in `sent`); a sector sent at a frame's
//!   end holds that frame's edits, so nothing is missed or sent twice.

use crate::hash::{FastSet, fast_set};
use glam::IVec2;

/// One region client's state; see the [module docs](self).
#[derive(bevy::prelude::Component, Debug)]
pub(crate) struct RegionPeer {
    /// The region's number (the client's count; 0 before its first).
    pub epoch: u64,
    pub sent: FastSet<IVec2>,
    /// Not sent yet, nearest first.
    pub waiting: Vec<IVec2>,
    /// Whether the world's generator was sent.
    pub world_sent: bool,
    /// Bytes sent since it joined.
    pub bytes_sent: u64,
    /// Bytes it said it received.
    pub acknowledged: u64,
}

impl Default for RegionPeer {
    fn default() -> Self {
        Self { epoch: 0, sent: fast_set(), waiting: Vec::new(), world_sent: false, bytes_sent: 0, acknowledged: 0 }
    }
}

impl RegionPeer {
    /// A new region: sectors still in it stay sent (their changes keep
    /// coming), new ones wait, others are dropped. `inside` filters out
    /// sectors outside the world; repeats are dropped.
    pub fn set_region(&mut self, epoch: u64, sectors: &[IVec2], inside: impl Fn(IVec2) -> bool) {
        let mut region = fast_set();
        let mut waiting = Vec::new();
        for &k in sectors {
            if inside(k) && region.insert(k) && !self.sent.contains(&k) {
                waiting.push(k);
            }
        }
        self.sent.retain(|k| region.contains(k));
        self.waiting = waiting;
        self.epoch = epoch;
    }

    /// Every sector is sent again (the change log overflowed).
    pub fn send_all_again(&mut self) {
        let mut again: Vec<IVec2> = self.sent.drain().collect();
        again.sort_unstable_by_key(|k| (k.x, k.y));
        again.append(&mut self.waiting);
        self.waiting = again;
    }

    /// Bytes sent and not acknowledged.
    pub fn in_flight(&self) -> u64 {
        self.bytes_sent.saturating_sub(self.acknowledged)
    }

    /// The client received `bytes` since it joined (never more than sent:
    /// a larger claim is capped).
    pub fn acknowledge(&mut self, bytes: u64) {
        self.acknowledged = self.acknowledged.max(bytes.min(self.bytes_sent));
    }

    /// Marks the `i`th sector waiting sent (`CHANGES_AFTER_SECTOR`).
    pub fn mark_sent_at(&mut self, i: usize) {
        if i < self.waiting.len() {
            let key = self.waiting.remove(i);
            self.sent.insert(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_region_keeps_what_was_sent_and_drops_what_left() {
        let mut peer = RegionPeer::default();
        let k = |x, z| IVec2::new(x, z);
        peer.set_region(1, &[k(0, 0), k(1, 0), k(1, 0), k(-1, 0)], |k| k.x >= 0);
        assert_eq!(peer.waiting, vec![k(0, 0), k(1, 0)], "outside the world and repeats dropped");
        peer.mark_sent_at(0);
        peer.mark_sent_at(0);
        peer.set_region(2, &[k(1, 0), k(2, 0)], |_| true);
        assert_eq!(peer.waiting, vec![k(2, 0)]);
        assert!(peer.sent.contains(&k(1, 0)) && !peer.sent.contains(&k(0, 0)));
        peer.set_region(3, &[k(0, 0), k(1, 0)], |_| true);
        assert_eq!(peer.waiting, vec![k(0, 0)], "a sector back in the region is sent again");
        peer.send_all_again();
        assert_eq!(peer.waiting, vec![k(1, 0), k(0, 0)]);
        assert!(peer.sent.is_empty());
    }

    #[test]
    fn acknowledgements_never_pass_what_was_sent() {
        let mut peer = RegionPeer { bytes_sent: 100, ..RegionPeer::default() };
        peer.acknowledge(1 << 40);
        assert_eq!(peer.in_flight(), 0);
        peer.bytes_sent += 50;
        peer.acknowledge(20);
        assert_eq!(peer.in_flight(), 50, "an older acknowledgement does not go back");
    }
}
