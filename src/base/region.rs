//! Dense snapshots of a box of cells at one level of detail.

use super::BaseIndex;
use super::node::Node;
use crate::coords::Aabb;
use crate::coords::brick::{BRICK_LOG2, BRICK_MASK, Clip, children, voxel_index};
use crate::error::VoxelError;
use crate::material::MaterialId;
use glam::IVec3;

/// A dense grid of cells read at one level of detail, x fastest, then y, then z.
///
/// At level `L` each cell covers `2^L` voxels per axis, aligned to the world's
/// origin; the grid holds every cell that overlaps the requested box.
///
/// ```
/// use bevy_delta_overlay::{Aabb, BaseIndex, MaterialId};
/// use glam::IVec3;
/// let base = BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(32)), MaterialId(4))?;
/// let region = base.region(Aabb::new(IVec3::new(1, 2, 3), IVec3::new(9, 4, 5)), 1)?;
/// assert_eq!(region.size(), IVec3::new(5, 1, 2));
/// assert_eq!(region.get(IVec3::new(8, 3, 4)), Some(MaterialId(4)));
/// assert_eq!(region.get(IVec3::new(20, 3, 4)), None);
/// # Ok::<(), bevy_delta_overlay::VoxelError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Region {
    origin: IVec3,
    size: IVec3,
    lod: u8,
    cells: Vec<MaterialId>,
}

impl Region {
    /// World position of the smallest corner of the first cell.
    pub fn origin(&self) -> IVec3 {
        self.origin
    }

    /// Cells per axis.
    pub fn size(&self) -> IVec3 {
        self.size
    }

    /// The level of detail of the cells.
    pub fn lod(&self) -> u8 {
        self.lod
    }

    /// The world box the cells cover (may exceed the requested box at `lod > 0`).
    pub fn world_bounds(&self) -> Aabb {
        Aabb::from_min_size(self.origin, self.size << i32::from(self.lod))
    }

    /// The cells, x fastest, then y, then z.
    pub fn as_slice(&self) -> &[MaterialId] {
        &self.cells
    }

    /// Mutable cells, for layering edits on top of a read (the region is a copy:
    /// writing it changes nothing in the store).
    pub fn as_mut_slice(&mut self) -> &mut [MaterialId] {
        &mut self.cells
    }

    /// Index in [`as_slice`](Self::as_slice) of the cell holding world position `p`
    /// (`None` outside the region, for any `p`).
    #[inline]
    pub fn index_of(&self, p: IVec3) -> Option<usize> {
        let d = p.as_i64vec3() - self.origin.as_i64vec3();
        let c = d >> i64::from(self.lod);
        if d.cmplt(glam::I64Vec3::ZERO).any() || c.cmpge(self.size.as_i64vec3()).any() {
            return None;
        }
        let s = self.size.as_u64vec3();
        let c = c.as_u64vec3();
        Some((c.x + s.x * (c.y + s.y * c.z)) as usize)
    }

    /// The cell holding world position `p`, or `None` outside the region.
    #[inline]
    pub fn get(&self, p: IVec3) -> Option<MaterialId> {
        self.index_of(p).map(|i| self.cells[i])
    }

    // A paged world's (feature `paging`) only.
    #[cfg(feature = "paging")]
    /// Makes it the level-0 grid of `bounds`, every cell `m`, reusing its
    /// memory.
    pub(crate) fn reset(&mut self, bounds: Aabb, m: MaterialId) {
        let size = bounds.size().max(IVec3::ZERO);
        self.origin = bounds.min;
        self.size = size;
        self.lod = 0;
        self.cells.clear();
        let cells = size.as_u64vec3().element_product();
        self.cells.resize(usize::try_from(cells).unwrap_or(usize::MAX), m);
    }

