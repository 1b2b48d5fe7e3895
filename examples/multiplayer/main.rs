//! One world, several machines: a server runs the geology (rain erosion,
//! slides, an intrusion, settling) on the default world; clients join over UDP
//! (renet's netcode, secure mode), receive the world, follow every change, and
//! send edits of their own.
//!
//! ```text
//! # everything in one process, on 127.0.0.1: a server and N clients, all editing
//! cargo run --release --features replication --example multiplayer -- --loopback --clients 3 --frames 600
//! # or in separate processes: a key the server and the login step share
//! head -c 32 /dev/urandom > server.key
//! cargo run --release --features replication --example multiplayer -- --server --port 5000 --key-file server.key
//! # the login step issues user 7 a token for that server (a game's login service would)
//! cargo run --release --features replication --example multiplayer -- --issue-token --user 7 \
//!     --for 127.0.0.1:5000 --key-file server.key --out user7.token
//! cargo run --release --features replication --example multiplayer -- --client 127.0.0.1:5000 --token user7.token
//! ```
//!
//! The server binds 127.0.0.1 unless `--bind ADDR` says otherwise (for a real
//! network: `--bind 0.0.0.0 --public ADDR`, ADDR being the address clients
//! reach, the one the tokens name with `--for`). `--unsecure` (server and clients) turns authentication off: any
//! peer may connect with an id of its choosing; for 127.0.0.1 experiments only.
//! The key may also come from `DELTA_NETCODE_KEY` (64 hex digits).
//!
//! `--loopback` ends with `clients converged: N/N, 0 mismatches` when every
//! client's world equals the server's (by the digest over every voxel, and
//! voxel by voxel at sampled positions) and the server's world holds every
//! update it accepted (checked against a shadow copy), and prints the figures:
//! snapshot size and join time, bytes per change, the server's frame time and
//! its store's worst frame. Options: `--edits E` edits per client per frame
//! (default 20), `--frames F` frames of editing (a server or client alone
//! stops after F frames, default 3600).
//!
//! `--loopback --region` (feature `paging`) serves a paged world of 16384 x
//! 512 x 16384 voxels by region instead (`region.rs`): each client joins
//! with an interest of 160 columns, is timed until its region is received
//! and resident, wanders, and is checked voxel by voxel against the server.
//! `--edits E` the server's edits a frame, `--history H` those made before
//! the clients join (default 200,000), `--file PATH` (feature
//! `persistence`) keeps the server's edits in a file (the history handed to
//! it before the clients join, so their sectors are read from it).
//!
//! ```text
//! cargo run --release --features replication,paging --example multiplayer -- --loopback --region --clients 2 --frames 600
//! ```

#[allow(dead_code, reason = "the shared geology module serves several examples")]
#[path = "../common/mod.rs"]
mod common;

mod apps;
mod auth;
#[cfg(feature = "paging")]
mod region;

use apps::{ClientAuth, ServerAuth};
use bevy::prelude::*;
use bevy_delta_overlay::prelude::*;
use bevy_delta_overlay::replication::{ReplicationStats, ReplicationStatus};
use bevy_replicon::prelude::*;
use bevy_replicon_renet::netcode::NetcodeServerTransport;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
struct Options {
    mode: Mode,
    clients: usize,
    frames: u32,
    edits: usize,
    unsecure: bool,
    key_file: Option<PathBuf>,
    bind: IpAddr,
    public: Option<SocketAddr>,
    port: u16,
    token: Option<PathBuf>,
    user: u64,
    out: Option<PathBuf>,
    region: bool,
    history: usize,
    file: Option<PathBuf>,
}

#[derive(Clone, Debug)]
enum Mode {
    Loopback,
    Server,
    Client { server: SocketAddr },
    IssueToken { server: SocketAddr },
}

fn usage() -> ! {
    eprintln!(
        "usage: multiplayer --loopback [--clients N] [--unsecure] [--frames F] [--edits E]
       multiplayer --loopback --region [--clients N] [--unsecure] [--frames F] [--edits E] [--history H] [--file PATH]
       multiplayer --server [--port P] [--bind ADDR --public ADDR] (--key-file K | --unsecure) [--frames F]
       multiplayer --issue-token --user ID --for ADDR [--key-file K] --out FILE
       multiplayer --client ADDR (--token FILE | --unsecure) [--frames F] [--edits E]
(the key is 32 bytes or 64 hex digits in K, or 64 hex digits in DELTA_NETCODE_KEY)"
    );
    std::process::exit(2);
}

