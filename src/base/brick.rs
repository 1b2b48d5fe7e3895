//! Leaf bricks: dense `16³` arrays of materials with a small LOD pyramid.

use crate::MaterialId;
use glam::IVec3;

/// log2 of the brick edge. Every other brick constant derives from it.
pub const BRICK_LOG2: u32 = 4;
/// Edge of a leaf brick in voxels: 16.
pub const BRICK_SIZE: i32 = 1 << BRICK_LOG2;
/// Voxels in a brick: 4096.
pub const BRICK_VOLUME: usize = 1 << (3 * BRICK_LOG2);
/// Mask of the in-brick part of a coordinate.
pub(crate) const BRICK_MASK: i32 = BRICK_SIZE - 1;

/// Cells per axis at in-brick level 2 (level 1 is computed on demand, level 3 has
/// 2³ cells, level 4 is the whole brick).
const L2: usize = 4;

const _: () = assert!(BRICK_LOG2 == 4, "the mip layout below is written for 16³ bricks");
const _: () = assert!(L2 * L2 * L2 == 64, "one dirty bit per level-2 cell fits a u64");

/// Majority of `values` (at most 8), ties broken to the smallest id.
///
/// This is the one LOD rule of the crate: a coarse cell holds the majority of its
/// (up to 8) children.
#[inline]
pub fn majority(values: &[MaterialId]) -> MaterialId {
    let first = values[0];
    if values.iter().all(|&v| v == first) {
        return first;
    }
    let mut sorted = [MaterialId::AIR; 8];
    let sorted = &mut sorted[..values.len()];
    sorted.copy_from_slice(values);
    sorted.sort_unstable();
    // Runs in ascending order: the first longest run is the smallest tied id.
    let (mut best, mut best_len) = (sorted[0], 0);
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && sorted[j] == sorted[i] {
            j += 1;
        }
        if j - i > best_len {
            best = sorted[i];
            best_len = j - i;
        }
        i = j;
    }
    best
}

/// Index of in-brick coordinates `(x, y, z)`, x fastest, then y, then z.
#[inline]
pub(crate) const fn voxel_index(x: usize, y: usize, z: usize) -> usize {
    x | (y << BRICK_LOG2) | (z << (2 * BRICK_LOG2))
}

/// Index of the voxel holding world or local position `p` within its brick.
#[inline]
pub(crate) fn local_index(p: IVec3) -> usize {
    let q = p & IVec3::splat(BRICK_MASK);
    voxel_index(q.x as usize, q.y as usize, q.z as usize)
}

/// The level-2 cell (4³ voxels) of a voxel index: the bit to set in a dirty mask.
#[inline]
pub(crate) const fn l2_cell_of(index: usize) -> usize {
    let x = index & 15;
    let y = (index >> 4) & 15;
    let z = index >> 8;
    (x >> 2) | ((y >> 2) << 2) | ((z >> 2) << 4)
}

