//! The procedural default world: horizontal strata with noise-shaped boundaries
//! under a terrain surface, deterministic from a seed.

mod noise;

use crate::base::BaseIndex;
use crate::coords::Aabb;
use crate::coords::brick::{BRICK_SIZE, BRICK_VOLUME};
use crate::error::VoxelError;
use crate::material::MaterialId;
use crate::material::materials::*;
use glam::IVec3;
use noise::ValueNoise;

/// Layers from the bottom up; the boundary below layer `i` is `boundaries[i]`.
const STRATA: [MaterialId; 7] = [BEDROCK, BASALT, GRANITE, SANDSTONE, LIMESTONE, CLAY, SOIL];

/// Parameters of the procedural geology world.
///
/// ```
/// use bevy_delta_overlay::{WorldGen, materials};
/// use glam::IVec3;
/// let small = WorldGen { size: IVec3::new(128, 256, 128), ..WorldGen::default() };
/// let base = small.build()?;
/// assert_eq!(base.get(IVec3::new(5, 0, 5))?, materials::BEDROCK);
/// assert_eq!(base.get(IVec3::new(5, 255, 5))?, materials::AIR);
/// # Ok::<(), bevy_delta_overlay::VoxelError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct WorldGen {
    /// Seed of every noise field; the same seed builds the same world.
    pub seed: u64,
    /// Smallest corner of the world.
    pub min: IVec3,
    /// Extent in voxels, any positive size inside the addressable range.
    /// Default `1024 x 256 x 1024`.
    pub size: IVec3,
    /// Height of the sea surface above `min.y`: water fills valleys below it.
    pub sea_level: i32,
}

impl Default for WorldGen {
    fn default() -> Self {
        Self { seed: 0x5eed_0fea_2700, min: IVec3::ZERO, size: IVec3::new(1024, 256, 1024), sea_level: 150 }
    }
}

/// Heights (above `min.y`) of the boundaries of one column, bottom to top: the
/// bottoms of basalt .. soil, then the terrain surface.
type Column = [i32; STRATA.len()];

/// Spacing in voxels of the noise samples that columns are blended from; divides
/// the brick edge, so a brick column needs `(16 / LATTICE + 1)²` samples.
const LATTICE: i32 = 4;
const _: () = assert!(BRICK_SIZE % LATTICE == 0);

impl WorldGen {
    /// The world's bounds (`min + size` saturates, so hostile parameters give
    /// bounds that [`build`](Self::build) refuses rather than wrapped ones).
    pub fn bounds(&self) -> Aabb {
        Aabb::from_min_size(self.min, self.size)
    }

    /// Unrounded boundary heights from the noise fields at world `(x, z)`.
    fn raw_heights(&self, fields: &[ValueNoise; STRATA.len()], x: i32, z: i32) -> [f32; STRATA.len()] {
        let h = self.size.y as f32;
        // Mean height (share of the world's height) and amplitude (voxels) of each
        // boundary: bedrock, basalt, granite, sandstone, limestone, clay, surface.
        const SHAPE: [(f32, f32); STRATA.len()] =
            [(0.02, 2.0), (0.12, 6.0), (0.28, 10.0), (0.40, 8.0), (0.48, 6.0), (0.54, 5.0), (0.58, 30.0)];
        std::array::from_fn(|i| SHAPE[i].0 * h + SHAPE[i].1 * fields[i].fbm(x as f32, z as f32))
    }

    /// Boundaries of a column from the raw heights at the four corners of its
    /// `LATTICE`-voxel cell: noise is sampled every `LATTICE` voxels and blended,
    /// which is 16 times fewer noise evaluations and invisible at this scale.
    fn blend(&self, corners: [&[f32; STRATA.len()]; 4], tx: f32, tz: f32) -> Column {
        let mut out = [0; STRATA.len()];
        let mut floor = 1;
        for i in 0..STRATA.len() {
            let top = corners[0][i] + (corners[1][i] - corners[0][i]) * tx;
            let bottom = corners[2][i] + (corners[3][i] - corners[2][i]) * tx;
            let v = noise::fast_floor(top + (bottom - top) * tz + 0.5) as i32;
            // Strata never cross: each boundary sits at or above the one below.
            let v = v.clamp(floor, self.size.y);
            out[i] = v;
            floor = v;
        }
        // Soil is at least two voxels thick where the surface is above the clay.
        let last = STRATA.len() - 1;
        out[last - 1] = out[last - 1].min(out[last] - 2).max(out[last - 2]);
        out
    }

