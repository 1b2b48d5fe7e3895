#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod base;
mod coords;
mod error;
mod material;
mod world;

pub use base::{BRICK_LOG2, BRICK_SIZE, BRICK_VOLUME, BaseIndex, BaseStats, Brick, BrickContent, Region};
pub use coords::{Aabb, morton, voxel_at};
pub use error::VoxelError;
pub use material::{MaterialId, MaterialInfo, Palette, PaletteError, geology};
pub use world::WorldGen;
