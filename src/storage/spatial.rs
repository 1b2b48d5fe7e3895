//! Spatial queries over the deltas: boxes, spheres and single-linkage clusters.

use super::DeltaStorage;
use crate::coords::Aabb;
use crate::error::VoxelError;
use crate::hash::{FastMap, fixed_hasher};
use crate::material::MaterialId;
use crate::overlay::Delta;
use glam::{I64Vec3, IVec3};

/// A delta as seen by spatial queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltaEntry {
    /// The voxel.
    pub position: IVec3,
    /// The material it reads as.
    pub material: MaterialId,
    /// The material beneath the delta when it was first written.
    pub beneath: MaterialId,
    /// Writes since the delta was created (starts at 1, saturates).
    pub version: u16,
    /// Storage clock at the last write.
    pub written_at: std::time::Duration,
}

impl DeltaEntry {
    pub(super) fn new(position: IVec3, d: &Delta) -> Self {
        Self {
            position,
            material: d.material,
            beneath: d.beneath,
            version: d.version,
            written_at: std::time::Duration::from_millis(d.written_at()),
        }
    }
}

impl DeltaStorage {
    /// Calls `f` for every visible delta in `bounds` (a higher layer's delta hides
    /// a lower one's at the same voxel). The box is clipped to the world first, so
    /// any box is fine. Costs the deltas of the overlapping bricks plus
    /// `min(bricks in the box, bricks with deltas)` probes per layer.
    fn visit_deltas_in(&self, bounds: &Aabb, mut f: impl FnMut(DeltaEntry)) {
        let world = self.bounds();
        let clipped = bounds.intersection(&world);
        if clipped.is_empty() {
            return;
        }
        let local = Aabb::new(clipped.min - world.min, clipped.max - world.min);
        self.overlay.for_each_brick_in(&local, |key, stack| {
            for d in stack.visible() {
                let position = world.min + key.position(d.local);
                if clipped.contains(position) {
                    f(DeltaEntry::new(position, d));
                }
            }
        });
    }

    /// Every delta inside `bounds` (any box: it is clipped to the world), in no
    /// particular order.
    pub fn deltas_in(&self, bounds: Aabb) -> Vec<DeltaEntry> {
        let mut out = Vec::new();
        self.visit_deltas_in(&bounds, |e| out.push(e));
        out
    }

    /// Every delta whose voxel lies within Euclidean distance `radius` of `center`
    /// (`|p - center| <= radius`, exact integer arithmetic).
    ///
    /// # Errors
    /// [`VoxelError::InvalidRadius`] when `radius` is negative, NaN or infinite.
    pub fn deltas_within(&self, center: IVec3, radius: f32) -> Result<Vec<DeltaEntry>, VoxelError> {
        let r = check_radius(radius)?;
        // The sphere's box, in 64 bits and clipped to the world before anything
        // narrower sees it: any finite radius and any centre are fine.
        let world = self.bounds();
        let reach = I64Vec3::splat(r.floor().min(1e12) as i64);
        let c = center.as_i64vec3();
        let lo = (c - reach).max(world.min.as_i64vec3());
        let hi = (c + reach + I64Vec3::ONE).min(world.max.as_i64vec3());
        if lo.cmpge(hi).any() {
            return Ok(Vec::new());
        }
        let bounds = Aabb::new(lo.as_ivec3(), hi.as_ivec3());
        let r2 = r * r;
        let mut out = Vec::new();
        self.visit_deltas_in(&bounds, |e| {
            if dist2(e.position, center) as f64 <= r2 {
                out.push(e);
            }
        });
        Ok(out)
    }

    /// Single-linkage clusters of the deltas: connected components of the graph
    /// "distance <= `radius`", keeping those of at least `min_size` voxels (the
    /// seed's DBSCAN-like grouping).
    ///
    /// Expected `O(n)` for a fixed radius: voxels are hashed into a grid of cells
    /// `ceil(radius)` wide, each compared only with the 27 neighbouring cells, and
    /// joined with union-find. Clusters come largest first, each sorted by
    /// position (z, then y, then x).
    ///
    /// # Errors
    /// [`VoxelError::InvalidRadius`] when `radius` is negative, NaN or infinite.
    pub fn clusters(&self, radius: f32, min_size: usize) -> Result<Vec<Vec<IVec3>>, VoxelError> {
        let r = check_radius(radius)?;
        let mut points = Vec::with_capacity(self.delta_count());
        self.visit_deltas_in(&self.bounds(), |e| points.push(e.position));
        let cell = (r.ceil() as i32).clamp(1, 1 << 21);
        let cell_of = |p: IVec3| p.div_euclid(IVec3::splat(cell));
        let mut grid: FastMap<IVec3, Vec<u32>> = FastMap::with_hasher(fixed_hasher());
        for (i, &p) in points.iter().enumerate() {
            grid.entry(cell_of(p)).or_default().push(i as u32);
        }
        let r2 = r * r;
        let mut sets = UnionFind::new(points.len());
        for (i, &p) in points.iter().enumerate() {
            let c = cell_of(p);
            for dz in -1..=1 {
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let Some(members) = grid.get(&(c + IVec3::new(dx, dy, dz))) else {
                            continue;
                        };
                        for &j in members {
                            let j = j as usize;
                            if j > i && dist2(p, points[j]) as f64 <= r2 {
                                sets.union(i, j);
                            }
                        }
                    }
                }
            }
        }
        let mut groups: FastMap<usize, Vec<IVec3>> = FastMap::with_hasher(fixed_hasher());
        for (i, &p) in points.iter().enumerate() {
            groups.entry(sets.find(i)).or_default().push(p);
        }
        let mut clusters: Vec<Vec<IVec3>> = groups.into_values().filter(|g| g.len() >= min_size.max(1)).collect();
        for c in &mut clusters {
            c.sort_unstable_by_key(|p| (p.z, p.y, p.x));
        }
        clusters.sort_unstable_by(|a, b| {
            b.len().cmp(&a.len()).then_with(|| (a[0].z, a[0].y, a[0].x).cmp(&(b[0].z, b[0].y, b[0].x)))
        });
        Ok(clusters)
    }
}

fn check_radius(radius: f32) -> Result<f64, VoxelError> {
    if radius.is_finite() && radius >= 0.0 { Ok(f64::from(radius)) } else { Err(VoxelError::InvalidRadius { radius }) }
}

/// Squared distance, exact in `i128` for any two positions.
#[inline]
fn dist2(a: IVec3, b: IVec3) -> i128 {
    let d = a.as_i64vec3() - b.as_i64vec3();
    let (x, y, z) = (i128::from(d.x), i128::from(d.y), i128::from(d.z));
    x * x + y * y + z * z
}

/// Disjoint sets with union by size and path halving.
struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self { parent: (0..n as u32).collect(), size: vec![1; n] }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] as usize != i {
            let grand = self.parent[self.parent[i] as usize];
            self.parent[i] = grand;
            i = grand as usize;
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a as u32;
        self.size[a] += self.size[b];
    }
}
