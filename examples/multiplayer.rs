//! One world, several machines: a server runs the geology (rain erosion,
//! slides, an intrusion, settling) on the default world; clients join over UDP (renet),
//! receive the world, follow every change, and send edits of their own.
//!
//! ```text
//! # everything in one process, on 127.0.0.1: a server and N clients, all editing
//! cargo run --release --features replication --example multiplayer -- --loopback --clients 3 --frames 600
//! # or in separate processes
//! cargo run --release --features replication --example multiplayer -- --server --port 5000
//! cargo run --release --features replication --example multiplayer -- --client 127.0.0.1:5000
//! ```
//!
//! `--loopback` ends with `clients converged: N/N, 0 mismatches` when every
//! client's world equals the server's (by the digest over every voxel, and
//! voxel by voxel at sampled positions), and prints the figures: snapshot
//! size and join time, bytes per change, the server's frame time. Options:
//! `--edits E` edits per client per frame (default 20), `--frames F` frames of
//! editing (a server or client alone stops after F frames, default 3600).

#[allow(dead_code, reason = "the shared geology module serves several examples")]
mod common;

use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use bevy_delta_overlay::prelude::*;
use bevy_delta_overlay::{
    replication::ReplicationClientPlugin, replication::ReplicationSettings, replication::ReplicationStats,
    replication::ReplicationStatus,
};
use bevy_replicon::prelude::*;
use bevy_replicon_renet::netcode::{
    ClientAuthentication, NetcodeClientTransport, NetcodeServerTransport, ServerAuthentication, ServerConfig,
};
use bevy_replicon_renet::renet::ConnectionConfig;
use bevy_replicon_renet::{RenetChannelsExt, RenetClient, RenetServer, RepliconRenetPlugins};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

const PROTOCOL_ID: u64 = 0x0de1_7a0f;

#[derive(Clone, Debug)]
struct Options {
    mode: Mode,
    clients: usize,
    frames: u32,
    edits: usize,
}

#[derive(Clone, Debug)]
enum Mode {
    Loopback,
    Server { port: u16 },
    Client { server: SocketAddr },
}

fn usage() -> ! {
    eprintln!(
        "usage: multiplayer (--loopback [--clients N] | --server [--port P] | --client ADDR) [--frames F] [--edits E]"
    );
    std::process::exit(2);
}

fn options() -> Options {
    let mut o = Options { mode: Mode::Loopback, clients: 3, frames: 3600, edits: 20 };
    let mut loopback_frames = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--loopback" => o.mode = Mode::Loopback,
            "--server" => o.mode = Mode::Server { port: 5000 },
            "--port" => match &mut o.mode {
                Mode::Server { port } => *port = value().parse().unwrap_or_else(|_| usage()),
                _ => usage(),
            },
            "--client" => o.mode = Mode::Client { server: value().parse().unwrap_or_else(|_| usage()) },
            "--clients" => o.clients = value().parse().unwrap_or_else(|_| usage()),
            "--frames" => loopback_frames = Some(value().parse().unwrap_or_else(|_| usage())),
            "--edits" => o.edits = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    o.frames = loopback_frames.unwrap_or(if matches!(o.mode, Mode::Loopback) { 600 } else { 3600 });
    o
}

fn main() {
    let o = options();
    match o.mode.clone() {
        Mode::Loopback => loopback(&o),
        Mode::Server { port } => {
            let mut server = server_app(port);
            run_alone(&mut server, o.frames, |app| {
                let s = app.world().resource::<ReplicationStats>();
                format!(
                    "peers {} (joining {}), sequence {}, {} bytes/frame, lag {}",
                    s.peers,
                    s.joining,
                    app.world().resource::<DeltaStorage>().sequence(),
                    s.bytes_this_frame,
                    s.max_lag
                )
            });
        }
        Mode::Client { server } => {
            let mut client = client_app(server, 1, o.edits);
            run_alone(&mut client, o.frames, |app| format!("{:?}", app.world().resource::<ReplicationStatus>()));
        }
    }
}

/// Runs one app at 60 Hz for `frames` frames, printing `line` every second.
fn run_alone(app: &mut App, frames: u32, line: impl Fn(&App) -> String) {
    let mut printed = Instant::now();
    for _ in 0..frames {
        let t = Instant::now();
        app.update();
        if printed.elapsed() >= Duration::from_secs(1) {
            println!("{}", line(app));
            printed = Instant::now();
        }
        std::thread::sleep(Duration::from_micros(16_667).saturating_sub(t.elapsed()));
    }
}

