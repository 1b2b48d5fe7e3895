//! A mesher driven by the change messages: a template for a user's app.
//!
//! The world (or a `region` of it) is cut into chunks of `32³` voxels. A chunk
//! is meshed when it first comes into view, then again only when a
//! `VoxelsChanged` message names a brick in it or next to it (its faces
//! depend on its neighbours' voxels) or a `ConsolidationFinished` names one
//! (its delta tint clears). Chunks wait in a queue, newest edits first (one
//! in four is the chunk waiting longest, so none starves); at
//! most `budget` start per frame and at most `max_in_flight` mesh at once, on
//! the async compute pool, so no frame waits for a mesh. The main thread only
//! takes a snapshot of the world (`DeltaStorage::snapshot`, O(layers)) and
//! hands it to the frame's tasks (counted in `MesherStats::read_time`); each
//! task reads its chunk and one-voxel border from the snapshot
//! (`WorldSnapshot::read_region` into its own buffer, and the deltas in it)
//! and greedy-meshes it (`binary-greedy-meshing`).
//!
//! Output is plain vertex arrays in [`ChunkMeshed`] messages (opaque terrain
//! and translucent water apart); the demo turns them into Bevy meshes. Nothing
//! here renders, so it runs and is tested headless.
//!
//! Why an example and not a crate feature: a mesher is tied to the app's
//! rendering choices (chunk size, materials, water, LOD, collision); a template
//! a user copies and changes serves better than an API to configure.

use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task, futures::check_ready};
use bevy_delta_overlay::prelude::*;
use bevy_delta_overlay::{Palette, WorldSnapshot, material::Form, plugin::FrameChanges};
use binary_greedy_meshing as bgm;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A chunk's edge in voxels.
pub const CHUNK: i32 = 32;
const CS: usize = CHUNK as usize;
type Mesher = bgm::Mesher<CS>;

/// A material id marked as holding a delta not yet consolidated (drawn
/// lighter). Palette ids stay below it.
const TINT: u16 = 0x8000;

/// Where and how fast to mesh.
#[derive(Resource, Clone, Debug)]
pub struct MesherSettings {
    /// The voxels to mesh (clipped to the world).
    pub region: Aabb,
    /// Chunks started per frame, at most.
    pub budget: usize,
    /// Chunks meshing at once, at most.
    pub max_in_flight: usize,
    /// Voxels at or beyond this z are left out (a cut-away showing the inside
    /// of the crust); `None`: everything.
    pub cut_z: Option<i32>,
}

/// What the mesher did: per frame and since the start.
#[derive(Resource, Clone, Debug, Default)]
pub struct MesherStats {
    /// Chunks whose mesh arrived this frame.
    pub meshed_this_frame: usize,
    /// Chunks meshed since the start.
    pub meshed: u64,
    /// Chunks waiting.
    pub queued: usize,
    /// Chunks meshing now.
    pub in_flight: usize,
    /// Chunks of the region not meshed yet (the first pass, or after the
    /// region or the cut changed): 0 once everything is on screen.
    pub unmeshed: usize,
    /// Time spent meshing on the pool, since the start.
    pub mesh_time: Duration,
    /// Main-thread time this frame: the snapshot and the tasks started (the
    /// voxels are read in the tasks).
    pub read_time: Duration,
    /// Meshings per chunk since the start (for tests and the curious).
    pub per_chunk: HashMap<IVec3, u32>,
}

/// A chunk's geometry: positions (relative to the chunk's corner), normals,
/// vertex colours, triangle indices.
#[derive(Clone, Debug, Default)]
pub struct Geometry {
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
    pub colors: Vec<[f32; 4]>,
    pub indices: Vec<u32>,
}

/// A chunk was meshed: replace its meshes.
#[derive(Message, Clone, Debug)]
pub struct ChunkMeshed {
    /// The chunk's corner in world voxels.
    pub corner: IVec3,
    /// Terrain.
    pub opaque: Geometry,
    /// Water, translucent.
    pub water: Geometry,
}

/// Meshes chunks of the storage named by the change messages.
pub struct MesherPlugin {
    pub settings: MesherSettings,
}

impl Plugin for MesherPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(self.settings.clone())
            .init_resource::<MesherStats>()
            .init_resource::<Queue>()
            .add_message::<ChunkMeshed>()
            .add_systems(Update, (mark, start, collect).chain().after(DeltaOverlaySystems::Stats));
    }
}

