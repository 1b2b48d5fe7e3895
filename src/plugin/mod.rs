//! The Bevy plugin: messages in, consolidation on the async compute pool.
//!
//! Thin by design: it owns no data structure, it moves updates into the
//! [`DeltaStorage`] resource and drives the core's begin / run / finish steps.

mod channel;
mod messages;
mod settings;
mod stats;
mod systems;

pub use channel::{DeltaSender, UpdateBatch};
pub use messages::{
    ConsolidationFinished, FlushDeltas, FrameChanges, MaterialUpdate, MaterialUpdateRejected, PendingUpdates,
    VoxelsChanged,
};
pub use settings::DeltaOverlaySettings;

pub use stats::{DeltaOverlayDiagnostics, DeltaStats};

#[cfg(any(feature = "persistence", feature = "replication"))]
pub(crate) use systems::publish_changes;

use crate::{ConsolidationOutput, DeltaConfig, DeltaStorage, WorldGen};
use bevy::app::{App, Plugin, Update};
use bevy::ecs::schedule::{InternedScheduleLabel, IntoScheduleConfigs, ScheduleLabel, SystemSet};
use bevy::log::error;
use bevy::prelude::Resource;
use bevy::tasks::Task;
use channel::DeltaReceiver;

/// The phases of the plugin, chained in this order in its schedule (`Update` by
/// default):
///
/// 1. `Ingest`: settings applied, then the frame's `MaterialUpdate` messages
///    (as one batch) and channel batches written into the overlay; then the
///    change feed drained into [`FrameChanges`] and a [`VoxelsChanged`] written
///    if anything changed. Never gated by a run condition.
/// 2. `Consolidate`: the task in flight polled and finished, `FlushDeltas`
///    handled, a new consolidation spawned if one is due; a
///    [`ConsolidationFinished`] written for each one that finished.
/// 3. `Stats`: [`DeltaStats`] and the diagnostics refreshed.
///
/// Order producers `.before(DeltaOverlaySystems::Ingest)` and readers
/// `.after(DeltaOverlaySystems::Ingest)` to read their own frame's updates.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeltaOverlaySystems {
    /// Updates enter the overlay.
    Ingest,
    /// Consolidations are finished and started.
    Consolidate,
    /// Figures are refreshed.
    Stats,
}

/// Adds a [`DeltaStorage`] resource and keeps it fed and consolidated.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy_delta_overlay::prelude::*;
///
/// fn erode(mut updates: MessageWriter<MaterialUpdate>) {
///     updates.write(MaterialUpdate { position: IVec3::new(10, 120, 10), material: geology::WATER });
/// }
///
/// fn read(world: Res<DeltaStorage>) {
///     let _ = world.query(IVec3::new(10, 120, 10));
/// }
///
/// App::new()
///     .add_plugins((MinimalPlugins, DeltaOverlayPlugin::default()))
///     .add_systems(Update, (erode.before(DeltaOverlaySystems::Ingest), read.after(DeltaOverlaySystems::Ingest)))
///     .run();
/// ```
///
/// Needs `TaskPoolPlugin` (part of `MinimalPlugins` and `DefaultPlugins`).
///
/// # Resources
///
/// - [`DeltaStorage`]: the world. If the app inserted one before adding the
///   plugin, it is used as is; otherwise one is built from [`world`](Self::world).
/// - [`DeltaOverlaySettings`]: live settings (app's own insert wins).
/// - [`DeltaSender`]: clone it into threads to send batches.
/// - [`DeltaStats`]: figures, refreshed every frame.
/// - [`FrameChanges`]: the changes accepted this frame, numbered.
///
/// The storage records its change feed (at most
/// [`change_capacity`](Self::change_capacity) changes a frame) so that the
/// plugin can publish it. `Res<DeltaStorage>::is_changed()` is true exactly in
/// frames where a voxel changed.
#[derive(Clone, Debug)]
pub struct DeltaOverlayPlugin {
    /// Overlay tunables, unless the app inserted [`DeltaOverlaySettings`].
    pub config: DeltaConfig,
    /// The world built when the app did not insert a [`DeltaStorage`]. Default:
    /// the procedural geology world, 1024 x 256 x 1024.
    pub world: WorldGen,
    /// Batches the off-thread channel holds before `DeltaSender::send` blocks.
    /// Default 256.
    pub channel_capacity: usize,
    /// Changes the storage's feed keeps between two frames; past it, the frame's
    /// [`FrameChanges`] is incomplete (see [`crate::ChangeBatch::is_complete`]).
    /// Default 2^20.
    pub change_capacity: usize,
    /// The schedule the systems run in. Default `Update`.
    pub schedule: InternedScheduleLabel,
}

