//! What rain remembers between droplets, per column: the flow through it
//! (discharge and momentum, after Nick McDonald's SimpleHydrology) and the
//! fraction of a voxel owed to or by it; and what one droplet carries.
//!
//! # Invariants
//!
//! - `BOUNDED`: the memory holds at most its cap of columns. Making room for
//!   a new one drops the quarter of the held columns that matter least (the
//!   smallest `discharge + |owed|`, ties broken by the column), chosen by a
//!   total order, so which are dropped never depends on the hash map's
//!   iteration order. A dropped column forgets its flow and its fraction:
//!   the expected amounts shift by less than a voxel per dropped column, the
//!   voxel counts stay exact.
//! - `DECAY`: once a frame every column's discharge and momentum shrink by
//!   the same factor; a column whose flow and fraction are both negligible
//!   is forgotten. Each column is treated alone, so the hash map's order
//!   does not matter there either.
//! - `OWED`: `owed` is in `[-OWED_CAP, OWED_CAP]`: the brush's continuous
//!   erosion (negative) and deposition (positive) not yet made whole voxels.
//! - `BAG`: a droplet's bag holds whole voxels, each once, by the material it
//!   will lay; a voxel enters it when taken from the terrain and leaves it
//!   when laid or carried out, so `taken = laid + carried out + in bags`, and
//!   bags are empty between droplets.

use crate::hash::{FastMap, fast_map};
use crate::material::MaterialId;
use glam::{IVec2, Vec2};

/// The most a column may owe or be owed, in voxels: owed deposition beyond
/// it (laid by droplets whose bags were empty) is forgotten.
pub(crate) const OWED_CAP: f32 = 2.0;

/// Flow below this (and `|owed|` below [`FORGET_OWED`]) is forgotten.
const FORGET_FLOW: f32 = 1e-3;

/// A fraction of a voxel below this is forgotten with the column's flow.
const FORGET_OWED: f32 = 1e-3;

/// One column's memory.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ColumnMemory {
    /// Water that ran through it, decaying.
    pub(crate) discharge: f32,
    /// That water's headings, summed (so `|momentum| <= discharge`), decaying.
    pub(crate) momentum: Vec2,
    /// Voxels owed: positive, to lay on it; negative, to take from it.
    pub(crate) owed: f32,
}

/// The columns' memory: a bounded map (`BOUNDED`).
#[derive(Clone)]
pub(crate) struct FlowMemory {
    columns: FastMap<IVec2, ColumnMemory>,
    /// Reused when making room (no allocation after the first time).
    scratch: Vec<(f32, IVec2)>,
    /// Columns dropped to make room, since the start.
    pub(crate) evicted: u64,
}

impl Default for FlowMemory {
    fn default() -> Self {
        Self { columns: fast_map(), scratch: Vec::new(), evicted: 0 }
    }
}

impl std::fmt::Debug for FlowMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowMemory").field("columns", &self.columns.len()).field("evicted", &self.evicted).finish()
    }
}

impl FlowMemory {
    /// What column `c` remembers (nothing: zeros).
    #[inline]
    pub(crate) fn get(&self, c: IVec2) -> ColumnMemory {
        self.columns.get(&c).copied().unwrap_or_default()
    }

    /// Column `c`'s memory, to change; made (after making room, `BOUNDED`)
    /// when it has none.
    #[inline]
    pub(crate) fn entry(&mut self, c: IVec2, cap: usize) -> &mut ColumnMemory {
        if self.columns.len() >= cap.max(1) && !self.columns.contains_key(&c) {
            self.make_room(cap.max(1));
        }
        self.columns.entry(c).or_default()
    }

    /// Columns remembered.
    pub(crate) fn len(&self) -> usize {
        self.columns.len()
    }

    /// Drops the quarter of `cap` (at least one column) that matters least.
    fn make_room(&mut self, cap: usize) {
        let keep = cap - (cap / 4).max(1);
        if self.columns.len() <= keep {
            return;
        }
        self.scratch.clear();
        self.scratch.extend(self.columns.iter().map(|(c, m)| (m.discharge + m.owed.abs(), *c)));
        let order =
            |a: &(f32, IVec2), b: &(f32, IVec2)| b.0.total_cmp(&a.0).then(a.1.x.cmp(&b.1.x)).then(a.1.y.cmp(&b.1.y));
        // Most important first: everything from `keep` on goes.
        self.scratch.select_nth_unstable_by(keep, order);
        for &(_, c) in &self.scratch[keep..] {
            self.columns.remove(&c);
        }
        self.evicted += (self.scratch.len() - keep) as u64;
    }