    /// Boundaries of the column at world `(x, z)`: monotone, inside `[0, size.y]`.
    #[cfg(test)]
    fn column(&self, fields: &[ValueNoise; STRATA.len()], x: i32, z: i32) -> Column {
        let (cx, cz) = (x.div_euclid(LATTICE) * LATTICE, z.div_euclid(LATTICE) * LATTICE);
        let c = [
            self.raw_heights(fields, cx, cz),
            self.raw_heights(fields, cx + LATTICE, cz),
            self.raw_heights(fields, cx, cz + LATTICE),
            self.raw_heights(fields, cx + LATTICE, cz + LATTICE),
        ];
        let t = |v: i32, c: i32| (v - c) as f32 / LATTICE as f32;
        self.blend([&c[0], &c[1], &c[2], &c[3]], t(x, cx), t(z, cz))
    }

    /// Material at height `y` (above `min.y`) of a column.
    fn material(&self, c: &Column, y: i32) -> MaterialId {
        let surface = c[STRATA.len() - 1];
        if y >= surface {
            return if y < self.sea_level { WATER } else { AIR };
        }
        // The bedrock boundary is c[0]: below it is bedrock.
        match c[..STRATA.len() - 1].iter().rposition(|&b| y >= b) {
            Some(i) => STRATA[i + 1],
            None => STRATA[0],
        }
    }

    /// Builds the world into a [`BaseIndex`]: uniform nodes where no boundary crosses
    /// a brick, dense bricks only where one does.
    ///
    /// # Errors
    /// [`VoxelError::InvalidBounds`] when the bounds are empty or leave the
    /// addressable range, checked before anything is computed or allocated.
    pub fn build(&self) -> Result<BaseIndex, VoxelError> {
        let bounds = self.bounds();
        BaseIndex::check_bounds(bounds)?;
        let fields: [ValueNoise; STRATA.len()] =
            std::array::from_fn(|i| ValueNoise::new(self.seed.wrapping_add(i as u64 * 0x9e37_79b9)));
        // Column boundaries, computed once per brick column and reused by the bricks
        // stacked in it; with their min/max to decide uniform bricks quickly.
        // Bricks overlapping the world; the bounds are checked, so this is small
        // enough to allocate one column record per brick column.
        let bricks = ((self.size + IVec3::splat(BRICK_SIZE - 1)) / BRICK_SIZE).as_uvec3();
        let mut columns: Vec<Option<Box<BrickColumn>>> = vec![None; (bricks.x * bricks.z) as usize];
        BaseIndex::generate(bounds, |brick_min, voxels| {
            let b = ((brick_min - self.min) / BRICK_SIZE).as_uvec3();
            let col = columns[(b.x + bricks.x * b.z) as usize]
                .get_or_insert_with(|| Box::new(BrickColumn::new(self, &fields, brick_min.x, brick_min.z)));
            let y0 = brick_min.y - self.min.y;
            let y1 = y0 + BRICK_SIZE;
            // Uniform when no boundary (nor the sea surface) falls strictly inside
            // (y0, y1) in any column of the brick.
            let crossed = col.lo.iter().zip(&col.hi).any(|(&lo, &hi)| hi > y0 && lo < y1)
                || (self.sea_level > y0 && self.sea_level < y1);
            if !crossed {
                return Some(self.material(&col.columns[0], y0));
            }
            // Layer by layer: a layer no boundary varies across is one material
            // (16 row fills); only the few layers a boundary crosses go column by
            // column.
            let n = BRICK_SIZE as usize;
            for y in 0..n {
                let h = y0 + y as i32;
                let layer = &mut voxels[y * n..];
                if col.lo.iter().zip(&col.hi).all(|(&lo, &hi)| h < lo || h >= hi) {
                    let m = self.material(&col.columns[0], h);
                    for z in 0..n {
                        layer[z * n * n..z * n * n + n].fill(m);
                    }
                } else {
                    for z in 0..n {
                        for x in 0..n {
                            layer[z * n * n + x] = self.material(&col.columns[x + z * n], h);
                        }
                    }
                }
            }
            debug_assert_eq!(voxels.len(), BRICK_VOLUME);
            None
        })
    }
}