/// Chunks waiting: newest edits first, except that every fourth chunk taken
/// is the one waiting longest (since it was first marked; marking it again
/// does not reset that), so none starves while edits never stop. Lazy
/// deduplication: an entry whose stamp is not its chunk's current one is
/// skipped.
#[derive(Resource, Default)]
struct Queue {
    /// Chunks in order of their latest mark (taken from the back).
    newest: Vec<(IVec3, u64)>,
    /// Chunks in order of their first mark (taken from the front).
    oldest: VecDeque<(IVec3, u64)>,
    /// Each queued chunk's latest mark.
    latest: HashMap<IVec3, u64>,
    /// Each queued chunk's first mark.
    since: HashMap<IVec3, u64>,
    stamp: u64,
    taken: u64,
    in_flight: Vec<(IVec3, Task<(ChunkMeshed, Duration)>)>,
    /// The settings the chunks were last all marked for.
    marked_for: Option<(Aabb, Option<i32>)>,
    /// Chunks not meshed since the settings changed.
    unmeshed: HashSet<IVec3>,
}

impl Queue {
    fn push(&mut self, chunk: IVec3) {
        self.stamp += 1;
        self.latest.insert(chunk, self.stamp);
        self.newest.push((chunk, self.stamp));
        if !self.since.contains_key(&chunk) {
            self.since.insert(chunk, self.stamp);
            self.oldest.push_back((chunk, self.stamp));
        }
        // Bounded: compact when stale entries dominate.
        if self.newest.len() > 4 * self.latest.len() + 64 {
            let latest = &self.latest;
            self.newest.retain(|(c, s)| latest.get(c) == Some(s));
        }
        if self.oldest.len() > 4 * self.since.len() + 64 {
            let since = &self.since;
            self.oldest.retain(|(c, s)| since.get(c) == Some(s));
        }
    }

    fn pop(&mut self) -> Option<IVec3> {
        self.taken += 1;
        let chunk = if self.taken.is_multiple_of(4) {
            self.pop_oldest().or_else(|| self.pop_newest())
        } else {
            self.pop_newest()
        }?;
        self.latest.remove(&chunk);
        self.since.remove(&chunk);
        Some(chunk)
    }

    fn pop_newest(&mut self) -> Option<IVec3> {
        while let Some((chunk, stamp)) = self.newest.pop() {
            if self.latest.get(&chunk) == Some(&stamp) {
                return Some(chunk);
            }
        }
        None
    }

    fn pop_oldest(&mut self) -> Option<IVec3> {
        while let Some((chunk, stamp)) = self.oldest.pop_front() {
            if self.since.get(&chunk) == Some(&stamp) {
                return Some(chunk);
            }
        }
        None
    }

    fn len(&self) -> usize {
        self.latest.len()
    }
}

/// The corners of the chunks of `region` (chunks aligned to the region's corner).
fn chunks_of(region: Aabb) -> impl Iterator<Item = IVec3> {
    let n = (region.size() + IVec3::splat(CHUNK - 1)) / CHUNK;
    (0..n.y)
        .flat_map(move |y| (0..n.z).flat_map(move |z| (0..n.x).map(move |x| region.min + IVec3::new(x, y, z) * CHUNK)))
}

/// The corners of the chunks a box overlaps.
fn chunks_overlapping(region: Aabb, b: &Aabb) -> impl Iterator<Item = IVec3> {
    let lo = (b.min.max(region.min) - region.min).div_euclid(IVec3::splat(CHUNK));
    let hi = ((b.max.min(region.max) - IVec3::ONE) - region.min).div_euclid(IVec3::splat(CHUNK));
    (lo.y..=hi.y).flat_map(move |y| {
        (lo.z..=hi.z).flat_map(move |z| (lo.x..=hi.x).map(move |x| region.min + IVec3::new(x, y, z) * CHUNK))
    })
}

