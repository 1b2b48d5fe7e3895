//! The server and client apps, over renet's netcode on UDP.

use crate::auth::{self, Key, PROTOCOL_ID};
use crate::common;
use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use bevy_delta_overlay::prelude::*;
use bevy_delta_overlay::replication::{EditPolicy, ReplicationClientPlugin, ReplicationSettings, ReplicationStatus};
use bevy_replicon::prelude::*;
use bevy_replicon_renet::netcode::{
    ClientAuthentication, ConnectToken, NetcodeClientTransport, NetcodeServerTransport, ServerAuthentication,
    ServerConfig,
};
use bevy_replicon_renet::renet::ConnectionConfig;
use bevy_replicon_renet::{RenetChannelsExt, RenetClient, RenetServer, RepliconRenetPlugins};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime};

/// How the server admits clients.
pub enum ServerAuth {
    /// Connect tokens sealed with this key (see `auth.rs`).
    Secure(Key),
    /// Anyone, with the id it picks: 127.0.0.1 experiments only.
    Unsecure,
}

/// How a client proves who it is.
pub enum ClientAuth {
    /// A token from the login step.
    Token(Box<ConnectToken>),
    /// The id it picks (the server must run `--unsecure`).
    Unsecure(u64),
}

pub fn base_plugins(app: &mut App) {
    app.add_plugins((
        MinimalPlugins,
        StatesPlugin,
        // Replication every frame, not on a fixed tick.
        RepliconPlugins.set(ServerPlugin::new(PostUpdate)),
        RepliconRenetPlugins,
    ));
}

/// The renet connection: replicon's channels, with room for the crate's
/// flow-control window and the bytes a slow client may be behind (the
/// reliable channel's memory must exceed both), and a per-tick budget that
/// streams the default world's snapshot in well under two seconds at 60 Hz.
fn connection(app: &App) -> ConnectionConfig {
    let channels = app.world().resource::<RepliconChannels>();
    let settings = app.world().get_resource::<ReplicationSettings>().cloned().unwrap_or_default();
    let memory = (settings.window_bytes + settings.max_behind_bytes) as usize + (4 << 20);
    let mut server_channels_config = channels.server_configs();
    let mut client_channels_config = channels.client_configs();
    for c in server_channels_config.iter_mut().chain(&mut client_channels_config) {
        c.max_memory_usage_bytes = c.max_memory_usage_bytes.max(memory);
    }
    ConnectionConfig { available_bytes_per_tick: 64 << 10, server_channels_config, client_channels_config }
}

fn now() -> Duration {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
}

fn fail(what: String) -> ! {
    eprintln!("{what}");
    std::process::exit(1);
}

/// The server: the geology on the default world, clients' edits checked by an
/// `EditPolicy` that knows who sent them (the bedrock, the bottom 4 layers,
/// is user 1's alone).
/// `public` is the address clients reach (the one tokens name); by default
/// the bound address, which must then not be unspecified (0.0.0.0).
pub fn server_app(ip: IpAddr, port: u16, public: Option<SocketAddr>, authentication: ServerAuth) -> App {
    if ip.is_unspecified() && public.is_none() {
        fail(format!("--bind {ip} needs --public ADDR: the address clients reach, which their tokens name"));
    }
    let mut app = App::new();
    base_plugins(&mut app);
    // The loopback run pushes thousands of edits per client per frame,
    // faster than 60 Hz: the rate limit is raised to match.
    let settings = ReplicationSettings { edits_per_second: 1e7, edit_burst: 1e5, ..default() };
    // Game time: a sixtieth of a second a frame, however fast frames run.
    app.insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(Duration::from_secs_f64(1.0 / 60.0)));
    let bounds = WorldGen::default().bounds();
    let bedrock = bounds.min.y + 4;
    app.insert_resource(settings)
        .insert_resource(EditPolicy::new(move |e| e.position.y >= bedrock || e.network_id == Some(1)))
        .add_plugins(common::ExampleGeology { bounds, rain: None })
        .add_plugins(common::flood::StoreClock)
        .add_plugins(DeltaOverlayPlugins::new(Update).serve());
    app.finish();
    app.cleanup();
    serve_on(&mut app, ip, port, public, authentication);
    app
}

