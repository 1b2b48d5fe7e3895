//! The core's one error type.

use crate::coords::Aabb;
use glam::{IVec3, Vec3};

/// Why a voxel operation was refused.
///
/// Every variant carries the data a caller needs to react (the position, the
/// bounds), never a preformatted string. Refusing an operation never corrupts the
/// store: the store is exactly as it was before the call.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum VoxelError {
    /// The position lies outside the world.
    OutOfBounds {
        /// The refused position.
        position: IVec3,
        /// The world's bounds (half-open).
        bounds: Aabb,
    },
    /// A component lies outside the signed 21-bit range `[-2^20, 2^20)` that Morton
    /// codes and overlay keys address.
    OutOfMortonRange {
        /// The refused position.
        position: IVec3,
    },
    /// A Morton code with bit 63 set, which no position encodes to.
    InvalidMortonCode {
        /// The refused code.
        code: u64,
    },
    /// A floating-point position with a NaN or infinite component.
    NonFinite {
        /// The refused position.
        position: Vec3,
    },
    /// World bounds that the base index cannot hold: empty, or reaching outside
    /// the Morton range (any size inside it is a world).
    InvalidBounds {
        /// The refused bounds.
        bounds: Aabb,
    },
    /// A region that is empty or not inside the world.
    InvalidRegion {
        /// The refused region.
        region: Aabb,
        /// The world's bounds.
        bounds: Aabb,
    },
    /// A level of detail above the tree's root level.
    LodOutOfRange {
        /// The refused level.
        lod: u8,
        /// The coarsest level this index has.
        max: u8,
    },
    /// A radius that is negative, NaN or infinite.
    InvalidRadius {
        /// The refused radius.
        radius: f32,
    },
    /// The plugin's ingest backlog was full: the update was refused, not
    /// queued (see `DeltaOverlaySettings::max_backlog`).
    Backlogged {
        /// Updates the backlog holds at most.
        capacity: usize,
    },
}

impl std::fmt::Display for VoxelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OutOfBounds { position, bounds } => {
                write!(f, "voxel {position} is outside the world bounds {bounds}; clamp or drop it before sending")
            }
            Self::OutOfMortonRange { position } => {
                write!(f, "voxel {position} is outside the addressable range [-1048576, 1048575] per axis")
            }
            Self::InvalidMortonCode { code } => {
                write!(f, "{code:#x} is not a Morton code (bit 63 is set)")
            }
            Self::NonFinite { position } => write!(
                f,
                "position {position} has a NaN or infinite component; check the simulation step that produced it"
            ),
            Self::InvalidBounds { bounds } => {
                write!(f, "world bounds {bounds} are empty or reach outside the addressable range")
            }
            Self::InvalidRegion { region, bounds } => write!(
                f,
                "region {region} is empty or not inside the world bounds {bounds}; intersect it with the bounds first"
            ),
            Self::LodOutOfRange { lod, max } => {
                write!(f, "level of detail {lod} is above this world's coarsest level {max}")
            }
            Self::InvalidRadius { radius } => {
                write!(f, "radius {radius} must be finite and not negative")
            }
            Self::Backlogged { capacity } => write!(
                f,
                "the ingest backlog holds {capacity} updates waiting already; send fewer per frame or raise max_backlog"
            ),
        }
    }
}

impl std::error::Error for VoxelError {}
