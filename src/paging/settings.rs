//! What a paged world is told: how to page, and where it must be resident.

use glam::{IVec3, Vec3};

/// How a [`PagedWorld`](super::PagedWorld) pages.
#[derive(Clone, Debug, PartialEq)]
pub struct PagingSettings {
    /// Columns along x and z of a sector, a multiple of 16. Default 256.
    pub sector_columns: i32,
    /// Bytes the resident sectors may hold (their base index, overlay and
    /// surface index); past it, sectors no interest wants are evicted. Default unlimited.
    pub resident_budget: usize,
    /// How far ahead of a moving interest sectors are brought in: its
    /// velocity times this many seconds. Default 4.
    pub prefetch_seconds: f32,
    /// Edited voxels kept at most, over every sector. Default 16M.
    pub max_edits: usize,
    /// Sectors asked of the pager at once at most (its one thread makes
    /// them in turn; `0` counts as 1): what a stale request can cost when the
    /// interest moves. Default 2.
    pub max_in_flight: usize,
    /// Sectors an interest wants at most (the nearest): bounds a tick's work
    /// for any radius. Default 1,024.
    pub max_wanted: usize,
    /// Evicted sectors whose coarse values (a material per brick, 16 KiB for
    /// a sector of 256 x 512 x 256) are kept, the oldest dropped first; `0`
    /// keeps none. Default 1,024.
    pub max_coarse: usize,
    /// Voxels a [`read_region`](super::PagedWorld::read_region) reads at
    /// most (a larger box is refused: its cells are allocated). Default
    /// 2^26 (128 MiB of cells).
    pub max_region_voxels: u64,
}

impl Default for PagingSettings {
    fn default() -> Self {
        Self {
            sector_columns: 256,
            resident_budget: usize::MAX,
            prefetch_seconds: 4.0,
            max_edits: 1 << 24,
            max_in_flight: 2,
            max_wanted: 1024,
            max_coarse: 1024,
            max_region_voxels: 1 << 26,
        }
    }
}

/// A place the world must be resident around: every sector within `radius`
/// columns of `center`, and of where `velocity` (voxels a second) takes it
/// in `prefetch_seconds`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Interest {
    /// Where it is.
    pub center: IVec3,
    /// Columns around it that must be resident.
    pub radius: i32,
    /// How it moves, in voxels a second.
    pub velocity: Vec3,
}
