//! Leaf bricks: dense `16³` arrays of materials with a small LOD pyramid, and the
//! one function that rebuilds a brick from writes.

use super::content::BrickContent;
use crate::coords::brick::{BRICK_VOLUME, Clip, block_of, child_offset, voxel_index};
use crate::material::MaterialId;
use glam::IVec3;
use std::sync::Arc;

/// Cells of a brick's stored pyramid: levels 2, 3 and 4.
#[cfg(feature = "codec")]
pub(crate) const PYRAMID_CELLS: usize = 64 + 8 + 1;

/// Cells per axis at in-brick level 2 (level 1 is computed on demand, level 3 has
/// 2³ cells, level 4 is the whole brick).
const L2: usize = 4;

const _: () = assert!(L2 * L2 * L2 == 64, "one dirty bit per level-2 cell fits a u64");

/// Majority of `values` (at most 8), ties broken to the smallest id.
///
/// This is the one LOD rule of the crate: a coarse cell holds the majority of its
/// (up to 8) in-world children.
///
/// ```
/// use bevy_delta_overlay::{MaterialId, base::majority};
/// let m = |v| MaterialId(v);
/// assert_eq!(majority(&[m(5), m(5), m(2), m(2)]), m(2)); // a tie: the smaller id
/// assert_eq!(majority(&[m(9), m(9), m(1)]), m(9));
/// ```
#[inline]
pub fn majority(values: &[MaterialId]) -> MaterialId {
    let first = values[0];
    if values.iter().all(|&v| v == first) {
        return first;
    }
    // Count each value's copies by comparing it with every value (at most 64
    // compares, no branches in the inner loop), then keep the most frequent,
    // the smaller id on a tie: as fast as an early-out sort on mixed cells and
    // much faster on the two- or three-material cells geology makes.
    let (mut best, mut best_count) = (first, 0u32);
    for &v in values {
        let count = values.iter().map(|&w| u32::from(w == v)).sum::<u32>();
        if count > best_count || (count == best_count && v < best) {
            best = v;
            best_count = count;
        }
    }
    best
}

/// A dense `16³` block of materials, the leaf of the base index.
///
/// Bricks are shared copy-on-write (`Arc<Brick>`): snapshotting one costs a
/// pointer copy, and the tree clones it only when it writes to a brick a
/// snapshot still holds.
///
/// Memory: 8 KiB of voxels plus 146 bytes of pyramid (levels 2, 3 and 4; level 1
/// is computed from the voxels when read, 8 reads).
#[derive(Clone)]
pub struct Brick {
    voxels: [MaterialId; BRICK_VOLUME],
    /// Level-2 cells, `4³`, index `x | y << 2 | z << 4`.
    l2: [MaterialId; 64],
    /// Level-3 cells, `2³`, index `x | y << 1 | z << 2`.
    l3: [MaterialId; 8],
    /// Level 4: the whole brick.
    l4: MaterialId,
}

impl Brick {
    /// A brick holding `m` everywhere.
    pub fn filled(m: MaterialId) -> Self {
        Self { voxels: [m; BRICK_VOLUME], l2: [m; 64], l3: [m; 8], l4: m }
    }

    /// A brick with the given voxels (index `x | y << 4 | z << 8`), pyramid computed.
    pub fn from_voxels(voxels: &[MaterialId; BRICK_VOLUME]) -> Self {
        Self::from_voxels_clipped(voxels, Clip::FULL)
    }

    pub(crate) fn from_voxels_clipped(voxels: &[MaterialId; BRICK_VOLUME], clip: Clip) -> Self {
        let mut b = Self { voxels: *voxels, l2: [MaterialId::AIR; 64], l3: [MaterialId::AIR; 8], l4: MaterialId::AIR };
        b.update_pyramid(u64::MAX, clip);
        b
    }

