//! Materials: the id every voxel stores, the one voxel-write type, and the
//! palette that names, colours and describes them.

mod palette;

#[cfg_attr(not(feature = "geology"), allow(unused_imports))]
pub(crate) use palette::tan_degrees;
pub use palette::{Form, Grain, MaterialInfo, MaterialProperties, Palette, PaletteError};

use glam::IVec3;

/// A material, as stored in every voxel: 16 bits, so 65,536 materials.
///
/// `MaterialId(0)` is air and the [`Default`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub struct MaterialId(pub u16);

impl MaterialId {
    /// Empty space; the default material.
    pub const AIR: Self = Self(0);
}

impl std::fmt::Display for MaterialId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "material {}", self.0)
    }
}

/// A voxel write: `position` now holds `material`. The one spelling of a write
/// everywhere: a message a system sends, an item of a batch, a change the feed
/// numbers, an edit a client requests.
///
/// Send it with `MessageWriter<MaterialUpdate>` from a system ordered
/// `.before(DeltaOverlaySystems::Ingest)` (feature `plugin`); the update is
/// readable through `Res<DeltaStorage>` after that frame's ingest.
///
/// ```
/// use bevy_delta_overlay::{MaterialUpdate, materials};
/// use glam::IVec3;
/// let u = MaterialUpdate::new(IVec3::new(1, 2, 3), materials::WATER);
/// assert_eq!(u, (IVec3::new(1, 2, 3), materials::WATER).into());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Message))]
pub struct MaterialUpdate {
    /// The voxel.
    pub position: IVec3,
    /// Its new material.
    pub material: MaterialId,
}

impl MaterialUpdate {
    /// `material` at `position`.
    #[inline]
    pub const fn new(position: IVec3, material: MaterialId) -> Self {
        Self { position, material }
    }
}

impl From<(IVec3, MaterialId)> for MaterialUpdate {
    #[inline]
    fn from((position, material): (IVec3, MaterialId)) -> Self {
        Self { position, material }
    }
}

/// The materials of the shipped palette (`assets/materials.ron`), which the
/// procedural default world and the geology processes use.
pub mod materials {
    use super::MaterialId;

    /// Empty space.
    pub const AIR: MaterialId = MaterialId(0);
    /// The indestructible floor of the world.
    pub const BEDROCK: MaterialId = MaterialId(1);
    /// Dark volcanic rock above the bedrock.
    pub const BASALT: MaterialId = MaterialId(2);
    /// Crystalline basement rock.
    pub const GRANITE: MaterialId = MaterialId(3);
    /// Sedimentary rock of cemented sand.
    pub const SANDSTONE: MaterialId = MaterialId(4);
    /// Sedimentary rock of shells and carbonate.
    pub const LIMESTONE: MaterialId = MaterialId(5);
    /// Fine, soft sediment.
    pub const CLAY: MaterialId = MaterialId(6);
    /// Topsoil.
    pub const SOIL: MaterialId = MaterialId(7);
    /// Standing water below sea level.
    pub const WATER: MaterialId = MaterialId(8);
    /// Loose sediment laid down by erosion.
    pub const SEDIMENT: MaterialId = MaterialId(9);
    /// Molten rock rising in an intrusion.
    pub const MAGMA: MaterialId = MaterialId(10);
    /// Loose sand: what sandstone erodes into.
    pub const SAND: MaterialId = MaterialId(11);
    /// Loose gravel: what granite and basalt erode into.
    pub const GRAVEL: MaterialId = MaterialId(12);
    /// Fine loose sediment, carried far under water before it settles;
    /// compacts into shale.
    pub const SILT: MaterialId = MaterialId(13);
    /// Fine-grained sedimentary rock of compacted silt and clay.
    pub const SHALE: MaterialId = MaterialId(14);
    /// Coarse-grained mafic rock: the slowly cooled core of a mafic body.
    pub const GABBRO: MaterialId = MaterialId(15);
    /// Fine-grained felsic rock: the chilled margin of a felsic body.
    pub const RHYOLITE: MaterialId = MaterialId(16);
    /// Sandstone (or sand) baked in an intrusion's contact aureole.
    pub const QUARTZITE: MaterialId = MaterialId(17);
    /// Limestone baked in an intrusion's contact aureole.
    pub const MARBLE: MaterialId = MaterialId(18);
    /// Clay, shale or soil baked in an intrusion's contact aureole.
    pub const HORNFELS: MaterialId = MaterialId(19);
}
