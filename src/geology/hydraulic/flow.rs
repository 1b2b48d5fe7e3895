//! What rain remembers between droplets, per column: the flow through it
//! (discharge and momentum, after Nick McDonald's SimpleHydrology) and the
//! fraction of a voxel owed to or by it; and what one droplet carries.
//!
//! The memory is sparse: tiles of `16 x 16` columns, made where water first
//! runs, so a world's size does not set its cost; a brush's columns are a
//! few tiles, and the tile read last is found without a lookup.
//!
//! # Invariants
//!
//! - `DECAY`: every remembered value shrinks by `1 - rate` a frame, without a
//!   pass over the columns: values are stored multiplied by `scale`, a
//!   frame's decay divides `scale` by `1 - rate`, and reads divide by it. When `scale` passes [`RESCALE`], every stored value
//!   is divided by it and it starts again from 1, and tiles whose flow is
//!   all below [`FORGET_FLOW`] and that owe nothing are dropped. IEEE
//!   multiplications and divisions only: the same bits on every platform.
//!   Fractions owed do not decay.
//! - `OWED`: `owed` is in `[-OWED_CAP, OWED_CAP]`: the brush's continuous
//!   erosion (negative) and deposition (positive) not yet made whole voxels.
//!   A dropped tile forgets its fractions: the expected amounts shift by
//!   less than a voxel per column, the voxel counts stay exact.
//! - `BOUNDED`: at most `cap / 256` tiles (at least one). Making room drops
//!   the quarter of them written least recently, ties broken by the tile, so
//!   which are dropped never depends on the hash map's iteration order.
//! - `INDEX`: `index` maps every tile's key to its place in `tiles`, and
//!   `last`, when set, names a tile that is there.
//! - `BAG`: a droplet's bag holds whole voxels, each once, by the material it
//!   will lay; a voxel enters it when taken from the terrain and leaves it
//!   when laid or carried out, so `taken = laid + carried out + in bags`, and
//!   bags are empty between droplets.

use crate::geology::state::{StateError, StateReader, StateWriter};
use crate::hash::{FastMap, fast_map};
use crate::material::MaterialId;
use glam::{IVec2, Vec2};

/// Columns along a tile's side, as a shift.
const TILE_LOG2: i32 = 4;
/// Columns in a tile.
const TILE_COLUMNS: usize = 1 << (2 * TILE_LOG2);

/// When `scale` passes this, the stored values are brought back to scale 1.
const RESCALE: f32 = 1e12;

/// Flow below this is forgotten when the memory is rescaled.
const FORGET_FLOW: f32 = 1e-3;

/// A fraction below this is forgotten with its tile's flow.
const FORGET_OWED: f32 = 1e-3;

/// The most a column may owe or be owed, in voxels: owed deposition beyond
/// it (laid by droplets whose bags were empty) is forgotten.
pub(crate) const OWED_CAP: f32 = 2.0;

/// One column's memory, as a reader sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ColumnMemory {
    /// Water that ran through it, decaying.
    pub(crate) discharge: f32,
    /// That water's headings, summed (so `|momentum| <= discharge`), decaying.
    pub(crate) momentum: Vec2,
    /// Voxels owed: positive, to lay on it; negative, to take from it.
    pub(crate) owed: f32,
}

/// Sixteen by sixteen columns' memory (flow times the memory's `scale`).
#[derive(Clone)]
struct Tile {
    /// Its columns divided by 16.
    key: IVec2,
    /// The frame it was last written in.
    written: u64,
    columns: [ColumnMemory; TILE_COLUMNS],
}

/// The columns' memory (`DECAY`, `BOUNDED`).
#[derive(Clone)]
pub(crate) struct FlowMemory {
    tiles: Vec<Tile>,
    /// Where each tile is in `tiles` (`INDEX`).
    index: FastMap<IVec2, u32>,
    /// The tile found last and its place.
    last: Option<(IVec2, u32)>,
    /// What stored values are multiplied by (`DECAY`).
    scale: f32,
    /// Frames decayed so far.
    frame: u64,
    /// Reused when making room (no allocation after the first time).
    scratch: Vec<(u64, IVec2)>,
    /// Columns dropped to make room, since the start.
    pub(crate) evicted: u64,
}

