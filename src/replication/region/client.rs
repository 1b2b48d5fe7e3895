//! The region client's systems: thin, the decisions are [`RegionFollow`]'s.

use super::follow::Effect;
use super::{RegionClientStats, RegionStatus, RegionSync};
use crate::consolidation::DeltaConfig;
use crate::paging::{PagedWorld, PagingSettings};
use crate::plugin::PagedStore;
use crate::replication::{ClientWire, ServerWire};
use bevy::prelude::*;

/// What a world the server describes is made with.
#[derive(Resource, Clone, Debug)]
pub(super) struct ClientWorldSettings {
    pub settings: PagingSettings,
    pub config: DeltaConfig,
    pub edits_per_frame: usize,
}

/// Applies what the server sent; makes the world when the server describes it.
pub(super) fn receive(
    mut messages: MessageReader<ServerWire>,
    mut store: Option<ResMut<PagedStore>>,
    mut sync: ResMut<RegionSync>,
    made_with: Res<ClientWorldSettings>,
    mut commands: Commands,
) {
    for ServerWire(bytes) in messages.read() {
        sync.0.receive(bytes.clone());
    }
    let mut made: Option<PagedWorld> = None;
    let mut budget = made_with.edits_per_frame;
    loop {
        let world = match (&mut store, &mut made) {
            (Some(store), _) => Some(&mut store.0),
            (None, made) => made.as_mut(),
        };
        let effect = sync.0.apply(world, &mut budget);
        let Some(Effect::MakeWorld(generator, sector_columns)) = effect else { break };
        let settings = PagingSettings { sector_columns, ..made_with.settings.clone() };
        match PagedWorld::new(generator, settings, made_with.config.clone()) {
            Ok(world) => {
                made = Some(world);
                sync.0.world_made(Ok(()));
            }
            Err(e) => sync.0.world_made(Err(format!("the server's world cannot be made here: {e}"))),
        }
    }
    if let Some(world) = made {
        commands.insert_resource(PagedStore(world));
    }
}

/// Tells the server the region (the sectors the paged world wants, after
/// its tick) and what was received; updates the status.
pub(super) fn send(
    mut store: Option<ResMut<PagedStore>>,
    mut sync: ResMut<RegionSync>,
    mut status: ResMut<RegionStatus>,
    mut stats: ResMut<RegionClientStats>,
    mut out: MessageWriter<ClientWire>,
    mut messages: Local<Vec<Vec<u8>>>,
) {
    sync.0.outgoing(store.as_deref_mut().map(|s| &mut s.0), &mut messages);
    out.write_batch(messages.drain(..).map(ClientWire));
    let now = sync.0.status(store.as_deref().map(|s| &s.0));
    if *status != now {
        *status = now;
    }
    if *stats != sync.0.stats {
        *stats = sync.0.stats;
    }
}

/// Connection lost: the next one starts over.
pub(super) fn disconnected(
    mut sync: ResMut<RegionSync>,
    mut store: Option<ResMut<PagedStore>>,
    mut status: ResMut<RegionStatus>,
) {
    sync.0.disconnected(store.as_deref_mut().map(|s| &mut s.0));
    // Said now: the status is otherwise written only while connected.
    *status = sync.0.status(store.as_deref().map(|s| &s.0));
}
