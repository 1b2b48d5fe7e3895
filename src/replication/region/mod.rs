//! Replication by region of a paged world (features `replication` and
//! `paging`): each client follows only the sectors around its own
//! interest, of a world no peer holds whole.
//!
//! # Model
//!
//! The server's [`PagedStore`](crate::plugin::PagedStore) is the truth. A
//! sector is its generator's voxels with its edits applied, and the
//! generator is deterministic, so a client is sent the generator once and
//! then only edits:
//!
//! - **World**: on joining, the generator and the sector size; the client
//!   makes its own paged world from them ([`RegionClientPlugin`] adds the
//!   [`PagingPlugin`](crate::plugin::PagingPlugin) that keeps it resident
//!   around the client's [`WorldInterest`](crate::plugin::WorldInterest)s).
//! - **Region**: the client names the sectors its world wants (around its
//!   interests and ahead of their motion), numbered, whenever they change.
//! - **Sectors**: for each sector new to a client, the server reads its
//!   stored edits off the main thread (the file's, completed from memory as
//!   of the frame they are sent: `paging/share.rs`) and sends them in parts;
//!   the client applies them to its world, generated or not yet.
//! - **Changes**: each frame's accepted edits go to each client, only those
//!   in its sectors already sent. Nothing is missed or applied twice: a
//!   sector is sent at a frame's end with that frame's edits in it, and
//!   changes follow it on the same ordered channel.
//!
//! A client is read-only here: its own writes to the paged world are not
//! sent (the whole-world plugins carry edit requests).
//!
//! # Bounds
//!
//! Per client, [`RegionSettings::window_bytes`] of sectors sent and not
//! acknowledged (the rest wait) and [`RegionSettings::max_behind_bytes`] of
//! everything (past it, the client is disconnected); at most
//! [`RegionSettings::max_reads`] sectors read at once and
//! [`RegionSettings::max_log`] edits a frame in the change log (past it,
//! every client is sent its sectors again). A region names at most 4,096
//! sectors; a sector part holds at most 32,768 edits; a client makes no
//! sector of more than 2^28 voxels. A message that does not decode
//! disconnects a client, and makes a client ask for its region again.

mod client;
mod follow;
mod peer;
mod server;
#[cfg(test)]
mod tests;
mod wire;

use crate::consolidation::DeltaConfig;
use crate::paging::PagingSettings;
use crate::plugin::{PagedStore, PagingPlugin};
use bevy::ecs::schedule::{InternedScheduleLabel, ScheduleLabel};
use bevy::prelude::*;
use bevy_replicon::prelude::*;
use glam::IVec2;

/// Serves the app's paged world by region: add it after `RepliconPlugins`
/// (and a transport) and a [`PagingPlugin`]. Not with the whole-world
/// [`ReplicationServerPlugin`](super::ReplicationServerPlugin) in one app:
/// both read every client message.
///
/// # Systems
///
/// `PreUpdate`, after replicon's receive: regions and acknowledgements.
/// `PostUpdate`, before replicon's send: the frame's changes, the sectors
/// read (the reads run on the async compute pool).
#[derive(Clone, Debug, Default)]
pub struct RegionServerPlugin {
    /// The settings, unless the app inserted its own.
    pub settings: RegionSettings,
}

/// How the region server bounds its clients.
#[derive(Resource, Reflect, Clone, Debug, PartialEq)]
#[reflect(Resource)]
pub struct RegionSettings {
    /// Bytes sent to a client and not acknowledged past which no sector is
    /// sent it (changes still are). Default 4 MiB.
    pub window_bytes: u64,
    /// Bytes sent to a client and not acknowledged past which it is
    /// disconnected. Default 64 MiB.
    pub max_behind_bytes: u64,
    /// Sectors whose edits are read from the file at once. Default 4.
    pub max_reads: usize,
    /// Edits kept for the clients in a frame; past it every client is sent
    /// its sectors again. Default 1M.
    pub max_log: usize,
    /// Edits of memory's the main thread encodes for sectors in a frame (a
    /// file's are encoded where they are read); once past it, the sectors
    /// left wait for the next frame (a sector is encoded whole). Default
    /// 32,768.
    pub edits_per_frame: usize,
}

impl Default for RegionSettings {
    fn default() -> Self {
        Self {
            window_bytes: 4 << 20,
            max_behind_bytes: 64 << 20,
            max_reads: 4,
            max_log: 1 << 20,
            edits_per_frame: 1 << 15,
        }
    }
}

/// What the region server did, since the app started (`clients`,
/// `reads_in_flight` and `bytes_this_frame`: now).
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionStats {
    /// Clients served.
    pub clients: usize,
    /// Regions received.
    pub regions: u64,
    /// Sectors sent.
    pub sectors_sent: u64,
    /// Edits in the sectors read for clients.
    pub sector_edits_sent: u64,
    /// Changes sent (one per client it went to).
    pub changes_sent: u64,
    /// Sector reads under way.
    pub reads_in_flight: usize,
    /// Reads made again (the file was read before memory let go of an edit).
    pub reads_again: u64,
    /// Reads that failed (the file).
    pub read_failures: u64,
    /// Times the change log overflowed.
    pub logs_lost: u64,
    /// Client messages that did not decode.
    pub malformed: u64,
    /// Clients disconnected (bad messages, too far behind).
    pub disconnected: u64,
    /// Bytes sent this frame.
    pub bytes_this_frame: u64,
    /// Bytes sent.
    pub bytes_total: u64,
}

