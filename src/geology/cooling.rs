//! How an intrusion cools, once it has stopped growing: from its margins in,
//! thin bodies first, into a fine-grained rock at the margin and a coarse one
//! in the core; and how it bakes the rock around it (the contact aureole).
//!
//! A voxel `d` voxels from the body's margin (`d = 1` touches rock that is not
//! molten; the distance is counted face to face, a breadth-first search
//! within the body) solidifies `cooling_seconds * d²` after the body stopped
//! growing: conduction moves a solidification front as the square root of
//! time. A dike two voxels thin is all margin and solidifies at once; a stock
//! of the same volume takes `radius²` times as long at its core.
//!
//! # Invariants
//!
//! - `QUEUED`: every voxel of a settled body is in the queue once, with when it
//!   solidifies and into what; the queue pops the earliest first, ties in the
//!   order the body melted them, so a seed decides the same world everywhere.
//! - `BOUNDED`: a body holds at most the settings' `max_molten` voxels, so the
//!   distance search and the aureole search visit at most that many voxels
//!   each (the aureole's map at most `max_molten` entries past the body).

use super::state::{StateError, StateReader, StateWriter};
use super::terrain::Terrain;
use crate::hash::{FastMap, fast_map};
use crate::material::{MaterialId, materials};
use glam::IVec3;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

/// What a magma is made of, which decides the rocks it cools into: its
/// chilled margin fine-grained, its slowly cooled core coarse-grained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub enum Composition {
    /// Basalt at the margin, gabbro in the core.
    #[default]
    Mafic,
    /// Rhyolite at the margin, granite in the core.
    Felsic,
    /// Rocks of your palette.
    Rocks {
        /// The fine-grained rock of the margin.
        margin: MaterialId,
        /// The coarse-grained rock of the core.
        core: MaterialId,
    },
}

impl Composition {
    /// The rocks it cools into: `(margin, core)`.
    ///
    /// ```
    /// use bevy_delta_overlay::{geology::Composition, materials};
    /// assert_eq!(Composition::Felsic.rocks(), (materials::RHYOLITE, materials::GRANITE));
    /// ```
    pub fn rocks(self) -> (MaterialId, MaterialId) {
        match self {
            Self::Mafic => (materials::BASALT, materials::GABBRO),
            Self::Felsic => (materials::RHYOLITE, materials::GRANITE),
            Self::Rocks { margin, core } => (margin, core),
        }
    }
}

/// How a settled body cools and bakes, from the settings.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cooling {
    pub magma: MaterialId,
    pub composition: Composition,
    pub cooling_seconds: f32,
    pub chilled_margin: u32,
    pub aureole: u32,
    pub max_molten: usize,
}

/// Molten voxels of settled bodies, earliest to solidify first:
/// `(when, order, position, into)`.
pub(super) type CoolingQueue = BinaryHeap<Reverse<(Duration, u64, [i32; 3], MaterialId)>>;

/// Writes the queue (its order is the heap's: `restore` rebuilds the same
/// heap order from any).
pub(super) fn save(queue: &CoolingQueue, out: &mut StateWriter) {
    out.len_of(queue.len());
    for Reverse((when, order, p, into)) in queue.iter() {
        out.duration(*when);
        out.u64(*order);
        out.ivec3(IVec3::from_array(*p));
        out.u32(u32::from(into.0));
    }
}

/// Reads what [`save`] wrote.
pub(super) fn restore(input: &mut StateReader<'_>) -> Result<CoolingQueue, StateError> {
    let n = input.len_of(32)?;
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        let (when, order, p) = (input.duration()?, input.u64()?, input.ivec3()?);
        let into = u16::try_from(input.u32()?).map_err(|_| StateError::Invalid("material"))?;
        items.push(Reverse((when, order, p.to_array(), MaterialId(into))));
    }
    Ok(CoolingQueue::from(items))
}

/// The six face neighbours.
const FACES: [IVec3; 6] = [IVec3::X, IVec3::NEG_X, IVec3::Y, IVec3::NEG_Y, IVec3::Z, IVec3::NEG_Z];