    /// A frame's decay of the flow (`DECAY`): discharge and momentum times
    /// `1 - rate`.
    pub(crate) fn decay(&mut self, rate: f32) {
        let keep = 1.0 - rate.clamp(0.0, 1.0);
        self.columns.retain(|_, m| {
            m.discharge *= keep;
            m.momentum *= keep;
            m.discharge >= FORGET_FLOW || m.owed.abs() >= FORGET_OWED
        });
    }
}

/// Distinct materials a droplet's bag holds at once: more than the shipped
/// palette's grains (sand, gravel, sediment, soil). A voxel of a further
/// material is left in place until the droplet lays some of its load.
pub(crate) const BAG_KINDS: usize = 6;

/// The whole voxels a droplet carries, by the material each will be laid as.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Bag {
    kinds: [(MaterialId, u32); BAG_KINDS],
    len: usize,
}

impl Bag {
    /// Voxels in it.
    pub(crate) fn count(&self) -> u32 {
        self.kinds[..self.len].iter().map(|k| k.1).sum()
    }

    /// Whether a voxel to be laid as `m` fits.
    pub(crate) fn has_room_for(&self, m: MaterialId) -> bool {
        self.len < BAG_KINDS || self.kinds[..self.len].iter().any(|k| k.0 == m)
    }

    /// Adds a voxel to be laid as `m` (`has_room_for(m)`, or it is lost:
    /// the caller checks first).
    pub(crate) fn put(&mut self, m: MaterialId) {
        if let Some(k) = self.kinds[..self.len].iter_mut().find(|k| k.0 == m) {
            k.1 += 1;
        } else if self.len < BAG_KINDS {
            self.kinds[self.len] = (m, 1);
            self.len += 1;
        } else {
            debug_assert!(false, "BAG: a voxel put in a full bag");
        }
    }

    /// Takes a voxel out: of the material it holds most of (the first of
    /// those taken up, among equals), so a droplet lays what it mostly took.
    pub(crate) fn take(&mut self) -> Option<MaterialId> {
        let (i, _) = self.kinds[..self.len].iter().enumerate().fold(None, |best: Option<(usize, u32)>, (i, k)| {
            if best.is_none_or(|b| k.1 > b.1) { Some((i, k.1)) } else { best }
        })?;
        let m = self.kinds[i].0;
        self.kinds[i].1 -= 1;
        if self.kinds[i].1 == 0 {
            self.kinds.copy_within(i + 1..self.len, i);
            self.len -= 1;
        }
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_memory_drops_the_least_flow_whatever_the_insertion_order() {
        let fill = |order: &[i32]| {
            let mut m = FlowMemory::default();
            for &i in order {
                m.entry(IVec2::new(i, 0), 8).discharge = i as f32;
            }
            let mut kept: Vec<i32> = m.columns.keys().map(|c| c.x).collect();
            kept.sort();
            (kept, m.evicted)
        };
        let a = fill(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let b = fill(&[9, 8, 7, 6, 5, 4, 3, 2, 1]);
        // The two smallest of the full memory go, then the new column comes in.
        assert_eq!(a, (vec![3, 4, 5, 6, 7, 8, 9], 2));
        assert_eq!(b, (vec![1, 4, 5, 6, 7, 8, 9], 2));
    }

    #[test]
    fn decay_forgets_still_columns_but_keeps_fractions() {
        let mut m = FlowMemory::default();
        m.entry(IVec2::ZERO, 10).discharge = 1.0;
        m.entry(IVec2::ONE, 10).owed = 0.5;
        for _ in 0..100 {
            m.decay(0.2);
        }
        assert_eq!(m.len(), 1);
        assert_eq!(m.get(IVec2::ONE).owed, 0.5);
    }

    #[test]
    fn the_bag_lays_its_majority_first() {
        let (sand, gravel) = (MaterialId(11), MaterialId(12));
        let mut bag = Bag::default();
        for m in [gravel, sand, sand] {
            bag.put(m);
        }
        assert_eq!(
            (bag.count(), bag.take(), bag.take(), bag.take(), bag.take()),
            (3, Some(sand), Some(gravel), Some(sand), None)
        );
        for id in 0..BAG_KINDS as u16 {
            bag.put(MaterialId(id));
        }
        assert!(!bag.has_room_for(MaterialId(99)) && bag.has_room_for(MaterialId(0)));
    }
}
