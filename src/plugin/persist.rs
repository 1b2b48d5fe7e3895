//! The Bevy side of persistence (feature `persistence`): a world file opened
//! where the app chose [`WorldSource::File`](super::WorldSource::File), what
//! happens when it cannot be ([`BadFilePolicy`], [`WorldFileError`]), every
//! frame's changes saved, acknowledgements reported, a sync on exit.

use super::{DeltaOverlaySystems, FrameChanges, WorldOrigin};
use crate::consolidation::DeltaConfig;
use crate::persistence::{Opened, StoreError, StoreOptions, WorldStore};
use crate::storage::DeltaStorage;
use bevy::app::{AppExit, Last};
use bevy::ecs::schedule::{InternedScheduleLabel, ScheduleLabel};
use bevy::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Changes up to sequence `through` are on disk: they survive a crash. Written
/// in the [`Forward`](DeltaOverlaySystems::Forward) phase of the first frame
/// that sees the acknowledgement.
#[derive(Message, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltasDurable {
    /// The last durable sequence number.
    pub through: u64,
}

/// What the plugin does when the world file cannot be opened (or, when there
/// is none, created), chosen by the app in
/// [`WorldSource::File`](super::WorldSource::File).
///
/// Either way the app is told: a [`WorldFileError`] resource says what was
/// wrong and what was done, and Bevy's `error!` log says it too (seen only
/// with a log plugin: `MinimalPlugins` has none). A file that does not exist
/// is no error: the world is generated and written there.
///
/// ```
/// use bevy_delta_overlay::WorldSource;
/// use bevy_delta_overlay::persistence::StoreOptions;
/// use bevy_delta_overlay::plugin::BadFilePolicy;
/// let world = WorldSource::File {
///     path: "world.redb".into(),
///     options: StoreOptions::default(),
///     on_bad_file: BadFilePolicy::MoveAsideAndStartFresh,
/// };
/// assert_eq!(BadFilePolicy::default(), BadFilePolicy::Refuse);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BadFilePolicy {
    /// The default: the app does not run a world it could not save. The file
    /// is left byte for byte as it was, no world is generated, and an
    /// [`AppExit::error()`] is written while the plugins are built, so Bevy's
    /// runner stops after the first frame (which runs on a 16³ placeholder of
    /// air that takes no updates: [`WorldOrigin::Refused`]). Right for a
    /// player's save: a damaged file is for a person to look at, never to
    /// replace without a word.
    #[default]
    Refuse,
    /// A file whose content is bad ([`StoreError::is_bad_file`]: damaged, not
    /// a world store, another format version, another world) is renamed to
    /// `<name>.bad-<n>` (the first free `n`, never overwriting a file; see
    /// [`WorldStore::move_aside`]), and a fresh world is generated and written
    /// at the original path, then saved as usual. Any other failure (I/O, a
    /// file the system will not let us read) is refused as with
    /// [`Refuse`](Self::Refuse): moving a sound file aside would not cure it.
    /// Right for a server or a tool that must come up, and keeps what it set
    /// aside.
    MoveAsideAndStartFresh,
}

/// What the plugin did about a [`WorldFileError`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorldFileAction {
    /// The file could not be opened and was left as it was
    /// ([`BadFilePolicy::Refuse`], or setting it aside failed): nothing is
    /// loaded or saved, and an [`AppExit::error()`] was written.
    Refused,
    /// The bad file was renamed to `to`, intact, and a fresh world was created
    /// at the original path ([`BadFilePolicy::MoveAsideAndStartFresh`]): the
    /// app runs on it, saved as usual.
    MovedAside {
        /// Where the bad file is now.
        to: PathBuf,
    },
    /// The store refused a frame's batch (it did not follow the last one
    /// handed over: a change feed drained elsewhere): the whole world was
    /// handed over instead, and saving goes on with nothing lost.
    Resynced,
    /// The store's writer stopped (an I/O error, a full disk, a panic), or
    /// the world no longer fits the file: nothing after the last
    /// acknowledgement ([`WorldFile::durable`]) is saved from now on. The app
    /// goes on; exiting is its call.
    SavingStopped,
}

impl std::fmt::Display for WorldFileAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused => write!(f, "nothing was loaded or saved, and the app was asked to exit with an error"),
            Self::MovedAside { to } => {
                write!(f, "it was moved, as it was, to {}, and a new world created in its place", to.display())
            }
            Self::Resynced => write!(f, "the whole world was handed over instead, and saving goes on"),
            Self::SavingStopped => write!(f, "saving stopped: nothing after the last acknowledgement is saved"),
        }
    }
}

