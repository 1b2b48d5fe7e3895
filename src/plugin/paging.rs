//! A paged world in an app (features `plugin` and `paging`): entities with a
//! [`WorldInterest`] say where the world must be resident; the
//! [`PagedStore`] resource is ticked, flushed to its file and measured each
//! frame.
//!
//! The paged world is its own store, beside (not inside) the overlay's
//! [`DeltaStorage`](crate::DeltaStorage): the group's members and the geology
//! work on a world held whole. Systems read and write it through
//! `Res<PagedStore>` / `ResMut<PagedStore>`; a read of a sector not resident
//! answers [`Paged::NotResident`](crate::paging::Paged) and never waits.

use crate::consolidation::DeltaConfig;
use crate::hash::{FastMap, fast_map};
use crate::paging::{Interest, PagedWorld, PagingSettings};
use crate::worldgen::WorldGen;
use bevy::app::{App, Plugin, Update};
use bevy::diagnostic::{Diagnostic, DiagnosticPath, Diagnostics, RegisterDiagnostic};
use bevy::ecs::schedule::{InternedScheduleLabel, IntoScheduleConfigs, ScheduleLabel, SystemSet};
use bevy::prelude::*;

/// Adds a paged world: the [`PagedStore`] resource (unless the app has one:
/// a user's own insert wins), the [`PagingSystems`] in `schedule`, and the
/// [`PagingDiagnostics`]. A world its generator and settings cannot make (a
/// sector size that is not a multiple of 16, bounds the base index cannot
/// address) is an error logged, and nothing is added.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy_delta_overlay::paging::PagingSettings;
/// use bevy_delta_overlay::plugin::{PagingPlugin, WorldInterest};
/// use bevy_delta_overlay::WorldGen;
///
/// let world = WorldGen { size: IVec3::new(16384, 512, 16384), sea_level: 200, ..default() };
/// let settings = PagingSettings { resident_budget: 768 << 20, ..default() };
/// App::new()
///     .add_plugins(MinimalPlugins)
///     .add_plugins(TransformPlugin)
///     .add_plugins(PagingPlugin { generator: world, settings, ..default() })
///     .add_systems(Startup, |mut commands: Commands| {
///         commands.spawn((WorldInterest { radius: 192 }, Transform::from_xyz(8000.0, 300.0, 8000.0)));
///     })
///     .run();
/// ```
#[derive(Clone, Debug)]
pub struct PagingPlugin {
    /// The schedule of its systems. Default `Update`.
    pub schedule: InternedScheduleLabel,
    /// The world. Default [`WorldGen::default`].
    pub generator: WorldGen,
    /// How it pages. Default [`PagingSettings::default`] (an unlimited
    /// budget: set `resident_budget` for a world larger than memory).
    pub settings: PagingSettings,
    /// Each sector's overlay. Default [`DeltaConfig::default`].
    pub config: DeltaConfig,
    /// The file that keeps the edits (feature `persistence`), flushed every
    /// frame. Default none: edits live in memory. A file that cannot be
    /// opened is reported as [`PagingFileError`] and the world runs without
    /// it.
    #[cfg(feature = "persistence")]
    pub file: Option<std::path::PathBuf>,
    /// Make no world: one is inserted later as a [`PagedStore`] (a region
    /// replication client inserts the one its server describes); the systems
    /// run once it exists. Default false.
    pub from_server: bool,
}

impl Default for PagingPlugin {
    fn default() -> Self {
        Self {
            schedule: Update.intern(),
            generator: WorldGen::default(),
            settings: PagingSettings::default(),
            config: DeltaConfig::default(),
            #[cfg(feature = "persistence")]
            file: None,
            from_server: false,
        }
    }
}

/// The paged world, as a resource.
#[derive(Resource, Deref, DerefMut, Debug)]
pub struct PagedStore(pub PagedWorld);

/// Why [`PagingPlugin::file`] could not be opened, or stopped taking edits
/// (the world runs on: its edits after the last acknowledged are kept in
/// memory only, bounded by `max_edits`).
#[cfg(feature = "persistence")]
#[derive(Resource, Debug)]
pub struct PagingFileError(pub crate::persistence::StoreError);

/// An entity the world must be resident around: every sector within
/// `radius` columns of its `GlobalTransform` (needs Bevy's
/// `TransformPlugin`), and ahead of it along its motion.
#[derive(Component, Reflect, Clone, Copy, Debug, PartialEq, Eq)]
#[reflect(Component)]
pub struct WorldInterest {
    /// Columns around it.
    pub radius: i32,
}

/// The phases of the paging systems, chained.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PagingSystems {
    /// The interest entities gathered (positions, velocities).
    Interest,
    /// The world ticked (page-ins installed, evictions), its edits handed
    /// to the file, the diagnostics measured.
    Tick,
}

/// Diagnostics of the paged world.
pub struct PagingDiagnostics;

