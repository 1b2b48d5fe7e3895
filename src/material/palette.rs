use super::MaterialId;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// The palette shipped in `assets/materials.ron`, compiled in so the crate works
/// without an asset folder.
const DEFAULT_RON: &str = include_str!("../../assets/materials.ron");

/// One entry of a palette: a material's id, name and display colour, and the
/// properties the geology processes read (see [`MaterialProperties`]).
///
/// Every property has a default, so a palette of `(id, name, colour)` entries
/// still reads: a solid that never erodes.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct MaterialInfo {
    /// The id stored in voxels.
    pub id: u16,
    /// A human-readable name, unique in its palette.
    pub name: String,
    /// sRGB colour, `(r, g, b)`.
    pub colour: (u8, u8, u8),
    /// What kind of matter it is. Default [`Form::Solid`].
    #[serde(default)]
    pub form: Form,
    /// Resistance to erosion, `0.0` (none) to `1.0` (never erodes). Default 1.
    #[serde(default = "one")]
    pub hardness: f32,
    /// The steepest slope, in degrees, a [`Form::Loose`] material rests at;
    /// required for loose materials, refused for others.
    #[serde(default)]
    pub angle_of_repose: Option<f32>,
    /// The fine-grained rock a [`Form::Molten`] one becomes where it cools
    /// fast (a body's chilled margin, a thin dike).
    #[serde(default)]
    pub cools_to: Option<String>,
    /// The coarse-grained rock it becomes where it cools slowly, deep inside
    /// a body (default `cools_to`). The intrusion process takes its rocks from
    /// its `Composition` setting; these two describe the palette's magma.
    #[serde(default)]
    pub cools_deep_to: Option<String>,
    /// The material a [`Form::Loose`] one becomes when buried deep enough.
    #[serde(default)]
    pub compacts_to: Option<String>,
    /// The metamorphic rock a [`Form::Solid`] or [`Form::Loose`] one becomes
    /// when baked in an intrusion's contact aureole (sandstone to quartzite,
    /// limestone to marble, clay to hornfels); `None`: heat leaves it as it is.
    #[serde(default)]
    pub metamorphoses_to: Option<String>,
    /// The [`Form::Loose`] material that rain turns it into when it erodes it
    /// (sandstone into sand): what droplets carry and lay down. Terrain
    /// only. Default: a loose material stays itself, anything else becomes
    /// the hydraulic settings' `deposit_as`.
    #[serde(default)]
    pub erodes_to: Option<String>,
    /// How a [`Form::Loose`] material's volume compacts, `(loose, rock)`:
    /// `loose` buried voxels become `rock` voxels of `compacts_to` (the pore
    /// space lost), `1 <= rock <= loose`. Default `(1, 1)`.
    #[serde(default)]
    pub compacts_volume: Option<(u8, u8)>,
    /// The grain size class of a [`Form::Loose`] material: how far it is
    /// carried under water before it settles. Default [`Grain::Sand`].
    #[serde(default)]
    pub grain: Option<Grain>,
}

/// The grain size class of loose material, coarsest first: under water,
/// coarse grains settle first and rest on steep slopes, fine ones are carried
/// further and spread flatter (the deposition process's sorting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub enum Grain {
    /// Pebbles, over 2 mm.
    Gravel,
    /// Sand, 1/16 to 2 mm.
    #[default]
    Sand,
    /// Silt, 1/256 to 1/16 mm.
    Silt,
    /// Clay, under 1/256 mm.
    Clay,
}

impl Grain {
    /// Every class, coarsest first (the order of [`Grain::index`]).
    pub const ALL: [Self; 4] = [Self::Gravel, Self::Sand, Self::Silt, Self::Clay];

    /// The class's place in [`Grain::ALL`]: 0 (gravel) to 3 (clay).
    pub fn index(self) -> usize {
        self as usize
    }
}

fn one() -> f32 {
    1.0
}

/// What kind of matter a material is, as the geology processes see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum Form {
    /// Empty space (air): not terrain.
    Gas,
    /// Fills space (water): not terrain; eroded voxels under it become it.
    Liquid,
    /// Terrain that is not yet rock (magma): cools into `cools_to`.
    Molten,
    /// Grains (sediment, soil): slide past their angle of repose, settle
    /// through fluids, compact into `compacts_to` when buried.
    Loose,
    /// Rock.
    #[default]
    Solid,
}

