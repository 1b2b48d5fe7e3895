//! The brick vocabulary: how a world is cut into `16³` bricks, and how bricks,
//! voxels inside them and octree children are addressed. Every layer of the
//! crate addresses bricks through this module and nothing else.
//!
//! Positions here are *local*: a world position minus the world's smallest
//! corner, so never negative. Bricks sit on a grid from that corner:
//!
//! | name | what it is |
//! | --- | --- |
//! | brick coordinates `b` | local position `>> BRICK_LOG2` |
//! | [`BrickKey`] | `b` packed 21 bits per axis: the overlay's map key, cheap to make |
//! | brick code | the Morton code of `b` ([`BrickKey::code`]): the sort key of every tree walk |
//! | in-brick index | `x | y << 4 | z << 8` of the voxel inside its brick ([`local_index`]) |
//! | block | a `4³` cell of a brick, one bit of a `u64` mask ([`block_bit`]) |
//! | child `i` | the octant `x = i & 1, y = (i >> 1) & 1, z = i >> 2` of an octree node |
//! | [`Clip`] | the part of a brick inside a world whose size is not a multiple of 16 |

use super::Aabb;
use super::morton;
use glam::IVec3;

/// log2 of the brick edge. Every other brick constant derives from it.
pub const BRICK_LOG2: u32 = 4;
/// Edge of a brick in voxels: 16.
pub const BRICK_SIZE: i32 = 1 << BRICK_LOG2;
/// Voxels in a brick: 4096.
pub const BRICK_VOLUME: usize = 1 << (3 * BRICK_LOG2);
/// Mask of the in-brick part of a coordinate.
pub(crate) const BRICK_MASK: i32 = BRICK_SIZE - 1;
/// Bits per axis of a [`BrickKey`]: local brick coordinates are below 2²¹.
const KEY_BITS: u32 = 21;
const KEY_MASK: u64 = (1 << KEY_BITS) - 1;

const _: () = assert!(BRICK_LOG2 == 4, "in-brick indices and block masks below are written for 16³ bricks");

/// Index of in-brick coordinates `(x, y, z)`, x fastest, then y, then z.
#[inline]
pub(crate) const fn voxel_index(x: usize, y: usize, z: usize) -> usize {
    x | (y << BRICK_LOG2) | (z << (2 * BRICK_LOG2))
}

/// Index of the voxel holding local position `q` within its brick.
#[inline]
pub(crate) fn local_index(q: IVec3) -> usize {
    let q = q & IVec3::splat(BRICK_MASK);
    voxel_index(q.x as usize, q.y as usize, q.z as usize)
}

/// In-brick coordinates of in-brick index `i`.
#[inline]
pub(crate) const fn index_coords(i: usize) -> (usize, usize, usize) {
    (i & 15, (i >> 4) & 15, i >> 8)
}

/// The `4³` block of an in-brick index, `0..64`: `x | y << 2 | z << 4` of the
/// block (a brick's level-2 LOD cell, and a bit of the overlay's masks).
#[inline]
pub(crate) const fn block_of(index: usize) -> usize {
    let (x, y, z) = index_coords(index);
    (x >> 2) | ((y >> 2) << 2) | ((z >> 2) << 4)
}

/// The mask bit of the block holding in-brick index `local`.
#[inline]
pub(crate) fn block_bit(local: u16) -> u64 {
    1 << block_of(usize::from(local))
}

/// A brick, by its local brick coordinates packed 21 bits per axis (local
/// coordinates are never negative). Making one is a few shifts, so point reads
/// pay nothing for it; [`code`](Self::code) gives the Morton order tree walks
/// sort by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct BrickKey(u64);

impl BrickKey {
    /// The key of the brick holding local position `q`, and `q`'s in-brick index.
    #[inline]
    pub fn split(q: IVec3) -> (Self, u16) {
        (Self::of_brick(q >> BRICK_LOG2 as i32), local_index(q) as u16)
    }

    /// The key of the brick with local brick coordinates `b` (each in `[0, 2^21)`).
    #[inline]
    pub fn of_brick(b: IVec3) -> Self {
        let u = b.as_uvec3();
        Self(u64::from(u.x) | u64::from(u.y) << KEY_BITS | u64::from(u.z) << (2 * KEY_BITS))
    }

    /// The key of the brick whose Morton code is `code`.
    #[inline]
    pub fn of_code(code: u64) -> Self {
        Self::of_brick(IVec3::new(
            morton::compact(code) as i32,
            morton::compact(code >> 1) as i32,
            morton::compact(code >> 2) as i32,
        ))
    }

    /// The packed coordinates.
    #[inline]
    pub fn to_bits(self) -> u64 {
        self.0
    }

    /// Local brick coordinates.
    #[inline]
    pub fn brick(self) -> IVec3 {
        IVec3::new(
            (self.0 & KEY_MASK) as i32,
            ((self.0 >> KEY_BITS) & KEY_MASK) as i32,
            ((self.0 >> (2 * KEY_BITS)) & KEY_MASK) as i32,
        )
    }

