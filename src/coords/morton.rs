//! Morton (Z-order) codes for signed voxel coordinates.
//!
//! Each axis takes 21 bits, so a code covers `[-2^20, 2^20)` per axis and fits in
//! the low 63 bits of a `u64`. Bit `3i` of the code is bit `i` of `x`, bit `3i + 1`
//! of `y`, bit `3i + 2` of `z` (after offsetting each coordinate by `2^20`), so the
//! code of an octree child is its parent's code shifted left by three plus the
//! child index `x | y << 1 | z << 2`.
//!
//! Z-order keeps nearby voxels *mostly* close in the code, which makes it a good sort
//! key for batching by brick; it is **not** a distance: two neighbours across a
//! power-of-two boundary can be far apart in code. Spatial queries never compare
//! codes numerically (the original C# sketch this crate grew from did).
//!
//! ```
//! use bevy_delta_overlay::coords::morton;
//! use glam::IVec3;
//! let p = IVec3::new(-5, 17, 1 << 19);
//! let code = morton::encode(p).unwrap();
//! assert_eq!(morton::decode(code), Ok(p));
//! assert!(morton::encode(IVec3::new(1 << 20, 0, 0)).is_err());
//! ```

use crate::error::VoxelError;
use glam::IVec3;

/// Bits per axis.
pub const BITS_PER_AXIS: u32 = 21;
/// Smallest coordinate a code holds on any axis: `-2^20`.
pub const COORD_MIN: i32 = -(1 << (BITS_PER_AXIS - 1));
/// Largest coordinate a code holds on any axis: `2^20 - 1`.
pub const COORD_MAX: i32 = (1 << (BITS_PER_AXIS - 1)) - 1;
/// Every valid code is below this bound (63 bits).
pub const CODE_END: u64 = 1 << (3 * BITS_PER_AXIS);

const OFFSET: i32 = 1 << (BITS_PER_AXIS - 1);
const AXIS_MASK: u64 = (1 << BITS_PER_AXIS) - 1;

/// Spreads the low 21 bits of `v` so that bit `i` lands on bit `3i`.
#[inline]
pub(crate) const fn spread(v: u64) -> u64 {
    let mut x = v & AXIS_MASK;
    x = (x | (x << 32)) & 0x001f_0000_0000_ffff;
    x = (x | (x << 16)) & 0x001f_0000_ff00_00ff;
    x = (x | (x << 8)) & 0x100f_00f0_0f00_f00f;
    x = (x | (x << 4)) & 0x10c3_0c30_c30c_30c3;
    x = (x | (x << 2)) & 0x1249_2492_4924_9249;
    x
}

/// Inverse of [`spread`]: gathers bits `0, 3, 6, ...` into the low 21 bits.
#[inline]
pub(crate) const fn compact(v: u64) -> u64 {
    let mut x = v & 0x1249_2492_4924_9249;
    x = (x | (x >> 2)) & 0x10c3_0c30_c30c_30c3;
    x = (x | (x >> 4)) & 0x100f_00f0_0f00_f00f;
    x = (x | (x >> 8)) & 0x001f_0000_ff00_00ff;
    x = (x | (x >> 16)) & 0x001f_0000_0000_ffff;
    x = (x | (x >> 32)) & AXIS_MASK;
    x
}

/// Interleaves three unsigned 21-bit coordinates (higher bits are ignored).
#[inline]
pub(crate) const fn interleave(x: u32, y: u32, z: u32) -> u64 {
    spread(x as u64) | (spread(y as u64) << 1) | (spread(z as u64) << 2)
}

/// True when every component of `p` is inside `[COORD_MIN, COORD_MAX]`.
#[inline]
pub fn in_range(p: IVec3) -> bool {
    p.cmpge(IVec3::splat(COORD_MIN)).all() && p.cmple(IVec3::splat(COORD_MAX)).all()
}

/// The Morton code of a signed position.
///
/// # Errors
/// [`VoxelError::OutOfMortonRange`] when a component lies outside
/// `[COORD_MIN, COORD_MAX]`; the code never wraps.
pub fn encode(p: IVec3) -> Result<u64, VoxelError> {
    if !in_range(p) {
        return Err(VoxelError::OutOfMortonRange { position: p });
    }
    let u = (p + IVec3::splat(OFFSET)).as_uvec3();
    Ok(interleave(u.x, u.y, u.z))
}

/// The position whose code is `code`.
///
/// # Errors
/// [`VoxelError::InvalidMortonCode`] when `code >= CODE_END` (bit 63 set).
pub fn decode(code: u64) -> Result<IVec3, VoxelError> {
    if code >= CODE_END {
        return Err(VoxelError::InvalidMortonCode { code });
    }
    let x = compact(code) as i32;
    let y = compact(code >> 1) as i32;
    let z = compact(code >> 2) as i32;
    Ok(IVec3::new(x, y, z) - IVec3::splat(OFFSET))
}