/// The last problem with the world file, and what the plugin did about it:
/// inserted (or replaced) when a [`WorldSource::File`](super::WorldSource::File)
/// cannot be opened, when a frame's batch is refused, and when the writer
/// stops. Absent while all is well, so `Option<Res<WorldFileError>>` (or the
/// run condition `resource_exists::<WorldFileError>`) is the check, and
/// `is_changed()` tells a new problem. An app without a log plugin still
/// sees it; the plugin also logs it with `error!`.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy_delta_overlay::plugin::WorldFileError;
/// fn warn_player(problem: Option<Res<WorldFileError>>) {
///     if let Some(problem) = problem.filter(|p| p.is_changed()) {
///         eprintln!("the world file: {}", *problem); // names the file, the error, the action
///     }
/// }
/// ```
#[derive(Resource, Debug)]
pub struct WorldFileError {
    /// The world file.
    pub path: PathBuf,
    /// What went wrong.
    pub error: StoreError,
    /// What the plugin did about it.
    pub action: WorldFileAction,
}

impl std::fmt::Display for WorldFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; {}", self.error, self.action)
    }
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
    /// Saving stopped ([`WorldFileAction::SavingStopped`]).
    stopped: bool,
}

impl WorldFile {
    /// The store.
    pub fn store(&self) -> &WorldStore {
        &self.store
    }

    /// The store, to hand it states to save (`None` once saving stopped).
    #[cfg_attr(not(feature = "geology"), allow(dead_code))]
    pub(crate) fn saving_store(&mut self) -> Option<&mut WorldStore> {
        (!self.stopped).then_some(&mut self.store)
    }

    /// Whether the world was loaded or created, and what it took.
    pub fn opened(&self) -> Opened {
        self.opened
    }

    /// The last durable sequence number.
    pub fn durable(&self) -> u64 {
        self.store.durable()
    }

    /// Whether the plugin still saves the frames' changes: `false` once a
    /// [`WorldFileError`] said [`WorldFileAction::SavingStopped`].
    pub fn is_saving(&self) -> bool {
        !self.stopped
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
/// is handled as `policy` says, and reported in a [`WorldFileError`].
pub(crate) fn open(
    app: &mut App,
    path: &Path,
    options: &StoreOptions,
    policy: BadFilePolicy,
    config: &DeltaConfig,
) -> WorldOrigin {
    let options = StoreOptions { config: config.clone(), ..options.clone() };
    let error = match WorldStore::open(path, options.clone()) {
        Ok(opened) => {
            install(app, path, opened);
            return WorldOrigin::File;
        }
        Err(e) => e,
    };
    if policy == BadFilePolicy::MoveAsideAndStartFresh && error.is_bad_file() {
        let fresh = WorldStore::move_aside(path).and_then(|to| Ok((to, WorldStore::open(path, options)?)));
        match fresh {
            Ok((to, opened)) => {
                install(app, path, opened);
                report(
                    app.world_mut(),
                    WorldFileError { path: path.into(), error, action: WorldFileAction::MovedAside { to } },
                );
                return WorldOrigin::File;
            }
            Err(e) => {
                error!("delta overlay: {error}; setting the file aside and starting afresh failed: {e}");
                return refuse(app, path, e, config);
            }
        }
    }
    refuse(app, path, error, config)
}

/// Inserts what a file that opened gives, and says what opening did.
fn install(app: &mut App, path: &Path, (store, storage, opened): (WorldStore, DeltaStorage, Opened)) {
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
    let mut storage = storage;
    // The clock the world was saved at: what the processes' timers count on.
    if let Some(Ok(saved)) = store.saved_state(CLOCK_STATE)
        && saved.sequence <= storage.sequence()
        && let Ok(ms) = <[u8; 8]>::try_from(saved.bytes.as_slice())
    {
        storage.advance_clock(Duration::from_millis(u64::from_le_bytes(ms)).saturating_sub(storage.now()));
    }
    let sequence = storage.sequence();
    app.insert_resource(storage);
    app.insert_resource(WorldFile { store, opened, handed: sequence, reported: sequence, stopped: false });
}

/// [`BadFilePolicy::Refuse`]: a placeholder world, the error reported, the
/// exit asked for. Nothing touches the file.
fn refuse(app: &mut App, path: &Path, error: StoreError, config: &DeltaConfig) -> WorldOrigin {
    app.insert_resource(super::source::placeholder(config));
    report(app.world_mut(), WorldFileError { path: path.into(), error, action: WorldFileAction::Refused });
    app.world_mut().write_message(AppExit::error());
    WorldOrigin::Refused
}

/// Logs `problem` and makes it the app's [`WorldFileError`].
fn report(world: &mut World, problem: WorldFileError) {
    error!("delta overlay: {problem}");
    world.insert_resource(problem);
}

/// Saves the world where the app chose a [`WorldSource::File`](super::WorldSource::File):
/// every frame's [`FrameChanges`] handed to the file's writer thread (the frame
/// never waits for the disk), a [`DeltasDurable`] when the acknowledgement
/// moved, and a sync when the app exits. See [`WorldStore`] for the file and
/// what a crash can lose. Does nothing when the world did not come from a file.
///
/// A batch the store refuses is replaced by the whole world (saving goes on);
/// a writer that stopped stops the saving. Both are reported in a
/// [`WorldFileError`], as is a file that could not be opened (see
/// [`BadFilePolicy`]).
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
            .configure_sets(Last, ExitDrain.before(ExitSync))
            .add_systems(Last, drain_on_exit.in_set(ExitDrain).run_if(resource_exists::<WorldFile>))
            .add_systems(Last, sync_on_exit.in_set(ExitSync).run_if(resource_exists::<WorldFile>));
    }
}