    /// The Morton code of the brick coordinates: the order of every tree walk,
    /// where the bricks of one subtree are contiguous.
    #[inline]
    pub fn code(self) -> u64 {
        let b = self.brick().as_uvec3();
        morton::interleave(b.x, b.y, b.z)
    }

    /// Local position of the brick's smallest corner.
    #[inline]
    pub fn min_corner(self) -> IVec3 {
        self.brick() << BRICK_LOG2 as i32
    }

    /// Local position of in-brick index `local`.
    #[inline]
    pub fn position(self, local: u16) -> IVec3 {
        let l = i32::from(local);
        self.min_corner() + IVec3::new(l & BRICK_MASK, (l >> 4) & BRICK_MASK, l >> 8)
    }
}

/// Local brick coordinates of every brick overlapping the local box `bounds`
/// (non-empty, inside the world), as a box.
pub(crate) fn brick_range(bounds: &Aabb) -> Aabb {
    Aabb::new(bounds.min >> BRICK_LOG2 as i32, ((bounds.max - IVec3::ONE) >> BRICK_LOG2 as i32) + IVec3::ONE)
}

/// The world box of the brick at local brick coordinates `b`, clipped to `bounds`.
pub(crate) fn brick_box(bounds: Aabb, b: IVec3) -> Aabb {
    let min = bounds.min + (b << BRICK_LOG2 as i32);
    Aabb::from_min_size(min, IVec3::splat(BRICK_SIZE)).intersection(&bounds)
}

/// Bricks per axis of a world of `size` voxels (a clipped brick on a largest
/// face counts).
pub(crate) fn bricks_per_axis(size: IVec3) -> IVec3 {
    (size + IVec3::splat(BRICK_MASK)) >> BRICK_LOG2 as i32
}

/// The part of a brick inside the world: voxels `[0, extent)` on each axis, from
/// the brick's smallest corner. Only bricks on the largest faces of a world whose
/// size is not a multiple of 16 are clipped. Voxels outside the clip are never
/// read and their stored value is unspecified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Clip(IVec3);

impl Clip {
    /// A brick wholly inside the world.
    pub const FULL: Clip = Clip(IVec3::splat(BRICK_SIZE));

    /// The clip of the brick at local corner `min` of a world of `size` voxels.
    #[inline]
    pub fn of(min: IVec3, size: IVec3) -> Clip {
        Clip((size - min).clamp(IVec3::ONE, IVec3::splat(BRICK_SIZE)))
    }

    /// The in-world voxels per axis, from the brick's corner.
    #[inline]
    pub fn extent(self) -> IVec3 {
        self.0
    }

    /// True for a brick wholly inside the world.
    #[inline]
    pub fn is_full(self) -> bool {
        self == Self::FULL
    }

    /// True when the cell of `2^level` voxels per axis at in-brick cell
    /// coordinates `c` holds an in-world voxel (its first voxel is inside).
    #[inline]
    pub fn holds(self, c: IVec3, level: u32) -> bool {
        (c << level as i32).cmplt(self.0).all()
    }
}

/// Offset of octant `i` in units of the child's edge.
#[inline]
pub(crate) fn child_offset(i: usize) -> IVec3 {
    IVec3::new((i & 1) as i32, ((i >> 1) & 1) as i32, (i >> 2) as i32)
}

/// Index of the child of a node at `level` that holds local position `q`.
#[inline]
pub(crate) fn child_index(q: IVec3, level: u32) -> usize {
    let s = level - 1;
    (((q.x >> s) & 1) | (((q.y >> s) & 1) << 1) | (((q.z >> s) & 1) << 2)) as usize
}

/// The children of the node at `level` (above 0) and local corner `min` that
/// hold a voxel of a world of `size`: `(index, child's corner)`, in index
/// (Morton) order. The one place a walk computes its children's corners.
#[inline]
pub(crate) fn children(level: u32, min: IVec3, size: IVec3) -> impl Iterator<Item = (usize, IVec3)> {
    let half = 1 << (level - 1);
    // Corners are never negative, so a child reaches the world iff it starts inside.
    (0..8).map(move |i| (i, min + child_offset(i) * half)).filter(move |(_, c)| c.cmplt(size).all())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brick_keys_round_trip_through_positions_and_codes() {
        for q in [IVec3::new(1, 17, 33), IVec3::new(1 << 20, (1 << 21) - 1, 0), IVec3::ZERO] {
            let (key, local) = BrickKey::split(q);
            assert_eq!(key.position(local), q);
            assert_eq!(BrickKey::of_code(key.code()), key);
        }
    }

    #[test]
    fn children_are_the_octants_inside_the_world() {
        let all: Vec<_> = children(5, IVec3::ZERO, IVec3::splat(64)).collect();
        assert_eq!(all.len(), 8);
        assert_eq!(all[5], (5, IVec3::new(16, 0, 16)));
        let thin: Vec<_> = children(5, IVec3::ZERO, IVec3::new(20, 16, 16)).map(|c| c.0).collect();
        assert_eq!(thin, [0, 1]);
    }
}
