//! The change feed: every accepted change numbered, and, while recording, kept
//! until drained.
//!
//! # Guarantees
//!
//! - Every write that changes a voxel's value gets the next sequence number: a
//!   `u64`, strictly increasing, contiguous, never reused within a world's life
//!   (a storage resumed from a file continues the file's numbering). A write of
//!   the value a voxel already reads as is not a change and gets none.
//! - Within a batch, changes are numbered in input order, whatever order the
//!   batch is applied in.
//! - Consolidation changes no voxel's value and adds no change.
//! - Replaying the changes of every drained batch in order onto the world the
//!   storage started from gives the storage's world.
//!
//! # Bound
//!
//! Recording keeps at most `capacity` changes between two drains. Past that, the
//! feed goes on numbering but stops keeping: the drained batch says it is
//! incomplete ([`ChangeBatch::is_complete`]) and which sequences it lacks, and
//! [`OverlayStats::changes_dropped`](super::OverlayStats::changes_dropped)
//! counts them. A consumer that needs every change (a file, a network peer)
//! then takes a snapshot of the whole world instead. Drained every frame, as the
//! plugin does, the default of 2^20 changes is only reached by a frame that
//! writes a million voxels.

use crate::consolidation::ConsolidationReport;
use crate::coords::Aabb;
use crate::coords::brick::{BRICK_LOG2, brick_box, bricks_per_axis};
use crate::hash::{FastMap, fast_map};
use crate::material::{MaterialId, MaterialUpdate};
use glam::IVec3;
use std::ops::RangeInclusive;

/// Changes drained from the feed, or received from elsewhere: the changes
/// numbered `first..=last`, in order.
///
/// ```
/// use bevy_delta_overlay::{ChangeBatch, MaterialId, MaterialUpdate};
/// use glam::IVec3;
/// let c = |x| MaterialUpdate::new(IVec3::new(x, 0, 0), MaterialId(2));
/// let batch = ChangeBatch::new(5, vec![c(0), c(1)]);
/// assert_eq!(batch.sequences(), 5..=6);
/// assert_eq!(batch.iter().map(|(seq, _)| seq).collect::<Vec<_>>(), [5, 6]);
/// assert!(batch.is_complete());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeBatch {
    first: u64,
    /// `first - 1` when the batch covers no sequence.
    last: u64,
    /// The changes numbered `first..first + changes.len()`; all of the range
    /// unless the feed overflowed.
    changes: Vec<MaterialUpdate>,
}

impl Default for ChangeBatch {
    fn default() -> Self {
        Self::new(1, Vec::new())
    }
}

impl ChangeBatch {
    /// A complete batch whose first change is numbered `first` (at least 1).
    pub fn new(first: u64, changes: Vec<MaterialUpdate>) -> Self {
        let first = first.max(1);
        Self { first, last: first + changes.len() as u64 - 1, changes }
    }

    /// The sequence numbers the batch covers (empty when it covers none).
    pub fn sequences(&self) -> RangeInclusive<u64> {
        self.first..=self.last
    }

    /// Sequence number of the first change.
    pub fn first_sequence(&self) -> u64 {
        self.first
    }

    /// Sequence number of the last change (`first_sequence() - 1` when empty).
    pub fn last_sequence(&self) -> u64 {
        self.last
    }

    /// The changes kept, in order: every change of [`sequences`](Self::sequences)
    /// when the batch is complete, a prefix when the feed overflowed.
    pub fn changes(&self) -> &[MaterialUpdate] {
        &self.changes
    }