/// Follows a region server: makes the paged world it describes, keeps it
/// resident around the app's [`WorldInterest`](crate::plugin::WorldInterest)s
/// (it adds the [`PagingPlugin`] for that) and applies the edits of the
/// sectors they want. [`RegionStatus`] says how far it is.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy::state::app::StatesPlugin;
/// use bevy_delta_overlay::plugin::WorldInterest;
/// use bevy_delta_overlay::replication::RegionClientPlugin;
/// use bevy_replicon::prelude::*;
///
/// App::new()
///     .add_plugins((MinimalPlugins, StatesPlugin, TransformPlugin, RepliconPlugins))
///     .add_plugins(RegionClientPlugin::default())
///     .add_systems(Startup, |mut commands: Commands| {
///         commands.spawn((WorldInterest { radius: 160 }, Transform::from_xyz(8000.0, 300.0, 8000.0)));
///     })
///     // ... and a transport's client resources (bevy_replicon_renet).
///     .run();
/// ```
#[derive(Clone, Debug)]
pub struct RegionClientPlugin {
    /// The schedule of the paging systems. Default `Update`.
    pub schedule: InternedScheduleLabel,
    /// How the client's world pages (its sector size is the server's).
    /// Default [`PagingSettings::default`].
    pub settings: PagingSettings,
    /// Each sector's overlay. Default [`DeltaConfig::default`].
    pub config: DeltaConfig,
    /// Edits received the client applies in a frame (messages are applied
    /// whole, at least one a frame: a frame may pass it by one message of at
    /// most 4,096 edits; the rest wait, acknowledged only once applied, so
    /// the server's window bounds them). Default 32,768.
    pub edits_per_frame: usize,
}

impl Default for RegionClientPlugin {
    fn default() -> Self {
        Self {
            schedule: Update.intern(),
            settings: PagingSettings::default(),
            config: DeltaConfig::default(),
            edits_per_frame: 1 << 15,
        }
    }
}

/// Where a region client is.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionStatus {
    /// The server's world was described and made.
    pub world: bool,
    /// The server's world could not be made here (or is not this client's
    /// own paged world): nothing is applied.
    pub refused: bool,
    /// Sectors in the region.
    pub sectors: usize,
    /// Of them, those whose edits were received (their voxels are the
    /// server's, once resident).
    pub received: usize,
    /// Of those, the resident ones.
    pub resident: usize,
    /// Server messages received and not applied yet (past the client's
    /// `edits_per_frame`).
    pub queued: usize,
}

impl RegionStatus {
    /// Every sector of the region received and resident: a read anywhere in
    /// it is the server's.
    pub fn is_synced(&self) -> bool {
        self.world && self.sectors > 0 && self.resident == self.sectors
    }
}

/// What the region client saw, since the app started.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionClientStats {
    /// Sectors whose edits were received.
    pub sectors_received: u64,
    /// Edits applied from sectors' messages.
    pub sector_edits: u64,
    /// Changes applied.
    pub changes_applied: u64,
    /// Edits this world could not take (past its `max_edits`, or outside
    /// it): those voxels are not the server's.
    pub edits_refused: u64,
    /// Server messages that did not decode or did not fit the world: the
    /// region was asked for again.
    pub malformed: u64,
    /// Worlds described that could not be made here.
    pub refused_worlds: u64,
}

/// The region client's sectors: which were received.
#[derive(Resource, Default)]
pub struct RegionSync(follow::RegionFollow);

impl RegionSync {
    /// Whether sector `key` (see [`PagedWorld::sector_of`](crate::paging::PagedWorld::sector_of))
    /// is in the region and its edits were received: once resident, its
    /// voxels are the server's.
    pub fn is_received(&self, key: IVec2) -> bool {
        self.0.is_received(key)
    }
}

impl Plugin for RegionServerPlugin {
    fn build(&self, app: &mut App) {
        super::register(app);
        if !app.world().contains_resource::<RegionSettings>() {
            app.insert_resource(self.settings.clone());
        }
        app.register_type::<RegionSettings>()
            .init_resource::<RegionStats>()
            .init_resource::<server::SectorReads>()
            .add_observer(server::joined)
            .add_systems(OnExit(ServerState::Running), server::forget_reads)
            .add_systems(
                PreUpdate,
                server::receive
                    .after(ServerSystems::Receive)
                    .run_if(in_state(ServerState::Running))
                    .run_if(resource_exists::<PagedStore>),
            )
            .add_systems(
                PostUpdate,
                server::send
                    .before(ServerSystems::Send)
                    .run_if(in_state(ServerState::Running))
                    .run_if(resource_exists::<PagedStore>),
            );
    }
}

impl Plugin for RegionClientPlugin {
    fn build(&self, app: &mut App) {
        super::register(app);
        if !app.is_plugin_added::<PagingPlugin>() {
            app.add_plugins(PagingPlugin {
                schedule: self.schedule,
                settings: self.settings.clone(),
                config: self.config.clone(),
                from_server: true,
                ..Default::default()
            });
        }
        let made_with = client::ClientWorldSettings {
            settings: self.settings.clone(),
            config: self.config.clone(),
            edits_per_frame: self.edits_per_frame,
        };
        app.insert_resource(made_with)
            .init_resource::<RegionSync>()
            .init_resource::<RegionStatus>()
            .init_resource::<RegionClientStats>()
            .add_systems(
                PreUpdate,
                client::receive.after(ClientSystems::Receive).run_if(in_state(ClientState::Connected)),
            )
            .add_systems(PostUpdate, client::send.before(ClientSystems::Send).run_if(in_state(ClientState::Connected)))
            .add_systems(OnExit(ClientState::Connected), client::disconnected);
    }
}
