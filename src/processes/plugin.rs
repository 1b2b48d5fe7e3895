//! The processes as Bevy plugins: each inserts its settings (unless the app
//! did) and its state, and runs in its [`GeologySystems`] set, in a fixed
//! order, before the overlay's `Ingest`.

use super::*;
use crate::plugin::{DeltaOverlaySchedule, DeltaOverlaySystems};
use crate::{DeltaStorage, MaterialUpdate, Palette};
use bevy::app::PluginGroupBuilder;
use bevy::ecs::schedule::ScheduleLabel;
use bevy::prelude::*;

/// The processes' system sets, run in this order (chained) in the overlay's
/// schedule, before [`DeltaOverlaySystems::Ingest`]. Order a system against
/// them to see (`after(GeologySystems::Flush)`: the frame's edits are written
/// as `MaterialUpdate`s) or to feed (`before(GeologySystems::Intrusion)`) the
/// processes.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GeologySystems {
    /// Magma rises and cools.
    Intrusion,
    /// Rain erodes and deposits.
    Hydraulic,
    /// Loose slopes relax.
    Thermal,
    /// Submerged sediment settles, buried sediment compacts.
    Deposition,
    /// The frame's edits are written as one batch of `MaterialUpdate`s.
    Flush,
}

/// Marks that the shared parts are set up.
#[derive(Resource)]
struct GeologyShared;

/// The sets, the workspace, the palette and the flush, once for every process.
fn shared(app: &mut App) {
    if app.world().contains_resource::<GeologyShared>() {
        return;
    }
    if !app.world().contains_resource::<Palette>() {
        app.insert_resource(Palette::geology());
    }
    app.insert_resource(GeologyShared).init_resource::<Workspace>();
}

/// Schedules `system` in `set` (at `finish`, when the overlay's schedule is known).
fn schedule<M>(
    app: &mut App,
    set: GeologySystems,
    system: impl IntoScheduleConfigs<bevy::ecs::system::ScheduleSystem, M>,
) {
    let label = app.world().get_resource::<DeltaOverlaySchedule>().map_or(Update.intern(), |s| s.0);
    if !app.world().contains_resource::<FlushScheduled>() {
        app.insert_resource(FlushScheduled);
        app.configure_sets(
            label,
            (
                GeologySystems::Intrusion,
                GeologySystems::Hydraulic,
                GeologySystems::Thermal,
                GeologySystems::Deposition,
                GeologySystems::Flush,
            )
                .chain()
                .before(DeltaOverlaySystems::Ingest),
        )
        .add_systems(label, flush.in_set(GeologySystems::Flush));
    }
    app.add_systems(label, system.in_set(set));
}

#[derive(Resource)]
struct FlushScheduled;

/// Writes the frame's edits as one batch of `MaterialUpdate`s.
fn flush(mut workspace: ResMut<Workspace>, mut out: MessageWriter<MaterialUpdate>) {
    if workspace.pending() > 0 {
        out.write_batch(workspace.drain_edits().map(|(position, material)| MaterialUpdate { position, material }));
    }
}

macro_rules! process_plugin {
    ($(#[$doc:meta])* $plugin:ident, $settings:ident, $state:ident, $run:ident, $set:ident, $system:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default)]
        pub struct $plugin {
            /// The settings, unless the app inserted its own.
            pub settings: $settings,
        }

        impl Plugin for $plugin {
            fn build(&self, app: &mut App) {
                shared(app);
                if !app.world().contains_resource::<$settings>() {
                    app.insert_resource(self.settings.clone());
                }
                let seed = app.world().resource::<$settings>().seed;
                app.register_type::<$settings>().insert_resource($state::new(seed));
            }

            fn finish(&self, app: &mut App) {
                schedule(app, GeologySystems::$set, $system);
            }
        }

        fn $system(
            storage: Res<DeltaStorage>,
            palette: Res<Palette>,
            mut workspace: ResMut<Workspace>,
            settings: Res<$settings>,
            mut state: ResMut<$state>,
        ) {
            if settings.enabled {
                let mut terrain = Terrain::new(&storage, &palette, &mut workspace);
                $run(&mut terrain, &settings, &mut state);
            }
        }
    };
}

process_plugin!(
    /// Rain droplets erode and deposit ([`hydraulic_erosion`]); settings in
    /// [`HydraulicErosion`], what it did in [`HydraulicErosionState::stats`].
    HydraulicErosionPlugin,
    HydraulicErosion,
    HydraulicErosionState,
    hydraulic_erosion,
    Hydraulic,
    run_hydraulic
);
process_plugin!(
    /// Loose slopes relax to their angle of repose ([`thermal_erosion`]);
    /// settings in [`ThermalErosion`], what it did in
    /// [`ThermalErosionState::stats`].
    ThermalErosionPlugin,
    ThermalErosion,
    ThermalErosionState,
    thermal_erosion,
    Thermal,
    run_thermal
);
process_plugin!(
    /// Magma rises and cools on the storage clock ([`intrusion`]); settings
    /// in [`Intrusion`], what it did in [`IntrusionState::stats`].
    IntrusionPlugin,
    Intrusion,
    IntrusionState,
    intrusion,
    Intrusion,
    run_intrusion
);
process_plugin!(
    /// Submerged sediment settles and buried sediment compacts
    /// ([`deposition`]); settings in [`Deposition`], what it did in
    /// [`DepositionState::stats`].
    DepositionPlugin,
    Deposition,
    DepositionState,
    deposition,
    Deposition,
    run_deposition
);

/// All four processes with their default settings.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy_delta_overlay::prelude::*;
/// use bevy_delta_overlay::{GeologyPlugins, HydraulicErosion};
///
/// App::new()
///     .add_plugins((MinimalPlugins, DeltaOverlayPlugin::default()))
///     // More rain than the default: inserted before the plugins, it is kept
///     // (and its seed seeds the process).
///     .insert_resource(HydraulicErosion { droplets_per_frame: 400, ..default() })
///     .add_plugins(GeologyPlugins)
///     .run();
/// ```
pub struct GeologyPlugins;

impl PluginGroup for GeologyPlugins {
    fn build(self) -> PluginGroupBuilder {
        PluginGroupBuilder::start::<Self>()
            .add(IntrusionPlugin::default())
            .add(HydraulicErosionPlugin::default())
            .add(ThermalErosionPlugin::default())
            .add(DepositionPlugin::default())
    }
}
