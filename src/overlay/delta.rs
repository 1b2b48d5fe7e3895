//! One delta record, and the helpers that search and summarize a brick's deltas.

use crate::coords::brick::block_bit;
use crate::material::MaterialId;

/// One delta: 16 bytes, 4-byte aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Delta {
    /// In-brick index (x fastest); a brick's deltas are sorted on it (`SORTED`).
    pub local: u16,
    /// The material this delta reads as.
    pub material: MaterialId,
    /// The material beneath this delta's layer when it was first written: what a
    /// revert compares against. Installing deltas into the base never changes a
    /// value, so it stays true as layers below are merged.
    pub beneath: MaterialId,
    /// Writes to this voxel since the delta was created, starting at 1 (saturating).
    pub version: u16,
    /// Storage clock (ms) of the last write, as two halves so the record keeps a
    /// 4-byte alignment (three fit inline in a brick's map entry).
    written: [u32; 2],
}

const _: () = assert!(std::mem::size_of::<Delta>() == 16);
const _: () = assert!(std::mem::align_of::<Delta>() == 4);

impl Delta {
    /// A new delta of voxel `local`.
    #[inline]
    pub fn new(local: u16, material: MaterialId, beneath: MaterialId, now: u64) -> Self {
        Self { local, material, beneath, version: 1, written: [now as u32, (now >> 32) as u32] }
    }

    /// Storage clock (ms) of the last write.
    #[inline]
    pub fn written_at(&self) -> u64 {
        u64::from(self.written[0]) | u64::from(self.written[1]) << 32
    }

    /// Records a write of `material` at `now`.
    #[inline]
    pub fn rewrite(&mut self, material: MaterialId, now: u64) {
        self.material = material;
        self.version = self.version.saturating_add(1);
        self.written = [now as u32, (now >> 32) as u32];
    }
}

/// Deltas stored inline in a brick's map entry before spilling to the heap.
/// Three fill the 48 bytes a 72-byte entry has for them (see the overlay's
/// layout notes).
pub(crate) const INLINE_DELTAS: usize = 3;

/// A brick's deltas: up to [`INLINE_DELTAS`] inline, beyond that on the heap.
pub(crate) type DeltaVec = smallvec::SmallVec<[Delta; INLINE_DELTAS]>;

/// The heap capacity (in deltas) `v` holds: zero while inline.
#[inline]
pub(crate) fn heap_capacity(v: &DeltaVec) -> usize {
    if v.spilled() { v.capacity() } else { 0 }
}

/// Position of the delta of voxel `local` (or where it would go).
#[inline]
pub(crate) fn find(deltas: &[Delta], local: u16) -> usize {
    deltas.partition_point(|d| d.local < local)
}

/// Position of the delta of voxel `local` (or where it would go), searched by
/// galloping from the front: `O(log d)` steps for an answer `d` deltas in, so a
/// merge walking sorted writes forward pays for the gap to each write, not for
/// the whole brick.
#[inline]
pub(crate) fn gallop(deltas: &[Delta], local: u16) -> usize {
    // Invariant: every delta before `lo` sorts before `local`.
    let (mut lo, mut step) = (0, 1);
    while lo + step <= deltas.len() && deltas[lo + step - 1].local < local {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step).min(deltas.len());
    lo + deltas[lo..hi].partition_point(|d| d.local < local)
}

/// The block mask of a brick's deltas.
pub(crate) fn mask_of(deltas: &[Delta]) -> u64 {
    deltas.iter().fold(0, |m, d| m | block_bit(d.local))
}

/// The delta of voxel `local` in a brick's sorted deltas and block mask.
#[inline]
pub(crate) fn lookup(deltas: &[Delta], mask: u64, local: u16) -> Option<&Delta> {
    if mask & block_bit(local) == 0 {
        return None;
    }
    deltas.get(find(deltas, local)).filter(|d| d.local == local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gallop_finds_what_binary_search_finds() {
        for len in 0..70u16 {
            let deltas: Vec<Delta> = (0..len).map(|i| Delta::new(3 * i + 1, MaterialId(2), MaterialId(1), 0)).collect();
            for local in 0..3 * len + 3 {
                assert_eq!(gallop(&deltas, local), find(&deltas, local), "{len} deltas, voxel {local}");
            }
        }
    }

    #[test]
    fn write_times_keep_all_64_bits() {
        let mut d = Delta::new(0, MaterialId(1), MaterialId(0), u64::from(u32::MAX) + 5);
        assert_eq!(d.written_at(), u64::from(u32::MAX) + 5);
        d.rewrite(MaterialId(2), u64::MAX);
        assert_eq!((d.written_at(), d.version), (u64::MAX, 2));
    }
}