/// Hands the frame's changes to the writer and reports acknowledgements; a
/// refused batch is replaced by the whole world, a stopped writer reported.
fn save_frame(
    frame: Res<FrameChanges>,
    mut storage: ResMut<DeltaStorage>,
    mut file: ResMut<WorldFile>,
    mut durable: MessageWriter<DeltasDurable>,
    mut commands: Commands,
) {
    if file.stopped {
        return;
    }
    let batch = &frame.batch;
    if !batch.is_empty() && batch.last_sequence() > file.handed {
        let storage = storage.bypass_change_detection();
        let problem = match file.store.commit(std::sync::Arc::clone(batch), storage) {
            Ok(()) => None,
            Err(StoreError::WriterStopped { .. }) => None,
            Err(refused) => Some(match file.store.resync(storage) {
                Ok(()) => (refused, WorldFileAction::Resynced),
                Err(e) => (e, WorldFileAction::SavingStopped),
            }),
        };
        file.handed = batch.last_sequence();
        if let Some((error, action)) = problem {
            file.stopped = action == WorldFileAction::SavingStopped;
            let path = file.store.path().to_path_buf();
            commands.queue(move |world: &mut World| report(world, WorldFileError { path, error, action }));
        }
    }
    // The writer's own failure, whenever it came (this frame's commit, a
    // checkpoint on its thread): the typed error it stopped with.
    if !file.stopped
        && let Some(error) = file.store.writer_error()
    {
        file.stopped = true;
        let path = file.store.path().to_path_buf();
        let action = WorldFileAction::SavingStopped;
        commands.queue(move |world: &mut World| report(world, WorldFileError { path, error, action }));
    }
    let through = file.store.durable();
    if through > file.reported {
        file.reported = through;
        durable.write(DeltasDurable { through });
    }
}

/// The name the storage clock is saved under beside the world.
const CLOCK_STATE: &str = "storage clock";

/// Where the file is synced as the app exits: what saves a state beside the
/// world (the geology processes) runs before it.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ExitSync;

/// Where the updates still waiting in the ingest backlog are applied and
/// handed to the file as the app exits (before any state is saved: the
/// states describe the world with them).
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ExitDrain;

/// Applies the whole ingest backlog when the app is exiting and hands its
/// changes to the writer: updates the frames' budget deferred were accepted,
/// and a clean exit saves them (they were lost before).
fn drain_on_exit(
    mut exits: MessageReader<AppExit>,
    mut storage: ResMut<DeltaStorage>,
    mut backlog: ResMut<super::Backlog>,
    mut file: ResMut<WorldFile>,
) {
    if exits.read().count() == 0 || backlog.len() == 0 || file.stopped {
        return;
    }
    let world = storage.bypass_change_detection();
    backlog.apply(world, std::time::Instant::now(), Duration::MAX, false);
    let batch = world.take_changes();
    if batch.is_empty() {
        return;
    }
    let last = batch.last_sequence();
    match file.store.commit(batch, world) {
        Ok(()) => file.handed = last,
        // The sync after it reports a stopped writer.
        Err(e) => warn!("delta overlay: the backlog's changes were not saved at exit: {e}"),
    }
}

/// Saves the storage clock and syncs pending commits when the app is
/// exiting; a failure is reported.
fn sync_on_exit(
    mut exits: MessageReader<AppExit>,
    storage: Res<DeltaStorage>,
    mut file: ResMut<WorldFile>,
    mut commands: Commands,
) {
    if exits.read().count() == 0 {
        return;
    }
    let clock = u64::try_from(storage.now().as_millis()).unwrap_or(u64::MAX);
    let saved = file.store.save_state(CLOCK_STATE, storage.sequence(), clock.to_le_bytes().to_vec());
    match saved.and_then(|()| file.store.sync()) {
        Ok(through) => info!("world saved: durable through sequence {through}"),
        Err(e) => {
            let error = file.store.writer_error().unwrap_or(e);
            let (path, action) = (file.store.path().to_path_buf(), WorldFileAction::SavingStopped);
            if !std::mem::replace(&mut file.stopped, true) {
                commands.queue(move |world: &mut World| report(world, WorldFileError { path, error, action }));
            }
        }
    }
}