impl PagingDiagnostics {
    /// Bytes of the resident sectors, in MiB.
    pub const RESIDENT_MIB: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/paging/resident_mib");
    /// Sectors resident.
    pub const RESIDENT_SECTORS: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/paging/resident_sectors");
    /// Reads this frame that found their sector not resident.
    pub const NOT_RESIDENT_READS: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/paging/not_resident_reads");
    /// Sectors being made.
    pub const IN_FLIGHT: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/paging/in_flight");
    /// Edits kept in memory (with a file: not yet acknowledged).
    pub const EDITS: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/paging/edits");
}

impl Plugin for PagingPlugin {
    fn build(&self, app: &mut App) {
        if !self.from_server && !app.world().contains_resource::<PagedStore>() {
            match self.open(app) {
                Ok(world) => app.insert_resource(PagedStore(world)),
                Err(e) => {
                    error!("the paged world cannot be made: {e}");
                    return;
                }
            };
        }
        app.register_type::<WorldInterest>()
            .register_diagnostic(Diagnostic::new(PagingDiagnostics::RESIDENT_MIB).with_suffix("MiB"))
            .register_diagnostic(Diagnostic::new(PagingDiagnostics::RESIDENT_SECTORS))
            .register_diagnostic(Diagnostic::new(PagingDiagnostics::NOT_RESIDENT_READS))
            .register_diagnostic(Diagnostic::new(PagingDiagnostics::IN_FLIGHT))
            .register_diagnostic(Diagnostic::new(PagingDiagnostics::EDITS))
            .configure_sets(self.schedule, (PagingSystems::Interest, PagingSystems::Tick).chain())
            .add_systems(
                self.schedule,
                gather_interest.in_set(PagingSystems::Interest).run_if(resource_exists::<PagedStore>),
            )
            .add_systems(self.schedule, tick.in_set(PagingSystems::Tick).run_if(resource_exists::<PagedStore>));
    }
}

impl PagingPlugin {
    /// The world, from its file when one is given and opens.
    fn open(&self, app: &mut App) -> Result<PagedWorld, crate::VoxelError> {
        #[cfg(feature = "persistence")]
        if let Some(path) = &self.file {
            let opened = PagedWorld::open(path, self.generator.clone(), self.settings.clone(), self.config.clone());
            match opened {
                Ok(world) => return Ok(world),
                Err(e) => {
                    error!("{e}: the paged world runs without its file");
                    app.insert_resource(PagingFileError(e));
                }
            }
        }
        let _ = app;
        PagedWorld::new(self.generator.clone(), self.settings.clone(), self.config.clone())
    }
}

/// Where each interest entity was last frame, to tell its velocity.
#[derive(Default)]
struct LastSeen {
    at: Option<FastMap<Entity, Vec3>>,
    interest: Vec<Interest>,
}

/// Gathers the interest entities' places and velocities into the world.
fn gather_interest(
    time: Res<Time>,
    query: Query<(Entity, &WorldInterest, &GlobalTransform)>,
    mut last: Local<LastSeen>,
    mut store: ResMut<PagedStore>,
) {
    let dt = time.delta_secs();
    let LastSeen { at, interest } = &mut *last;
    let at = at.get_or_insert_with(fast_map);
    interest.clear();
    for (entity, w, transform) in &query {
        let here = transform.translation();
        let velocity = match at.insert(entity, here) {
            Some(before) if dt > 0.0 => (here - before) / dt,
            _ => Vec3::ZERO,
        };
        // A cast saturates: a transform anywhere is a place (outside the
        // world, it wants nothing).
        interest.push(Interest { center: here.floor().as_ivec3(), radius: w.radius, velocity });
    }
    if at.len() > interest.len() {
        at.retain(|e, _| query.contains(*e));
    }
    store.set_interest(interest);
}

/// Ticks the world, hands its edits to the file, measures it.
fn tick(
    mut store: ResMut<PagedStore>,
    mut reads: Local<(u64, u64)>,
    mut diagnostics: Diagnostics,
    #[cfg(feature = "persistence")] mut commands: Commands,
    #[cfg(feature = "persistence")] reported: Option<Res<PagingFileError>>,
) {
    store.tick();
    #[cfg(feature = "persistence")]
    if let Err(e) = store.flush()
        && reported.is_none()
    {
        // The writer stopped: what it acknowledged is in the file; the edits
        // after it stay in memory (bounded by `max_edits`). Said once, as a
        // resource an app can watch, and in the log.
        error!("the paged world's file stopped taking edits: {e}");
        commands.insert_resource(PagingFileError(e));
    }
    let stats = store.stats();
    let (total, missed) = store.reads();
    let missed_now = missed.saturating_sub(reads.1);
    *reads = (total, missed);
    diagnostics.add_measurement(&PagingDiagnostics::RESIDENT_MIB, || stats.resident_bytes as f64 / (1 << 20) as f64);
    diagnostics.add_measurement(&PagingDiagnostics::RESIDENT_SECTORS, || stats.resident_sectors as f64);
    diagnostics.add_measurement(&PagingDiagnostics::NOT_RESIDENT_READS, || missed_now as f64);
    diagnostics.add_measurement(&PagingDiagnostics::IN_FLIGHT, || stats.in_flight as f64);
    diagnostics.add_measurement(&PagingDiagnostics::EDITS, || stats.edits as f64);
}
