use glam::IVec3;

/// An axis-aligned box of voxels, half-open: `min` is inside, `max` is not.
///
/// ```
/// use bevy_delta_overlay::Aabb;
/// use glam::IVec3;
/// let b = Aabb::new(IVec3::new(-2, 0, 0), IVec3::new(2, 1, 3));
/// assert_eq!(b.size(), IVec3::new(4, 1, 3));
/// assert_eq!(b.volume(), 12);
/// assert!(b.contains(IVec3::new(-2, 0, 2)));
/// assert!(!b.contains(IVec3::new(2, 0, 0)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
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

    /// The box of `size` voxels whose smallest corner is `min`.
    pub fn from_min_size(min: IVec3, size: IVec3) -> Self {
        Self::new(min, min + size)
    }

    /// The one-voxel box holding `p`.
    pub fn voxel(p: IVec3) -> Self {
        Self::new(p, p + IVec3::ONE)
    }

    /// Extent on each axis (negative components for an inverted box).
    pub fn size(&self) -> IVec3 {
        self.max - self.min
    }

    /// True when the box holds no voxel.
    pub fn is_empty(&self) -> bool {
        self.max.cmple(self.min).any()
    }

    /// Number of voxels in the box (0 when empty).
    pub fn volume(&self) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let s = self.size().as_i64vec3();
        (s.x * s.y * s.z) as u64
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
}

impl std::fmt::Display for Aabb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {}, {}]..[{}, {}, {}]", self.min.x, self.min.y, self.min.z, self.max.x, self.max.y, self.max.z)
    }
}