    /// The changes with their sequence numbers.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (u64, MaterialUpdate)> + '_ {
        self.changes.iter().enumerate().map(|(i, c)| (self.first + i as u64, *c))
    }

    /// Number of changes kept.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// True when the batch covers no sequence number.
    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }

    /// True when every change of the range was kept.
    pub fn is_complete(&self) -> bool {
        self.changes.len() as u64 == self.last + 1 - self.first
    }

    /// The boxes of the bricks (16³ cells from `origin`) holding a change,
    /// clipped to `bounds`, each once, in no particular order.
    pub fn brick_boxes(&self, bounds: Aabb) -> Vec<Aabb> {
        let mut bricks: Vec<IVec3> =
            self.changes.iter().map(|c| (c.position - bounds.min) >> BRICK_LOG2 as i32).collect();
        bricks.sort_unstable_by_key(|b| (b.z, b.y, b.x));
        bricks.dedup();
        bricks.into_iter().map(|b| brick_box(bounds, b)).collect()
    }
}

/// A consolidation that finished, as the change feed records it: coarse LOD
/// reads change in its bricks.
#[derive(Clone, Debug, PartialEq)]
pub struct FinishedConsolidation {
    /// Its report.
    pub report: ConsolidationReport,
    /// The boxes of the bricks it installed, clipped to the world.
    pub bricks: Vec<Aabb>,
}

/// Finished consolidations kept between drains; older ones are dropped first.
const MAX_FINISHED: usize = 64;

/// The bricks holding a change since the last drain: a bitmap over the world's
/// bricks (one bit each, 8 KiB for the default world) with the list of its
/// non-zero words, so marking is a bit set and draining visits only what was
/// marked; a hash set for worlds of more than 2^24 bricks.
#[derive(Clone, Debug)]
enum ChangedBricks {
    Bitmap { dims: IVec3, bits: Vec<u64>, words: Vec<u32> },
    Set(FastMap<IVec3, ()>),
}

impl ChangedBricks {
    fn new(bounds: Aabb) -> Self {
        let dims = bricks_per_axis(bounds.size());
        let count = dims.as_u64vec3().element_product();
        if count <= 1 << 24 {
            ChangedBricks::Bitmap { dims, bits: vec![0; count.div_ceil(64) as usize], words: Vec::new() }
        } else {
            ChangedBricks::Set(fast_map())
        }
    }

    #[inline]
    fn mark(&mut self, b: IVec3) {
        match self {
            ChangedBricks::Bitmap { dims, bits, words } => {
                let i = (b.x + dims.x * (b.y + dims.y * b.z)) as usize;
                let (w, bit) = (i / 64, 1u64 << (i % 64));
                if bits[w] == 0 {
                    words.push(w as u32);
                }
                bits[w] |= bit;
            }
            ChangedBricks::Set(set) => {
                set.insert(b, ());
            }
        }
    }

    /// Local brick coordinates of every marked brick, each once; clears them.
    fn take(&mut self, out: &mut Vec<IVec3>) {
        match self {
            ChangedBricks::Bitmap { dims, bits, words } => {
                for w in words.drain(..) {
                    let mut word = std::mem::take(&mut bits[w as usize]);
                    while word != 0 {
                        let i = w as i32 * 64 + word.trailing_zeros() as i32;
                        word &= word - 1;
                        out.push(IVec3::new(i % dims.x, (i / dims.x) % dims.y, i / (dims.x * dims.y)));
                    }
                }
            }
            ChangedBricks::Set(set) => out.extend(set.drain().map(|(b, _)| b)),
        }
    }
}

/// The feed's state inside a storage.
#[derive(Clone, Debug)]
pub(crate) struct Feed {
    bounds: Aabb,
    /// Recording capacity; `None` when not recording.
    capacity: Option<usize>,
    /// The last sequence number given out.
    pub sequence: u64,
    /// The first sequence number of the batch being recorded.
    first: u64,
    changes: Vec<MaterialUpdate>,
    /// Built when recording starts.
    bricks: Option<ChangedBricks>,
    pub dropped: u64,
    finished: Vec<FinishedConsolidation>,
}

impl Feed {
    /// A feed of the world `bounds`, numbering on from `sequence`.
    pub fn new(bounds: Aabb, sequence: u64) -> Self {
        Self {
            bounds,
            capacity: None,
            sequence,
            first: sequence + 1,
            changes: Vec::new(),
            bricks: None,
            dropped: 0,
            finished: Vec::new(),
        }
    }

