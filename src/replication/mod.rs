//! A server-authoritative world replicated to clients (feature `replication`).
//!
//! # Model
//!
//! One app, the server, owns the world: its [`DeltaStorage`](crate::storage::DeltaStorage)
//! is the truth, and its change feed numbers every accepted change. Clients
//! hold a copy that is the server's as of some sequence number and follows it:
//!
//! - **Join**: a connecting client receives a snapshot of the world (the
//!   file's node records, streamed in bounded chunks a frame's budget at a
//!   time, built once on the async pool and shared by every client joining
//!   meanwhile), then every change batch after the snapshot's sequence. No
//!   change is lost or applied twice: a snapshot is taken only at a batch
//!   boundary, and the batches broadcast while it is built or streamed are
//!   kept for the joiner.
//! - **Follow**: each frame's changes (the feed's batch, the one persistence
//!   stores) go to every synced client as one ordered, reliable, checksummed
//!   message. A client applies batches in order; a gap or a message that does
//!   not decode makes it ask for a new snapshot (a resync) instead of drifting.
//! - **Edit**: a client's `MaterialUpdate`s are not applied locally; they go
//!   to the server as edit requests (absolute positions, compressed). The
//!   server checks bounds, a per-client rate and the [`EditPolicy`] hook, and
//!   applies what passes in arrival order; the client sees its edits when they
//!   come back in a change batch (no local prediction), refused ones as
//!   [`EditsRefused`]. A message that does not decode, or a flood of refused
//!   edits, disconnects its sender; the server and other clients go on.
//!
//! Consolidation is local to each peer and never on the wire: it changes no
//! value, so every peer consolidates on its own schedule.
//!
//! # Transport
//!
//! The plugins ride bevy_replicon's messages on an ordered reliable channel,
//! so any replicon backend works; the `multiplayer` example uses renet over
//! UDP on 127.0.0.1. Replicon's tests' `ServerTestAppExt` joins Apps in one
//! process with no socket, which is how this crate's tests run.

pub(crate) mod audit;
mod client;
pub(crate) mod fuzz_seeds;
#[cfg(feature = "paging")]
mod region;
pub(crate) mod server;
pub(crate) mod wire;

pub use client::{
    EditsRefused, PendingEdits, ReplicationClientPlugin, ReplicationClientStats, ReplicationStatus, WorldReceived,
};
#[cfg(feature = "paging")]
pub use region::{
    RegionClientPlugin, RegionClientStats, RegionServerPlugin, RegionSettings, RegionStats, RegionStatus, RegionSync,
};
pub use server::{EditPolicy, EditRequest, ReplicationServerPlugin, ReplicationSettings, ReplicationStats};
pub use wire::RefusedReason;

use bevy::prelude::*;
use bevy_replicon::bytes::Bytes;
use bevy_replicon::prelude::*;
use bevy_replicon::shared::message::ctx::{ClientReceiveCtx, ClientSendCtx, ServerReceiveCtx, ServerSendCtx};

/// A message from the server, as its bytes (see `wire.rs`): the crate's codec
/// frames and checks them, replicon only carries them.
#[derive(Message, Clone, Debug)]
struct ServerWire(Bytes);

/// A message from a client, as its bytes.
#[derive(Message, Clone, Debug)]
struct ClientWire(Vec<u8>);

/// Marks that the wire messages are registered (a listen server adds both
/// plugins; the protocol must be registered once).
#[derive(Resource)]
struct Registered;

/// Registers the two wire messages with replicon, once. Both are independent
/// of replicon's entity replication (they reference no entity), so they are
/// sent and received as soon as they are written.
///
/// # Panics
/// When bevy_replicon's `RepliconPlugins` were not added first: replicon
/// registers messages only into its own resources.
fn register(app: &mut App) {
    if app.world().contains_resource::<Registered>() {
        return;
    }
    assert!(
        app.is_plugin_added::<bevy_replicon::shared::RepliconSharedPlugin>(),
        "the replication plugins need bevy_replicon's RepliconPlugins added before them"
    );
    app.insert_resource(Registered)
        .add_server_message_with(Channel::Ordered, send_server, receive_server)
        .make_message_independent::<ServerWire>()
        .add_client_message_with(Channel::Ordered, send_client, receive_client);
}

fn send_server(_: &mut ServerSendCtx, message: &ServerWire, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(&message.0);
    Ok(())
}

fn receive_server(_: &mut ClientReceiveCtx, message: &mut Bytes) -> Result<ServerWire> {
    Ok(ServerWire(std::mem::take(message)))
}

fn send_client(_: &mut ClientSendCtx, message: &ClientWire, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(&message.0);
    Ok(())
}

fn receive_client(_: &mut ServerReceiveCtx, message: &mut Bytes) -> Result<ClientWire> {
    Ok(ClientWire(std::mem::take(message).to_vec()))
}