/// Makes `app` a renet server on `ip:port` (`public`: the address clients
/// reach, by default the bound one).
pub fn serve_on(app: &mut App, ip: IpAddr, port: u16, public: Option<SocketAddr>, authentication: ServerAuth) {
    let server = RenetServer::new(connection(app));
    let socket = UdpSocket::bind((ip, port)).unwrap_or_else(|e| fail(format!("cannot bind {ip}:{port}: {e}")));
    let authentication = match authentication {
        ServerAuth::Secure(private_key) => ServerAuthentication::Secure { private_key },
        ServerAuth::Unsecure => ServerAuthentication::Unsecure,
    };
    let config = ServerConfig {
        current_time: now(),
        max_clients: 64,
        protocol_id: PROTOCOL_ID,
        authentication,
        // Netcode admits a token only if it names one of these.
        public_addresses: match public {
            Some(addr) => vec![addr],
            None => socket.local_addr().into_iter().collect(),
        },
    };
    let transport =
        NetcodeServerTransport::new(config, socket).unwrap_or_else(|e| fail(format!("cannot start the server: {e}")));
    app.insert_resource(server).insert_resource(transport);
}

/// Random edits a client makes each frame.
#[derive(Resource)]
pub struct Editing {
    pub per_frame: usize,
    rng: u64,
}

fn edit(
    mut editing: ResMut<Editing>,
    storage: Res<DeltaStorage>,
    status: Res<ReplicationStatus>,
    mut out: MessageWriter<MaterialUpdate>,
) {
    if !matches!(*status, ReplicationStatus::Synced { .. }) {
        return;
    }
    let b = storage.bounds();
    let size = b.size().as_u64vec3();
    for _ in 0..editing.per_frame {
        let r = splitmix(&mut editing.rng);
        let p = b.min + IVec3::new((r % size.x) as i32, ((r >> 21) % size.y) as i32, ((r >> 42) % size.z) as i32);
        let material =
            [materials::SEDIMENT, materials::WATER, materials::MAGMA, materials::AIR][(r >> 60) as usize & 3];
        out.write(MaterialUpdate { position: p, material });
    }
}

pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A client of `server`, making `edits` random edits a frame once synced.
pub fn client_app(server: SocketAddr, authentication: ClientAuth, seed: u64, edits: usize) -> App {
    let mut app = App::new();
    base_plugins(&mut app);
    let max_edits_per_frame = edits.max(1);
    let client = ReplicationClientPlugin { max_edits_per_frame, ..default() };
    app.add_plugins(DeltaOverlayPlugins::new(Update).world(WorldSource::Server).set(client));
    app.insert_resource(Editing { per_frame: edits, rng: seed.wrapping_mul(0x5851_f42d_4c95_7f2d) })
        .add_systems(Update, edit.before(DeltaOverlaySystems::Ingest));
    app.finish();
    app.cleanup();
    connect_to(&mut app, server, authentication);
    app
}

/// Makes `app` a renet client of `server`.
pub fn connect_to(app: &mut App, server: SocketAddr, authentication: ClientAuth) {
    let client = RenetClient::new(connection(app));
    let bind: SocketAddr = match server {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let bind = if server.ip().is_loopback() { SocketAddr::new(server.ip(), 0) } else { bind };
    let socket = UdpSocket::bind(bind).unwrap_or_else(|e| fail(format!("cannot bind a client socket: {e}")));
    let authentication = match authentication {
        ClientAuth::Token(connect_token) => ClientAuthentication::Secure { connect_token: *connect_token },
        ClientAuth::Unsecure(client_id) => {
            ClientAuthentication::Unsecure { client_id, protocol_id: PROTOCOL_ID, server_addr: server, user_data: None }
        }
    };
    let transport = NetcodeClientTransport::new(now(), authentication, socket)
        .unwrap_or_else(|e| fail(format!("cannot start a client: {e}")));
    app.insert_resource(client).insert_resource(transport);
}

/// A loopback client's authentication: a token from the login step with the
/// shared key, or an id of its own.
pub fn loopback_auth(key: Option<&Key>, user: u64, server: SocketAddr) -> ClientAuth {
    match key {
        Some(key) => match auth::issue_token(key, user, server) {
            Ok(token) => ClientAuth::Token(Box::new(token)),
            Err(e) => fail(e),
        },
        None => ClientAuth::Unsecure(now().as_nanos() as u64 ^ user),
    }
}
