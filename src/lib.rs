#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod base;
mod consolidation;
mod coords;
#[cfg(feature = "debug_ui")]
mod debug_ui;
mod error;
mod material;
mod metrics;
mod overlay;
#[cfg(feature = "plugin")]
mod plugin;
mod storage;
mod world;

pub use base::{BRICK_LOG2, BRICK_SIZE, BRICK_VOLUME, BaseIndex, BaseStats, Brick, BrickContent, Region};
pub use consolidation::{
    AppliedStrategy, CompactionStrategy, ConsolidationJob, ConsolidationOutput, ConsolidationReport, STRATEGY_NAMES,
};
pub use coords::{Aabb, morton, voxel_at};
#[cfg(feature = "debug_ui")]
pub use debug_ui::{DebugPanel, DeltaOverlayDebugPlugin};
pub use error::VoxelError;
pub use material::{MaterialId, MaterialInfo, Palette, PaletteError, geology};
pub use metrics::OverlayStats;
#[cfg(feature = "plugin")]
pub use plugin::{
    CompactionStrategyReflect, DeltaConfigReflect, DeltaOverlayDiagnostics, DeltaOverlayPlugin, DeltaOverlaySettings,
    DeltaOverlaySystems, DeltaSender, DeltaStats, FlushDeltas, MaterialUpdate, MaterialUpdateRejected, UpdateBatch,
};
pub use storage::{BatchOutcome, DeltaConfig, DeltaEntry, DeltaStorage, Reader, RejectedUpdate};
pub use world::WorldGen;

/// The types most apps need: `use bevy_delta_overlay::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "debug_ui")]
    pub use crate::DeltaOverlayDebugPlugin;
    pub use crate::{
        Aabb, BaseIndex, CompactionStrategy, DeltaConfig, DeltaStorage, MaterialId, VoxelError, WorldGen, geology,
    };
    #[cfg(feature = "plugin")]
    pub use crate::{
        DeltaOverlayPlugin, DeltaOverlaySettings, DeltaOverlaySystems, DeltaSender, DeltaStats, FlushDeltas,
        MaterialUpdate, MaterialUpdateRejected,
    };
}
