//! A whole world as node records: what a file stores and what a joining
//! client receives. Keys are `level << 56 | Morton code of (corner >> level)`
//! (local corners), records are `brick.rs`'s.

use super::{DecodeError, decode_node, encode_node};
use crate::base::{BaseIndex, Brick, BrickView, StoredNode};
use crate::coords::brick::{BRICK_VOLUME, Clip};
use crate::coords::{Aabb, morton};
use crate::error::VoxelError;
use crate::material::MaterialId;
use crate::parallel::{Executor, Threads};
use crate::storage::WorldSnapshot;
use glam::IVec3;

/// The key of the node of `level` at local corner `min`.
pub(crate) fn node_key(level: u32, min: IVec3) -> u64 {
    let c = (min >> level as i32).as_uvec3();
    u64::from(level) << 56 | morton::interleave(c.x, c.y, c.z)
}

/// The level, code and local corner of a node key.
pub(crate) fn node_of_key(key: u64) -> (u32, u64, IVec3) {
    let level = (key >> 56) as u32;
    let code = key & ((1 << 56) - 1);
    let c =
        IVec3::new(morton::compact(code) as i32, morton::compact(code >> 1) as i32, morton::compact(code >> 2) as i32);
    (level, code, c << level.min(31) as i32)
}

/// The record of a brick's voxels: its pyramid computed, or one uniform node
/// when its in-world voxels are one material.
pub(crate) fn brick_record(voxels: &[MaterialId; BRICK_VOLUME], clip: Clip) -> Vec<u8> {
    encode_node(BrickView::Voxels(voxels), clip)
}

/// Calls `f` with the key and record of every node of the snapshot's world, in
/// Morton order. Bricks are encoded on every core, a batch at a time (the
/// batch bounds the copies held: 512 bricks, 4.5 MiB).
pub(crate) fn for_each_record(snapshot: &WorldSnapshot, mut f: impl FnMut(u64, Vec<u8>)) {
    const BATCH: usize = 512;
    /// A node waiting to be encoded, owned (the walk lends its bricks only for
    /// the call).
    enum Job {
        Done(Vec<u8>),
        Brick(Box<Brick>),
        Voxels(Box<[MaterialId; BRICK_VOLUME]>, Clip),
    }
    let threads = Threads(std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut jobs: Vec<(u64, Job)> = Vec::with_capacity(BATCH);
    let flush = |jobs: &mut Vec<(u64, Job)>, f: &mut dyn FnMut(u64, Vec<u8>)| {
        let records = threads.map(jobs.len(), &|i| match &jobs[i].1 {
            Job::Done(_) => Vec::new(),
            Job::Brick(brick) => encode_node(BrickView::Brick(brick), Clip::FULL),
            Job::Voxels(voxels, clip) => brick_record(voxels, *clip),
        });
        for ((key, job), record) in jobs.drain(..).zip(records) {
            match job {
                Job::Done(done) => f(key, done),
                _ => f(key, record),
            }
        }
    };
    let origin = snapshot.bounds().min;
    let size = snapshot.bounds().size();
    snapshot.for_each_node(|node| {
        let key = node_key(node.level, node.min - origin);
        let job = match node.content {
            BrickView::Uniform(m) => (key, Job::Done(encode_node(BrickView::Uniform(m), Clip::FULL))),
            BrickView::Brick(brick) => (key, Job::Brick(Box::new(brick.clone()))),
            BrickView::Voxels(voxels) => (key, Job::Voxels(Box::new(*voxels), Clip::of(node.min - origin, size))),
        };
        jobs.push(job);
        if jobs.len() == BATCH {
            flush(&mut jobs, &mut f);
        }
    });
    flush(&mut jobs, &mut f);
}

/// A node record that failed, by level and code, and how.
pub(crate) type NodeError = (u32, u64, DecodeError);

/// Decodes node records (on every core) and builds the world they hold.
pub(crate) fn build(bounds: Aabb, records: &[(u64, Vec<u8>)]) -> Result<BaseIndex, NodeError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = records.len().div_ceil(threads * 4).max(1);
    let decoded: Vec<Result<Vec<StoredNode>, NodeError>> = Threads(threads).map(records.len().div_ceil(chunk), &|i| {
        records[i * chunk..((i + 1) * chunk).min(records.len())]
            .iter()
            .map(|(key, bytes)| {
                let (level, code, min) = node_of_key(*key);
                let content = decode_node(bytes).map_err(|e| (level, code, e))?;
                Ok(StoredNode { level, min, content })
            })
            .collect()
    });
    let mut nodes = Vec::with_capacity(records.len());
    for part in decoded {
        nodes.extend(part?);
    }
    BaseIndex::from_nodes(bounds, nodes).map_err(|e| {
        let why = match e {
            VoxelError::InvalidBounds { .. } => "world bounds outside the addressable range",
            _ => "a node outside the world, misaligned, or a brick above the brick level",
        };
        (0, 0, DecodeError::Invalid(why))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_keys_round_trip() {
        for (level, min) in [(4, IVec3::new(16, 32, 48)), (7, IVec3::new(128, 0, 384)), (20, IVec3::ZERO)] {
            let (l, _, m) = node_of_key(node_key(level, min));
            assert_eq!((l, m), (level, min));
        }
    }
}