fn base_plugins(app: &mut App) {
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

fn server_app(port: u16) -> App {
    let mut app = App::new();
    base_plugins(&mut app);
    // The loopback run pushes thousands of edits per client per frame,
    // faster than 60 Hz: the rate limit is raised to match.
    let settings = ReplicationSettings { edits_per_second: 1e7, edit_burst: 1e5, ..default() };
    // Game time: a sixtieth of a second a frame, however fast frames run.
    app.insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(Duration::from_secs_f64(1.0 / 60.0)));
    let bounds = WorldGen::default().bounds();
    app.insert_resource(settings)
        .add_plugins(common::ExampleGeology { bounds, rain: None })
        .add_plugins(DeltaOverlayPlugins::new(Update).serve());
    app.finish();
    app.cleanup();
    let server = RenetServer::new(connection(&app));
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).unwrap_or_else(|e| {
        eprintln!("cannot bind 127.0.0.1:{port}: {e}");
        std::process::exit(1);
    });
    let config = ServerConfig {
        current_time: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default(),
        max_clients: 64,
        protocol_id: PROTOCOL_ID,
        authentication: ServerAuthentication::Unsecure,
        public_addresses: socket.local_addr().into_iter().collect(),
    };
    let transport = NetcodeServerTransport::new(config, socket).unwrap_or_else(|e| {
        eprintln!("cannot start the server: {e}");
        std::process::exit(1);
    });
    app.insert_resource(server).insert_resource(transport);
    app
}

