//! Brick keys: packed local brick coordinates, the overlay's map key.

use crate::base::{BRICK_LOG2, BRICK_MASK};
use glam::IVec3;

/// Packed local brick coordinates (21 bits per axis; local coordinates are
/// never negative): the overlay's map key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct BrickKey(u64);

const KEY_BITS: u32 = 21;
const KEY_MASK: u64 = (1 << KEY_BITS) - 1;

impl BrickKey {
    /// The key of the brick holding local position `q`, and `q`'s index in it.
    #[inline]
    pub fn split(q: IVec3) -> (Self, u16) {
        (Self::of_brick(q >> BRICK_LOG2 as i32), crate::base::local_index(q) as u16)
    }

    /// The key of the brick with local brick coordinates `b` (each in
    /// `[0, 2^21)`).
    #[inline]
    pub fn of_brick(b: IVec3) -> Self {
        let u = b.as_uvec3();
        Self(u64::from(u.x) | u64::from(u.y) << KEY_BITS | u64::from(u.z) << (2 * KEY_BITS))
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
pub(crate) fn brick_range(bounds: &crate::Aabb) -> crate::Aabb {
    crate::Aabb::new(bounds.min >> BRICK_LOG2 as i32, ((bounds.max - IVec3::ONE) >> BRICK_LOG2 as i32) + IVec3::ONE)
}

const _: () = assert!(BRICK_LOG2 == 4, "BrickKey::position unpacks a 16³ index");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brick_keys_round_trip() {
        for q in [IVec3::new(1, 17, 33), IVec3::new(1 << 20, (1 << 21) - 1, 0), IVec3::ZERO] {
            let (key, local) = BrickKey::split(q);
            assert_eq!(key.position(local), q);
        }
    }
}
