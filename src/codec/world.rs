//! A whole world as node records: what a file stores and what a joining
//! client receives. Keys are `level << 56 | Morton code of (corner >> level)`
//! (local corners), records are `brick.rs`'s.
//!
//! # Invariants
//!
//! - `NODE_NAMED`: a node that breaks the tree's rules (a level below the brick
//!   level or above the root, a corner outside the world, a brick above the
//!   brick level) is refused naming its own level and code.
//! - `PYRAMID_CHECKED`: a stored brick's LOD pyramid is what its voxels make;
//!   a brick whose stored pyramid differs is refused, so a coarse read never
//!   answers what the voxels do not hold.

use super::{DecodeError, decode_node, encode_node};
use crate::base::{BaseIndex, Brick, BrickContent, BrickView, StoredNode};
use crate::coords::brick::{BRICK_LOG2, BRICK_VOLUME, Clip};
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

/// Why stored nodes did not make a world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BuildError {
    /// The world's bounds are outside the addressable range (the header's fault).
    Bounds,
    /// A node record failed: its level, its code, and how.
    Node(u32, u64, DecodeError),
}

/// Decodes node records (on every core), checks each (`NODE_NAMED`,
/// `PYRAMID_CHECKED`) and builds the world they hold.
pub(crate) fn build(bounds: Aabb, records: &[(u64, Vec<u8>)]) -> Result<BaseIndex, BuildError> {
    let root_level = BaseIndex::check_bounds(bounds).map_err(|_| BuildError::Bounds)?;
    let size = bounds.size();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = records.len().div_ceil(threads * 4).max(1);
    let decoded: Vec<Result<Vec<StoredNode>, BuildError>> = Threads(threads).map(records.len().div_ceil(chunk), &|i| {
        records[i * chunk..((i + 1) * chunk).min(records.len())]
            .iter()
            .map(|(key, bytes)| {
                let (level, code, min) = node_of_key(*key);
                let node = |e| BuildError::Node(level, code, e);
                check_place(level, min, root_level, size).map_err(node)?;
                let content = decode_node(bytes).map_err(node)?;
                check_content(level, min, size, &content).map_err(node)?;
                Ok(StoredNode { level, min, content })
            })
            .collect()
    });
    let mut nodes = Vec::with_capacity(records.len());
    for part in decoded {
        nodes.extend(part?);
    }
    BaseIndex::from_nodes(bounds, nodes).map_err(|e| match e {
        // Every node was checked above; a region refused here is named by its box.
        VoxelError::InvalidRegion { region, .. } => {
            let level = region.size().x.max(1).trailing_zeros();
            let min = region.min - bounds.min;
            let code = node_key(level.min(31), min.max(IVec3::ZERO)) & ((1 << 56) - 1);
            BuildError::Node(level, code, DecodeError::Invalid("a node the tree refused"))
        }
        _ => BuildError::Bounds,
    })
}

/// Where a node may stand: at or above the brick level, at or below the root,
/// its corner inside the world (keys make corners aligned and non-negative).
fn check_place(level: u32, min: IVec3, root_level: u32, size: IVec3) -> Result<(), DecodeError> {
    if level < BRICK_LOG2 {
        return Err(DecodeError::Invalid("a node below the brick level"));
    }
    if level > root_level {
        return Err(DecodeError::Invalid("a node above the root"));
    }
    if !min.cmplt(size).all() {
        return Err(DecodeError::Invalid("a node outside the world"));
    }
    Ok(())
}

/// What a node may hold: a brick only at the brick level, with the pyramid its
/// voxels make (`PYRAMID_CHECKED`).
fn check_content(level: u32, min: IVec3, size: IVec3, content: &BrickContent) -> Result<(), DecodeError> {
    let BrickContent::Dense(brick) = content else { return Ok(()) };
    if level != BRICK_LOG2 {
        return Err(DecodeError::Invalid("a brick above the brick level"));
    }
    let computed = Brick::from_voxels_clipped(brick.voxels(), Clip::of(min, size));
    if !computed.pyramid().eq(brick.pyramid()) {
        return Err(DecodeError::Invalid("a brick's LOD pyramid does not match its voxels"));
    }
    Ok(())
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

    /// A brick's pyramid was taken from the file as stored: a forged one
    /// (checksum recomputed) made coarse reads and the uniform test answer
    /// materials the voxels do not hold.
    #[test]
    fn a_forged_pyramid_is_refused_naming_its_brick() {
        let bounds = Aabb::new(IVec3::ZERO, IVec3::new(40, 20, 30));
        let mut voxels = [MaterialId(3); BRICK_VOLUME];
        voxels[..2048].fill(MaterialId(4));
        let honest = Brick::from_voxels(&voxels);
        let mut forged = honest.clone();
        let mut parts = [MaterialId(3); BRICK_VOLUME + crate::base::PYRAMID_CELLS];
        parts[..BRICK_VOLUME].copy_from_slice(&voxels);
        forged.set_parts(&parts);
        let min = IVec3::new(16, 0, 0);
        let key = node_key(BRICK_LOG2, min);
        let record = |b: &Brick| vec![(key, encode_node(BrickView::Brick(b), Clip::FULL))];
        assert!(build(bounds, &record(&honest)).is_ok());
        let code = key & ((1 << 56) - 1);
        assert_eq!(
            build(bounds, &record(&forged)).err(),
            Some(BuildError::Node(
                BRICK_LOG2,
                code,
                DecodeError::Invalid("a brick's LOD pyramid does not match its voxels")
            ))
        );
    }
}
