//! Voxel coordinates: the [`Aabb`] box type, Morton (Z-order) codes, and the
//! brick vocabulary (the `16³` grid every layer addresses bricks by).
//!
//! Voxel positions are [`glam::IVec3`] with **Y up**: `x` east, `y` up, `z` south.
//! A voxel at `p` occupies the unit cube `[p, p + 1)`. Every box in this crate is
//! half-open: `min` is inside, `max` is not.

mod aabb;
pub(crate) mod brick;
pub mod morton;

pub use aabb::Aabb;
pub use brick::{BRICK_LOG2, BRICK_SIZE, BRICK_VOLUME};

use crate::error::VoxelError;
use glam::IVec3;

/// Converts a floating-point world position to the voxel that contains it.
///
/// Flooring, not truncation: `-0.5` lies in voxel `-1`.
///
/// # Errors
/// [`VoxelError::NonFinite`] when a component is NaN or infinite, and
/// [`VoxelError::OutOfMortonRange`] when it does not fit the signed 21-bit range
/// every layer of the crate addresses.
///
/// ```
/// use bevy_delta_overlay::{VoxelError, coords::voxel_at};
/// use glam::{IVec3, Vec3};
/// assert_eq!(voxel_at(Vec3::new(-0.5, 2.9, 0.0)), Ok(IVec3::new(-1, 2, 0)));
/// assert!(matches!(voxel_at(Vec3::NAN), Err(VoxelError::NonFinite { .. })));
/// ```
pub fn voxel_at(position: glam::Vec3) -> Result<IVec3, VoxelError> {
    if !position.is_finite() {
        return Err(VoxelError::NonFinite { position });
    }
    let f = position.floor();
    let limit = (morton::COORD_MAX + 1) as f32;
    if f.min_element() < morton::COORD_MIN as f32 || f.max_element() >= limit {
        // Clamped only to report it; the cast cannot overflow after the clamp.
        let clamped = f.clamp(glam::Vec3::splat(-2.0e9), glam::Vec3::splat(2.0e9));
        return Err(VoxelError::OutOfMortonRange { position: clamped.as_ivec3() });
    }
    Ok(f.as_ivec3())
}
