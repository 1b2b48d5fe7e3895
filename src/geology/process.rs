//! What every process is: a [`GeologyProcess`], and (with the plugin) the one
//! generic [`GeologyPlugin`] that runs any of them.

use super::state::{StateError, StateReader, StateWriter};
use super::terrain::Terrain;
use crate::storage::DeltaStorage;

/// Where a process runs in the frame: the processes' sets, chained in this
/// order before the overlay's `Ingest` (feature `plugin`). Order a system
/// against them to see (`after(GeologySystems::Flush)`: the frame's edits are
/// written as `MaterialUpdate`s) or to feed (`before(GeologySystems::Intrusion)`)
/// the processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "plugin", derive(bevy::ecs::schedule::SystemSet))]
pub enum GeologySystems {
    /// A region rises (`Uplift`, not in `GeologyPlugins`: add
    /// `GeologyPlugin::<Uplift>`).
    Uplift,
    /// Magma rises and cools.
    Intrusion,
    /// Rain erodes and deposits.
    Hydraulic,
    /// Loose slopes relax.
    Thermal,
    /// Submerged sediment settles, buried sediment compacts.
    Deposition,
    /// Processes of your own. Two of them in this set run in an order Bevy
    /// picks: order them against each other for a deterministic world.
    Custom,
    /// The frame's edits are written as one batch of `MaterialUpdate`s.
    Flush,
}

/// A geological process: its state (random numbers, queues, what it did) is
/// the implementing type; its tunables are [`Settings`](Self::Settings); a
/// frame of it is [`step`](Self::step), reading and writing the world through a
/// [`Terrain`]. Tests and tools call `step` without an `App`; with the plugin,
/// [`GeologyPlugin<P>`] runs it every frame.
///
/// ```
/// use bevy_delta_overlay::geology::{GeologyProcess, HydraulicErosion, HydraulicSettings, Terrain, Workspace};
/// use bevy_delta_overlay::{DeltaConfig, DeltaStorage, Palette, WorldGen};
/// use glam::IVec3;
/// let generator = WorldGen { size: IVec3::new(64, 256, 64), ..Default::default() };
/// let mut world = DeltaStorage::new(generator.build()?, DeltaConfig::default());
/// let (palette, mut workspace) = (Palette::shipped(), Workspace::new());
/// let settings = HydraulicSettings::default();
/// let mut rain = HydraulicErosion::new(&settings);
/// rain.step(&mut Terrain::new(&world, &palette, &mut workspace), &settings);
/// world.batch_update(workspace.take_edits());
/// assert_eq!(rain.stats.droplets, u64::from(settings.droplets_per_frame));
/// # Ok::<(), bevy_delta_overlay::VoxelError>(())
/// ```
pub trait GeologyProcess: Send + Sync + 'static {
    /// The process's tunables (a reflectable resource with the plugin).
    type Settings: Clone + Default + Send + Sync + 'static;
    /// A short name, for logs and the debug panel.
    const NAME: &'static str;
    /// The set it runs in.
    const SET: GeologySystems;

    /// A process that has not run yet, seeded by its settings.
    fn new(settings: &Self::Settings) -> Self;

    /// Whether the settings let it run.
    fn enabled(settings: &Self::Settings) -> bool;

    /// Takes the seed of `settings` when it is not the one the process was
    /// seeded with: its random numbers start over from it, the rest of its
    /// state stays. The plugin calls it when the settings change.
    fn reseed(&mut self, settings: &Self::Settings);

    /// One frame of it.
    fn step(&mut self, terrain: &mut Terrain<'_>, settings: &Self::Settings);

    /// Writes what it needs to go on exactly after a reload (its random
    /// numbers, queues, memory; not its stats, which count this run), to be
    /// saved with `storage`, the world as saved. A change-driven process
    /// first takes into its queue the surface changes it has not read yet:
    /// the reloaded world's log starts empty. Default: nothing (it starts
    /// fresh after a reload).
    fn save(&mut self, storage: &DeltaStorage, settings: &Self::Settings, out: &mut StateWriter) {
        let _ = (storage, settings, out);
    }

    /// Reads what [`save`](Self::save) wrote into a process `new` made, for
    /// `storage`, the world as loaded.
    ///
    /// # Errors
    /// A [`StateError`] for bytes `save` did not write; the caller then keeps
    /// a fresh process.
    fn restore(&mut self, storage: &DeltaStorage, input: &mut StateReader<'_>) -> Result<(), StateError> {
        let _ = (storage, input);
        Ok(())
    }
}