/// The 16 x 16 columns of one brick column, with each boundary's min and max.
#[derive(Clone)]
struct BrickColumn {
    columns: Vec<Column>,
    lo: Column,
    hi: Column,
}

impl BrickColumn {
    fn new(gen_: &WorldGen, fields: &[ValueNoise; STRATA.len()], x0: i32, z0: i32) -> Self {
        const N: usize = (BRICK_SIZE / LATTICE) as usize + 1;
        let raw: [[[f32; STRATA.len()]; N]; N] = std::array::from_fn(|j| {
            std::array::from_fn(|i| gen_.raw_heights(fields, x0 + i as i32 * LATTICE, z0 + j as i32 * LATTICE))
        });
        let mut columns = Vec::with_capacity((BRICK_SIZE * BRICK_SIZE) as usize);
        for z in 0..BRICK_SIZE {
            for x in 0..BRICK_SIZE {
                let (i, j) = ((x / LATTICE) as usize, (z / LATTICE) as usize);
                let corners = [&raw[j][i], &raw[j][i + 1], &raw[j + 1][i], &raw[j + 1][i + 1]];
                let t = |v: i32| (v % LATTICE) as f32 / LATTICE as f32;
                columns.push(gen_.blend(corners, t(x), t(z)));
            }
        }
        let mut lo = [i32::MAX; STRATA.len()];
        let mut hi = [i32::MIN; STRATA.len()];
        for c in &columns {
            for i in 0..STRATA.len() {
                lo[i] = lo[i].min(c[i]);
                hi[i] = hi[i].max(c[i]);
            }
        }
        Self { columns, lo, hi }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> WorldGen {
        WorldGen { size: IVec3::new(96, 256, 64), min: IVec3::new(-48, -16, 32), ..WorldGen::default() }
    }

    #[test]
    fn generated_world_matches_the_column_function_voxel_by_voxel() {
        let g = small();
        let base = g.build().unwrap();
        let fields: [ValueNoise; STRATA.len()] =
            std::array::from_fn(|i| ValueNoise::new(g.seed.wrapping_add(i as u64 * 0x9e37_79b9)));
        let b = g.bounds();
        for z in (b.min.z..b.max.z).step_by(3) {
            for x in (b.min.x..b.max.x).step_by(5) {
                let c = g.column(&fields, x, z);
                for y in b.min.y..b.max.y {
                    let p = IVec3::new(x, y, z);
                    assert_eq!(base.get(p).unwrap(), g.material(&c, y - b.min.y), "at {p}");
                }
            }
        }
    }

    #[test]
    fn same_seed_same_world_other_seed_other_world() {
        let a = small().build().unwrap();
        let b = small().build().unwrap();
        let c = WorldGen { seed: 7, ..small() }.build().unwrap();
        let r = small().bounds();
        assert_eq!(a.region(r, 0).unwrap(), b.region(r, 0).unwrap());
        assert_ne!(a.region(r, 0).unwrap(), c.region(r, 0).unwrap());
    }

    #[test]
    fn every_stratum_appears_and_flat_parts_are_uniform() {
        let base = small().build().unwrap();
        let region = base.region(small().bounds(), 0).unwrap();
        for m in STRATA.iter().chain([&AIR]) {
            assert!(region.as_slice().contains(m), "{m} missing");
        }
        let stats = base.stats();
        assert!(stats.uniform_fraction > 0.3, "{stats:?}");
    }
}