/// Random edits a client makes each frame.
#[derive(Resource)]
struct Editing {
    per_frame: usize,
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

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn client_app(server: SocketAddr, id: u64, edits: usize) -> App {
    let mut app = App::new();
    base_plugins(&mut app);
    let max_edits_per_frame = edits.max(1);
    let client = ReplicationClientPlugin { max_edits_per_frame, ..default() };
    app.add_plugins(DeltaOverlayPlugins::new(Update).world(WorldSource::Server).set(client));
    app.insert_resource(Editing { per_frame: edits, rng: id.wrapping_mul(0x5851_f42d_4c95_7f2d) })
        .add_systems(Update, edit.before(DeltaOverlaySystems::Ingest));
    app.finish();
    app.cleanup();
    let client = RenetClient::new(connection(&app));
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap_or_else(|e| {
        eprintln!("cannot bind a client socket: {e}");
        std::process::exit(1);
    });
    let authentication = ClientAuthentication::Unsecure {
        client_id: now.as_nanos() as u64 ^ id,
        protocol_id: PROTOCOL_ID,
        server_addr: server,
        user_data: None,
    };
    let transport = NetcodeClientTransport::new(now, authentication, socket).unwrap_or_else(|e| {
        eprintln!("cannot start a client: {e}");
        std::process::exit(1);
    });
    app.insert_resource(client).insert_resource(transport);
    app
}

fn synced_at(app: &App) -> Option<u64> {
    match *app.world().resource::<ReplicationStatus>() {
        ReplicationStatus::Synced { sequence, .. } => Some(sequence),
        _ => None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// A server and `o.clients` clients in this process, over 127.0.0.1.
fn loopback(o: &Options) {
    let t = Instant::now();
    let mut server = server_app(0);
    let addr = server.world().resource::<NetcodeServerTransport>().addresses()[0];
    println!("server on {addr}: default world built in {:.2} s", t.elapsed().as_secs_f64());
    let mut clients: Vec<App> = (0..o.clients).map(|i| client_app(addr, i as u64 + 1, o.edits)).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let step = |server: &mut App, clients: &mut [App]| {
        server.update();
        for c in clients.iter_mut() {
            c.update();
        }
    };

    // Join: every client connects, receives the world and follows it.
    let t = Instant::now();
    let mut joined: Vec<Option<Duration>> = vec![None; o.clients];
    let (mut connected, mut streaming): (Vec<Option<Duration>>, Vec<Option<Duration>>) =
        (vec![None; o.clients], vec![None; o.clients]);
    while joined.iter().any(Option::is_none) {
        if Instant::now() > deadline {
            println!("clients converged: {}/{}, joins timed out", joined.iter().flatten().count(), o.clients);
            std::process::exit(1);
        }
        step(&mut server, &mut clients);
        for (i, c) in clients.iter().enumerate() {
            let state = *c.world().resource::<State<ClientState>>().get();
            if connected[i].is_none() && state == ClientState::Connected {
                connected[i] = Some(t.elapsed());
            }
            let status = *c.world().resource::<ReplicationStatus>();
            if streaming[i].is_none() && matches!(status, ReplicationStatus::Joining { .. }) {
                streaming[i] = Some(t.elapsed());
            }
            if joined[i].is_none() && synced_at(c).is_some() {
                joined[i] = Some(t.elapsed());
            }
        }
    }
    let stats = server.world().resource::<ReplicationStats>().clone();
    let slowest = joined.iter().flatten().max().copied().unwrap_or_default();
    let fastest = joined.iter().flatten().min().copied().unwrap_or_default();
    let last = |v: &[Option<Duration>]| v.iter().flatten().max().copied().unwrap_or_default().as_secs_f64();
    println!(
        "join phases (slowest client): connected {:.2} s, first snapshot bytes {:.2} s, synced {:.2} s",
        last(&connected),
        last(&streaming),
        last(&joined)
    );
    println!(
        "joined: {} clients, snapshot {:.2} MB (encoded in {:.2} s), first synced {:.2} s, all {:.2} s after connecting",
        o.clients,
        stats.snapshot_bytes as f64 / 1e6,
        stats.snapshot_encode.as_secs_f64(),
        fastest.as_secs_f64(),
        slowest.as_secs_f64()
    );

    // Play: the server's geology and every client's edits.
    let before = server.world().resource::<ReplicationStats>().clone();
    let mut frame_times = Vec::with_capacity(o.frames as usize);
    for _ in 0..o.frames {
        let t = Instant::now();
        server.update();
        frame_times.push(t.elapsed());
        for c in &mut clients {
            c.update();
        }
    }
    // Quiet: no more edits; every client catches up.
    for c in &mut clients {
        c.world_mut().resource_mut::<Editing>().per_frame = 0;
    }
    let target = loop {
        step(&mut server, &mut clients);
        step(&mut server, &mut clients);
        let target = server.world().resource::<DeltaStorage>().sequence();
        if clients.iter().all(|c| synced_at(c) == Some(target)) {
            break target;
        }
        if Instant::now() > deadline {
            println!("clients converged: 0/{}, timed out at server sequence {target}", o.clients);
            std::process::exit(1);
        }
    };
    let after = server.world().resource::<ReplicationStats>().clone();
    frame_times.sort();
    let changes = after.changes_sent - before.changes_sent;
    println!(
        "play: {} frames, server sequence {target}, {} client edits applied, {} refused",
        o.frames,
        after.edits_applied,
        after.refused_rate + after.refused_out_of_bounds + after.refused_unauthorized + after.refused_not_joined
    );
    println!(
        "wire: {:.2} bytes per change sent ({} changes to {} clients, {:.1} MB of change messages)",
        (after.change_bytes - before.change_bytes) as f64 / changes.max(1) as f64,
        changes,
        o.clients,
        (after.change_bytes - before.change_bytes) as f64 / 1e6
    );
    println!(
        "server frame: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&frame_times, 0.5),
        percentile(&frame_times, 0.99),
        percentile(&frame_times, 1.0)
    );

    // Compare: the digest over every voxel, and sampled voxels.
    let truth = server.world().resource::<DeltaStorage>();
    let digest = truth.digest();
    let mut rng = 0xfeed;
    let samples: Vec<IVec3> = (0..20_000)
        .map(|_| {
            let b = truth.bounds();
            let s = b.size().as_u64vec3();
            let r = splitmix(&mut rng);
            b.min + IVec3::new((r % s.x) as i32, ((r >> 21) % s.y) as i32, ((r >> 42) % s.z) as i32)
        })
        .collect();
    let mut mismatches = 0;
    let mut converged = 0;
    for c in &clients {
        let copy = c.world().resource::<DeltaStorage>();
        let differs = samples.iter().filter(|&&p| copy.query(p).ok() != truth.query(p).ok()).count();
        mismatches += differs;
        if differs == 0 && copy.digest() == digest && copy.sequence() == truth.sequence() {
            converged += 1;
        }
    }
    println!("world digest {digest:016x}");
    println!("clients converged: {converged}/{}, {mismatches} mismatches", o.clients);
    if converged != o.clients {
        std::process::exit(1);
    }
}