impl Form {
    /// Terrain, not a fluid: `Molten`, `Loose` or `Solid`.
    pub fn is_matter(self) -> bool {
        matches!(self, Self::Molten | Self::Loose | Self::Solid)
    }
}

/// A material's properties with names resolved to ids: what the processes
/// read per voxel, from [`Palette::properties`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaterialProperties {
    /// See [`MaterialInfo::form`].
    pub form: Form,
    /// See [`MaterialInfo::hardness`].
    pub hardness: f32,
    /// The tangent of the angle of repose (rise over run); `f32::INFINITY`
    /// for materials that are not loose.
    pub repose_slope: f32,
    /// See [`MaterialInfo::cools_to`].
    pub cools_to: Option<MaterialId>,
    /// See [`MaterialInfo::cools_deep_to`] (resolved: `cools_to` when absent).
    pub cools_deep_to: Option<MaterialId>,
    /// See [`MaterialInfo::compacts_to`].
    pub compacts_to: Option<MaterialId>,
    /// See [`MaterialInfo::metamorphoses_to`].
    pub metamorphoses_to: Option<MaterialId>,
    /// See [`MaterialInfo::erodes_to`] (a loose material, checked).
    pub erodes_to: Option<MaterialId>,
    /// See [`MaterialInfo::compacts_volume`] (resolved: `(1, 1)` when absent).
    pub compacts_volume: (u8, u8),
    /// See [`MaterialInfo::grain`] (resolved: [`Grain::Sand`] when absent).
    pub grain: Grain,
}

impl MaterialProperties {
    /// What an id no palette lists reads as: a solid that never erodes, so an
    /// unknown material is left alone.
    pub const UNKNOWN: Self = Self {
        form: Form::Solid,
        hardness: 1.0,
        repose_slope: f32::INFINITY,
        cools_to: None,
        cools_deep_to: None,
        compacts_to: None,
        metamorphoses_to: None,
        erodes_to: None,
        compacts_volume: (1, 1),
        grain: Grain::Sand,
    };

    /// Terrain, not a fluid.
    pub fn is_matter(&self) -> bool {
        self.form.is_matter()
    }
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
    /// A property is out of range or does not fit the material's form.
    InvalidProperty {
        /// The material's name.
        material: String,
        /// The property.
        field: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// A property names a material the palette does not list.
    UnknownMaterial {
        /// The material whose property names it.
        material: String,
        /// The property.
        field: &'static str,
        /// The name that is not listed.
        name: String,
    },
}

impl std::fmt::Display for PaletteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read the palette file: {e}"),
            Self::Parse(e) => write!(f, "palette is not valid RON: {e}"),
            Self::DuplicateId(id) => write!(f, "palette lists material id {id} twice"),
            Self::DuplicateName(n) => write!(f, "palette lists material name {n:?} twice"),
            Self::InvalidProperty { material, field, why } => {
                write!(f, "palette entry {material:?}: `{field}` {why}")
            }
            Self::UnknownMaterial { material, field, name } => {
                write!(f, "palette entry {material:?}: `{field}` names {name:?}, which the palette does not list")
            }
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
/// `assets/materials.ron`. Its [`Default`] is [`Palette::shipped`].
///
/// ```
/// use bevy_delta_overlay::{MaterialId, Palette};
/// let palette = Palette::from_ron_str(r#"[ (id: 0, name: "air", colour: (0, 0, 0)),
///                                         (id: 3, name: "granite", colour: (160, 150, 150)) ]"#)?;
/// assert_eq!(palette.get(MaterialId(3)).map(|m| m.name.as_str()), Some("granite"));
/// assert_eq!(palette.colour(MaterialId(9)), Palette::UNKNOWN_COLOUR);
/// # Ok::<(), bevy_delta_overlay::material::PaletteError>(())
/// ```
#[derive(Clone, Debug)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource))]
pub struct Palette {
    entries: Vec<MaterialInfo>,
    by_id: HashMap<u16, usize>,
    /// Properties by id (dense up to the largest id listed).
    properties: Vec<MaterialProperties>,
}

impl Palette {
    /// Colour returned for an id the palette does not list: magenta, so it stands out.
    pub const UNKNOWN_COLOUR: (u8, u8, u8) = (255, 0, 255);