/// The chunk across the face a voxel lies on, per axis, if it lies on one:
/// its faces are part of that chunk's mesh too.
fn neighbours_across(region: Aabb, p: IVec3) -> impl Iterator<Item = IVec3> {
    let local = p - region.min;
    let corner = region.min + local.div_euclid(IVec3::splat(CHUNK)) * CHUNK;
    let within = local.rem_euclid(IVec3::splat(CHUNK));
    [IVec3::X, IVec3::Y, IVec3::Z].into_iter().filter_map(move |axis| {
        let w = within.dot(axis);
        let step = if w == 0 {
            -axis
        } else if w == CHUNK - 1 {
            axis
        } else {
            return None;
        };
        Some(corner + step * CHUNK).filter(|c| region.contains(*c))
    })
}

/// Queues the chunks the frame's messages name (everything, when the region
/// or the cut changed): a chunk holding a brick `VoxelsChanged` names (its
/// voxels changed) or `ConsolidationFinished` names (its delta tint clears),
/// and the chunk across a face from a changed voxel (`FrameChanges` has the
/// positions: at brick granularity every brick of a 32³ chunk touches a face,
/// and neighbours would be remeshed for nothing).
fn mark(
    settings: Res<MesherSettings>,
    storage: Res<DeltaStorage>,
    frame: Res<FrameChanges>,
    mut queue: ResMut<Queue>,
    mut changed: MessageReader<VoxelsChanged>,
    mut consolidated: MessageReader<ConsolidationFinished>,
) {
    let region = settings.region.intersection(&storage.bounds());
    if queue.marked_for != Some((region, settings.cut_z)) {
        queue.marked_for = Some((region, settings.cut_z));
        queue.unmeshed.clear();
        for c in chunks_of(region) {
            queue.push(c);
            queue.unmeshed.insert(c);
        }
    }
    let mut seen = HashSet::new();
    let changed_bricks: Vec<Aabb> = changed.read().flat_map(|m| m.bricks.iter().copied()).collect();
    let edited = !changed_bricks.is_empty();
    let bricks = consolidated.read().flat_map(|m| m.bricks.iter()).copied();
    for b in changed_bricks.into_iter().chain(bricks) {
        for c in chunks_overlapping(region, &b) {
            if seen.insert(c) {
                queue.push(c);
            }
        }
    }
    if edited {
        for change in frame.batch.changes() {
            if region.contains(change.position) {
                for c in neighbours_across(region, change.position) {
                    if seen.insert(c) {
                        queue.push(c);
                    }
                }
            }
        }
    }
}

/// Starts meshing the newest queued chunks, within the budget.
fn start(
    settings: Res<MesherSettings>,
    storage: Res<DeltaStorage>,
    palette: Option<Res<Palette>>,
    mut queue: ResMut<Queue>,
    mut stats: ResMut<MesherStats>,
    mut shared: Local<Option<Arc<Palette>>>,
) {
    let t = Instant::now();
    // One copy of the palette, shared by the tasks, renewed when it changes.
    if shared.is_none() || palette.as_ref().is_some_and(|p| p.is_changed()) {
        *shared = Some(Arc::new(palette.map_or_else(Palette::shipped, |p| p.clone())));
    }
    let Some(palette) = shared.clone() else { return };
    let region = settings.region.intersection(&storage.bounds());
    let cut_z = settings.cut_z;
    // One snapshot for the frame's tasks, taken only when one starts.
    let mut snapshot: Option<Arc<WorldSnapshot>> = None;
    let mut started = 0;
    while started < settings.budget && queue.in_flight.len() < settings.max_in_flight {
        let Some(corner) = queue.pop() else { break };
        let world = Arc::clone(snapshot.get_or_insert_with(|| Arc::new(storage.snapshot())));
        let palette = Arc::clone(&palette);
        let task = AsyncComputeTaskPool::get().spawn(async move {
            let t = Instant::now();
            let voxels = read_chunk(&world, region, corner, cut_z);
            let meshed = mesh_chunk(corner, &voxels, &palette);
            (meshed, t.elapsed())
        });
        queue.in_flight.push((corner, task));
        *stats.per_chunk.entry(corner).or_insert(0) += 1;
        started += 1;
    }
    stats.read_time = t.elapsed();
}

