#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod base;
#[cfg(feature = "codec")]
mod codec;
mod consolidation;
mod coords;
#[cfg(feature = "debug_ui")]
mod debug_ui;
mod error;
mod material;
mod overlay;
#[cfg(feature = "persistence")]
mod persistence;
#[cfg(feature = "plugin")]
mod plugin;
#[cfg(feature = "geology")]
mod processes;
#[cfg(feature = "replication")]
mod replication;
mod storage;
mod worldgen;

pub use base::{BRICK_LOG2, BRICK_SIZE, BRICK_VOLUME, BaseIndex, BaseStats, Brick, BrickContent, Region};
#[cfg(feature = "codec")]
pub use codec::DecodeError;
#[allow(deprecated)]
pub use consolidation::CompactionStrategy;
pub use consolidation::{
    AdaptiveChoices, AppliedStrategy, ConsolidationError, ConsolidationJob, ConsolidationOutput, ConsolidationReport,
    ConsolidationStats, ConsolidationStrategy, DeltaConfig, Executor, Sequential, StrategyCounts, Threads,
};
pub use coords::{Aabb, morton, voxel_at};
#[cfg(feature = "debug_ui")]
pub use debug_ui::{DebugPanel, DeltaOverlayDebugPlugin};
pub use error::VoxelError;
pub use material::{Form, MaterialId, MaterialInfo, MaterialProperties, Palette, PaletteError, geology};
#[cfg(all(feature = "persistence", feature = "plugin"))]
pub use persistence::{DeltasDurable, PersistencePlugin, WorldFile};
#[cfg(feature = "persistence")]
pub use persistence::{Durability, Opened, Record, StoreError, StoreOptions, WorldStore};
#[cfg(feature = "plugin")]
pub use plugin::{
    ConsolidationFinished, DeltaOverlayDiagnostics, DeltaOverlayPlugin, DeltaOverlaySchedule, DeltaOverlaySettings,
    DeltaOverlaySystems, DeltaSender, DeltaStats, FlushDeltas, FrameChanges, MaterialUpdate, MaterialUpdateRejected,
    PendingUpdates, UpdateBatch, VoxelsChanged,
};
#[cfg(feature = "geology")]
pub use processes::{
    Deposition, DepositionState, DepositionStats, HydraulicErosion, HydraulicErosionState, HydraulicStats, Intrusion,
    IntrusionState, IntrusionStats, Terrain, ThermalErosion, ThermalErosionState, ThermalStats, Workspace, deposition,
    hydraulic_erosion, intrusion, relax_area, settle_and_compact, slopes_at_rest, thermal_erosion,
};
#[cfg(all(feature = "geology", feature = "plugin"))]
pub use processes::{
    DepositionPlugin, GeologyPlugins, GeologySystems, HydraulicErosionPlugin, IntrusionPlugin, ThermalErosionPlugin,
};
#[cfg(feature = "replication")]
pub use replication::{
    EditPolicy, EditsRefused, RefusedReason, ReplicationClientPlugin, ReplicationServerPlugin, ReplicationSettings,
    ReplicationStats, ReplicationStatus, WorldReceived,
};
pub use storage::{
    BatchOutcome, Change, ChangeBatch, DeltaEntry, DeltaStorage, FeedError, FinishedConsolidation, OverlayStats,
    Reader, RejectedUpdate, SnapshotNode, WorldSnapshot,
};
pub use worldgen::WorldGen;

/// The types most apps need: `use bevy_delta_overlay::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "debug_ui")]
    pub use crate::DeltaOverlayDebugPlugin;
    pub use crate::{
        Aabb, BaseIndex, ConsolidationStrategy, DeltaConfig, DeltaStorage, MaterialId, VoxelError, WorldGen, geology,
    };
    #[cfg(feature = "plugin")]
    pub use crate::{
        ConsolidationFinished, DeltaOverlayPlugin, DeltaOverlaySettings, DeltaOverlaySystems, DeltaSender, DeltaStats,
        FlushDeltas, MaterialUpdate, MaterialUpdateRejected, VoxelsChanged,
    };
}
