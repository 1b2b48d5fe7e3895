//! What the store's tests share: a small world that is whole bricks on no
//! axis and not at the origin, its options, a fresh directory per test, and
//! deterministic updates.

use bevy_delta_overlay::persistence::StoreOptions;
use bevy_delta_overlay::{Aabb, MaterialId, WorldGen};
use glam::IVec3;
use std::path::PathBuf;

pub fn small_world() -> WorldGen {
    WorldGen { min: IVec3::new(-40, -8, 5), size: IVec3::new(90, 60, 70), sea_level: 40, ..WorldGen::default() }
}

pub fn options() -> StoreOptions {
    StoreOptions { generator: small_world(), palette: Some("[]".into()), ..StoreOptions::default() }
}

/// An empty directory for test `name` of this test binary and process.
pub fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bdo-{}-{}-{name}", env!("CARGO_CRATE_NAME"), std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `n` deterministic updates inside `bounds`.
pub fn updates(n: usize, seed: u64, bounds: Aabb) -> Vec<(IVec3, MaterialId)> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let s = bounds.size().as_uvec3();
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let p = IVec3::new(
                (x % u64::from(s.x)) as i32,
                ((x >> 20) % u64::from(s.y)) as i32,
                ((x >> 40) % u64::from(s.z)) as i32,
            );
            (bounds.min + p, MaterialId((x >> 60) as u16 % 5 + 2))
        })
        .collect()
}