/// The schedule [`DeltaOverlayPlugin`] runs in, for plugins that order their
/// systems against its sets (the debug panel, persistence, replication).
#[derive(Resource, Clone, Copy, Debug)]
pub struct DeltaOverlaySchedule(pub InternedScheduleLabel);

impl Default for DeltaOverlayPlugin {
    fn default() -> Self {
        Self::new(Update)
    }
}

impl DeltaOverlayPlugin {
    /// The default plugin, running in `schedule` rather than `Update`.
    pub fn new(schedule: impl ScheduleLabel) -> Self {
        Self {
            config: DeltaConfig::default(),
            world: WorldGen::default(),
            channel_capacity: 256,
            change_capacity: DeltaStorage::DEFAULT_CHANGE_CAPACITY,
            schedule: schedule.intern(),
        }
    }
}

/// The consolidation task in flight, if any.
#[derive(Resource, Default)]
pub(crate) struct ConsolidationTask(pub Option<Task<ConsolidationOutput>>);

impl ConsolidationTask {
    pub fn is_running(&self) -> bool {
        self.0.is_some()
    }
}

/// Updates and rejects since the last stats refresh.
#[derive(Resource, Default, Debug)]
pub(crate) struct IngestCounts {
    pub updates: u64,
    pub rejects: u64,
}

impl Plugin for DeltaOverlayPlugin {
    fn build(&self, app: &mut App) {
        if !app.world().contains_resource::<DeltaStorage>() {
            let storage = match self.world.build() {
                Ok(base) => DeltaStorage::new(base, self.config.clone()),
                Err(e) => {
                    error!("delta overlay: cannot build the configured world ({e}); using a 16³ world of air");
                    let bounds = crate::Aabb::new(bevy::math::IVec3::ZERO, bevy::math::IVec3::splat(16));
                    let base = crate::BaseIndex::uniform(bounds, crate::MaterialId::AIR)
                        .expect("a 16³ box at the origin is valid bounds");
                    DeltaStorage::new(base, self.config.clone())
                }
            };
            app.insert_resource(storage);
        }
        app.world_mut().resource_mut::<DeltaStorage>().record_changes(self.change_capacity);
        if !app.world().contains_resource::<DeltaOverlaySettings>() {
            // A pre-inserted storage keeps its own configuration.
            let config = app.world().resource::<DeltaStorage>().config().clone();
            app.insert_resource(DeltaOverlaySettings::from_config(config));
        }
        let (sender, receiver) = channel::channel(self.channel_capacity);
        app.register_type::<DeltaOverlaySettings>()
            .add_message::<MaterialUpdate>()
            .add_message::<MaterialUpdateRejected>()
            .add_message::<FlushDeltas>()
            .add_message::<VoxelsChanged>()
            .add_message::<ConsolidationFinished>()
            .insert_resource(DeltaOverlaySchedule(self.schedule))
            .init_resource::<FrameChanges>()
            .init_resource::<PendingUpdates>()
            .insert_resource(sender)
            .insert_resource(receiver)
            .init_resource::<DeltaStats>()
            .init_resource::<ConsolidationTask>()
            .init_resource::<IngestCounts>();
        stats::DeltaOverlayDiagnostics::register(app);
        use DeltaOverlaySystems::*;
        app.configure_sets(self.schedule, (Ingest, Consolidate, Stats).chain()).add_systems(
            self.schedule,
            (
                (systems::apply_settings, systems::ingest, systems::publish_changes).chain().in_set(Ingest),
                (systems::drive_consolidation, systems::publish_consolidations).chain().in_set(Consolidate),
                stats::update_stats.in_set(Stats),
            ),
        );
    }
}