/// A body has stopped growing at `now`: bakes its aureole and queues each of
/// its voxels still molten to solidify. Returns the voxels metamorphosed and
/// the voxels no longer magma (another process changed them: lost).
pub(super) fn settle(
    terrain: &mut Terrain<'_>,
    c: &Cooling,
    voxels: &[IVec3],
    now: Duration,
    (queue, order): (&mut CoolingQueue, &mut u64),
) -> (u64, u64) {
    let molten: Vec<IVec3> = voxels.iter().copied().filter(|&p| terrain.get(p) == c.magma).collect();
    let lost = (voxels.len() - molten.len()) as u64;
    let depth = margin_distances(terrain, c.magma, &molten);
    let (margin, core) = c.composition.rocks();
    for (&p, &d) in molten.iter().zip(&depth) {
        let when = now + Duration::from_secs_f32((c.cooling_seconds.max(0.0) * (d * d) as f32).min(1e9));
        let into = if d <= c.chilled_margin.max(1) { margin } else { core };
        queue.push(Reverse((when, *order, p.to_array(), into)));
        *order += 1;
    }
    (bake(terrain, c, &molten), lost)
}

/// Each voxel's distance to the body's margin, face to face within the body:
/// 1 beside a voxel that is not magma; a voxel walled in by other magma alone
/// gets one more than the deepest found.
fn margin_distances(terrain: &mut Terrain<'_>, magma: MaterialId, body: &[IVec3]) -> Vec<u32> {
    let mut index: FastMap<IVec3, usize> = fast_map();
    index.extend(body.iter().enumerate().map(|(i, &p)| (p, i)));
    let mut depth = vec![0u32; body.len()];
    let mut frontier = VecDeque::new();
    for (i, &p) in body.iter().enumerate() {
        let at_margin = FACES.iter().any(|&f| !index.contains_key(&(p + f)) && terrain.get(p + f) != magma);
        if at_margin {
            depth[i] = 1;
            frontier.push_back(i);
        }
    }
    while let Some(i) = frontier.pop_front() {
        for f in FACES {
            if let Some(&j) = index.get(&(body[i] + f))
                && depth[j] == 0
            {
                depth[j] = depth[i] + 1;
                frontier.push_back(j);
            }
        }
    }
    let deepest = depth.iter().copied().max().unwrap_or(0);
    depth.iter_mut().filter(|d| **d == 0).for_each(|d| *d = deepest + 1);
    depth
}

/// The contact aureole: rock within `aureole` voxels (face to face, through
/// terrain) of the body becomes what its palette entry says it
/// `metamorphoses_to`. Returns the voxels changed.
fn bake(terrain: &mut Terrain<'_>, c: &Cooling, body: &[IVec3]) -> u64 {
    if c.aureole == 0 {
        return 0;
    }
    let mut seen: FastMap<IVec3, u32> = fast_map();
    seen.extend(body.iter().map(|&p| (p, 0)));
    let mut frontier: VecDeque<IVec3> = body.iter().copied().collect();
    let (bounds, cap) = (terrain.bounds(), body.len() + c.max_molten);
    let mut baked = 0;
    while let Some(p) = frontier.pop_front() {
        let d = seen[&p];
        if d >= c.aureole {
            continue;
        }
        for f in FACES {
            let q = p + f;
            if seen.contains_key(&q) || !bounds.contains(q) || seen.len() >= cap {
                continue;
            }
            let m = terrain.get(q);
            let props = *terrain.properties(m);
            if !props.is_matter() || m == c.magma {
                continue;
            }
            seen.insert(q, d + 1);
            frontier.push_back(q);
            if let Some(into) = props.metamorphoses_to {
                terrain.set(q, into);
                baked += 1;
            }
        }
    }
    baked
}

/// Solidifies the queued voxels due by `now`, earliest first. Returns
/// `(cooled, lost)`.
pub(super) fn solidify(
    terrain: &mut Terrain<'_>,
    magma: MaterialId,
    queue: &mut CoolingQueue,
    now: Duration,
) -> (u64, u64) {
    let (mut cooled, mut lost) = (0, 0);
    while queue.peek().is_some_and(|Reverse((when, ..))| *when <= now) {
        match solidify_one(terrain, magma, queue) {
            Some(true) => cooled += 1,
            Some(false) => lost += 1,
            None => break,
        }
    }
    (cooled, lost)
}

/// Solidifies the earliest queued voxel: `Some(true)` when it cooled,
/// `Some(false)` when it was no longer magma (lost), `None` when the queue is
/// empty.
pub(super) fn solidify_one(terrain: &mut Terrain<'_>, magma: MaterialId, queue: &mut CoolingQueue) -> Option<bool> {
    let Reverse((_, _, p, into)) = queue.pop()?;
    let p = IVec3::from_array(p);
    if terrain.get(p) != magma {
        return Some(false);
    }
    terrain.set(p, into);
    Some(true)
}