impl Default for FlowMemory {
    fn default() -> Self {
        Self { tiles: Vec::new(), index: fast_map(), last: None, scale: 1.0, frame: 0, scratch: Vec::new(), evicted: 0 }
    }
}

impl std::fmt::Debug for FlowMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowMemory").field("columns", &self.len()).field("evicted", &self.evicted).finish()
    }
}

/// Column `c`'s tile and its index in it.
#[inline]
fn split(c: IVec2) -> (IVec2, usize) {
    let mask = (1 << TILE_LOG2) - 1;
    (c >> TILE_LOG2, ((c.x & mask) | (c.y & mask) << TILE_LOG2) as usize)
}

impl FlowMemory {
    /// Where tile `key` is, if held.
    #[inline]
    fn find(&mut self, key: IVec2) -> Option<usize> {
        if let Some((k, at)) = self.last
            && k == key
        {
            return Some(at as usize);
        }
        let at = *self.index.get(&key)?;
        self.last = Some((key, at));
        Some(at as usize)
    }

    /// Where tile `key` is, made (after making room, `BOUNDED`) when it is
    /// not held, and marked written now.
    fn find_or_make(&mut self, key: IVec2, cap: usize) -> usize {
        let at = match self.find(key) {
            Some(at) => at,
            None => {
                let most = (cap / TILE_COLUMNS).max(1);
                if self.tiles.len() >= most {
                    self.make_room(most);
                }
                let at = self.tiles.len();
                self.tiles.push(Tile { key, written: 0, columns: [ColumnMemory::default(); TILE_COLUMNS] });
                self.index.insert(key, at as u32);
                self.last = Some((key, at as u32));
                at
            }
        };
        self.tiles[at].written = self.frame;
        at
    }

    /// What column `c` remembers (nothing: zeros).
    #[inline]
    pub(crate) fn get(&mut self, c: IVec2) -> ColumnMemory {
        let (key, i) = split(c);
        match self.find(key) {
            Some(at) => {
                let m = self.tiles[at].columns[i];
                ColumnMemory { discharge: m.discharge / self.scale, momentum: m.momentum / self.scale, owed: m.owed }
            }
            None => ColumnMemory::default(),
        }
    }

    /// What column `c` owes (`OWED`).
    #[inline]
    pub(crate) fn owed(&mut self, c: IVec2) -> f32 {
        let (key, i) = split(c);
        self.find(key).map_or(0.0, |at| self.tiles[at].columns[i].owed)
    }

    /// Column `c`'s fraction owed, to change (keep it in `OWED`); its tile
    /// made when it has none. `cap`: columns held at most.
    #[inline]
    pub(crate) fn owed_mut(&mut self, c: IVec2, cap: usize) -> &mut f32 {
        let (key, i) = split(c);
        let at = self.find_or_make(key, cap);
        &mut self.tiles[at].columns[i].owed
    }

    /// Adds `share * w` (negative: takes) to the fraction owed by each
    /// column `centre + offset` of `taps` inside the world (`inside`),
    /// within `OWED`, and lists in `crossed`, in the taps' order, those that
    /// now owe or are owed a whole voxel. The brush's tiles are found once
    /// each (a brush spans at most four). `cap`: columns held at most.
    pub(crate) fn owe_over(
        &mut self,
        (centre, taps): (IVec2, &[(IVec2, f32)]),
        share: f32,
        cap: usize,
        inside: impl Fn(IVec2) -> bool,
        crossed: &mut Vec<IVec2>,
    ) {
        crossed.clear();
        let mut tiles = [(IVec2::MAX, 0usize); 4];
        let mut held = 0;
        for &(offset, w) in taps {
            let c = centre + offset;
            if !inside(c) {
                continue;
            }
            let (key, i) = split(c);
            let at = match tiles[..held].iter().find(|t| t.0 == key) {
                Some(t) => t.1,
                None => {
                    let evicted = self.evicted;
                    let at = self.find_or_make(key, cap);
                    if self.evicted != evicted {
                        // Room was made: the tiles found so far moved.
                        held = 0;
                    }
                    if held < tiles.len() {
                        tiles[held] = (key, at);
                        held += 1;
                    }
                    at
                }
            };
            let owed = &mut self.tiles[at].columns[i].owed;
            *owed = (*owed + share * w).clamp(-OWED_CAP, OWED_CAP);
            if owed.abs() >= 1.0 {
                crossed.push(c);
            }
        }
    }