fn options() -> Options {
    let mut o = Options {
        mode: Mode::Loopback,
        clients: 3,
        frames: 3600,
        edits: 20,
        unsecure: false,
        key_file: None,
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        public: None,
        port: 5000,
        token: None,
        user: 1,
        out: None,
        region: false,
        history: 200_000,
        file: None,
    };
    let mut loopback_frames = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        let addr = |v: String| v.parse().unwrap_or_else(|_| usage());
        match arg.as_str() {
            "--loopback" => o.mode = Mode::Loopback,
            "--server" => o.mode = Mode::Server,
            "--port" => o.port = value().parse().unwrap_or_else(|_| usage()),
            "--bind" => o.bind = value().parse().unwrap_or_else(|_| usage()),
            "--public" => o.public = Some(addr(value())),
            "--client" => o.mode = Mode::Client { server: addr(value()) },
            "--issue-token" => o.mode = Mode::IssueToken { server: SocketAddr::from(([127, 0, 0, 1], 5000)) },
            "--for" => match &mut o.mode {
                Mode::IssueToken { server } => *server = addr(value()),
                _ => usage(),
            },
            "--user" => o.user = value().parse().unwrap_or_else(|_| usage()),
            "--out" => o.out = Some(value().into()),
            "--token" => o.token = Some(value().into()),
            "--key-file" => o.key_file = Some(value().into()),
            "--unsecure" => o.unsecure = true,
            "--clients" => o.clients = value().parse().unwrap_or_else(|_| usage()),
            "--frames" => loopback_frames = Some(value().parse().unwrap_or_else(|_| usage())),
            "--edits" => o.edits = value().parse().unwrap_or_else(|_| usage()),
            "--region" => o.region = true,
            "--history" => o.history = value().parse().unwrap_or_else(|_| usage()),
            "--file" => o.file = Some(value().into()),
            _ => usage(),
        }
    }
    o.frames = loopback_frames.unwrap_or(if matches!(o.mode, Mode::Loopback) { 600 } else { 3600 });
    o
}

fn fail(what: String) -> ! {
    eprintln!("{what}");
    std::process::exit(1);
}

fn main() {
    let o = options();
    match o.mode.clone() {
        #[cfg(feature = "paging")]
        Mode::Loopback if o.region => {
            region::loopback(o.clients, o.frames, o.edits, o.history, !o.unsecure, o.file.clone())
        }
        #[cfg(not(feature = "paging"))]
        Mode::Loopback if o.region => fail("--region needs feature `paging`".into()),
        Mode::Loopback => loopback(&o),
        Mode::Server => {
            let auth = match o.unsecure {
                true => ServerAuth::Unsecure,
                false => ServerAuth::Secure(auth::load_key(o.key_file.as_deref()).unwrap_or_else(|e| fail(e))),
            };
            let mut server = apps::server_app(o.bind, o.port, o.public, auth);
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
        Mode::IssueToken { server } => {
            let key = auth::load_key(o.key_file.as_deref()).unwrap_or_else(|e| fail(e));
            let token = auth::issue_token(&key, o.user, server).unwrap_or_else(|e| fail(e));
            let out = o.out.unwrap_or_else(|| usage());
            auth::write_token(&token, &out).unwrap_or_else(|e| fail(e));
            println!("token for user {} to connect to {server} written to {}", o.user, out.display());
        }
        Mode::Client { server } => {
            let auth = match (&o.token, o.unsecure) {
                (Some(path), _) => ClientAuth::Token(Box::new(auth::read_token(path).unwrap_or_else(|e| fail(e)))),
                (None, true) => ClientAuth::Unsecure(o.user),
                (None, false) => fail("a client needs --token FILE (from --issue-token), or --unsecure".into()),
            };
            let mut client = apps::client_app(server, auth, o.user, o.edits);
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
    // The server and the login step share a key made for this run; each
    // client gets a token for user i + 1.
    let key = (!o.unsecure).then(auth::random_key);
    let server_auth = key.map_or(ServerAuth::Unsecure, ServerAuth::Secure);
    let mut server = apps::server_app(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, None, server_auth);
    let addr = server.world().resource::<NetcodeServerTransport>().addresses()[0];
    let mode = if o.unsecure { "unsecure" } else { "secure, connect tokens" };
    println!("server on {addr} ({mode}): default world built in {:.2} s", t.elapsed().as_secs_f64());
    let mut clients: Vec<App> = (0..o.clients as u64)
        .map(|i| apps::client_app(addr, apps::loopback_auth(key.as_ref(), i + 1, addr), i + 1, o.edits))
        .collect();
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
        c.world_mut().resource_mut::<apps::Editing>().per_frame = 0;
    }
    let target = loop {
        step(&mut server, &mut clients);
        step(&mut server, &mut clients);
        let target = server.world().resource::<DeltaStorage>().sequence();
        let waiting = server.world().resource::<DeltaStats>().ingest_backlog;
        if waiting == 0 && clients.iter().all(|c| synced_at(c) == Some(target)) {
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
    let refused = after.refused_rate
        + after.refused_out_of_bounds
        + after.refused_unauthorized
        + after.refused_not_joined
        + after.refused_busy
        + after.refused_material;
    println!(
        "play: {} frames, server sequence {target}, {} client edits applied, {refused} refused ({} by the policy, {} over the server's budget)",
        o.frames, after.edits_applied, after.refused_unauthorized, after.refused_busy
    );
    println!("server store time: {}", common::flood::worst(server.world()).describe());
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
            let r = apps::splitmix(&mut rng);
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
    // Every update the server accepted (its geology's, its clients') is in its
    // world: the shadow copy replays them, last write per voxel.
    let shadow = server.world().resource::<common::Shadow>();
    let lost = shadow.voxels.iter().filter(|&(&p, &m)| truth.query(p).ok() != Some(m)).count();
    println!("server world: {} voxels checked against the accepted updates, {lost} differ", shadow.voxels.len());
    println!("world digest {digest:016x}");
    println!("clients converged: {converged}/{}, {mismatches} mismatches", o.clients);
    if converged != o.clients || lost > 0 {
        std::process::exit(1);
    }
}
