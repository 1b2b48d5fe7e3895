//! Geological processes (feature `geology`): hydraulic erosion, thermal
//! erosion, intrusion and cooling (stocks, dikes and sills, cooling from the
//! margins in, contact aureoles), deposition and compaction, and uplift (not
//! in `GeologyPlugins` by default: add
//! `GeologyPlugin::<Uplift>`). Each is a
//! [`GeologyProcess`]: a state with a `step` over a [`Terrain`] (tests and tools
//! call it without an `App`) and, with the `plugin` feature, run by the one
//! generic `GeologyPlugin<P>` with a reflectable settings resource.
//!
//! # The model
//!
//! The world is seen as voxel columns: a column's *surface* is its topmost
//! terrain voxel, terrain being every material whose [`Form`](crate::material::Form) is
//! `Solid`, `Loose` or `Molten` (air and water are not terrain). What each
//! material does comes from the palette (`assets/materials.ron`): hardness
//! against erosion, loose or solid, the angle of repose of loose material,
//! what magma cools into, what buried sediment compacts into and what rock
//! an intrusion's heat bakes into.
//!
//! # Guarantees
//!
//! - **Conservation.** Material moves a whole voxel at a time. Each process
//!   counts what it removes and what it lays down or carries out of the world,
//!   and `removed = deposited + carried out` holds exactly, at the end of every
//!   frame (the tests count the world's terrain voxels to check it). Melting
//!   and cooling, baking, compaction change a voxel's material in place and
//!   are counted apart; uplift adds rock from below and counts what it pushes
//!   out of the top of the world (`added - clipped`).
//! - **Determinism.** Every random choice comes from the process's seed, and
//!   processes run in a fixed order ([`GeologySystems`] with the plugin): the
//!   same world, seed and settings give the same world, voxel for voxel.
//! - **One view per frame.** Processes read the world through the storage and
//!   the edits made so far this frame (the [`Workspace`]), so two processes
//!   never both take the same voxel; the frame's edits go out as one batch of
//!   `MaterialUpdate`s before the overlay's `Ingest`.
//! - **Inside the world.** No process writes outside the bounds, on a world
//!   of any size: one brick, a slab one voxel thin, the default world.

mod bodies;
mod cooling;
mod deposition;
mod hydraulic;
mod intrusion;
#[cfg(feature = "paging")]
mod paged;
mod process;
mod queue;
mod rng;
#[cfg(all(feature = "plugin", feature = "persistence"))]
mod saved;
mod slope;
mod state;
mod terrain;
mod thermal;
mod uplift;

pub use bodies::IntrusionShape;
pub use cooling::Composition;
pub use deposition::{Deposition, DepositionSettings, DepositionStats};
pub use hydraulic::{HydraulicErosion, HydraulicSettings, HydraulicStats};
pub use intrusion::{Intrusion, IntrusionSettings, IntrusionStats};
#[cfg(feature = "paging")]
pub use paged::{PagedGeology, PagedGeologyStats, ProcessTotals};
#[cfg(feature = "plugin")]
pub use process::{GeologyPlugin, GeologyPlugins, GeologyProcesses, GeologyTimes, ProcessEntry, ProcessTime};
pub use process::{GeologyProcess, GeologySystems};
#[cfg(all(feature = "plugin", feature = "persistence"))]
pub use saved::{Restored, RestoredStates};
pub use state::{StateError, StateReader, StateWriter};
pub use terrain::{Terrain, Workspace};
pub use thermal::{ThermalErosion, ThermalSettings, ThermalStats, relax_area, slopes_at_rest};
pub use uplift::{Uplift, UpliftRegion, UpliftSettings, UpliftStats};
