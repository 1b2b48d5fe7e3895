//! Oracles shared by the model tests: a plain map of voxels and a brute-force LOD
//! pyramid computed straight from the definition.

#![allow(dead_code)]

#[cfg(feature = "persistence")]
pub mod store;

use bevy_delta_overlay::{Aabb, MaterialId, base::majority};
use glam::IVec3;

/// A dense copy of a world: the oracle every structure is compared with.
#[derive(Clone, Debug)]
pub struct Dense {
    pub bounds: Aabb,
    pub cells: Vec<MaterialId>,
}

impl Dense {
    pub fn filled(bounds: Aabb, m: MaterialId) -> Self {
        Self { bounds, cells: vec![m; bounds.volume() as usize] }
    }

    pub fn index(&self, p: IVec3) -> usize {
        let s = self.bounds.size();
        let q = p - self.bounds.min;
        (q.x + s.x * (q.y + s.y * q.z)) as usize
    }

    pub fn get(&self, p: IVec3) -> MaterialId {
        self.cells[self.index(p)]
    }

    pub fn set(&mut self, p: IVec3, m: MaterialId) {
        let i = self.index(p);
        self.cells[i] = m;
    }

    /// Every LOD level by the definition: a cell is the majority of its children
    /// that lie inside the world, ties to the smallest id.
    pub fn pyramid(&self, levels: u8) -> Vec<(IVec3, Vec<MaterialId>)> {
        let mut out = vec![(self.bounds.size(), self.cells.clone())];
        for _ in 0..levels {
            let (size, prev) = out.last().unwrap();
            let next_size = (*size + IVec3::ONE) / 2;
            let mut next = Vec::with_capacity((next_size.x * next_size.y * next_size.z) as usize);
            for z in 0..next_size.z {
                for y in 0..next_size.y {
                    for x in 0..next_size.x {
                        let mut kids = Vec::new();
                        for o in 0..8 {
                            let c = IVec3::new(x, y, z) * 2 + IVec3::new(o & 1, (o >> 1) & 1, o >> 2);
                            if c.cmplt(*size).all() {
                                kids.push(prev[(c.x + size.x * (c.y + size.y * c.z)) as usize]);
                            }
                        }
                        next.push(majority(&kids));
                    }
                }
            }
            out.push((next_size, next));
        }
        out
    }
}

/// The value of the level-`lod` cell holding `p`, from a pyramid.
pub fn pyramid_get(pyramid: &[(IVec3, Vec<MaterialId>)], origin: IVec3, p: IVec3, lod: u8) -> MaterialId {
    let (size, cells) = &pyramid[lod as usize];
    let c = (p - origin) >> i32::from(lod);
    cells[(c.x + size.x * (c.y + size.y * c.z)) as usize]
}

/// Asserts that every column's surface, as `world`'s index gives it, equals a
/// top-down scan of the world's voxels (read with `query_region`).
pub fn assert_surfaces_exact(world: &bevy_delta_overlay::DeltaStorage, palette: &bevy_delta_overlay::Palette) {
    use bevy_delta_overlay::surface::{MaterialClass, Surface};
    let b = world.bounds();
    let voxels = world.query_region(b, 0).expect("the whole world reads");
    let dense = Dense { bounds: b, cells: voxels.as_slice().to_vec() };
    for x in b.min.x..b.max.x {
        for z in b.min.z..b.max.z {
            let class = |y: i32| MaterialClass::from(palette.properties(dense.get(IVec3::new(x, y, z))).form);
            let top = (b.min.y..b.max.y).rev().find(|&y| class(y) == MaterialClass::Terrain);
            let material = top.map_or(MaterialId::AIR, |y| dense.get(IVec3::new(x, y, z)));
            let mut liquid = None;
            let mut y = top.map_or(b.min.y, |t| t + 1);
            while y < b.max.y && class(y) == MaterialClass::Liquid {
                liquid = Some(y);
                y += 1;
            }
            assert_eq!(world.surface(x, z), Some(Surface { top, material, liquid }), "column ({x}, {z})");
        }
    }
}

/// Voxels of each material in `storage`, read as one region copy (deltas
/// applied): the census the geology tests compare before and after.
pub fn census(storage: &bevy_delta_overlay::DeltaStorage) -> std::collections::BTreeMap<MaterialId, u64> {
    let mut region = bevy_delta_overlay::base::Region::default();
    storage.read_region(storage.bounds(), &mut region).expect("the world's own bounds");
    let mut out = std::collections::BTreeMap::new();
    for &m in region.as_slice() {
        *out.entry(m).or_insert(0) += 1;
    }
    out
}
