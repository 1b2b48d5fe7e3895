//! The Bevy side of persistence (feature `persistence`): a world file opened
//! where the app chose [`WorldSource::File`](super::WorldSource::File), every
//! frame's changes saved, acknowledgements reported, a sync on exit.

use super::{DeltaOverlaySystems, FrameChanges};
use crate::consolidation::DeltaConfig;
use crate::persistence::{Opened, StoreError, StoreOptions, WorldStore};
use crate::storage::DeltaStorage;
use bevy::app::{AppExit, Last};
use bevy::ecs::schedule::{InternedScheduleLabel, ScheduleLabel};
use bevy::prelude::*;
use std::path::Path;

/// Changes up to sequence `through` are on disk: they survive a crash. Written
/// in the [`Forward`](DeltaOverlaySystems::Forward) phase of the first frame
/// that sees the acknowledgement.
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
    pub fn sync(&mut self) -> Result<u64, StoreError> {
        self.store.sync()
    }
}

/// Opens the world file at `path` (or creates it) and inserts the storage and
/// the [`WorldFile`]. A file that cannot be opened (damaged, or holding another
/// world than `options` describe: see
/// [`StoreOptions::expect_same_world`](crate::persistence::StoreOptions::expect_same_world))
/// is logged as an error naming the problem and left untouched; the app goes on with the world
/// `options.generator` builds, and no [`WorldFile`] exists. Returns whether
/// the file was opened.
pub(crate) fn open(app: &mut App, path: &Path, options: &StoreOptions, config: &DeltaConfig) -> bool {
    let options = StoreOptions { config: config.clone(), ..options.clone() };
    match WorldStore::open(path, options.clone()) {
        Ok((store, storage, opened)) => {
            match opened {
                Opened::Loaded { sequence, replayed, took } => info!(
                    "loaded world from {}: sequence {sequence} ({replayed} log entries, {:.2} s)",
                    path.display(),
                    took.as_secs_f64()
                ),
                Opened::Created { generated, written } => info!(
                    "created {}: world generated in {:.2} s, written in {:.2} s",
                    path.display(),
                    generated.as_secs_f64(),
                    written.as_secs_f64()
                ),
            }
            let sequence = storage.sequence();
            app.insert_resource(storage);
            app.insert_resource(WorldFile { store, opened, handed: sequence, reported: sequence, failed: false });
            true
        }
        Err(e) => {
            error!("delta overlay: {e}. Nothing will be saved.");
            super::source::build_world(app, &super::WorldSource::Generate(options.generator), config);
            false
        }
    }
}

/// Saves the world where the app chose a [`WorldSource::File`](super::WorldSource::File):
/// every frame's [`FrameChanges`] handed to the file's writer thread (the frame
/// never waits for the disk), a [`DeltasDurable`] when the acknowledgement
/// moved, and a sync when the app exits. See [`WorldStore`] for the file and
/// what a crash can lose. Does nothing when the world did not come from a file.
///
/// # Systems
///
/// In its schedule, in [`DeltaOverlaySystems::Forward`]: the frame's changes
/// handed to the writer, [`DeltasDurable`] written. In `Last`: the sync on
/// `AppExit`.
#[derive(Clone, Debug)]
pub struct PersistencePlugin {
    /// The schedule of the overlay's systems. Default `Update`.
    pub schedule: InternedScheduleLabel,
}

impl PersistencePlugin {
    /// The plugin, saving in `schedule`'s [`Forward`](DeltaOverlaySystems::Forward) phase.
    pub fn new(schedule: impl ScheduleLabel) -> Self {
        Self { schedule: schedule.intern() }
    }
}

impl Default for PersistencePlugin {
    fn default() -> Self {
        Self::new(Update)
    }
}

impl Plugin for PersistencePlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<DeltasDurable>()
            .add_systems(
                self.schedule,
                save_frame.in_set(DeltaOverlaySystems::Forward).run_if(resource_exists::<WorldFile>),
            )
            .add_systems(Last, sync_on_exit.run_if(resource_exists::<WorldFile>));
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
            error!("delta overlay: {e}: {}", file.store.error().unwrap_or_default());
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
            Err(e) => error!("delta overlay: {e}"),
        }
    }
}