    /// Parses a palette from RON text.
    ///
    /// Optional properties are written bare (`cools_to: "basalt"`, RON's
    /// implicit `Some`).
    ///
    /// # Errors
    /// [`PaletteError::Parse`] for malformed text, [`PaletteError::DuplicateId`] or
    /// [`PaletteError::DuplicateName`] when an entry repeats another,
    /// [`PaletteError::InvalidProperty`] for a property out of range or
    /// unfit for the form (a hardness outside `0..=1`, a loose material without
    /// an angle of repose, `cools_to` on a solid), and
    /// [`PaletteError::UnknownMaterial`] for a transform naming no entry.
    pub fn from_ron_str(text: &str) -> Result<Self, PaletteError> {
        let options = ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let entries: Vec<MaterialInfo> = options.from_str(text).map_err(PaletteError::Parse)?;
        let mut by_id = HashMap::with_capacity(entries.len());
        let mut by_name = HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            if by_id.insert(e.id, i).is_some() {
                return Err(PaletteError::DuplicateId(e.id));
            }
            if by_name.insert(e.name.as_str(), e.id).is_some() {
                return Err(PaletteError::DuplicateName(e.name.clone()));
            }
        }
        let size = entries.iter().map(|e| usize::from(e.id) + 1).max().unwrap_or(0);
        let mut properties = vec![MaterialProperties::UNKNOWN; size];
        for e in &entries {
            properties[usize::from(e.id)] = resolve(e, &by_name)?;
        }
        for e in &entries {
            let target = properties[usize::from(e.id)].erodes_to;
            if target.is_some_and(|t| properties[usize::from(t.0)].form != Form::Loose) {
                let why = "must name a Loose material";
                return Err(PaletteError::InvalidProperty { material: e.name.clone(), field: "erodes_to", why });
            }
        }
        Ok(Self { entries, by_id, properties })
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

    /// The palette shipped in `assets/materials.ron`, compiled into the crate:
    /// the materials of [`materials`](crate::materials) and the default world.
    pub fn shipped() -> Self {
        // The shipped file is checked by a unit test, so this cannot fail at run time.
        Self::from_ron_str(DEFAULT_RON).unwrap_or_else(|_| Self {
            entries: Vec::new(),
            by_id: HashMap::new(),
            properties: Vec::new(),
        })
    }

