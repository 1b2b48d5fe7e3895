//! Brick keys: packed brick coordinates, the overlay's map key.

use crate::base::{BRICK_LOG2, BRICK_MASK, BRICK_SIZE};
use glam::IVec3;

/// Packed brick coordinates (21 bits per axis): the overlay's map key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct BrickKey(u64);

const KEY_OFFSET: i32 = 1 << 20;
const KEY_MASK: u64 = (1 << 21) - 1;

impl BrickKey {
    /// The key of the brick holding `p`, and `p`'s index in it.
    #[inline]
    pub fn split(p: IVec3) -> (Self, u16) {
        (Self::of_brick(p >> BRICK_LOG2 as i32), crate::base::local_index(p) as u16)
    }

    /// The key of the brick with brick coordinates `b`.
    #[inline]
    pub fn of_brick(b: IVec3) -> Self {
        let u = (b + IVec3::splat(KEY_OFFSET)).as_uvec3();
        Self(u64::from(u.x) | u64::from(u.y) << 21 | u64::from(u.z) << 42)
    }

    /// The packed coordinates, for hashing.
    #[inline]
    pub fn to_bits(self) -> u64 {
        self.0
    }

    /// Brick coordinates.
    #[inline]
    pub fn brick(self) -> IVec3 {
        IVec3::new((self.0 & KEY_MASK) as i32, ((self.0 >> 21) & KEY_MASK) as i32, ((self.0 >> 42) & KEY_MASK) as i32)
            - IVec3::splat(KEY_OFFSET)
    }

    /// World position of the brick's smallest corner.
    #[inline]
    pub fn min_corner(self) -> IVec3 {
        self.brick() << BRICK_LOG2 as i32
    }

    /// World position of in-brick index `local`.
    #[inline]
    pub fn position(self, local: u16) -> IVec3 {
        let l = i32::from(local);
        self.min_corner() + IVec3::new(l & BRICK_MASK, (l >> 4) & BRICK_MASK, l >> 8)
    }
}

/// Brick coordinates of every brick overlapping `bounds` (world voxels), as a box.
pub(crate) fn brick_range(bounds: &crate::Aabb) -> crate::Aabb {
    crate::Aabb::new(bounds.min >> BRICK_LOG2 as i32, ((bounds.max - IVec3::ONE) >> BRICK_LOG2 as i32) + IVec3::ONE)
}

const _: () = assert!(BRICK_SIZE == 16, "BrickKey::position unpacks a 16³ index");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brick_keys_round_trip_including_negative_coordinates() {
        for p in [IVec3::new(-1, -17, 33), IVec3::new(1 << 19, -(1 << 20), 0), IVec3::ZERO] {
            let (key, local) = BrickKey::split(p);
            assert_eq!(key.position(local), p);
        }
    }
}