/// Hands on the meshes that are ready.
fn collect(mut queue: ResMut<Queue>, mut stats: ResMut<MesherStats>, mut out: MessageWriter<ChunkMeshed>) {
    let mut done = 0;
    let Queue { in_flight, unmeshed, .. } = &mut *queue;
    in_flight.retain_mut(|(_, task)| match check_ready(task) {
        Some((meshed, took)) => {
            stats.mesh_time += took;
            unmeshed.remove(&meshed.corner);
            out.write(meshed);
            done += 1;
            false
        }
        None => true,
    });
    stats.meshed_this_frame = done;
    stats.meshed += done as u64;
    stats.queued = queue.len();
    stats.in_flight = queue.in_flight.len();
    stats.unmeshed = queue.unmeshed.len();
}

/// The chunk and its one-voxel border, padded as the mesher wants it
/// (`pad_linearize` order), air outside the region or beyond the cut;
/// voxels holding a delta marked with [`TINT`]. On any thread.
fn read_chunk(world: &WorldSnapshot, region: Aabb, corner: IVec3, cut_z: Option<i32>) -> Vec<u16> {
    let mut voxels = vec![0u16; Mesher::CS_P3];
    let padded = Aabb::new(corner - IVec3::ONE, corner + IVec3::splat(CHUNK + 1)).intersection(&region);
    let padded = match cut_z {
        Some(z) => Aabb::new(padded.min, padded.max.with_z(padded.max.z.min(z))),
        None => padded,
    };
    if padded.size().cmple(IVec3::ZERO).any() {
        return voxels;
    }
    let mut cells = bevy_delta_overlay::base::Region::default();
    if world.read_region(padded, &mut cells).is_err() {
        return voxels;
    }
    let size = padded.size();
    let index = |p: IVec3| {
        let l = p - corner + IVec3::ONE;
        l.z as usize + l.x as usize * Mesher::CS_P + l.y as usize * Mesher::CS_P2
    };
    let slice = cells.as_slice();
    for z in 0..size.z {
        for y in 0..size.y {
            let row = ((z * size.y + y) * size.x) as usize;
            for x in 0..size.x {
                let m = slice[row + x as usize];
                voxels[index(padded.min + IVec3::new(x, y, z))] = m.0 & !TINT;
            }
        }
    }
    for d in world.deltas_in(padded) {
        let i = index(d.position);
        if voxels[i] != 0 {
            voxels[i] |= TINT;
        }
    }
    voxels
}

/// Greedy-meshes a padded chunk: terrain opaque, liquids translucent (their
/// faces against air or terrain only), gases empty.
fn mesh_chunk(corner: IVec3, voxels: &[u16], palette: &Palette) -> ChunkMeshed {
    let form = |v: u16| palette.properties(MaterialId(v & !TINT)).form;
    let mut voxels = voxels.to_vec();
    for v in &mut voxels {
        if form(*v) == Form::Gas {
            *v = 0;
        }
    }
    let water: std::collections::BTreeSet<u16> =
        voxels.iter().copied().filter(|&v| v != 0 && form(v) == Form::Liquid).collect();
    let mut mesher = Mesher::new();
    mesher.mesh(&voxels, &water);
    let mut opaque = Geometry::default();
    let mut liquid = Geometry::default();
    for (face_index, quads) in mesher.quads.iter().enumerate() {
        let face = bgm::Face::from(face_index as u8);
        let n = face.n();
        let normal = [n[0] as f32, n[1] as f32, n[2] as f32];
        for quad in quads {
            let id = quad.voxel_id() as u16;
            let into = if water.contains(&id) { &mut liquid } else { &mut opaque };
            let (r, g, b) = palette.colour(MaterialId(id & !TINT));
            let lift = |c: u8| if id & TINT != 0 { f32::from(c) / 510.0 + 0.5 } else { f32::from(c) / 255.0 };
            let alpha = if water.contains(&id) { 0.55 } else { 1.0 };
            let colour = [srgb_to_linear(lift(r)), srgb_to_linear(lift(g)), srgb_to_linear(lift(b)), alpha];
            let base = into.positions.len() as u32;
            for v in face.vertices_packed(*quad) {
                into.positions.push([v.x() as f32, v.y() as f32, v.z() as f32]);
                into.normals.push(normal);
                into.colors.push(colour);
            }
            into.indices.extend([2, 0, 1, 1, 3, 2].map(|i| base + i));
        }
    }
    ChunkMeshed { corner, opaque, water: liquid }
}

fn srgb_to_linear(c: f32) -> f32 {
    if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
}