#[cfg(feature = "plugin")]
pub use plugin::{GeologyPlugin, GeologyPlugins, GeologyProcesses, GeologyTimes, ProcessEntry, ProcessTime};

#[cfg(feature = "plugin")]
mod plugin {
    use super::{GeologyProcess, GeologySystems};
    use crate::geology::terrain::{Terrain, Workspace};
    use crate::geology::{Deposition, HydraulicErosion, Intrusion, ThermalErosion};
    use crate::material::{MaterialUpdate, Palette};
    use crate::plugin::{DeltaOverlaySystems, PoolExecutor};
    use crate::storage::{DeltaStorage, SurfaceBuild};
    use bevy::app::PluginGroupBuilder;
    use bevy::diagnostic::{Diagnostic, DiagnosticPath, Diagnostics, RegisterDiagnostic};
    use bevy::ecs::component::Mutable;
    use bevy::ecs::schedule::{InternedScheduleLabel, ScheduleLabel};
    use bevy::prelude::*;
    use bevy::reflect::GetTypeRegistration;
    use bevy::tasks::{AsyncComputeTaskPool, ComputeTaskPool, Task, futures::check_ready};
    use std::any::TypeId;
    use std::collections::BTreeMap;
    use std::marker::PhantomData;
    use std::time::{Duration, Instant};

    /// Runs the process `P` every frame in its [`GeologySystems`] set, with its
    /// settings as a reflectable resource (the app's own insert wins) and its
    /// state as a resource `P`.
    ///
    /// ```no_run
    /// use bevy::prelude::*;
    /// use bevy_delta_overlay::geology::{GeologyPlugin, HydraulicErosion, HydraulicSettings};
    /// use bevy_delta_overlay::prelude::*;
    ///
    /// App::new()
    ///     .add_plugins((MinimalPlugins, DeltaOverlayPlugin::default()))
    ///     // More rain than the default.
    ///     .add_plugins(GeologyPlugin::<HydraulicErosion>::with(Update, HydraulicSettings {
    ///         droplets_per_frame: 400,
    ///         ..default()
    ///     }))
    ///     .run();
    /// ```
    pub struct GeologyPlugin<P: GeologyProcess> {
        /// The schedule of the overlay's systems. Default `Update`.
        pub schedule: InternedScheduleLabel,
        /// The settings, unless the app inserted its own.
        pub settings: P::Settings,
        process: PhantomData<fn() -> P>,
    }

    impl<P: GeologyProcess> GeologyPlugin<P> {
        /// The process with its default settings, in `schedule`.
        pub fn new(schedule: impl ScheduleLabel) -> Self {
            Self::with(schedule, P::Settings::default())
        }

        /// The process with `settings`, in `schedule`.
        pub fn with(schedule: impl ScheduleLabel, settings: P::Settings) -> Self {
            Self { schedule: schedule.intern(), settings, process: PhantomData }
        }
    }

    impl<P: GeologyProcess> Default for GeologyPlugin<P> {
        fn default() -> Self {
            Self::new(Update)
        }
    }

    /// The processes an app runs, in frame order (by set, then name, whatever
    /// order their plugins were added in): what the debug panel lists, their
    /// settings and state read through reflection.
    #[derive(Resource, Clone, Debug, Default, PartialEq, Eq)]
    pub struct GeologyProcesses(pub Vec<ProcessEntry>);

