use super::MaterialId;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// The palette shipped in `assets/materials.ron`, compiled in so the crate works
/// without an asset folder.
const DEFAULT_RON: &str = include_str!("../../assets/materials.ron");

/// One entry of a palette: a material's id, name and display colour.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct MaterialInfo {
    /// The id stored in voxels.
    pub id: u16,
    /// A human-readable name, unique in its palette.
    pub name: String,
    /// sRGB colour, `(r, g, b)`.
    pub colour: (u8, u8, u8),
}

/// Why a palette could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum PaletteError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The text is not a RON list of `(id, name, colour)` entries.
    Parse(ron::error::SpannedError),
    /// Two entries share an id.
    DuplicateId(u16),
    /// Two entries share a name.
    DuplicateName(String),
}

impl std::fmt::Display for PaletteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read the palette file: {e}"),
            Self::Parse(e) => write!(f, "palette is not valid RON: {e}"),
            Self::DuplicateId(id) => write!(f, "palette lists material id {id} twice"),
            Self::DuplicateName(n) => write!(f, "palette lists material name {n:?} twice"),
        }
    }
}

impl std::error::Error for PaletteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Parse(e) => Some(e),
            _ => None,
        }
    }
}

/// Names and colours of materials, read from a RON list such as
/// `assets/materials.ron`.
///
/// ```
/// use bevy_delta_overlay::{MaterialId, Palette};
/// let palette = Palette::from_ron_str(r#"[ (id: 0, name: "air", colour: (0, 0, 0)),
///                                         (id: 3, name: "granite", colour: (160, 150, 150)) ]"#)?;
/// assert_eq!(palette.get(MaterialId(3)).map(|m| m.name.as_str()), Some("granite"));
/// assert_eq!(palette.colour(MaterialId(9)), Palette::UNKNOWN_COLOUR);
/// # Ok::<(), bevy_delta_overlay::PaletteError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Palette {
    entries: Vec<MaterialInfo>,
    by_id: HashMap<u16, usize>,
}

impl Palette {
    /// Colour returned for an id the palette does not list: magenta, so it stands out.
    pub const UNKNOWN_COLOUR: (u8, u8, u8) = (255, 0, 255);

    /// Parses a palette from RON text.
    ///
    /// # Errors
    /// [`PaletteError::Parse`] for malformed text, [`PaletteError::DuplicateId`] or
    /// [`PaletteError::DuplicateName`] when an entry repeats another.
    pub fn from_ron_str(text: &str) -> Result<Self, PaletteError> {
        let entries: Vec<MaterialInfo> = ron::from_str(text).map_err(PaletteError::Parse)?;
        let mut by_id = HashMap::with_capacity(entries.len());
        let mut names = std::collections::HashSet::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            if by_id.insert(e.id, i).is_some() {
                return Err(PaletteError::DuplicateId(e.id));
            }
            if !names.insert(e.name.as_str()) {
                return Err(PaletteError::DuplicateName(e.name.clone()));
            }
        }
        Ok(Self { entries, by_id })
    }

    /// Reads a palette file.
    ///
    /// # Errors
    /// [`PaletteError::Io`] when the file cannot be read, otherwise as
    /// [`Palette::from_ron_str`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PaletteError> {
        let text = std::fs::read_to_string(path).map_err(PaletteError::Io)?;
        Self::from_ron_str(&text)
    }

    /// The geology palette of `assets/materials.ron`, compiled into the crate.
    pub fn geology() -> Self {
        // The shipped file is checked by a unit test, so this cannot fail at run time.
        Self::from_ron_str(DEFAULT_RON).unwrap_or_else(|_| Self { entries: Vec::new(), by_id: HashMap::new() })
    }

    /// The entry for `id`, if listed.
    pub fn get(&self, id: MaterialId) -> Option<&MaterialInfo> {
        self.by_id.get(&id.0).map(|&i| &self.entries[i])
    }

    /// The colour of `id`, or [`Palette::UNKNOWN_COLOUR`].
    pub fn colour(&self, id: MaterialId) -> (u8, u8, u8) {
        self.get(id).map_or(Self::UNKNOWN_COLOUR, |m| m.colour)
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[MaterialInfo] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geology;

    #[test]
    fn shipped_palette_parses_and_names_every_geology_material() {
        let p = Palette::from_ron_str(DEFAULT_RON).expect("assets/materials.ron parses");
        for id in 0..=geology::MAGMA.0 {
            assert!(p.get(MaterialId(id)).is_some(), "material {id} missing");
        }
        assert_eq!(p.get(geology::GRANITE).map(|m| m.name.as_str()), Some("granite"));
    }

    #[test]
    fn duplicate_ids_and_names_are_errors() {
        let dup_id = r#"[(id: 1, name: "a", colour: (0,0,0)), (id: 1, name: "b", colour: (0,0,0))]"#;
        assert!(matches!(Palette::from_ron_str(dup_id), Err(PaletteError::DuplicateId(1))));
        let dup_name = r#"[(id: 1, name: "a", colour: (0,0,0)), (id: 2, name: "a", colour: (0,0,0))]"#;
        assert!(matches!(Palette::from_ron_str(dup_name), Err(PaletteError::DuplicateName(_))));
    }

    #[test]
    fn malformed_text_and_missing_file_are_errors() {
        assert!(matches!(Palette::from_ron_str("[(id: -1)]"), Err(PaletteError::Parse(_))));
        assert!(matches!(Palette::load("/nonexistent/palette.ron"), Err(PaletteError::Io(_))));
    }
}