    // A paged world's (feature `paging`) only.
    #[cfg(feature = "paging")]
    /// Copies `part`'s cells (the same level) where they overlap this grid.
    pub(crate) fn copy_from(&mut self, part: &Region) {
        debug_assert_eq!(part.lod, self.lod);
        let b = part.world_bounds().intersection(&self.world_bounds());
        if b.is_empty() || part.lod != self.lod {
            return;
        }
        let n = (b.max.x - b.min.x) as usize;
        for z in b.min.z..b.max.z {
            for y in b.min.y..b.max.y {
                let row = IVec3::new(b.min.x, y, z);
                if let (Some(to), Some(from)) = (self.index_of(row), part.index_of(row)) {
                    self.cells[to..to + n].copy_from_slice(&part.cells[from..from + n]);
                }
            }
        }
    }

    // A paged world's (feature `paging`) only.
    #[cfg(feature = "paging")]
    /// Sets every level-0 cell of `bounds` to the cell of `coarse` (a
    /// coarser grid) holding it, air where `coarse` has none.
    pub(crate) fn fill_from_coarse(&mut self, bounds: Aabb, coarse: &Region) {
        let b = bounds.intersection(&self.world_bounds());
        let edge = 1i64 << coarse.lod;
        for z in b.min.z..b.max.z {
            for y in b.min.y..b.max.y {
                // A row in runs, one a coarse cell.
                let mut x = b.min.x;
                while x < b.max.x {
                    let p = IVec3::new(x, y, z);
                    let next = i64::from(coarse.origin.x)
                        + ((i64::from(x) - i64::from(coarse.origin.x)).div_euclid(edge) + 1) * edge;
                    let end = next.clamp(i64::from(x) + 1, i64::from(b.max.x)) as i32;
                    if let Some(i) = self.index_of(p) {
                        let m = coarse.get(p).unwrap_or(MaterialId::AIR);
                        self.cells[i..i + (end - x) as usize].fill(m);
                    }
                    x = end;
                }
            }
        }
    }

    /// Fills the cells of `cells` (a box in cell coordinates of this region's level,
    /// relative to the tree origin) that overlap the region with `m`.
    fn fill_box(&mut self, first_cell: IVec3, cells: Aabb, m: MaterialId) {
        let b = cells.intersection(&Aabb::from_min_size(first_cell, self.size));
        if b.is_empty() {
            return;
        }
        let s = self.size.as_uvec3();
        let (x0, x1) = ((b.min.x - first_cell.x) as usize, (b.max.x - first_cell.x) as usize);
        for z in b.min.z..b.max.z {
            for y in b.min.y..b.max.y {
                let row = ((y - first_cell.y) as u32 + s.y * (z - first_cell.z) as u32) as usize * s.x as usize;
                self.cells[row + x0..row + x1].fill(m);
            }
        }
    }
}

impl BaseIndex {
    /// Reads every cell at level `lod` that overlaps `bounds` into a dense grid.
    ///
    /// Filled node by node: a uniform node is one box fill, a brick at level 0 is a
    /// row copy per row, never one descent per voxel.
    ///
    /// # Errors
    /// [`VoxelError::InvalidRegion`] when `bounds` is empty or not inside the
    /// world, [`VoxelError::LodOutOfRange`] when `lod` exceeds
    /// [`max_lod`](Self::max_lod).
    pub fn region(&self, bounds: Aabb, lod: u8) -> Result<Region, VoxelError> {
        let mut region = Region::default();
        self.read_region(bounds, lod, &mut region)?;
        Ok(region)
    }

    /// [`region`](Self::region) into `out`, whose memory is reused: a reader
    /// that reads box after box allocates only when a box is larger than any
    /// before.
    ///
    /// # Errors
    /// As [`region`](Self::region); `out` is left as it was.
    pub fn read_region(&self, bounds: Aabb, lod: u8, out: &mut Region) -> Result<(), VoxelError> {
        fill_region(&self.root, self.root_level, self.bounds, bounds, lod, out)
    }
}

