//! A voxel material store for geology simulations in [Bevy](https://bevyengine.org):
//! a **base index** ([`BaseIndex`], a sparse octree whose leaves are dense `16³`
//! bricks) holds the world, a **delta overlay** absorbs sparse edits in O(1), and
//! **consolidation** merges them into the base in bulk, off the main thread,
//! while every read stays exact. [`DeltaStorage`] is the store; every accepted
//! change is numbered in its change feed, and a surface index keeps each
//! column's top exact as writes land.
//!
//! In an app, add `DeltaOverlayPlugins` (feature `plugin`) and send
//! [`MaterialUpdate`] messages before `DeltaOverlaySystems::Ingest`:
//!
//! ```no_run
//! # #[cfg(feature = "plugin")] {
//! use bevy::prelude::*;
//! use bevy_delta_overlay::prelude::*;
//!
//! fn erode(mut updates: MessageWriter<MaterialUpdate>) {
//!     updates.write(MaterialUpdate::new(IVec3::new(100, 140, 200), materials::WATER));
//! }
//!
//! App::new()
//!     .add_plugins((MinimalPlugins, DeltaOverlayPlugins::new(Update)))
//!     .add_systems(Update, erode.before(DeltaOverlaySystems::Ingest))
//!     .run();
//! # }
//! ```
//!
//! The guides say the rest: [the store](guides::storage), [the
//! plugin](guides::plugin), [geology](guides::geology),
//! [persistence](guides::persistence), [multiplayer](guides::multiplayer),
//! and [the architecture](guides::architecture) (the modules, their layers,
//! and the path of one update through them). The repository's README and
//! BENCHMARKS.md hold the commands that run everything and the measured
//! figures.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

// Layers, each importing only from those before it in this list:
// coords, error, hash, material, parallel → base → overlay → consolidation →
// surface → storage → worldgen → codec → persistence → paging → plugin → geology,
// replication → debug_ui → plugins (the group of them all).
pub mod base;
#[cfg(feature = "codec")]
mod codec;
/// The file decoders, for `tests/fuzz_decoders.rs` only: not an API.
#[cfg(feature = "codec")]
#[doc(hidden)]
pub use codec::fuzzing;
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
#[cfg(feature = "paging")]
pub mod paging;
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
/// (the same files as `docs/` in the repository). Each guide is present when
/// the features it describes are on.
pub mod guides {
    #[doc = include_str!("../docs/storage.md")]
    pub mod storage {}
    #[cfg_attr(feature = "plugin", doc = include_str!("../docs/plugin.md"))]
    #[cfg_attr(not(feature = "plugin"), doc = "The plugin guide: build the docs with feature `plugin`.")]
    pub mod plugin {}
    #[cfg_attr(all(feature = "geology", feature = "plugin"), doc = include_str!("../docs/geology.md"))]
    #[cfg_attr(
        not(all(feature = "geology", feature = "plugin")),
        doc = "The geology guide: build the docs with features `geology` and `plugin`."
    )]
    pub mod geology {}
    #[cfg_attr(all(feature = "persistence", feature = "plugin"), doc = include_str!("../docs/persistence.md"))]
    #[cfg_attr(
        not(all(feature = "persistence", feature = "plugin")),
        doc = "The persistence guide: build the docs with features `persistence` and `plugin`."
    )]
    pub mod persistence {}
    #[cfg_attr(feature = "replication", doc = include_str!("../docs/multiplayer.md"))]
    #[cfg_attr(not(feature = "replication"), doc = "The multiplayer guide: build the docs with feature `replication`.")]
    pub mod multiplayer {}
    #[cfg_attr(feature = "paging", doc = include_str!("../docs/paging.md"))]
    #[cfg_attr(not(feature = "paging"), doc = "The paging guide: build the docs with feature `paging`.")]
    pub mod paging {}
    #[doc = include_str!("../docs/architecture.md")]
    pub mod architecture {}
}

/// The README's examples, compiled and run as doctests (with the plugin: the
/// first one is a Bevy app).
#[cfg(all(doctest, feature = "plugin"))]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

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
    #[cfg(all(feature = "plugin", feature = "paging"))]
    pub use crate::plugin::{PagedStore, PagingPlugin, PagingSystems, WorldInterest};
    pub use crate::{
        Aabb, BaseIndex, ConsolidationStrategy, DeltaConfig, DeltaStorage, MaterialId, MaterialUpdate, RejectedUpdate,
        VoxelError, WorldGen, materials,
    };
}