    /// Adds water `water` heading `heading` (a unit vector or zero) to
    /// column `c`'s memory. `cap`: columns held at most.
    pub(crate) fn add_flow(&mut self, c: IVec2, water: f32, heading: Vec2, cap: usize) {
        let (key, i) = split(c);
        let at = self.find_or_make(key, cap);
        let scale = self.scale;
        let m = &mut self.tiles[at].columns[i];
        m.discharge += water * scale;
        m.momentum += heading * (water * scale);
    }

    /// Writes every tile (values as stored, with `scale`), in order.
    pub(crate) fn save(&self, out: &mut StateWriter) {
        out.f32(self.scale);
        out.u64(self.frame);
        out.len_of(self.tiles.len());
        for t in &self.tiles {
            out.ivec2(t.key);
            out.u64(t.written);
            for m in &t.columns {
                out.f32(m.discharge);
                out.vec2(m.momentum);
                out.f32(m.owed);
            }
        }
    }

    /// Reads what [`save`](Self::save) wrote (`INDEX` rebuilt, `OWED`
    /// checked).
    pub(crate) fn restore(input: &mut StateReader<'_>) -> Result<Self, StateError> {
        let mut memory = Self { scale: input.f32()?, frame: input.u64()?, ..Self::default() };
        if !(memory.scale >= 1.0 && memory.scale.is_finite()) {
            return Err(StateError::Invalid("flow scale"));
        }
        let tiles = input.len_of(16 + TILE_COLUMNS * 16)?;
        memory.tiles.reserve_exact(tiles);
        for at in 0..tiles {
            let (key, written) = (input.ivec2()?, input.u64()?);
            if written > memory.frame {
                return Err(StateError::Invalid("flow tile written after the memory's frame"));
            }
            let mut columns = [ColumnMemory::default(); TILE_COLUMNS];
            for m in &mut columns {
                *m = ColumnMemory { discharge: input.f32()?, momentum: input.vec2()?, owed: input.f32()? };
                if m.owed.is_nan() || m.owed.abs() > OWED_CAP {
                    return Err(StateError::Invalid("owed fraction"));
                }
                // What `add_flow` makes: finite, no more heading than water.
                if !(m.discharge >= 0.0 && m.discharge.is_finite() && m.momentum.is_finite()) {
                    return Err(StateError::Invalid("flow"));
                }
            }
            if memory.index.insert(key, at as u32).is_some() {
                return Err(StateError::Invalid("flow tiles (a tile twice)"));
            }
            memory.tiles.push(Tile { key, written, columns });
        }
        Ok(memory)
    }

    /// Columns held (whole tiles).
    pub(crate) fn len(&self) -> usize {
        self.tiles.len() * TILE_COLUMNS
    }

    /// Drops the quarter of `most` tiles (at least one) written least
    /// recently.
    fn make_room(&mut self, most: usize) {
        let keep = most - (most / 4).max(1);
        if self.tiles.len() <= keep {
            return;
        }
        self.scratch.clear();
        self.scratch.extend(self.tiles.iter().map(|t| (t.written, t.key)));
        let order = |a: &(u64, IVec2), b: &(u64, IVec2)| b.0.cmp(&a.0).then(a.1.x.cmp(&b.1.x)).then(a.1.y.cmp(&b.1.y));
        // Most recent first: everything from `keep` on goes.
        self.scratch.select_nth_unstable_by(keep, order);
        let gone = self.scratch.len() - keep;
        // Marked by a stamp no frame reaches, then dropped in one pass.
        for &(_, key) in &self.scratch[keep..] {
            if let Some(&at) = self.index.get(&key) {
                self.tiles[at as usize].written = u64::MAX;
            }
        }
        self.retain(|t| t.written != u64::MAX);
        self.evicted += (gone * TILE_COLUMNS) as u64;
    }

