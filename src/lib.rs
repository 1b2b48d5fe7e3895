#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

// Layers, each importing only from those before it in this list:
// coords, error, hash, material, parallel → base → overlay → consolidation →
// surface → storage → worldgen → codec → persistence → plugin → geology,
// replication → debug_ui → plugins (the group of them all).
pub mod base;
#[cfg(feature = "codec")]
mod codec;
pub mod consolidation;
pub mod coords;
#[cfg(feature = "debug_ui")]
pub mod debug_ui;
mod error;
#[cfg(feature = "geology")]
pub mod geology;
mod hash;
pub mod material;
mod overlay;
pub mod parallel;
#[cfg(feature = "persistence")]
pub mod persistence;
#[cfg(feature = "plugin")]
pub mod plugin;
#[cfg(feature = "plugin")]
mod plugins;
#[cfg(feature = "replication")]
pub mod replication;
pub mod storage;
pub mod surface;
pub mod worldgen;

pub use base::BaseIndex;
pub use consolidation::{ConsolidationStrategy, DeltaConfig};
pub use coords::Aabb;
pub use error::VoxelError;
pub use material::{MaterialId, MaterialUpdate, Palette, materials};
#[cfg(feature = "plugin")]
pub use plugin::{DeltaOverlayPlugin, DeltaOverlaySettings, DeltaOverlaySystems, DeltaStats, WorldSource};
#[cfg(feature = "plugin")]
pub use plugins::DeltaOverlayPlugins;
pub use storage::{ChangeBatch, DeltaStorage, Reader, RejectedUpdate, WorldSnapshot};
pub use worldgen::WorldGen;

/// Guides: the longer documentation of each part, with examples that compile
/// (the same files as `docs/` in the repository).
pub mod guides {
    #[doc = include_str!("../docs/storage.md")]
    pub mod storage {}
    #[cfg(feature = "plugin")]
    #[doc = include_str!("../docs/plugin.md")]
    pub mod plugin {}
    #[cfg(all(feature = "geology", feature = "plugin"))]
    #[doc = include_str!("../docs/geology.md")]
    pub mod geology {}
    #[cfg(all(feature = "persistence", feature = "plugin"))]
    #[doc = include_str!("../docs/persistence.md")]
    pub mod persistence {}
    #[cfg(feature = "replication")]
    #[doc = include_str!("../docs/multiplayer.md")]
    pub mod multiplayer {}
    #[doc = include_str!("../docs/architecture.md")]
    pub mod architecture {}
}

/// What most apps use: `use bevy_delta_overlay::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "plugin")]
    pub use crate::DeltaOverlayPlugins;
    #[cfg(feature = "debug_ui")]
    pub use crate::debug_ui::DeltaOverlayDebugPlugin;
    #[cfg(feature = "geology")]
    pub use crate::geology::GeologySystems;
    #[cfg(feature = "plugin")]
    pub use crate::plugin::{
        ConsolidationFinished, DeltaOverlayPlugin, DeltaOverlaySettings, DeltaOverlaySystems, DeltaSender, DeltaStats,
        FlushDeltas, FrameChanges, VoxelsChanged, WorldSource,
    };
    pub use crate::{
        Aabb, BaseIndex, ConsolidationStrategy, DeltaConfig, DeltaStorage, MaterialId, MaterialUpdate, RejectedUpdate,
        VoxelError, WorldGen, materials,
    };
}
