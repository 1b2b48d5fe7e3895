//! Shared by the benches: the default world, deterministic positions, the
//! alternatives the overlay is compared with, and the erosion workload.

#![allow(dead_code)]

use bevy_delta_overlay::{Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialId, WorldGen, materials};
use glam::IVec3;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

/// Materials absent from the default world, so writes never equal the base.
pub const A: MaterialId = materials::MAGMA;
pub const B: MaterialId = materials::SEDIMENT;

/// The default world, built once per bench binary.
pub fn world() -> &'static BaseIndex {
    static WORLD: OnceLock<BaseIndex> = OnceLock::new();
    WORLD.get_or_init(|| WorldGen::default().build().expect("the default world builds"))
}

/// A storage over the default world that never consolidates on its own.
pub fn storage() -> DeltaStorage {
    DeltaStorage::new(
        world().clone(),
        DeltaConfig { threshold: usize::MAX / 2, hard_cap: usize::MAX / 2, ..Default::default() },
    )
}

/// SplitMix64: deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn in_box(&mut self, b: &Aabb) -> IVec3 {
        let s = b.size().as_uvec3();
        let r = self.next();
        b.min
            + IVec3::new(
                (r % u64::from(s.x)) as i32,
                ((r >> 21) % u64::from(s.y)) as i32,
                ((r >> 42) % u64::from(s.z)) as i32,
            )
    }
}

/// The erosion band the consolidation figures use: 512 x 64 x 512 voxels
/// (4,096 bricks) under the surface of the default world.
pub const BAND: Aabb = Aabb::new(IVec3::new(256, 128, 256), IVec3::new(768, 192, 768));

/// A storage over the default world holding `n` deltas at random in [`BAND`],
/// half of them written two seconds before the rest (so a time-based
/// consolidation with a `max_age` of one second takes that half), and never
/// consolidating on its own.
pub fn band_storage(n: usize) -> DeltaStorage {
    let mut rng = Rng::new(10);
    let mut s = DeltaStorage::new(
        world().clone(),
        DeltaConfig {
            threshold: usize::MAX / 2,
            hard_cap: usize::MAX / 2,
            max_age: std::time::Duration::from_secs(1),
            ..Default::default()
        },
    );
    let updates: Vec<_> = (0..n).map(|k| (rng.in_box(&BAND), if k % 2 == 0 { A } else { B })).collect();
    s.batch_update(updates[..n / 2].iter().copied());
    s.advance_clock(std::time::Duration::from_secs(2));
    s.batch_update(updates[n / 2..].iter().copied());
    s
}

/// `n` positions anywhere in the world.
pub fn random_positions(n: usize, seed: u64) -> Vec<IVec3> {
    let mut rng = Rng::new(seed);
    let b = world().bounds();
    (0..n).map(|_| rng.in_box(&b)).collect()
}

/// `n` positions packed like an erosion front: filled cubes of 16³ voxels (whole
/// bricks), visited in a shuffled order inside each cube.
pub fn clustered_positions(n: usize, seed: u64) -> Vec<IVec3> {
    let mut rng = Rng::new(seed);
    let b = world().bounds();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let corner = (rng.in_box(&Aabb::new(b.min, b.max - IVec3::splat(16))) >> 4) << 4;
        let mut cube: Vec<IVec3> = (0..4096).map(|i| corner + IVec3::new(i & 15, (i >> 4) & 15, i >> 8)).collect();
        for i in (1..cube.len()).rev() {
            cube.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        out.extend(cube.into_iter().take(n - out.len()));
    }
    out
}

/// The flat map issue 14 measures against: an `ahash` `HashMap<u64, u16>` keyed
/// by packed positions, the least a voxel overlay can be. `insert` stores,
/// `insert_over_base` first reads the base beneath (what any overlay that elides
/// writes equal to the base must do), `get` looks up.
pub struct FlatMap(pub HashMap<u64, u16, ahash::RandomState>);

impl Default for FlatMap {
    fn default() -> Self {
        Self(HashMap::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4)))
    }
}

impl FlatMap {
    #[inline]
    pub fn key(p: IVec3) -> u64 {
        let u = (p + IVec3::splat(1 << 20)).as_uvec3();
        u64::from(u.x) | u64::from(u.y) << 21 | u64::from(u.z) << 42
    }
    #[inline]
    pub fn insert(&mut self, p: IVec3, m: MaterialId) {
        self.0.insert(Self::key(p), m.0);
    }
    #[inline]
    pub fn insert_over_base(&mut self, base: &BaseIndex, p: IVec3, m: MaterialId) {
        if base.get(p) != Ok(m) {
            self.0.insert(Self::key(p), m.0);
        }
    }
    #[inline]
    pub fn get(&self, p: IVec3) -> Option<u16> {
        self.0.get(&Self::key(p)).copied()
    }
}

