//! [`DeltaOverlayPlugins`]: every plugin of the crate the enabled features
//! provide, in one group, with the schedule handed to each.

use crate::consolidation::DeltaConfig;
use crate::plugin::{DeltaOverlayPlugin, WorldSource};
use bevy::app::{PluginGroup, PluginGroupBuilder, Update};
use bevy::ecs::schedule::{InternedScheduleLabel, ScheduleLabel};

/// The crate's plugins as one group: the overlay, and each feature's members.
/// The schedule is given once and handed to every member; members can be
/// added in any order (the app is the same), replaced with `.set(...)` or
/// left out with `.disable::<...>()`.
///
/// | member | feature | what it does |
/// | --- | --- | --- |
/// | [`DeltaOverlayPlugin`] | `plugin` | the world, updates, the change feed, consolidation |
/// | `PersistencePlugin` | `persistence` | saves a world that came from a file |
/// | `GeologyPlugin<P>`, one per process | `geology` | the four processes (not on a replication client: the server simulates) |
/// | `DeltaOverlayDebugPlugin` | `debug_ui` | the egui panel (needs a window) |
/// | `ReplicationServerPlugin` | `replication` | serves the world: enabled by `serve` |
/// | `ReplicationClientPlugin` | `replication` | follows a server: enabled by `WorldSource::Server` |
///
/// Where the world comes from is chosen here, once: [`world`](Self::world), with
/// the overlay's other parameters ([`config`](Self::config),
/// [`channel_capacity`](Self::channel_capacity),
/// [`change_capacity`](Self::change_capacity)). Replacing the core member with
/// `.set(DeltaOverlayPlugin { .. })` replaces all of them, the schedule
/// included.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy_delta_overlay::prelude::*;
///
/// let world = WorldGen { size: IVec3::new(512, 256, 512), ..default() };
/// App::new()
///     .add_plugins(MinimalPlugins)
///     .add_plugins(DeltaOverlayPlugins::new(Update).world(world))
///     .run();
/// ```
///
/// The replication members need bevy_replicon's `RepliconPlugins` added before
/// the group; every other member only needs what Bevy's `MinimalPlugins` has
/// (and the debug panel a window).
#[derive(Clone, Debug)]
pub struct DeltaOverlayPlugins {
    schedule: InternedScheduleLabel,
    world: WorldSource,
    config: DeltaConfig,
    channel_capacity: usize,
    change_capacity: usize,
    serve: bool,
}

impl DeltaOverlayPlugins {
    /// Every member, running in `schedule` (usually `Update`; `FixedUpdate` for
    /// a simulation that steps on a fixed timestep).
    pub fn new(schedule: impl ScheduleLabel) -> Self {
        let core = DeltaOverlayPlugin::new(Update);
        Self {
            schedule: schedule.intern(),
            world: WorldSource::default(),
            config: DeltaConfig::default(),
            channel_capacity: core.channel_capacity,
            change_capacity: core.change_capacity,
            serve: false,
        }
    }

    /// Where the world comes from. Default [`WorldSource::default`]: the
    /// procedural world of 1024 x 256 x 1024 voxels (about 232 MiB).
    pub fn world(mut self, source: impl Into<WorldSource>) -> Self {
        self.world = source.into();
        self
    }

    /// The overlay's configuration. Default [`DeltaConfig::default`].
    pub fn config(mut self, config: DeltaConfig) -> Self {
        self.config = config;
        self
    }

    /// Batches the off-thread channel holds ([`DeltaOverlayPlugin::channel_capacity`]).
    pub fn channel_capacity(mut self, batches: usize) -> Self {
        self.channel_capacity = batches;
        self
    }

    /// Changes the feed keeps between frames ([`DeltaOverlayPlugin::change_capacity`]).
    pub fn change_capacity(mut self, changes: usize) -> Self {
        self.change_capacity = changes;
        self
    }

    /// Serves the world to replication clients (feature `replication`): enables
    /// the `ReplicationServerPlugin`.
    #[cfg(feature = "replication")]
    pub fn serve(mut self) -> Self {
        self.serve = true;
        self
    }
}

impl Default for DeltaOverlayPlugins {
    fn default() -> Self {
        Self::new(Update)
    }
}

impl PluginGroup for DeltaOverlayPlugins {
    fn build(self) -> PluginGroupBuilder {
        let s = self.schedule;
        #[cfg(feature = "replication")]
        let client = matches!(self.world, WorldSource::Server);
        let core = DeltaOverlayPlugin {
            world: self.world,
            config: self.config.clone(),
            channel_capacity: self.channel_capacity,
            change_capacity: self.change_capacity,
            ..DeltaOverlayPlugin::new(s)
        };
        let group = PluginGroupBuilder::start::<Self>().add(core);
        #[cfg(feature = "persistence")]
        let group = group.add(crate::plugin::PersistencePlugin::new(s));
        #[cfg(feature = "geology")]
        let group = group.add_group(crate::geology::GeologyPlugins::new(s));
        // A replication client simulates nothing: the server has authority.
        #[cfg(all(feature = "geology", feature = "replication"))]
        let group = if client {
            use crate::geology::{Deposition, GeologyPlugin, HydraulicErosion, Intrusion, ThermalErosion};
            group
                .disable::<GeologyPlugin<Intrusion>>()
                .disable::<GeologyPlugin<HydraulicErosion>>()
                .disable::<GeologyPlugin<ThermalErosion>>()
                .disable::<GeologyPlugin<Deposition>>()
        } else {
            group
        };
        #[cfg(feature = "debug_ui")]
        let group = group.add(crate::debug_ui::DeltaOverlayDebugPlugin::new(s));
        #[cfg(feature = "replication")]
        let group = {
            use crate::replication::{ReplicationClientPlugin, ReplicationServerPlugin};
            let client_plugin = ReplicationClientPlugin { config: self.config, ..ReplicationClientPlugin::new(s) };
            let group = group.add(ReplicationServerPlugin::new(s)).add(client_plugin);
            let group = if self.serve { group } else { group.disable::<ReplicationServerPlugin>() };
            if client { group } else { group.disable::<ReplicationClientPlugin>() }
        };
        let _ = self.serve;
        group
    }
}