    #[cfg(feature = "codec")]
    /// The pyramid's cells: level 2 (64), level 3 (8), level 4 (1), in that
    /// order; what a stored brick keeps so loading it computes nothing.
    pub(crate) fn pyramid(&self) -> impl Iterator<Item = MaterialId> + '_ {
        self.l2.iter().chain(self.l3.iter()).copied().chain(std::iter::once(self.l4))
    }

    #[cfg(feature = "codec")]
    /// Writes the brick's voxels then its pyramid (as [`pyramid`](Self::pyramid)
    /// orders it) from `values`, which must hold [`BRICK_VOLUME`] +
    /// [`PYRAMID_CELLS`] materials: how a stored brick is read back without
    /// computing anything (the pyramid was computed when it was stored, and a
    /// checksum guards it since).
    pub(crate) fn set_parts(&mut self, values: &[MaterialId; BRICK_VOLUME + PYRAMID_CELLS]) {
        let (voxels, pyramid) = values.split_at(BRICK_VOLUME);
        self.voxels.copy_from_slice(voxels);
        self.l2.copy_from_slice(&pyramid[..64]);
        self.l3.copy_from_slice(&pyramid[64..72]);
        self.l4 = pyramid[72];
    }

    /// The voxels, x fastest, then y, then z.
    pub fn voxels(&self) -> &[MaterialId; BRICK_VOLUME] {
        &self.voxels
    }

    /// The voxel at in-brick index `i`.
    #[inline]
    pub fn get(&self, i: usize) -> MaterialId {
        self.voxels[i]
    }

    /// Writes a voxel without updating the pyramid; returns the level-2 dirty bit to
    /// pass to `update_pyramid`.
    #[inline]
    pub(crate) fn set(&mut self, i: usize, m: MaterialId) -> u64 {
        self.voxels[i] = m;
        1 << block_of(i)
    }

    /// The material of the whole brick when every voxel holds the same one.
    pub fn uniform_material(&self) -> Option<MaterialId> {
        self.uniform_within(Clip::FULL)
    }

    /// The material every in-world voxel holds, if they all hold one. Reads the
    /// pyramid first: a full brick whose level-2 cells differ is not uniform,
    /// which settles most bricks without scanning 4096 voxels.
    pub(crate) fn uniform_within(&self, clip: Clip) -> Option<MaterialId> {
        let first = self.voxels[0];
        if clip.is_full() {
            if self.l2.iter().any(|&c| c != first) {
                return None;
            }
            return self.voxels.iter().all(|&v| v == first).then_some(first);
        }
        let e = clip.extent();
        for z in 0..e.z as usize {
            for y in 0..e.y as usize {
                let row = voxel_index(0, y, z);
                if self.voxels[row..row + e.x as usize].iter().any(|&v| v != first) {
                    return None;
                }
            }
        }
        Some(first)
    }

    /// Value of the level-1 cell with cell coordinates `c` (each `0..8`).
    #[inline]
    fn l1(&self, c: IVec3, clip: Clip) -> MaterialId {
        let (x, y, z) = ((c.x * 2) as usize, (c.y * 2) as usize, (c.z * 2) as usize);
        let v = |dx, dy, dz| self.voxels[voxel_index(x + dx, y + dy, z + dz)];
        if clip.is_full() {
            return majority(&[
                v(0, 0, 0),
                v(1, 0, 0),
                v(0, 1, 0),
                v(1, 1, 0),
                v(0, 0, 1),
                v(1, 0, 1),
                v(0, 1, 1),
                v(1, 1, 1),
            ]);
        }
        let mut kids = [MaterialId::AIR; 8];
        let mut n = 0;
        for k in 0..8 {
            let o = child_offset(k);
            if clip.holds(c * 2 + o, 0) {
                kids[n] = v(o.x as usize, o.y as usize, o.z as usize);
                n += 1;
            }
        }
        majority(&kids[..n])
    }

    /// Value at in-brick level `lod` (`0..=4`) of the cell holding in-brick voxel
    /// coordinates `q` (each `0..16`), for a brick wholly inside the world.
    #[inline]
    pub fn lod(&self, q: IVec3, lod: u32) -> MaterialId {
        self.lod_clipped(q, lod, Clip::FULL)
    }

    #[inline]
    pub(crate) fn lod_clipped(&self, q: IVec3, lod: u32, clip: Clip) -> MaterialId {
        match lod {
            0 => self.voxels[voxel_index(q.x as usize, q.y as usize, q.z as usize)],
            1 => self.l1(q >> 1_i32, clip),
            2 => {
                let c = (q >> 2_i32).as_uvec3();
                self.l2[(c.x | c.y << 2 | c.z << 4) as usize]
            }
            3 => {
                let c = (q >> 3_i32).as_uvec3();
                self.l3[(c.x | c.y << 1 | c.z << 2) as usize]
            }
            _ => self.l4,
        }
    }

    /// The whole-brick (level 4) value.
    #[inline]
    pub fn coarsest(&self) -> MaterialId {
        self.l4
    }

    /// The material of level-2 cell `c` (4³ voxels) when all its in-world voxels
    /// hold it.
    #[inline]
    fn uniform_l2(&self, c: IVec3, clip: Clip) -> Option<MaterialId> {
        let lo = c * 4;
        let hi = (lo + IVec3::splat(4)).min(clip.extent());
        let first = self.voxels[voxel_index(lo.x as usize, lo.y as usize, lo.z as usize)];
        let (x0, x1) = (lo.x as usize, hi.x as usize);
        for z in lo.z..hi.z {
            for y in lo.y..hi.y {
                let row = voxel_index(0, y as usize, z as usize);
                if self.voxels[row + x0..row + x1].iter().any(|&v| v != first) {
                    return None;
                }
            }
        }
        Some(first)
    }

    /// Recomputes the pyramid above the level-2 cells whose bits are set in
    /// `dirty`, counting in-world children only.
    pub(crate) fn update_pyramid(&mut self, dirty: u64, clip: Clip) {
        if dirty == 0 {
            return;
        }
        let mut dirty3 = 0u8;
        for cell in 0..64usize {
            if dirty & (1 << cell) == 0 {
                continue;
            }
            let c = IVec3::new((cell & 3) as i32, ((cell >> 2) & 3) as i32, (cell >> 4) as i32);
            if !clip.holds(c, 2) {
                continue;
            }
            self.l2[cell] = match self.uniform_l2(c, clip) {
                // Most cells of a geology brick are one material: 16 row compares
                // instead of eight majorities.
                Some(m) => m,
                None => {
                    let mut kids = [MaterialId::AIR; 8];
                    let mut n = 0;
                    for k in 0..8 {
                        let o = c * 2 + child_offset(k);
                        if clip.holds(o, 1) {
                            kids[n] = self.l1(o, clip);
                            n += 1;
                        }
                    }
                    majority(&kids[..n])
                }
            };
            let c3 = c >> 1_i32;
            dirty3 |= 1 << (c3.x | c3.y << 1 | c3.z << 2);
        }
        for cell3 in 0..8usize {
            if dirty3 & (1 << cell3) == 0 {
                continue;
            }
            let c = child_offset(cell3);
            let mut kids = [MaterialId::AIR; 8];
            let mut n = 0;
            for k in 0..8 {
                let o = c * 2 + child_offset(k);
                if clip.holds(o, 2) {
                    kids[n] = self.l2[(o.x | o.y << 2 | o.z << 4) as usize];
                    n += 1;
                }
            }
            self.l3[cell3] = majority(&kids[..n]);
        }
        let mut kids = [MaterialId::AIR; 8];
        let mut n = 0;
        for k in 0..8 {
            if clip.holds(child_offset(k), 3) {
                kids[n] = self.l3[k];
                n += 1;
            }
        }
        self.l4 = majority(&kids[..n]);
    }

    /// Recomputes the pyramid from scratch and compares: debug check of invariant
    /// `PYRAMID`.
    #[cfg(any(test, debug_assertions))]
    pub(crate) fn pyramid_is_fresh(&self, clip: Clip) -> bool {
        let mut fresh = self.clone();
        fresh.update_pyramid(u64::MAX, clip);
        let cells2 = (0..64).filter(|&i| clip.holds(child_l2(i), 2));
        let cells3 = (0..8).filter(|&i| clip.holds(child_offset(i), 3));
        cells2.into_iter().all(|i| fresh.l2[i] == self.l2[i])
            && cells3.into_iter().all(|i| fresh.l3[i] == self.l3[i])
            && fresh.l4 == self.l4
    }
}

