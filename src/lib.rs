#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod base;
mod consolidation;
mod coords;
mod error;
mod material;
mod metrics;
mod overlay;
mod storage;
mod world;

pub use base::{BRICK_LOG2, BRICK_SIZE, BRICK_VOLUME, BaseIndex, BaseStats, Brick, BrickContent, Region};
pub use consolidation::{
    AppliedStrategy, CompactionStrategy, ConsolidationJob, ConsolidationOutput, ConsolidationReport, STRATEGY_NAMES,
};
pub use coords::{Aabb, morton, voxel_at};
pub use error::VoxelError;
pub use material::{MaterialId, MaterialInfo, Palette, PaletteError, geology};
pub use metrics::OverlayStats;
pub use storage::{BatchOutcome, DeltaConfig, DeltaEntry, DeltaStorage, RejectedUpdate};
pub use world::WorldGen;