/// Reads the cells at level `lod` overlapping `bounds` of the tree `root` (of
/// `root_level`, spanning the world `world`) into `out`.
pub(super) fn fill_region(
    root: &Node,
    root_level: u32,
    world: Aabb,
    bounds: Aabb,
    lod: u8,
    out: &mut Region,
) -> Result<(), VoxelError> {
    if bounds.is_empty() || !world.contains_box(&bounds) {
        return Err(VoxelError::InvalidRegion { region: bounds, bounds: world });
    }
    if u32::from(lod) > root_level {
        return Err(VoxelError::LodOutOfRange { lod, max: root_level as u8 });
    }
    let shift = i32::from(lod);
    let local = Aabb::new(bounds.min - world.min, bounds.max - world.min);
    let first = local.min >> shift;
    let end = ((local.max - IVec3::ONE) >> shift) + IVec3::ONE;
    let size = end - first;
    let volume = (size.x as usize) * (size.y as usize) * (size.z as usize);
    out.origin = world.min + (first << shift);
    out.size = size;
    out.lod = lod;
    // Every cell is written below (the nodes tile the world): no clearing.
    out.cells.resize(volume, MaterialId::AIR);
    fill_node(out, root, root_level, IVec3::ZERO, first, Aabb::new(first, end), world.size());
    Ok(())
}

/// Writes the part of `node` (at `level`, local corner `min`) that overlaps `want`
/// (cell coordinates) into `region`.
fn fill_node(region: &mut Region, node: &Node, level: u32, min: IVec3, first: IVec3, want: Aabb, size: IVec3) {
    let lod = u32::from(region.lod);
    let shift = lod as i32;
    // Cells covered by this node at the region's level.
    let edge = 1i32 << level;
    let cells = Aabb::new(min >> shift, ((min + IVec3::splat(edge) - IVec3::ONE) >> shift) + IVec3::ONE);
    let overlap = cells.intersection(&want);
    if overlap.is_empty() {
        return;
    }
    if level <= lod {
        region.fill_box(first, overlap, node.lod_value());
        return;
    }
    match node {
        Node::Uniform(m) => region.fill_box(first, overlap, *m),
        Node::Branch(b) => {
            // Children outside the world never overlap `want`: the region is in it.
            for (i, cmin) in children(level, min, size) {
                fill_node(region, &b.children[i], level - 1, cmin, first, want, size);
            }
        }
        Node::Leaf(brick) => {
            debug_assert_eq!(level, BRICK_LOG2);
            let s = region.size.as_uvec3();
            let brick_cell0 = min >> shift;
            if lod == 0 {
                // Row copies straight out of the brick.
                let (x0, x1) = (overlap.min.x, overlap.max.x);
                let len = (x1 - x0) as usize;
                for z in overlap.min.z..overlap.max.z {
                    for y in overlap.min.y..overlap.max.y {
                        let src = voxel_index(
                            (x0 & BRICK_MASK) as usize,
                            (y & BRICK_MASK) as usize,
                            (z & BRICK_MASK) as usize,
                        );
                        let dst = ((x0 - first.x) as u32 + s.x * ((y - first.y) as u32 + s.y * (z - first.z) as u32))
                            as usize;
                        region.cells[dst..dst + len].copy_from_slice(&brick.voxels()[src..src + len]);
                    }
                }
            } else {
                let clip = Clip::of(min, size);
                for z in overlap.min.z..overlap.max.z {
                    for y in overlap.min.y..overlap.max.y {
                        for x in overlap.min.x..overlap.max.x {
                            let c = IVec3::new(x, y, z);
                            let q = ((c - brick_cell0) << shift) & IVec3::splat(BRICK_MASK);
                            let d = c - first;
                            let dst = (d.x as u32 + s.x * (d.y as u32 + s.y * d.z as u32)) as usize;
                            region.cells[dst] = brick.lod_clipped(q, lod, clip);
                        }
                    }
                }
            }
        }
    }
}
