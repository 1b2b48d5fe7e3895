//! One delta record, and the helpers that search and summarize a brick's deltas.

use crate::MaterialId;

/// One delta: 12 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Delta {
    /// In-brick index (x fastest) shifted left once, low bit set when frozen:
    /// sorting on it orders by voxel, active before frozen (`SORTED`).
    pub(super) slot: u16,
    /// The material this delta reads as.
    pub material: MaterialId,
    /// The material beneath this delta's layer when it was first written: what a
    /// revert compares against.
    pub beneath: MaterialId,
    /// Writes to this voxel since the delta was created, starting at 1 (saturating).
    pub version: u16,
    /// Storage clock (ms) of the last write.
    pub written_at: u32,
}

const _: () = assert!(std::mem::size_of::<Delta>() == 12);

impl Delta {
    pub(super) fn active(local: u16, material: MaterialId, beneath: MaterialId, now: u32) -> Self {
        Self { slot: local << 1, material, beneath, version: 1, written_at: now }
    }

    /// In-brick index.
    #[inline]
    pub fn local(&self) -> u16 {
        self.slot >> 1
    }

    /// True for a delta of the consolidation in flight.
    #[inline]
    pub fn is_frozen(&self) -> bool {
        self.slot & 1 == 1
    }
}

/// Deltas stored inline in a brick's map entry before spilling to the heap.
/// Four cover most bricks of scattered edits for 24 bytes more per entry than two
/// (see the overlay's layout notes).
pub(crate) const INLINE_DELTAS: usize = 4;

/// A brick's deltas: up to [`INLINE_DELTAS`] inline, beyond that on the heap.
pub(super) type DeltaVec = smallvec::SmallVec<[Delta; INLINE_DELTAS]>;

/// The heap capacity (in deltas) `v` holds: zero while inline.
#[inline]
pub(super) fn heap_capacity(v: &DeltaVec) -> usize {
    if v.spilled() { v.capacity() } else { 0 }
}

/// Position of the first delta of voxel `local` (or where it would go).
#[inline]
pub(super) fn find(deltas: &[Delta], local: u16) -> usize {
    deltas.partition_point(|d| d.slot < local << 1)
}

/// Position of the first delta of voxel `local` (or where it would go), searched
/// by galloping from the front: `O(log d)` steps for an answer `d` deltas in, so a
/// merge walking sorted writes forward pays for the gap to each write, not for
/// the whole brick.
#[inline]
pub(super) fn gallop(deltas: &[Delta], local: u16) -> usize {
    let key = local << 1;
    // Invariant: every delta before `lo` sorts before `key`.
    let (mut lo, mut step) = (0, 1);
    while lo + step <= deltas.len() && deltas[lo + step - 1].slot < key {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step).min(deltas.len());
    lo + deltas[lo..hi].partition_point(|d| d.slot < key)
}

/// The mask bit of the `4³` block holding in-brick index `local`.
#[inline]
pub(super) fn block_bit(local: u16) -> u64 {
    1 << crate::base::l2_cell_of(usize::from(local))
}

pub(super) fn mask_of(deltas: &[Delta]) -> u64 {
    deltas.iter().fold(0, |m, d| m | block_bit(d.local()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gallop_finds_what_binary_search_finds() {
        // Every length up to 70 and every key around the stored ones, with both
        // layers of some voxels present.
        for len in 0..70u16 {
            let deltas: Vec<Delta> = (0..len)
                .map(|i| {
                    let mut d = Delta::active(3 * (i / 2) + 1, MaterialId(2), MaterialId(1), 0);
                    d.slot |= i & 1;
                    d
                })
                .collect();
            for local in 0..3 * len / 2 + 3 {
                assert_eq!(gallop(&deltas, local), find(&deltas, local), "{len} deltas, voxel {local}");
            }
        }
    }
}