    /// Keeps the tiles `keep` says to, in their order (`INDEX`).
    fn retain(&mut self, mut keep: impl FnMut(&mut Tile) -> bool) {
        self.tiles.retain_mut(|t| keep(t));
        self.index.clear();
        self.index.extend(self.tiles.iter().enumerate().map(|(at, t)| (t.key, at as u32)));
        self.last = None;
    }

    /// A frame's decay of the flow (`DECAY`): discharge and momentum times
    /// `1 - rate`.
    pub(crate) fn decay(&mut self, rate: f32) {
        self.frame += 1;
        let keep = 1.0 - if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
        if keep <= 0.0 {
            // No memory of flow: fractions stay.
            self.rescale(f32::INFINITY);
            return;
        }
        self.scale /= keep;
        if self.scale > RESCALE {
            self.rescale(self.scale);
        }
    }

    /// Divides the stored flow by `by` (back to scale 1), dropping the tiles
    /// whose flow has all but gone and that owe nothing.
    fn rescale(&mut self, by: f32) {
        self.retain(|t| {
            let mut most = 0.0f32;
            let mut owed = 0.0f32;
            for m in &mut t.columns {
                m.discharge /= by;
                m.momentum /= by;
                most = most.max(m.discharge);
                owed = owed.max(m.owed.abs());
            }
            most >= FORGET_FLOW || owed >= FORGET_OWED
        });
        self.scale = 1.0;
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
    fn a_full_memory_drops_the_tiles_written_least_recently_whatever_the_order() {
        let fill = |order: &[i32]| {
            let mut m = FlowMemory::default();
            for &i in order {
                // One tile per column: 16 apart.
                m.add_flow(IVec2::new(i * 16, 0), 1.0, Vec2::X, 8 * TILE_COLUMNS);
                m.decay(0.0);
            }
            let mut kept: Vec<i32> = m.tiles.iter().map(|t| t.key.x).collect();
            kept.sort();
            (kept, m.evicted / TILE_COLUMNS as u64)
        };
        // The two written first go when the ninth comes in.
        assert_eq!(fill(&[1, 2, 3, 4, 5, 6, 7, 8, 9]), (vec![3, 4, 5, 6, 7, 8, 9], 2));
        assert_eq!(fill(&[9, 8, 7, 6, 5, 4, 3, 2, 1]), (vec![1, 2, 3, 4, 5, 6, 7], 2));
    }

    #[test]
    fn flow_decays_by_the_rate_a_frame_and_still_tiles_are_forgotten() {
        let mut m = FlowMemory::default();
        m.add_flow(IVec2::ZERO, 1.0, Vec2::X, 1 << 20);
        m.add_flow(IVec2::new(100, 0), 1e12, Vec2::Y, 1 << 20);
        *m.owed_mut(IVec2::new(-100, 0), 1 << 20) = 0.5;
        for _ in 0..10 {
            m.decay(0.5);
        }
        let d = m.get(IVec2::ZERO);
        assert!((d.discharge - 1.0 / 1024.0).abs() < 1e-7, "{d:?}");
        assert!((d.momentum.x - d.discharge).abs() < 1e-7, "{d:?}");
        // Past RESCALE: the nearly still tile goes, the busy one stays.
        for _ in 0..40 {
            m.decay(0.5);
        }
        assert_eq!(m.len(), 2 * TILE_COLUMNS);
        assert_eq!(m.get(IVec2::ZERO), ColumnMemory::default());
        assert_eq!(m.owed(IVec2::new(-100, 0)), 0.5);
        let busy = m.get(IVec2::new(100, 0)).discharge;
        assert!((busy / (1e12 / 2f32.powi(50)) - 1.0).abs() < 1e-4, "{busy}");
        m.decay(1.0);
        assert_eq!(m.len(), TILE_COLUMNS, "fractions stay");
        assert_eq!(m.get(IVec2::new(-100, 0)).owed, 0.5);
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
