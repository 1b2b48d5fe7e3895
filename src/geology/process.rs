//! What every process is: a [`GeologyProcess`], and (with the plugin) the one
//! generic [`GeologyPlugin`] that runs any of them.

use super::terrain::Terrain;

/// Where a process runs in the frame: the processes' sets, chained in this
/// order before the overlay's `Ingest` (feature `plugin`). Order a system
/// against them to see (`after(GeologySystems::Flush)`: the frame's edits are
/// written as `MaterialUpdate`s) or to feed (`before(GeologySystems::Intrusion)`)
/// the processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "plugin", derive(bevy::ecs::schedule::SystemSet))]
pub enum GeologySystems {
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
}

#[cfg(feature = "plugin")]
pub use plugin::{GeologyPlugin, GeologyPlugins, GeologyProcesses, ProcessEntry};

#[cfg(feature = "plugin")]
mod plugin {
    use super::{GeologyProcess, GeologySystems};
    use crate::geology::terrain::{Terrain, Workspace};
    use crate::geology::{Deposition, HydraulicErosion, Intrusion, ThermalErosion};
    use crate::material::{MaterialUpdate, Palette};
    use crate::plugin::DeltaOverlaySystems;
    use crate::storage::DeltaStorage;
    use bevy::app::PluginGroupBuilder;
    use bevy::ecs::component::Mutable;
    use bevy::ecs::schedule::{InternedScheduleLabel, ScheduleLabel};
    use bevy::prelude::*;
    use bevy::reflect::GetTypeRegistration;
    use std::any::TypeId;
    use std::marker::PhantomData;

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
            app.add_systems(self.schedule, run::<P>.in_set(P::SET));
        }
    }

    /// One frame of `P`, when its settings enable it.
    fn run<P>(
        storage: Res<DeltaStorage>,
        palette: Res<Palette>,
        mut workspace: ResMut<Workspace>,
        settings: Res<P::Settings>,
        mut process: ResMut<P>,
    ) where
        P: GeologyProcess + Resource + Component<Mutability = Mutable>,
        P::Settings: Resource,
    {
        if settings.is_changed() {
            // A new seed (or settings inserted after the plugin) takes effect now.
            process.reseed(&settings);
        }
        if P::enabled(&settings) {
            process.step(&mut Terrain::new(&storage, &palette, &mut workspace), &settings);
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
            .configure_sets(
                schedule,
                (Intrusion, Hydraulic, Thermal, Deposition, Custom, Flush).chain().before(DeltaOverlaySystems::Ingest),
            )
            .add_systems(schedule, (index_surfaces.before(Intrusion), flush.in_set(Flush)));
    }

    /// Keeps the storage's surface index on, with the palette's classes: the
    /// processes read every surface from it.
    fn index_surfaces(mut storage: ResMut<DeltaStorage>, palette: Res<Palette>) {
        if !storage.surfaces_indexed_with(&palette) {
            storage.bypass_change_detection().enable_surfaces(&palette);
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
