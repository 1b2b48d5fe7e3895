//! The Bevy plugin layer (feature `plugin`): messages in, consolidation on the
//! async compute pool, the change feed published.
//!
//! Thin by design: it owns no data structure, it moves updates into the
//! [`DeltaStorage`] resource and drives the core's begin / run / finish steps.
//! [`DeltaOverlayPlugins`](crate::DeltaOverlayPlugins) adds it with
//! every other member of the crate; this module's own members are
//! [`DeltaOverlayPlugin`], with feature `persistence` `PersistencePlugin`, and
//! with feature `paging` `PagingPlugin` (a paged world beside the overlay).

mod backlog;
mod channel;
mod messages;
#[cfg(feature = "paging")]
mod paging;
#[cfg(feature = "persistence")]
mod persist;
#[cfg(all(test, feature = "persistence"))]
mod persist_tests;
mod settings;
mod source;
mod stats;
mod systems;

pub use channel::DeltaSender;
pub use messages::{ConsolidationFinished, FlushDeltas, FrameChanges, VoxelsChanged};
#[cfg(all(feature = "paging", feature = "persistence"))]
pub use paging::PagingFileError;
#[cfg(feature = "paging")]
pub use paging::{PagedStore, PagingDiagnostics, PagingPlugin, PagingSystems, WorldInterest};
#[cfg(feature = "persistence")]
pub use persist::{BadFilePolicy, DeltasDurable, PersistencePlugin, WorldFile, WorldFileAction, WorldFileError};
#[cfg(feature = "persistence")]
pub(crate) use persist::{ExitDrain, ExitSync};
pub use settings::DeltaOverlaySettings;
pub use source::{WorldOrigin, WorldSource};
pub use stats::{DeltaOverlayDiagnostics, DeltaStats};

#[cfg(any(feature = "replication", feature = "persistence"))]
pub(crate) use backlog::Backlog;
pub(crate) use channel::DeltaReceiver;
#[cfg(all(test, feature = "replication"))]
pub(crate) use source::placeholder;
pub(crate) use systems::PoolExecutor;

use crate::consolidation::{ConsolidationOutput, DeltaConfig};
use crate::material::MaterialUpdate;
use crate::storage::{DeltaStorage, RejectedUpdate};
use bevy::app::{App, Plugin, Update};
use bevy::ecs::schedule::{InternedScheduleLabel, IntoScheduleConfigs, ScheduleLabel, SystemSet};
use bevy::prelude::{Res, Resource};
use bevy::tasks::Task;

/// The phases of the overlay's systems, chained in this order in the schedule
/// the plugins are given (`Update` by default):
///
/// 1. `Ingest`: settings applied, then the frame's [`MaterialUpdate`] messages
///    (as one batch) and channel batches written into the overlay. Never gated
///    by a run condition.
/// 2. `Publish`: the change feed drained into [`FrameChanges`], and a
///    [`VoxelsChanged`] written if anything changed.
/// 3. `Forward`: the frame's changes leave the process: persistence hands them
///    to the file, replication to its clients. Empty without them; put your
///    own consumers of [`FrameChanges`] here.
/// 4. `Consolidate`: the task in flight polled and finished, [`FlushDeltas`]
///    handled, a new consolidation spawned if one is due; a
///    [`ConsolidationFinished`] written for each one that finished.
/// 5. `Stats`: [`DeltaStats`] and the diagnostics refreshed.
///
/// Order producers `.before(DeltaOverlaySystems::Ingest)` and readers
/// `.after(DeltaOverlaySystems::Ingest)` to read their own frame's updates.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeltaOverlaySystems {
    /// Updates enter the overlay.
    Ingest,
    /// The frame's changes are published.
    Publish,
    /// The frame's changes are forwarded: file, network, your consumers.
    Forward,
    /// Consolidations are finished and started.
    Consolidate,
    /// Figures are refreshed.
    Stats,
}

/// Inside [`DeltaOverlaySystems::Ingest`]: the step that applies the frame's
/// updates to the overlay. A system `.in_set(DeltaOverlaySystems::Ingest)
/// .before(ApplyUpdates)` sees every update of the frame before it is applied.
///
/// It never runs where the world comes from a server ([`WorldOrigin::Server`]):
/// a replica is written only by what the server sends. There, the frame's
/// updates go to whoever holds authority: a replication client reads them
/// `.after(ApplyUpdates)` and sends them to its server. Nor does it run where
/// the world file was refused ([`WorldOrigin::Refused`]): nothing would be
/// saved, and the app is exiting.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ApplyUpdates;

/// Present when a plugin forwards the app's updates to whoever holds authority
/// over the world (a replication client inserts it). Where the world comes
/// from a server and nothing forwards, the overlay logs an error: the app's
/// updates would go nowhere.
#[derive(Resource, Clone, Copy, Debug, Default)]
pub struct RemoteAuthority;

