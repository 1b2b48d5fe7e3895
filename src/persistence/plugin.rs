//! The Bevy side of persistence: load on startup, save every frame's changes.

use super::{Opened, StoreOptions, WorldStore};
use crate::DeltaStorage;
use crate::plugin::{DeltaOverlaySchedule, DeltaOverlaySystems, FrameChanges};
use bevy::app::{App, AppExit, Last, Plugin, Update};
use bevy::ecs::schedule::{IntoScheduleConfigs, ScheduleLabel};
use bevy::log::{error, info};
use bevy::prelude::*;
use std::path::PathBuf;

/// Changes up to sequence `through` are on disk: they survive a crash. Written
/// in the `Ingest` phase of the first frame that sees the acknowledgement.
#[derive(Message, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltasDurable {
    /// The last durable sequence number.
    pub through: u64,
}

/// The world's file: the [`WorldStore`] the plugin opened, and how.
#[derive(Resource, Debug)]
pub struct WorldFile {
    store: WorldStore,
    opened: Opened,
    /// The last sequence number handed to the writer.
    handed: u64,
    /// The last acknowledgement reported.
    reported: u64,
    failed: bool,
}

impl WorldFile {
    /// The store.
    pub fn store(&self) -> &WorldStore {
        &self.store
    }

    /// Whether the world was loaded or created, and what it took.
    pub fn opened(&self) -> Opened {
        self.opened
    }

    /// The last durable sequence number.
    pub fn durable(&self) -> u64 {
        self.store.durable()
    }

    /// Waits until every change handed over is on disk; returns the durable
    /// sequence number (see [`WorldStore::sync`]).
    ///
    /// # Errors
    /// As [`WorldStore::sync`].
    pub fn sync(&mut self) -> Result<u64, super::StoreError> {
        self.store.sync()
    }
}

/// Makes the world durable: loads it from [`path`](Self::path) on startup (or
/// generates it and writes it there), commits every frame's changes on a
/// background thread, reports [`DeltasDurable`], and syncs what is pending on
/// `AppExit`. See [`WorldStore`] for the file and what a crash can lose.
///
/// Add it **before** [`DeltaOverlayPlugin`](crate::DeltaOverlayPlugin): it
/// inserts the [`DeltaStorage`] the overlay plugin then uses.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy_delta_overlay::prelude::*;
/// use bevy_delta_overlay::PersistencePlugin;
///
/// App::new()
///     .add_plugins((MinimalPlugins, PersistencePlugin::new("world.redb"), DeltaOverlayPlugin::default()))
///     .run();
/// ```
///
/// A file that cannot be opened (damaged, another format, not a world store) is
/// logged as an error naming the problem and left untouched; the app goes on
/// with the world [`DeltaOverlayPlugin`](crate::DeltaOverlayPlugin) builds, and
/// no [`WorldFile`] resource exists.
///
/// # Systems
///
/// In the overlay's schedule, in `DeltaOverlaySystems::Ingest` after the change
/// feed is published: the frame's [`FrameChanges`] handed to the writer, and a
/// [`DeltasDurable`] written when the acknowledgement moved. In `Last`: a sync
/// when an `AppExit` was written.
#[derive(Clone, Debug)]
pub struct PersistencePlugin {
    /// The world's file.
    pub path: PathBuf,
    /// How the store works; its `generator` builds a new world, its `config`
    /// configures the storage.
    pub options: StoreOptions,
}

impl PersistencePlugin {
    /// Persistence at `path` with the default options.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), options: StoreOptions::default() }
    }
}

impl Plugin for PersistencePlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<DeltasDurable>();
        if app.world().contains_resource::<DeltaStorage>() {
            error!(
                "PersistencePlugin: a DeltaStorage exists already; add PersistencePlugin before DeltaOverlayPlugin. \
                 Nothing will be saved to {}",
                self.path.display()
            );
            return;
        }
        match WorldStore::open(&self.path, self.options.clone()) {
            Ok((store, storage, opened)) => {
                match opened {
                    Opened::Loaded { sequence, replayed, took } => info!(
                        "loaded world from {}: sequence {sequence} ({replayed} log entries, {:.2} s)",
                        self.path.display(),
                        took.as_secs_f64()
                    ),
                    Opened::Created { generated, written } => info!(
                        "created {}: world generated in {:.2} s, written in {:.2} s",
                        self.path.display(),
                        generated.as_secs_f64(),
                        written.as_secs_f64()
                    ),
                }
                let sequence = storage.sequence();
                app.insert_resource(storage);
                app.insert_resource(WorldFile { store, opened, handed: sequence, reported: sequence, failed: false });
            }
            Err(e) => error!("PersistencePlugin: {e}. Nothing will be saved."),
        }
    }

    fn finish(&self, app: &mut App) {
        if !app.world().contains_resource::<WorldFile>() {
            return;
        }
        let schedule = app.world().get_resource::<DeltaOverlaySchedule>().map_or(Update.intern(), |s| s.0);
        app.add_systems(schedule, save_frame.in_set(DeltaOverlaySystems::Ingest).after(crate::plugin::publish_changes))
            .add_systems(Last, sync_on_exit);
    }
}

/// Hands the frame's changes to the writer and reports acknowledgements.
fn save_frame(
    frame: Res<FrameChanges>,
    mut storage: ResMut<DeltaStorage>,
    mut file: ResMut<WorldFile>,
    mut durable: MessageWriter<DeltasDurable>,
) {
    let batch = &frame.batch;
    if !batch.is_empty() && batch.last_sequence() > file.handed {
        let storage = storage.bypass_change_detection();
        if let Err(e) = file.store.commit(std::sync::Arc::clone(batch), storage)
            && !file.failed
        {
            error!("PersistencePlugin: {e}: {}", file.store.error().unwrap_or_default());
            file.failed = true;
        }
        file.handed = batch.last_sequence();
    }
    let through = file.store.durable();
    if through > file.reported {
        file.reported = through;
        durable.write(DeltasDurable { through });
    }
}

/// Syncs pending commits when the app is exiting.
fn sync_on_exit(mut exits: MessageReader<AppExit>, mut file: ResMut<WorldFile>) {
    if exits.read().count() > 0 {
        match file.store.sync() {
            Ok(through) => info!("world saved: durable through sequence {through}"),
            Err(e) => error!("PersistencePlugin: {e}"),
        }
    }
}