    /// The properties of `id`; [`MaterialProperties::UNKNOWN`] for an id the
    /// palette does not list. One index, no hashing: the processes call it
    /// per voxel.
    #[inline]
    pub fn properties(&self, id: MaterialId) -> &MaterialProperties {
        self.properties.get(usize::from(id.0)).unwrap_or(&MaterialProperties::UNKNOWN)
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

impl Default for Palette {
    fn default() -> Self {
        Self::shipped()
    }
}

/// Checks an entry's properties against its form and resolves its names.
fn resolve(e: &MaterialInfo, by_name: &HashMap<&str, u16>) -> Result<MaterialProperties, PaletteError> {
    let invalid = |field, why| PaletteError::InvalidProperty { material: e.name.clone(), field, why };
    let name = |field: &'static str, n: &Option<String>| -> Result<Option<MaterialId>, PaletteError> {
        n.as_ref()
            .map(|n| {
                by_name.get(n.as_str()).map(|&id| MaterialId(id)).ok_or_else(|| PaletteError::UnknownMaterial {
                    material: e.name.clone(),
                    field,
                    name: n.clone(),
                })
            })
            .transpose()
    };
    if !(0.0..=1.0).contains(&e.hardness) {
        return Err(invalid("hardness", "must be a number from 0 to 1"));
    }
    let repose_slope = match (e.form, e.angle_of_repose) {
        (Form::Loose, Some(a)) if a > 0.0 && a < 90.0 => tan_degrees(f64::from(a)) as f32,
        (Form::Loose, Some(_)) => return Err(invalid("angle_of_repose", "must be between 0 and 90 degrees")),
        (Form::Loose, None) => return Err(invalid("angle_of_repose", "is required for a Loose material")),
        (_, Some(_)) => return Err(invalid("angle_of_repose", "applies to Loose materials only")),
        (_, None) => f32::INFINITY,
    };
    if e.form != Form::Molten && (e.cools_to.is_some() || e.cools_deep_to.is_some()) {
        return Err(invalid("cools_to", "applies to Molten materials only"));
    }
    if e.form != Form::Loose && e.compacts_to.is_some() {
        return Err(invalid("compacts_to", "applies to Loose materials only"));
    }
    if !matches!(e.form, Form::Solid | Form::Loose) && e.metamorphoses_to.is_some() {
        return Err(invalid("metamorphoses_to", "applies to Solid and Loose materials only"));
    }
    let cools_to = name("cools_to", &e.cools_to)?;
    let cools_deep_to = name("cools_deep_to", &e.cools_deep_to)?.or(cools_to);
    let compacts_to = name("compacts_to", &e.compacts_to)?;
    if !e.form.is_matter() && e.erodes_to.is_some() {
        return Err(invalid("erodes_to", "applies to terrain (Solid, Loose, Molten) only"));
    }
    let erodes_to = name("erodes_to", &e.erodes_to)?;
    let metamorphoses_to = name("metamorphoses_to", &e.metamorphoses_to)?;
    let (grain, compacts_volume) = loose_properties(e)?;
    let targets = [
        ("cools_to", cools_to),
        ("cools_deep_to", cools_deep_to),
        ("compacts_to", compacts_to),
        ("metamorphoses_to", metamorphoses_to),
        ("erodes_to", erodes_to),
    ];
    for (field, target) in targets {
        if target.is_some_and(|t| t.0 == e.id) {
            return Err(invalid(field, "names the material itself"));
        }
    }
    Ok(MaterialProperties {
        form: e.form,
        hardness: e.hardness,
        repose_slope,
        cools_to,
        cools_deep_to,
        compacts_to,
        metamorphoses_to,
        erodes_to,
        compacts_volume,
        grain,
    })
}

/// Checks and resolves the grain class and the compaction volume, which
/// apply to loose materials only.
fn loose_properties(e: &MaterialInfo) -> Result<(Grain, (u8, u8)), PaletteError> {
    let invalid = |field, why| PaletteError::InvalidProperty { material: e.name.clone(), field, why };
    if e.form != Form::Loose && e.grain.is_some() {
        return Err(invalid("grain", "applies to Loose materials only"));
    }
    match e.compacts_volume {
        Some(_) if e.compacts_to.is_none() => Err(invalid("compacts_volume", "needs compacts_to")),
        Some((loose, rock)) if rock == 0 || rock > loose => {
            Err(invalid("compacts_volume", "must be (loose, rock) with 1 <= rock <= loose"))
        }
        volume => Ok((e.grain.unwrap_or_default(), volume.unwrap_or((1, 1)))),
    }
}

/// The tangent of an angle in degrees, `0 < degrees < 90`, from additions,
/// multiplications and divisions only (IEEE-exact on every platform, unlike
/// the C library's `tan`): the slopes the processes compare against are the
/// same everywhere, so a seed gives the same world everywhere.
pub(crate) fn tan_degrees(degrees: f64) -> f64 {
    if degrees > 45.0 {
        return 1.0 / tan_degrees(90.0 - degrees);
    }
    // x in (0, pi/4]: the Taylor series of sin and cos to x^21 are exact to
    // well below f32's precision.
    let x = degrees * (std::f64::consts::PI / 180.0);
    let x2 = x * x;
    let (mut sin, mut cos) = (0.0, 0.0);
    let (mut s_term, mut c_term) = (x, 1.0);
    for n in 1..=11 {
        sin += s_term;
        cos += c_term;
        let n = f64::from(n);
        s_term *= -x2 / ((2.0 * n) * (2.0 * n + 1.0));
        c_term *= -x2 / ((2.0 * n - 1.0) * (2.0 * n));
    }
    sin / cos
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::material::materials;

    #[test]
    fn shipped_palette_parses_and_names_every_shipped_material() {
        let p = Palette::from_ron_str(DEFAULT_RON).expect("assets/materials.ron parses");
        for id in (0..=materials::MAGMA.0).chain(materials::GABBRO.0..=materials::HORNFELS.0) {
            assert!(p.get(MaterialId(id)).is_some(), "material {id} missing");
        }
        assert_eq!(p.get(materials::GRANITE).map(|m| m.name.as_str()), Some("granite"));
    }

    #[test]
    fn duplicate_ids_and_names_are_errors() {
        let dup_id = r#"[(id: 1, name: "a", colour: (0,0,0)), (id: 1, name: "b", colour: (0,0,0))]"#;
        assert!(matches!(Palette::from_ron_str(dup_id), Err(PaletteError::DuplicateId(1))));
        let dup_name = r#"[(id: 1, name: "a", colour: (0,0,0)), (id: 2, name: "a", colour: (0,0,0))]"#;
        assert!(matches!(Palette::from_ron_str(dup_name), Err(PaletteError::DuplicateName(_))));
    }

    #[test]
    fn shipped_properties_are_what_the_processes_expect() {
        let p = Palette::shipped();
        assert_eq!(p.properties(materials::AIR).form, Form::Gas);
        assert_eq!(p.properties(materials::WATER).form, Form::Liquid);
        assert_eq!(p.properties(materials::BEDROCK).hardness, 1.0);
        let sediment = p.properties(materials::SEDIMENT);
        assert_eq!(sediment.form, Form::Loose);
        assert!((sediment.repose_slope - 34f32.to_radians().tan()).abs() < 1e-6);
        assert_eq!(sediment.compacts_to, Some(materials::SANDSTONE));
        let magma = p.properties(materials::MAGMA);
        assert_eq!((magma.cools_to, magma.cools_deep_to), (Some(materials::BASALT), Some(materials::GABBRO)));
        assert_eq!(magma.hardness, 1.0, "rain does not wash magma into sediment");
        let baked = |m: MaterialId| p.properties(m).metamorphoses_to;
        assert_eq!(baked(materials::SANDSTONE), Some(materials::QUARTZITE));
        assert_eq!(baked(materials::LIMESTONE), Some(materials::MARBLE));
        assert_eq!(baked(materials::CLAY), Some(materials::HORNFELS));
        assert_eq!(baked(materials::GRANITE), None);
        assert_eq!(*p.properties(MaterialId(999)), MaterialProperties::UNKNOWN);
    }

    #[test]
    fn shipped_rocks_erode_into_loose_grains() {
        let p = Palette::shipped();
        let to = |m: MaterialId| p.properties(m).erodes_to;
        assert_eq!(to(materials::SANDSTONE), Some(materials::SAND));
        assert_eq!(to(materials::GRANITE), Some(materials::GRAVEL));
        assert_eq!(to(materials::BASALT), Some(materials::GRAVEL));
        assert_eq!(to(materials::LIMESTONE), Some(materials::SEDIMENT));
        assert_eq!(to(materials::SAND), None);
        for grains in [materials::SAND, materials::GRAVEL] {
            assert_eq!(p.properties(grains).form, Form::Loose);
        }
        assert!((p.properties(materials::GRAVEL).repose_slope - 38f32.to_radians().tan()).abs() < 1e-6);
    }

    #[test]
    fn erodes_to_names_a_loose_material_and_applies_to_terrain() {
        let bad = |entry: &str| {
            let text = format!(
                r#"[(id: 0, name: "air", colour: (0,0,0), form: Gas),
                    (id: 2, name: "sand", colour: (0,0,0), form: Loose, angle_of_repose: 34.0), {entry}]"#
            );
            Palette::from_ron_str(&text).map(|_| ()).map_err(|e| e.to_string())
        };
        assert_eq!(bad(r#"(id: 1, name: "rock", colour: (0,0,0), erodes_to: "sand")"#), Ok(()));
        let e = bad(r#"(id: 1, name: "rock", colour: (0,0,0), erodes_to: "air")"#).unwrap_err();
        assert!(e.contains("erodes_to") && e.contains("Loose material"), "{e}");
        let e = bad(r#"(id: 1, name: "rock", colour: (0,0,0), erodes_to: "dust")"#).unwrap_err();
        assert!(e.contains("\"dust\"") && e.contains("does not list"), "{e}");
        let e = bad(r#"(id: 1, name: "sea", colour: (0,0,0), form: Liquid, erodes_to: "sand")"#).unwrap_err();
        assert!(e.contains("terrain"), "{e}");
    }

    #[test]
    fn tan_degrees_matches_the_library_tan_and_the_shipped_grains_and_volumes_resolve() {
        for a in [0.5f64, 10.0, 30.0, 34.0, 44.9, 45.0, 45.1, 60.0, 89.0] {
            let (ours, libm) = (tan_degrees(a), a.to_radians().tan());
            assert!((ours - libm).abs() <= 1e-12 * libm.max(1.0), "{a}: {ours} against {libm}");
        }
        let p = Palette::shipped();
        let silt = p.properties(materials::SILT);
        assert_eq!((silt.grain, silt.compacts_to, silt.compacts_volume), (Grain::Silt, Some(materials::SHALE), (2, 1)));
        assert_eq!(p.properties(materials::SEDIMENT).compacts_volume, (4, 3));
        assert_eq!(p.properties(materials::SOIL).grain, Grain::Sand, "the default class");
    }

    #[test]
    fn a_palette_without_properties_reads_as_unerodible_solids() {
        let p = Palette::from_ron_str(r#"[(id: 2, name: "rock", colour: (1, 2, 3))]"#).unwrap();
        assert_eq!(*p.properties(MaterialId(2)), MaterialProperties::UNKNOWN);
    }

    #[test]
    fn bad_properties_are_named_errors() {
        let bad = |entry: &str| {
            let text = format!(r#"[(id: 0, name: "air", colour: (0,0,0), form: Gas), {entry}]"#);
            Palette::from_ron_str(&text).unwrap_err().to_string()
        };
        let e = bad(r#"(id: 1, name: "mud", colour: (0,0,0), hardness: 1.5)"#);
        assert!(e.contains("\"mud\"") && e.contains("hardness"), "{e}");
        let e = bad(r#"(id: 1, name: "sand", colour: (0,0,0), form: Loose)"#);
        assert!(e.contains("angle_of_repose") && e.contains("required"), "{e}");
        let e = bad(r#"(id: 1, name: "sand", colour: (0,0,0), form: Loose, angle_of_repose: 95.0)"#);
        assert!(e.contains("between 0 and 90"), "{e}");
        let e = bad(r#"(id: 1, name: "rock", colour: (0,0,0), angle_of_repose: 30.0)"#);
        assert!(e.contains("Loose materials only"), "{e}");
        let e = bad(r#"(id: 1, name: "lava", colour: (0,0,0), form: Molten, cools_to: "obsidian")"#);
        assert!(e.contains("\"obsidian\"") && e.contains("does not list"), "{e}");
        let e = bad(r#"(id: 1, name: "rock", colour: (0,0,0), cools_to: "air")"#);
        assert!(e.contains("Molten materials only"), "{e}");
        let e =
            bad(r#"(id: 1, name: "sand", colour: (0,0,0), form: Loose, angle_of_repose: 30.0, compacts_to: "sand")"#);
        assert!(e.contains("itself"), "{e}");
        let e = bad(r#"(id: 1, name: "lava", colour: (0,0,0), form: Molten, metamorphoses_to: "air")"#);
        assert!(e.contains("Solid and Loose materials only"), "{e}");
        let e = bad(r#"(id: 1, name: "rock", colour: (0,0,0), grain: Silt)"#);
        assert!(e.contains("grain") && e.contains("Loose materials only"), "{e}");
        let e = bad(
            r#"(id: 1, name: "sand", colour: (0,0,0), form: Loose, angle_of_repose: 30.0, compacts_to: "air", compacts_volume: (2, 3))"#,
        );
        assert!(e.contains("compacts_volume"), "{e}");
        let e = bad(r#"(id: 1, name: "rock", colour: (0,0,0), form: Plasma)"#);
        assert!(e.contains("valid RON"), "{e}");
    }

    #[test]
    fn malformed_text_and_missing_file_are_errors() {
        assert!(matches!(Palette::from_ron_str("[(id: -1)]"), Err(PaletteError::Parse(_))));
        assert!(matches!(Palette::load("/nonexistent/palette.ron"), Err(PaletteError::Io(_))));
    }
}
