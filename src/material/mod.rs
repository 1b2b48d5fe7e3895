//! Material identifiers and the palette that names and colours them.

mod palette;

pub use palette::{Form, MaterialInfo, MaterialProperties, Palette, PaletteError};

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

/// The materials of the procedural default world, matching `assets/materials.ron`.
pub mod geology {
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
}
