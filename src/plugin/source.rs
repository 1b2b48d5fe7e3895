//! Where the world comes from: the one place an app chooses it.

use crate::consolidation::DeltaConfig;
use crate::storage::DeltaStorage;
use crate::worldgen::WorldGen;
use bevy::prelude::*;

/// Where the plugin's [`DeltaStorage`] comes from, chosen once in
/// [`DeltaOverlayPlugin::world`](super::DeltaOverlayPlugin::world) (or the
/// group's [`world`](crate::DeltaOverlayPlugins::world)). A
/// `DeltaStorage` the app inserted before the plugins were built takes
/// precedence over any source.
///
/// ```
/// use bevy_delta_overlay::{WorldGen, WorldSource};
/// use glam::IVec3;
/// let small = WorldSource::Generate(WorldGen { size: IVec3::new(256, 128, 256), ..Default::default() });
/// assert_eq!(small.to_string(), "a generated world of 256 x 128 x 256 voxels (seed 0x5eed0fea2700)");
/// ```
#[derive(Clone, Debug)]
pub enum WorldSource {
    /// The procedural world of these parameters, generated when the plugin is
    /// built. [`WorldSource::default`] is [`WorldGen::default`]: 1024 x 256 x
    /// 1024 voxels, about 232 MiB of memory and 0.3 to 0.5 s to build.
    Generate(WorldGen),
    /// A world file (feature `persistence`): loaded when it exists, else
    /// created from `options.generator`, and saved every frame by
    /// [`PersistencePlugin`](super::PersistencePlugin). The storage takes the
    /// plugin's configuration, not `options.config`. A file that exists but
    /// cannot be opened is handled as `on_bad_file` says, and reported in a
    /// [`WorldFileError`](super::WorldFileError) resource.
    #[cfg(feature = "persistence")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// How the store works, and the world it generates when there is no file.
        options: crate::persistence::StoreOptions,
        /// What to do when the file cannot be opened. Default
        /// [`BadFilePolicy::Refuse`](super::BadFilePolicy::Refuse): the app
        /// exits with an error rather than run a world it could not save.
        on_bad_file: super::BadFilePolicy,
    },
    /// A server's world (a replication client, feature `replication`): a
    /// placeholder of 16³ air until the server's snapshot arrives. The app's
    /// `MaterialUpdate`s become edit requests to the server: it has authority.
    #[cfg(feature = "replication")]
    Server,
}

impl Default for WorldSource {
    fn default() -> Self {
        Self::Generate(WorldGen::default())
    }
}

impl From<WorldGen> for WorldSource {
    fn from(generator: WorldGen) -> Self {
        Self::Generate(generator)
    }
}

impl std::fmt::Display for WorldSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Generate(g) => {
                let s = g.size;
                write!(f, "a generated world of {} x {} x {} voxels (seed {:#x})", s.x, s.y, s.z, g.seed)
            }
            #[cfg(feature = "persistence")]
            Self::File { path, .. } => write!(f, "the world file {}", path.display()),
            #[cfg(feature = "replication")]
            Self::Server => write!(f, "the server's world"),
        }
    }
}

/// Where the app's world came from, as a resource (what replication's client
/// checks to know it has no authority).
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorldOrigin {
    /// The app inserted its own [`DeltaStorage`].
    Inserted,
    /// Generated.
    Generated,
    /// Loaded from a file, or created in one (also after a bad file was moved
    /// aside: `BadFilePolicy::MoveAsideAndStartFresh`).
    File,
    /// Received from a server (a placeholder until it arrives).
    Server,
    /// None: the world file could not be opened and the app was asked to exit
    /// (`BadFilePolicy::Refuse`, feature `persistence`; the `WorldFileError`
    /// resource says why). The storage is a 16³ placeholder of air that takes
    /// no updates and is never saved.
    Refused,
}

/// A placeholder world: 16³ of air at the origin.
pub(crate) fn placeholder(config: &DeltaConfig) -> DeltaStorage {
    let bounds = crate::coords::Aabb::new(IVec3::ZERO, IVec3::splat(crate::coords::BRICK_SIZE));
    let base = crate::base::BaseIndex::uniform(bounds, crate::material::MaterialId::AIR)
        .unwrap_or_else(|_| unreachable!("16³ at the origin is a world"));
    DeltaStorage::new(base, config.clone())
}

/// Builds the storage `source` names, and says where it came from. A file is
/// opened by `open_file` (the persistence member's opener, when the feature
/// is on).
pub(crate) fn build_world(app: &mut App, source: &WorldSource, config: &DeltaConfig) -> WorldOrigin {
    match source {
        WorldSource::Generate(generator) => {
            let storage = match generator.build() {
                Ok(base) => DeltaStorage::new(base, config.clone()),
                Err(e) => {
                    error!("delta overlay: cannot build the configured world ({e}); using a 16³ world of air");
                    placeholder(config)
                }
            };
            app.insert_resource(storage);
            WorldOrigin::Generated
        }
        #[cfg(feature = "persistence")]
        WorldSource::File { path, options, on_bad_file } => {
            super::persist::open(app, path, options, *on_bad_file, config)
        }
        #[cfg(feature = "replication")]
        WorldSource::Server => {
            app.insert_resource(placeholder(config));
            WorldOrigin::Server
        }
    }
}
