//! Divergence detection: digests of regions of the world, compared between
//! the server and each client.
//!
//! The world is cut into audit regions of [`COLUMNS`]² columns and at most
//! [`LAYERS`] voxels of height (so a region's read costs the same whatever the
//! world's height).
//! Every `ReplicationSettings::audit_every` the server sends the digest of the
//! next region (round robin) as of its last broadcast sequence; the stream is
//! ordered, so a synced client that reads the audit has applied exactly the
//! changes before it and holds the same sequence. A client whose digest
//! differs was changed behind the server's back (or a bug let it drift): it
//! counts a divergence and asks for the world again. A snapshot's end carries
//! the whole world's digest, checked once the snapshot is built.
//!
//! A region's digest reads it into a reused buffer (about 1 ms for 64 x 256 x
//! 64 voxels, the most a region holds): a few a second cost the main thread
//! well under 1%.

use crate::base::Region;
use crate::coords::Aabb;
use crate::storage::DeltaStorage;
use glam::IVec3;

/// The side of an audit region, in columns.
pub(crate) const COLUMNS: i32 = 64;

/// The height of an audit region, at most.
pub(crate) const LAYERS: i32 = 256;

/// Regions across x, up y and across z.
fn across(world: Aabb) -> (u64, u64, u64) {
    let size = world.size();
    let n = |extent: i32, side: i32| (extent.max(1) as u64).div_ceil(side as u64);
    (n(size.x, COLUMNS), n(size.y, LAYERS), n(size.z, COLUMNS))
}

/// The number of audit regions of a world.
pub(crate) fn count(world: Aabb) -> u64 {
    let (x, y, z) = across(world);
    x * y * z
}

/// The `i`-th audit region of `world` (x fastest, then y, then z; `i` wraps).
pub(crate) fn region(world: Aabb, i: u64) -> Aabb {
    let (nx, ny, _) = across(world);
    let i = i % count(world);
    let (x, y, z) = (i % nx, (i / nx) % ny, i / (nx * ny));
    let min = world.min + IVec3::new(x as i32 * COLUMNS, y as i32 * LAYERS, z as i32 * COLUMNS);
    let max = (min + IVec3::new(COLUMNS, LAYERS, COLUMNS)).min(world.max);
    Aabb::new(min, max)
}

/// The digest of `region` of `storage` (exact: deltas applied), read into
/// `scratch`; `None` when the region is not inside the world.
pub(crate) fn digest(storage: &DeltaStorage, region: Aabb, scratch: &mut Region) -> Option<u64> {
    storage.read_region(region, scratch).ok()?;
    let cells = scratch.as_slice();
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut bytes = [0u8; 2 * 1024];
    for chunk in cells.chunks(1024) {
        for (i, m) in chunk.iter().enumerate() {
            bytes[2 * i..2 * i + 2].copy_from_slice(&m.0.to_le_bytes());
        }
        hasher.update(&bytes[..2 * chunk.len()]);
    }
    Some(hasher.digest())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consolidation::DeltaConfig;
    use crate::material::MaterialId;

    #[test]
    fn regions_tile_the_world_and_digests_see_one_voxel() {
        let world = Aabb::new(IVec3::new(-10, 0, 5), IVec3::new(140, 30, 70));
        assert_eq!(count(world), 3 * 2);
        let volume: u64 = (0..count(world)).map(|i| region(world, i).volume()).sum();
        assert_eq!(volume, world.volume(), "the regions cover the world once");
        assert_eq!(region(world, 6), region(world, 0), "wraps");
        let base = crate::base::BaseIndex::uniform(world, MaterialId(1)).unwrap();
        let mut storage = DeltaStorage::new(base, DeltaConfig::default());
        let mut scratch = Region::default();
        let before: Vec<_> = (0..6).map(|i| digest(&storage, region(world, i), &mut scratch)).collect();
        storage.update(IVec3::new(60, 3, 69), MaterialId(2)).unwrap();
        let after: Vec<_> = (0..6).map(|i| digest(&storage, region(world, i), &mut scratch)).collect();
        let differ: Vec<usize> = (0..6).filter(|&i| before[i] != after[i]).collect();
        assert_eq!(differ, vec![4], "only the region holding the voxel");
    }
}