/// True unless the world is a server's replica or a refused file's
/// placeholder: the run condition of [`ApplyUpdates`].
fn local_authority(origin: Option<Res<WorldOrigin>>) -> bool {
    origin.is_none_or(|o| !matches!(*o, WorldOrigin::Server | WorldOrigin::Refused))
}

/// Says, once, when a replica's updates would go nowhere.
fn check_authority(origin: Res<WorldOrigin>, remote: Option<Res<RemoteAuthority>>) {
    if *origin == WorldOrigin::Server && remote.is_none() {
        bevy::log::error!(
            "delta overlay: the world comes from a server (WorldSource::Server) but no plugin forwards the app's \
             updates to it (add ReplicationClientPlugin): MaterialUpdates are dropped"
        );
    }
}

/// Adds the [`DeltaStorage`] resource and keeps it fed and consolidated.
///
/// Usually added by [`DeltaOverlayPlugins`](crate::DeltaOverlayPlugins),
/// which passes it the schedule and the world source.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy_delta_overlay::prelude::*;
///
/// fn erode(mut updates: MessageWriter<MaterialUpdate>) {
///     updates.write(MaterialUpdate::new(IVec3::new(10, 120, 10), materials::WATER));
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
/// - [`DeltaStorage`]: the world, from [`world`](Self::world), unless the app
///   inserted one before the plugins were built, which is used as is.
/// - [`WorldOrigin`]: where the world came from.
/// - [`DeltaOverlaySettings`]: live settings (the app's own insert wins).
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
    /// The schedule the systems run in. Default `Update`.
    pub schedule: InternedScheduleLabel,
    /// Where the world comes from. Default: [`WorldSource::default`], the
    /// procedural world of 1024 x 256 x 1024 voxels (about 232 MiB).
    pub world: WorldSource,
    /// Overlay tunables, unless the app inserted [`DeltaOverlaySettings`].
    pub config: DeltaConfig,
    /// Batches the off-thread channel holds before `DeltaSender::send` blocks.
    /// Default 256.
    pub channel_capacity: usize,
    /// Changes the storage's feed keeps between two frames; past it, the frame's
    /// [`FrameChanges`] is incomplete (see
    /// [`ChangeBatch::is_complete`](crate::ChangeBatch::is_complete)). Default 2^20.
    pub change_capacity: usize,
}

impl Default for DeltaOverlayPlugin {
    fn default() -> Self {
        Self::new(Update)
    }
}

impl DeltaOverlayPlugin {
    /// The default plugin, running in `schedule` rather than `Update`.
    pub fn new(schedule: impl ScheduleLabel) -> Self {
        Self {
            schedule: schedule.intern(),
            world: WorldSource::default(),
            config: DeltaConfig::default(),
            channel_capacity: 256,
            change_capacity: DeltaStorage::DEFAULT_CHANGE_CAPACITY,
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
    pub time: std::time::Duration,
    /// Updates waiting in the backlog after this frame's ingest.
    pub backlog: usize,
}

impl Plugin for DeltaOverlayPlugin {
    fn build(&self, app: &mut App) {
        let origin = if app.world().contains_resource::<DeltaStorage>() {
            WorldOrigin::Inserted
        } else {
            source::build_world(app, &self.world, &self.config)
        };
        app.insert_resource(origin);
        app.world_mut().resource_mut::<DeltaStorage>().record_changes(self.change_capacity);
        if !app.world().contains_resource::<DeltaOverlaySettings>() {
            // A pre-inserted storage keeps its own configuration.
            let config = app.world().resource::<DeltaStorage>().config().clone();
            app.insert_resource(DeltaOverlaySettings::from_config(config));
        }
        let (sender, receiver) = channel::channel(self.channel_capacity);
        app.register_type::<DeltaOverlaySettings>()
            .add_message::<MaterialUpdate>()
            .add_message::<RejectedUpdate>()
            .add_message::<FlushDeltas>()
            .add_message::<VoxelsChanged>()
            .add_message::<ConsolidationFinished>()
            .init_resource::<FrameChanges>()
            .insert_resource(sender)
            .insert_resource(receiver)
            .init_resource::<DeltaStats>()
            .init_resource::<ConsolidationTask>()
            .init_resource::<IngestCounts>()
            .init_resource::<backlog::Backlog>();
        stats::DeltaOverlayDiagnostics::register(app);
        use DeltaOverlaySystems::*;
        app.configure_sets(self.schedule, (Ingest, Publish, Forward, Consolidate, Stats).chain())
            .configure_sets(self.schedule, ApplyUpdates.run_if(local_authority))
            .add_systems(bevy::app::Startup, check_authority)
            .add_systems(
                self.schedule,
                (
                    (systems::apply_settings, systems::ingest.in_set(ApplyUpdates)).chain().in_set(Ingest),
                    systems::publish_changes.in_set(Publish),
                    (systems::drive_consolidation, systems::publish_consolidations).chain().in_set(Consolidate),
                    stats::update_stats.in_set(Stats),
                ),
            );
    }
}