    /// One process of [`GeologyProcesses`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ProcessEntry {
        /// [`GeologyProcess::SET`]: where it runs in the frame.
        pub set: GeologySystems,
        /// [`GeologyProcess::NAME`].
        pub name: &'static str,
        /// The type of its settings resource.
        pub settings: TypeId,
        /// The type of its state resource (the process).
        pub state: TypeId,
    }

    /// Each process's main-thread time, by [`GeologyProcess::NAME`]: what the
    /// debug panel shows. Each is also a Bevy diagnostic,
    /// `geology/<name>`, in ms a frame.
    #[derive(Resource, Clone, Debug, Default, PartialEq, Eq)]
    pub struct GeologyTimes(pub BTreeMap<&'static str, ProcessTime>);

    /// The main-thread time of one process's steps.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct ProcessTime {
        /// The last step's.
        pub last: Duration,
        /// The longest step's.
        pub max: Duration,
        /// Every step's, summed.
        pub total: Duration,
        /// Steps timed.
        pub steps: u64,
    }

    impl ProcessTime {
        /// The mean of a step (zero before the first).
        pub fn mean(&self) -> Duration {
            self.total.checked_div(self.steps.max(1) as u32).unwrap_or_default()
        }

        fn record(&mut self, step: Duration) {
            self.last = step;
            self.max = self.max.max(step);
            self.total += step;
            self.steps += 1;
        }
    }

    /// The diagnostic of process `P`'s time.
    fn diagnostic_path(name: &str) -> DiagnosticPath {
        DiagnosticPath::new(format!("geology/{name}"))
    }

    impl<P> Plugin for GeologyPlugin<P>
    where
        P: GeologyProcess + Resource + Component<Mutability = Mutable> + GetTypeRegistration,
        P::Settings: Resource + GetTypeRegistration,
    {
        fn build(&self, app: &mut App) {
            shared(app, self.schedule);
            if !app.world().contains_resource::<P::Settings>() {
                app.insert_resource(self.settings.clone());
            }
            let state = P::new(app.world().resource::<P::Settings>());
            app.register_type::<P::Settings>().register_type::<P>().insert_resource(state);
            let entry = ProcessEntry {
                set: P::SET,
                name: P::NAME,
                settings: TypeId::of::<P::Settings>(),
                state: TypeId::of::<P>(),
            };
            let mut processes = app.world_mut().resource_mut::<GeologyProcesses>();
            // In frame order whatever order the plugins were added in.
            let at = processes.0.partition_point(|e| (e.set, e.name) < (P::SET, P::NAME));
            processes.0.insert(at, entry);
            app.register_diagnostic(Diagnostic::new(diagnostic_path(P::NAME)).with_suffix("ms"))
                .add_systems(self.schedule, run::<P>.in_set(P::SET));
            #[cfg(feature = "persistence")]
            crate::geology::saved::add::<P>(app);
        }

        fn finish(&self, app: &mut App) {
            // The first process to finish builds it; the others find it built.
            build_surfaces(app.world_mut());
        }
    }

    /// One frame of `P`, when its settings enable it, timed (no deferred
    /// parameter: the chain of processes needs no sync point).
    fn run<P>(
        storage: Res<DeltaStorage>,
        palette: Res<Palette>,
        mut workspace: ResMut<Workspace>,
        settings: Res<P::Settings>,
        mut process: ResMut<P>,
        mut times: ResMut<GeologyTimes>,
    ) where
        P: GeologyProcess + Resource + Component<Mutability = Mutable>,
        P::Settings: Resource,
    {
        if settings.is_changed() {
            // A new seed (or settings inserted after the plugin) takes effect now.
            process.reseed(&settings);
        }
        if P::enabled(&settings) {
            let start = Instant::now();
            process.step(&mut Terrain::new(&storage, &palette, &mut workspace), &settings);
            times.0.entry(P::NAME).or_default().record(start.elapsed());
        }
    }

    /// The frame's process times as diagnostics, once for every process.
    fn time_diagnostics(
        times: Res<GeologyTimes>,
        mut diagnostics: Diagnostics,
        mut paths: Local<Vec<(&'static str, DiagnosticPath)>>,
    ) {
        for (name, time) in &times.0 {
            let at = match paths.iter().position(|(n, _)| n == name) {
                Some(at) => at,
                None => {
                    paths.push((name, diagnostic_path(name)));
                    paths.len() - 1
                }
            };
            diagnostics.add_measurement(&paths[at].1, || time.last.as_secs_f64() * 1e3);
        }
    }

    /// Marks that the parts every process shares are set up in this app.
    #[derive(Resource)]
    struct GeologyShared;

    /// The sets, the workspace, the palette and the flush, once for every
    /// process, whichever is built first.
    fn shared(app: &mut App, schedule: InternedScheduleLabel) {
        if app.world().contains_resource::<GeologyShared>() {
            return;
        }
        if !app.world().contains_resource::<Palette>() {
            app.insert_resource(Palette::shipped());
        }
        use GeologySystems::*;
        app.insert_resource(GeologyShared)
            .init_resource::<Workspace>()
            .init_resource::<GeologyProcesses>()
            .init_resource::<GeologyTimes>()
            .configure_sets(
                schedule,
                (Uplift, Intrusion, Hydraulic, Thermal, Deposition, Custom, Flush)
                    .chain()
                    .before(DeltaOverlaySystems::Ingest),
            )
            .add_systems(schedule, (index_surfaces.before(Uplift), (flush, time_diagnostics).in_set(Flush)));
    }

    /// Builds the storage's surface index as the app is built (as the world
    /// is), on the compute pool's threads: the processes read everywhere at
    /// once, and thousands of first reads would each build a tile in the
    /// first frames.
    fn build_surfaces(world: &mut World) {
        let (Some(palette), Some(mut storage)) =
            (world.get_resource::<Palette>().cloned(), world.get_resource_mut::<DeltaStorage>())
        else {
            return;
        };
        let storage = storage.bypass_change_detection();
        if !storage.surfaces_indexed_with(&palette) {
            storage.enable_surfaces(&palette);
        }
        if let Some(mut job) = storage.surface_build(None) {
            job.run(&PoolExecutor(ComputeTaskPool::get_or_init(Default::default)));
            storage.install_surfaces(job);
        }
    }

    /// Keeps the storage's surface index on, with the palette's classes: the
    /// processes read every surface from it. A new index (a new palette, a
    /// world replaced) is built ahead on the async compute pool, its tiles
    /// installed when done.
    fn index_surfaces(
        mut storage: ResMut<DeltaStorage>,
        palette: Res<Palette>,
        mut build: Local<Option<Task<SurfaceBuild>>>,
    ) {
        if !storage.surfaces_indexed_with(&palette) {
            storage.bypass_change_detection().enable_surfaces(&palette);
            if let Some(mut job) = storage.surface_build(None) {
                let pool = AsyncComputeTaskPool::get();
                *build = Some(pool.spawn(async move {
                    job.run(&PoolExecutor(pool));
                    job
                }));
            }
        }
        if let Some(done) = build.as_mut().and_then(check_ready) {
            *build = None;
            storage.bypass_change_detection().install_surfaces(done);
        }
    }

    /// Writes the frame's edits as one batch of `MaterialUpdate`s.
    fn flush(mut workspace: ResMut<Workspace>, mut out: MessageWriter<MaterialUpdate>) {
        if workspace.pending() > 0 {
            out.write_batch(workspace.drain_edits());
        }
    }

    /// The crate's four processes with their default settings, in `schedule`.
    ///
    /// ```no_run
    /// use bevy::prelude::*;
    /// use bevy_delta_overlay::geology::{GeologyPlugins, HydraulicSettings};
    /// use bevy_delta_overlay::prelude::*;
    ///
    /// App::new()
    ///     .add_plugins((MinimalPlugins, DeltaOverlayPlugin::default()))
    ///     // More rain than the default: inserted, it is kept (and its seed
    ///     // seeds the process).
    ///     .insert_resource(HydraulicSettings { droplets_per_frame: 400, ..default() })
    ///     .add_plugins(GeologyPlugins::new(Update))
    ///     .run();
    /// ```
    pub struct GeologyPlugins {
        schedule: InternedScheduleLabel,
    }

    impl GeologyPlugins {
        /// The four processes, in `schedule`.
        pub fn new(schedule: impl ScheduleLabel) -> Self {
            Self { schedule: schedule.intern() }
        }
    }

    impl Default for GeologyPlugins {
        fn default() -> Self {
            Self::new(Update)
        }
    }

    impl PluginGroup for GeologyPlugins {
        fn build(self) -> PluginGroupBuilder {
            let s = self.schedule;
            PluginGroupBuilder::start::<Self>()
                .add(GeologyPlugin::<Intrusion>::new(s))
                .add(GeologyPlugin::<HydraulicErosion>::new(s))
                .add(GeologyPlugin::<ThermalErosion>::new(s))
                .add(GeologyPlugin::<Deposition>::new(s))
        }
    }
}