/// A dense `16³` block of materials, the leaf of the base index.
///
/// Bricks are shared copy-on-write (`Arc<Brick>`): snapshotting one for a
/// consolidation job costs a pointer copy, and the tree clones it only when it
/// writes to a brick a job still holds.
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
        let mut b = Self { voxels: *voxels, l2: [MaterialId::AIR; 64], l3: [MaterialId::AIR; 8], l4: MaterialId::AIR };
        b.update_pyramid(u64::MAX);
        b
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
    /// pass to [`Brick::update_pyramid`].
    #[inline]
    pub(crate) fn set(&mut self, i: usize, m: MaterialId) -> u64 {
        self.voxels[i] = m;
        1 << l2_cell_of(i)
    }

    /// The material of the whole brick when every voxel holds the same one.
    ///
    /// Reads the pyramid first: a brick whose level-2 cells differ is not uniform,
    /// which settles most bricks without scanning 4096 voxels.
    pub fn uniform_material(&self) -> Option<MaterialId> {
        let first = self.voxels[0];
        if self.l2.iter().any(|&c| c != first) {
            return None;
        }
        self.voxels.iter().all(|&v| v == first).then_some(first)
    }

    /// Value of the level-1 cell with cell coordinates `c` (each `0..8`).
    #[inline]
    fn l1(&self, c: IVec3) -> MaterialId {
        let (x, y, z) = ((c.x * 2) as usize, (c.y * 2) as usize, (c.z * 2) as usize);
        let v = |dx, dy, dz| self.voxels[voxel_index(x + dx, y + dy, z + dz)];
        majority(&[v(0, 0, 0), v(1, 0, 0), v(0, 1, 0), v(1, 1, 0), v(0, 0, 1), v(1, 0, 1), v(0, 1, 1), v(1, 1, 1)])
    }

    /// Value at in-brick level `lod` (`0..=4`) of the cell holding in-brick voxel
    /// coordinates `q` (each `0..16`).
    #[inline]
    pub fn lod(&self, q: IVec3, lod: u32) -> MaterialId {
        match lod {
            0 => self.voxels[voxel_index(q.x as usize, q.y as usize, q.z as usize)],
            1 => self.l1(q >> 1_i32),
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

    /// The material of level-2 cell `c` (4³ voxels) when all 64 voxels hold it.
    #[inline]
    fn uniform_l2(&self, c: IVec3) -> Option<MaterialId> {
        let (x, y, z) = ((c.x * 4) as usize, (c.y * 4) as usize, (c.z * 4) as usize);
        let first = self.voxels[voxel_index(x, y, z)];
        for dz in 0..4 {
            for dy in 0..4 {
                let row = voxel_index(x, y + dy, z + dz);
                if self.voxels[row..row + 4].iter().any(|&v| v != first) {
                    return None;
                }
            }
        }
        Some(first)
    }

    /// Recomputes the pyramid above the level-2 cells whose bits are set in `dirty`.
    pub(crate) fn update_pyramid(&mut self, dirty: u64) {
        if dirty == 0 {
            return;
        }
        let mut dirty3 = 0u8;
        for cell in 0..64usize {
            if dirty & (1 << cell) == 0 {
                continue;
            }
            let c = IVec3::new((cell & 3) as i32, ((cell >> 2) & 3) as i32, (cell >> 4) as i32);
            self.l2[cell] = match self.uniform_l2(c) {
                // Most cells of a geology brick are one material: 16 row compares
                // instead of eight majorities.
                Some(m) => m,
                None => {
                    let mut kids = [MaterialId::AIR; 8];
                    for (k, kid) in kids.iter_mut().enumerate() {
                        let o = IVec3::new((k & 1) as i32, ((k >> 1) & 1) as i32, (k >> 2) as i32);
                        *kid = self.l1(c * 2 + o);
                    }
                    majority(&kids)
                }
            };
            let c3 = c >> 1_i32;
            dirty3 |= 1 << (c3.x | c3.y << 1 | c3.z << 2);
        }
        for cell3 in 0..8usize {
            if dirty3 & (1 << cell3) == 0 {
                continue;
            }
            let c = IVec3::new((cell3 & 1) as i32, ((cell3 >> 1) & 1) as i32, (cell3 >> 2) as i32);
            let mut kids = [MaterialId::AIR; 8];
            for (k, kid) in kids.iter_mut().enumerate() {
                let o = c * 2 + IVec3::new((k & 1) as i32, ((k >> 1) & 1) as i32, (k >> 2) as i32);
                *kid = self.l2[(o.x | o.y << 2 | o.z << 4) as usize];
            }
            self.l3[cell3] = majority(&kids);
        }
        self.l4 = majority(&self.l3);
    }

    /// Recomputes the pyramid from scratch and compares: debug check of invariant
    /// `PYRAMID`.
    #[cfg(any(test, debug_assertions))]
    pub(crate) fn pyramid_is_fresh(&self) -> bool {
        let mut fresh = self.clone();
        fresh.update_pyramid(u64::MAX);
        fresh.l2 == self.l2 && fresh.l3 == self.l3 && fresh.l4 == self.l4
    }
}

impl std::fmt::Debug for Brick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Brick")
            .field("coarsest", &self.l4)
            .field("uniform", &self.uniform_material())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        b.update_pyramid(dirty);
        assert!(b.pyramid_is_fresh());
        // Four level-3 cells of each material: a tie, broken to the smaller id.
        assert_eq!(b.coarsest(), m(1));
        assert_eq!(b.lod(IVec3::ZERO, 3), m(2));
        assert_eq!(b.lod(IVec3::splat(15), 3), m(1));
    }
}