/// The "naive overlay": a std `HashMap` in front of the base, with the same
/// semantics as the crate's (a write equal to the base removes the entry).
#[derive(Clone, Default)]
pub struct NaiveOverlay {
    pub map: HashMap<IVec3, MaterialId>,
}

impl NaiveOverlay {
    #[inline]
    pub fn update(&mut self, base: &BaseIndex, p: IVec3, m: MaterialId) {
        if base.get(p) == Ok(m) {
            self.map.remove(&p);
        } else if base.bounds().contains(p) {
            self.map.insert(p, m);
        }
    }
    #[inline]
    pub fn query(&self, base: &BaseIndex, p: IVec3) -> Option<MaterialId> {
        self.map.get(&p).copied().or_else(|| base.get(p).ok())
    }
    /// Flushes into the base with its best path, one `apply_batch`.
    pub fn flush(&mut self, base: &mut BaseIndex) {
        let batch: Vec<_> = self.map.drain().collect();
        let _ = base.apply_batch(&batch);
    }
}

/// The "shared-lock overlay", the shape bevy_voxel_world uses for modified
/// voxels: `Arc<RwLock<HashMap>>`, flushed into the base.
#[derive(Clone, Default)]
pub struct SharedLockOverlay {
    pub map: Arc<RwLock<HashMap<IVec3, MaterialId>>>,
}

impl SharedLockOverlay {
    pub fn deep_clone(&self) -> Self {
        Self { map: Arc::new(RwLock::new(self.map.read().unwrap().clone())) }
    }
    #[inline]
    pub fn update(&self, base: &BaseIndex, p: IVec3, m: MaterialId) {
        let mut map = self.map.write().unwrap();
        if base.get(p) == Ok(m) {
            map.remove(&p);
        } else if base.bounds().contains(p) {
            map.insert(p, m);
        }
    }
    /// A batch under one write lock.
    pub fn update_batch(&self, base: &BaseIndex, batch: &[(IVec3, MaterialId)]) {
        let mut map = self.map.write().unwrap();
        for &(p, m) in batch {
            if base.get(p) == Ok(m) {
                map.remove(&p);
            } else if base.bounds().contains(p) {
                map.insert(p, m);
            }
        }
    }
    #[inline]
    pub fn query(&self, base: &BaseIndex, p: IVec3) -> Option<MaterialId> {
        let map = self.map.read().unwrap();
        map.get(&p).copied().or_else(|| base.get(p).ok())
    }
}

/// The erosion workload of the headless example, as data: `frames` batches of
/// river-bed carving and downstream deposition, computed against the default
/// world before timing starts.
pub fn erosion_frames(frames: usize) -> Vec<Vec<(IVec3, MaterialId)>> {
    let base = world();
    let b = base.bounds();
    let size = b.size();
    let mut surface: HashMap<(i32, i32), i32> = HashMap::new();
    let mut top = |x: i32, z: i32| -> i32 {
        *surface.entry((x, z)).or_insert_with(|| {
            (b.min.y..b.max.y)
                .rev()
                .find(|&y| {
                    let m = base.get(IVec3::new(x, y, z)).unwrap_or(materials::AIR);
                    m != materials::AIR && m != materials::WATER
                })
                .unwrap_or(0)
        })
    };
    let mut out = Vec::with_capacity(frames);
    let mut heights: HashMap<(i32, i32), i32> = HashMap::new();
    for f in 0..frames as i32 {
        let mut batch = Vec::new();
        for river in 0..4 {
            let z0 = b.min.z + size.z * (2 * river + 1) / 8;
            for step in 0..24 {
                let x = b.min.x + (f * 24 + step + river * 97).rem_euclid(size.x - 64);
                let z = z0 + (20.0 * (x as f32 / 53.0 + river as f32).sin()) as i32;
                for w in -1..=1 {
                    let h = *heights.entry((x, z + w)).or_insert_with(|| top(x, z + w));
                    if h <= 98 {
                        continue;
                    }
                    batch.push((IVec3::new(x, h, z + w), if h < 150 { materials::WATER } else { materials::AIR }));
                    heights.insert((x, z + w), h - 1);
                    let dx = x + 24;
                    if dx < b.max.x {
                        let dh = *heights.entry((dx, z + w)).or_insert_with(|| top(dx, z + w));
                        batch.push((IVec3::new(dx, dh + 1, z + w), materials::SEDIMENT));
                        heights.insert((dx, z + w), dh + 1);
                    }
                }
            }
        }
        out.push(batch);
    }
    out
}
