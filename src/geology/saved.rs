//! The processes' state saved with the world (features `plugin` and
//! `persistence`): each process's [`GeologyProcess::save`] goes into the
//! world file as the app exits, under `geology/<name>`, and is read back
//! into the process when the app loads that file, so the run goes on as an
//! uninterrupted one would (`tests/geology_continuity.rs`).
//!
//! A state is saved with the world's sequence number. Restored onto a world
//! at that very sequence (a clean exit), the run continues exactly. After a
//! crash the world on disk may be ahead of the last saved state: the state
//! is restored all the same (magma keeps cooling, queues keep their work) and
//! the outcome says by how many changes it was behind.

use super::process::GeologyProcess;
use super::state::{StateReader, StateWriter};
use crate::persistence::SavedState;
use crate::plugin::{ExitDrain, ExitSync, WorldFile};
use crate::storage::DeltaStorage;
use bevy::app::{AppExit, Last};
use bevy::ecs::component::Mutable;
use bevy::prelude::*;
use std::collections::BTreeMap;

/// What became of each process's saved state when the world was loaded, by
/// [`GeologyProcess::NAME`] (a process with nothing saved is not listed).
#[derive(Resource, Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoredStates(pub BTreeMap<&'static str, Restored>);

/// What became of one process's saved state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restored {
    /// Saved with this very world: the run goes on exactly.
    Exactly,
    /// Saved this many changes before the world loaded (the app did not exit
    /// cleanly after it): restored, the run goes on from there.
    Behind(u64),
    /// Unreadable, or saved with a later world than the one loaded: the
    /// process starts fresh. Why, in words.
    Refused(String),
}

/// The name a process's state is saved under.
fn state_name<P: GeologyProcess>() -> String {
    format!("geology/{}", P::NAME)
}

/// Adds the save on exit and the restore on load of `P`'s state.
pub(super) fn add<P>(app: &mut App)
where
    P: GeologyProcess + Resource + Component<Mutability = Mutable>,
    P::Settings: Resource,
{
    app.init_resource::<RestoredStates>()
        .add_systems(PreStartup, restore::<P>.run_if(resource_exists::<WorldFile>))
        .add_systems(Last, save::<P>.after(ExitDrain).before(ExitSync).run_if(resource_exists::<WorldFile>));
}

/// Reads `P`'s saved state into it, when the loaded file has one.
fn restore<P>(
    file: Res<WorldFile>,
    storage: Res<DeltaStorage>,
    settings: Res<P::Settings>,
    mut process: ResMut<P>,
    mut restored: ResMut<RestoredStates>,
) where
    P: GeologyProcess + Resource + Component<Mutability = Mutable>,
    P::Settings: Resource,
{
    let Some(saved) = file.store().saved_state(&state_name::<P>()) else { return };
    let outcome = match saved {
        Err(e) => Restored::Refused(format!("the saved state is damaged: {e}")),
        Ok(saved) => restored_from::<P>(&saved, &storage, &settings, &mut process),
    };
    match &outcome {
        Restored::Exactly => info!("geology: {} goes on where it was saved", P::NAME),
        Restored::Behind(n) => warn!("geology: {} restored from {n} changes before the world", P::NAME),
        Restored::Refused(why) => warn!("geology: {} starts fresh: {why}", P::NAME),
    }
    restored.0.insert(P::NAME, outcome);
}

/// `P` from `saved`, when it reads back for this world.
fn restored_from<P: GeologyProcess>(
    saved: &SavedState,
    storage: &DeltaStorage,
    settings: &P::Settings,
    process: &mut P,
) -> Restored {
    let sequence = storage.sequence();
    if saved.sequence > sequence {
        Restored::Refused(format!("saved at sequence {}, after the world loaded ({sequence})", saved.sequence))
    } else {
        let mut input = StateReader::new(&saved.bytes);
        let mut fresh = P::new(settings);
        match fresh.restore(storage, &mut input).and_then(|()| input.finish()) {
            Ok(()) => {
                *process = fresh;
                match sequence - saved.sequence {
                    0 => Restored::Exactly,
                    behind => Restored::Behind(behind),
                }
            }
            Err(e) => Restored::Refused(e.to_string()),
        }
    }
}

/// Hands `P`'s state to the world file as the app exits (before the file's
/// last sync).
fn save<P>(
    mut exits: MessageReader<AppExit>,
    storage: Res<DeltaStorage>,
    settings: Res<P::Settings>,
    mut process: ResMut<P>,
    mut file: ResMut<WorldFile>,
) where
    P: GeologyProcess + Resource + Component<Mutability = Mutable>,
    P::Settings: Resource,
{
    if exits.read().count() == 0 {
        return;
    }
    let mut out = StateWriter::new();
    process.save(&storage, &settings, &mut out);
    if out.is_empty() {
        return;
    }
    if let Some(store) = file.saving_store()
        && let Err(e) = store.save_state(&state_name::<P>(), storage.sequence(), out.into_bytes())
    {
        // The file's own sync reports a stopped writer.
        warn!("geology: the state of {} was not saved: {e}", P::NAME);
    }
}