    pub fn is_recording(&self) -> bool {
        self.capacity.is_some()
    }

    /// Starts (or resizes) recording; what was recorded is kept up to the new
    /// capacity.
    pub fn record(&mut self, capacity: usize) {
        if self.capacity.is_none() {
            self.first = self.sequence + 1;
            self.changes.clear();
            self.bricks = Some(ChangedBricks::new(self.bounds));
        }
        self.capacity = Some(capacity);
    }

    /// Stops recording and drops what was kept.
    pub fn stop(&mut self) {
        self.capacity = None;
        self.changes = Vec::new();
        self.bricks = None;
        self.finished = Vec::new();
    }

    /// Numbers one change and keeps it while recording.
    #[inline]
    pub fn push(&mut self, position: IVec3, material: MaterialId) {
        self.sequence += 1;
        if let Some(bricks) = &mut self.bricks {
            bricks.mark((position - self.bounds.min) >> BRICK_LOG2 as i32);
        }
        if let Some(cap) = self.capacity {
            // Kept only while nothing was dropped: a batch is a prefix.
            if self.changes.len() < cap && self.changes.len() as u64 == self.sequence - self.first {
                self.changes.push(MaterialUpdate { position, material });
            } else {
                self.dropped += 1;
            }
        }
    }

    /// Drains the kept changes.
    pub fn take(&mut self) -> ChangeBatch {
        let kept = self.changes.len();
        let batch = ChangeBatch {
            first: self.first,
            last: self.sequence,
            changes: std::mem::replace(&mut self.changes, Vec::with_capacity(kept.min(1 << 16))),
        };
        self.first = self.sequence + 1;
        batch
    }

    /// The boxes of the bricks holding a change since the last call, each once,
    /// clipped to the world (empty when not recording). Whole changes are not
    /// needed for it: the bricks are marked as changes arrive, even past the
    /// recording capacity.
    pub fn take_bricks(&mut self) -> Vec<Aabb> {
        let mut local = Vec::new();
        if let Some(bricks) = &mut self.bricks {
            bricks.take(&mut local);
        }
        local.into_iter().map(|b| brick_box(self.bounds, b)).collect()
    }

    /// Records a finished consolidation while recording.
    pub fn finished(&mut self, f: FinishedConsolidation) {
        if self.capacity.is_none() {
            return;
        }
        if self.finished.len() == MAX_FINISHED {
            self.finished.remove(0);
        }
        self.finished.push(f);
    }

    /// Drains the finished consolidations.
    pub fn take_finished(&mut self) -> Vec<FinishedConsolidation> {
        std::mem::take(&mut self.finished)
    }
}

/// Why [`DeltaStorage::apply_changes`](super::DeltaStorage::apply_changes)
/// refused a batch. Nothing of a refused batch is applied.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum FeedError {
    /// The batch does not start right after the storage's last change: a change
    /// was missed (`found > expected`) or the batch is old (`found < expected`).
    Gap {
        /// The sequence number the storage expects next.
        expected: u64,
        /// The batch's first sequence number.
        found: u64,
    },
    /// The batch lacks changes of its range (the sender's feed overflowed).
    Incomplete {
        /// The batch's range.
        first: u64,
        /// The batch's range.
        last: u64,
    },
    /// A change lies outside the world.
    OutOfBounds {
        /// Its sequence number.
        sequence: u64,
        /// Its position.
        position: IVec3,
    },
}

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gap { expected, found } => {
                write!(f, "change batch starts at sequence {found}, expected {expected}: resync from a snapshot")
            }
            Self::Incomplete { first, last } => {
                write!(f, "change batch {first}..={last} lacks changes (the sender's feed overflowed)")
            }
            Self::OutOfBounds { sequence, position } => {
                write!(f, "change {sequence} writes voxel {position}, outside the world")
            }
        }
    }
}

impl std::error::Error for FeedError {}