#[cfg(any(test, debug_assertions))]
fn child_l2(i: usize) -> IVec3 {
    IVec3::new((i & 3) as i32, ((i >> 2) & 3) as i32, (i >> 4) as i32)
}

impl std::fmt::Debug for Brick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Brick")
            .field("coarsest", &self.l4)
            .field("uniform", &self.uniform_material())
            .finish_non_exhaustive()
    }
}

/// One write addressed within its brick: in-brick index and material.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BrickWrite {
    /// In-brick index.
    pub local: u16,
    /// The material written.
    pub material: MaterialId,
}

/// The one brick rebuild: applies `writes` (in order: a later write to a voxel
/// wins) to `content`, updates the pyramid of the level-2 cells they touch, and
/// collapses the result to a uniform brick when every in-world voxel holds one
/// material. A dense brick is written in place when nothing else shares it and
/// copied once (8 KiB) when a snapshot does.
///
/// Used by every path that changes a brick of the base: direct batches, and
/// bricks built in place or off-thread from the overlay's deltas.
pub(crate) fn rebuild(content: BrickContent, writes: impl IntoIterator<Item = BrickWrite>, clip: Clip) -> BrickContent {
    let mut writes = writes.into_iter().peekable();
    let mut arc = match content {
        BrickContent::Uniform(m) => {
            // Split only when a write differs.
            while writes.peek().is_some_and(|w| w.material == m) {
                writes.next();
            }
            if writes.peek().is_none() {
                return BrickContent::Uniform(m);
            }
            Arc::new(Brick::filled(m))
        }
        BrickContent::Dense(arc) => arc,
    };
    let brick = Arc::make_mut(&mut arc);
    let mut dirty = 0;
    for w in writes {
        dirty |= brick.set(usize::from(w.local), w.material);
    }
    brick.update_pyramid(dirty, clip);
    match brick.uniform_within(clip) {
        Some(m) => BrickContent::Uniform(m),
        None => BrickContent::Dense(arc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coords::brick::index_coords;

    fn m(v: u16) -> MaterialId {
        MaterialId(v)
    }

    #[test]
    fn majority_breaks_ties_to_the_smallest_id() {
        assert_eq!(majority(&[m(3); 8]), m(3));
        assert_eq!(majority(&[m(5), m(5), m(5), m(5), m(2), m(2), m(2), m(2)]), m(2));
        assert_eq!(majority(&[m(9), m(1), m(9), m(4), m(4), m(9), m(1), m(7)]), m(9));
        assert_eq!(majority(&[m(8), m(7)]), m(7));
    }

    #[test]
    fn brick_costs_8_kib_plus_a_small_constant() {
        let extra = std::mem::size_of::<Brick>() - 8 * 1024;
        assert!(extra <= 160, "pyramid and header cost {extra} bytes");
    }

    #[test]
    fn pyramid_tracks_writes() {
        let mut b = Brick::filled(m(1));
        let mut dirty = 0;
        for i in 0..(BRICK_VOLUME / 2 + 1) {
            dirty |= b.set(i, m(2));
        }
        b.update_pyramid(dirty, Clip::FULL);
        assert!(b.pyramid_is_fresh(Clip::FULL));
        // Four level-3 cells of each material: a tie, broken to the smaller id.
        assert_eq!(b.coarsest(), m(1));
        assert_eq!(b.lod(IVec3::ZERO, 3), m(2));
        assert_eq!(b.lod(IVec3::splat(15), 3), m(1));
    }

    #[test]
    fn a_clipped_brick_counts_in_world_voxels_only() {
        // Three voxels wide in x: the in-world part is material 2, the rest 1.
        let clip = Clip::of(IVec3::ZERO, IVec3::new(3, 16, 16));
        let mut voxels = [m(1); BRICK_VOLUME];
        for (i, v) in voxels.iter_mut().enumerate() {
            if index_coords(i).0 < 3 {
                *v = m(2);
            }
        }
        let b = Brick::from_voxels_clipped(&voxels, clip);
        assert_eq!(b.coarsest(), m(2));
        assert_eq!(b.lod_clipped(IVec3::new(2, 0, 0), 1, clip), m(2), "x = 3 is outside");
        assert_eq!(b.uniform_within(clip), Some(m(2)));
        assert_eq!(b.uniform_material(), None);
        let rebuilt = rebuild(BrickContent::Uniform(m(2)), [BrickWrite { local: 1, material: m(3) }], clip);
        assert!(matches!(rebuilt, BrickContent::Dense(_)));
    }
}
