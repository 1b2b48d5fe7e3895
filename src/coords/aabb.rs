use glam::{I64Vec3, IVec3};

/// An axis-aligned box of voxels, half-open: `min` is inside, `max` is not.
///
/// Every method is total: arithmetic on the corners is done in 64 bits, so no
/// box, however hostile its corners, makes a method panic or wrap.
///
/// ```
/// use bevy_delta_overlay::Aabb;
/// use glam::IVec3;
/// let b = Aabb::new(IVec3::new(-2, 0, 0), IVec3::new(2, 1, 3));
/// assert_eq!(b.size(), IVec3::new(4, 1, 3));
/// assert_eq!(b.volume(), 12);
/// assert!(b.contains(IVec3::new(-2, 0, 2)));
/// assert!(!b.contains(IVec3::new(2, 0, 0)));
/// let huge = Aabb::new(IVec3::new(i32::MIN, 0, 0), IVec3::new(i32::MAX, 1, 1));
/// assert_eq!(huge.volume(), u64::from(u32::MAX));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub struct Aabb {
    /// Smallest corner, inside the box.
    pub min: IVec3,
    /// Largest corner, outside the box.
    pub max: IVec3,
}

impl Aabb {
    /// The box `[min, max)`. A box with `max <= min` on any axis is empty.
    pub const fn new(min: IVec3, max: IVec3) -> Self {
        Self { min, max }
    }

    /// The box of `size` voxels whose smallest corner is `min`; `max` saturates
    /// at `i32::MAX`.
    pub fn from_min_size(min: IVec3, size: IVec3) -> Self {
        Self::new(min, min.saturating_add(size))
    }

    /// The one-voxel box holding `p` (empty when `p.x`, `p.y` or `p.z` is
    /// `i32::MAX`, whose voxel has no representable `max`).
    pub fn voxel(p: IVec3) -> Self {
        Self::new(p, p.saturating_add(IVec3::ONE))
    }

    /// Extent on each axis in 64 bits: exact for any corners (negative for an
    /// inverted box).
    pub fn extent(&self) -> I64Vec3 {
        self.max.as_i64vec3() - self.min.as_i64vec3()
    }

    /// Extent on each axis, saturating at `i32::MAX` and `i32::MIN` (use
    /// [`extent`](Self::extent) for boxes wider than `i32::MAX`).
    pub fn size(&self) -> IVec3 {
        let e = self.extent().clamp(I64Vec3::splat(i64::from(i32::MIN)), I64Vec3::splat(i64::from(i32::MAX)));
        e.as_ivec3()
    }

    /// True when the box holds no voxel.
    pub fn is_empty(&self) -> bool {
        self.max.cmple(self.min).any()
    }

    /// Number of voxels in the box: 0 when empty, saturating at `u64::MAX`
    /// (only boxes wider than 2^21 on every axis get there).
    pub fn volume(&self) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let e = self.extent().as_u64vec3();
        e.x.checked_mul(e.y).and_then(|xy| xy.checked_mul(e.z)).unwrap_or(u64::MAX)
    }

    /// True when `p` is inside the box.
    #[inline]
    pub fn contains(&self, p: IVec3) -> bool {
        p.cmpge(self.min).all() && p.cmplt(self.max).all()
    }

    /// True when every voxel of `other` is inside `self` (an empty `other` is
    /// contained in anything).
    pub fn contains_box(&self, other: &Aabb) -> bool {
        other.is_empty() || (other.min.cmpge(self.min).all() && other.max.cmple(self.max).all())
    }

    /// The voxels in both boxes (possibly empty).
    pub fn intersection(&self, other: &Aabb) -> Aabb {
        Aabb::new(self.min.max(other.min), self.max.min(other.max))
    }

    /// True when the boxes share at least one voxel.
    pub fn intersects(&self, other: &Aabb) -> bool {
        !self.intersection(other).is_empty()
    }

    /// The smallest box holding both (an empty box adds nothing).
    pub fn union(&self, other: &Aabb) -> Aabb {
        match (self.is_empty(), other.is_empty()) {
            (true, _) => *other,
            (_, true) => *self,
            _ => Aabb::new(self.min.min(other.min), self.max.max(other.max)),
        }
    }
}

impl std::fmt::Display for Aabb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {}, {}]..[{}, {}, {}]", self.min.x, self.min.y, self.min.z, self.max.x, self.max.y, self.max.z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_corners_neither_panic_nor_wrap() {
        let wide = Aabb::new(IVec3::new(i32::MIN, 0, 0), IVec3::new(i32::MAX, 1, 1));
        assert_eq!(wide.volume(), u64::from(u32::MAX));
        assert_eq!(wide.size(), IVec3::new(i32::MAX, 1, 1));
        let all = Aabb::new(IVec3::splat(i32::MIN), IVec3::splat(i32::MAX));
        assert_eq!(all.volume(), u64::MAX, "2^96 voxels saturate");
        let inverted = Aabb::new(IVec3::splat(i32::MAX), IVec3::splat(i32::MIN));
        assert_eq!(inverted.volume(), 0);
        assert_eq!(inverted.size(), IVec3::splat(i32::MIN));
        assert!(Aabb::voxel(IVec3::splat(i32::MAX)).is_empty());
        assert_eq!(Aabb::from_min_size(IVec3::splat(1 << 30), IVec3::splat(1 << 30)).max, IVec3::splat(i32::MAX));
    }
}
