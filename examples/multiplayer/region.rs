//! `--loopback --region`: a paged world of 16384 x 512 x 16384 voxels
//! served by region over 127.0.0.1. The server holds `--history` edits
//! around the clients (and makes `--edits` more a frame); each client
//! joins with an interest of 160 columns, is timed until its region is
//! received and resident, then wanders at 20 voxels a second for
//! `--frames` frames (60 a second); at the end every voxel the server
//! edited in each client's received sectors, and 2,000 sampled voxels
//! there, are read on the client against the server.

use crate::apps::{self, ClientAuth, ServerAuth};
use crate::auth;
use bevy::prelude::*;
use bevy_delta_overlay::paging::{Paged, PagingSettings};
use bevy_delta_overlay::plugin::{PagedStore, PagingPlugin, WorldInterest};
use bevy_delta_overlay::replication::{
    RegionClientPlugin, RegionClientStats, RegionServerPlugin, RegionStats, RegionStatus, RegionSync,
};
use bevy_delta_overlay::{MaterialId, WorldGen};
use bevy_replicon_renet::netcode::NetcodeServerTransport;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const FRAME: Duration = Duration::from_micros(16_667);
const RADIUS: i32 = 160;

fn world() -> WorldGen {
    WorldGen { size: IVec3::new(16384, 512, 16384), sea_level: 300, ..WorldGen::default() }
}

/// Where client `i` stands: along a line through the world's middle.
fn place(i: usize) -> IVec3 {
    IVec3::new(6000 + 1200 * i as i32, 400, 8000)
}

/// The server's edits: `per_frame` a frame within the interest radius of
/// each client's starting place, and every edit it made.
#[derive(Resource)]
struct Edits {
    per_frame: usize,
    clients: usize,
    rng: u64,
    made: HashMap<IVec3, MaterialId>,
}

impl Edits {
    fn make(&mut self, store: &mut PagedStore, n: usize) {
        for k in 0..n {
            let r = apps::splitmix(&mut self.rng);
            let c = place(k % self.clients.max(1));
            let d = |s: u64| (s % (2 * RADIUS as u64 + 512)) as i32 - RADIUS - 256;
            let p = IVec3::new(c.x + d(r), (r >> 40) as i32 & 511, c.z + d(r >> 20));
            let m = MaterialId((r >> 60) as u16 % 8);
            if store.update(p, m).is_ok() {
                self.made.insert(p, m);
            }
        }
    }
}

fn edit(mut edits: ResMut<Edits>, mut store: ResMut<PagedStore>) {
    let n = edits.per_frame;
    edits.make(&mut store, n);
}

fn server(key: Option<auth::Key>, history: usize, per_frame: usize, clients: usize, file: Option<PathBuf>) -> App {
    let mut app = App::new();
    apps::base_plugins(&mut app);
    let settings = PagingSettings { resident_budget: 512 << 20, ..default() };
    let paging = PagingPlugin { generator: world(), settings, ..default() };
    #[cfg(feature = "persistence")]
    let paging = PagingPlugin { file, ..paging };
    #[cfg(not(feature = "persistence"))]
    if file.is_some() {
        eprintln!("--file needs feature `persistence`");
        std::process::exit(2);
    }
    app.add_plugins((paging, RegionServerPlugin::default()));
    app.finish();
    app.cleanup();
    let mut edits = Edits { per_frame, clients, rng: 99, made: HashMap::new() };
    let mut store = app.world_mut().resource_mut::<PagedStore>();
    edits.make(&mut store, history);
    // With a file: the history handed to it and acknowledged, so memory
    // lets go of it and the clients' sectors are read from the file.
    #[cfg(feature = "persistence")]
    for _ in 0..1000 {
        if store.flush().and_then(|_| store.wait_durable(u64::MAX)).is_err() {
            break;
        }
        store.tick();
        if store.stats().edits == 0 {
            break;
        }
    }
    app.insert_resource(edits).add_systems(Update, edit);
    let auth = key.map_or(ServerAuth::Unsecure, ServerAuth::Secure);
    apps::serve_on(&mut app, IpAddr::V4(Ipv4Addr::LOCALHOST), 0, None, auth);
    app
}

/// A wandering interest: 20 voxels a second along x.
fn wander(time: Res<Time>, mut q: Query<&mut Transform, With<WorldInterest>>) {
    for mut t in &mut q {
        t.translation.x += 20.0 * time.delta_secs();
    }
}

fn client(i: usize, auth: ClientAuth, server: std::net::SocketAddr) -> App {
    let mut app = App::new();
    apps::base_plugins(&mut app);
    app.add_plugins(TransformPlugin);
    let settings = PagingSettings { resident_budget: 512 << 20, ..default() };
    app.add_plugins(RegionClientPlugin { settings, ..default() });
    app.world_mut().spawn((WorldInterest { radius: RADIUS }, Transform::from_translation(place(i).as_vec3())));
    app.insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(FRAME));
    app.finish();
    app.cleanup();
    apps::connect_to(&mut app, server, auth);
    app
}

/// The frame times of the server and of the clients (every client's frame
/// is one sample).
#[derive(Default)]
struct Frames {
    server: Vec<Duration>,
    clients: Vec<Duration>,
}

impl Frames {
    fn line(&mut self) -> String {
        let mut out = String::new();
        for (name, v) in [("server", &mut self.server), ("clients", &mut self.clients)] {
            v.sort_unstable();
            let at =
                |p: f64| v.get(((v.len() as f64 - 1.0) * p).round() as usize).map_or(0.0, |d| d.as_secs_f64() * 1e3);
            out += &format!("{name} frame p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; ", at(0.5), at(0.99), at(1.0));
            v.clear();
        }
        out
    }
}

/// Runs one frame of everyone, paced at 60 a second.
fn step(server: &mut App, clients: &mut [App], frames: &mut Frames) {
    let t = Instant::now();
    server.update();
    frames.server.push(t.elapsed());
    for c in clients.iter_mut() {
        let t = Instant::now();
        c.update();
        frames.clients.push(t.elapsed());
    }
    std::thread::sleep(FRAME.saturating_sub(t.elapsed()));
}

fn synced(c: &App) -> bool {
    c.world().get_resource::<RegionStatus>().is_some_and(RegionStatus::is_synced)
}

/// The region loopback run; exits 1 when a client never syncs or reads a
/// voxel the server does not hold.
pub fn loopback(clients: usize, frames: u32, per_frame: usize, history: usize, secure: bool, file: Option<PathBuf>) {
    let key = secure.then(auth::random_key);
    let t = Instant::now();
    let mut server = server(key, history, per_frame, clients, file);
    let addr = server.world().resource::<NetcodeServerTransport>().addresses()[0];
    let kept = server.world().resource::<PagedStore>().stats().edits;
    println!(
        "region server on {addr} ({}): a {:?} world, {history} edits made in {:.2} s, {kept} kept in memory",
        if secure { "secure, connect tokens" } else { "unsecure" },
        world().size,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut apps: Vec<App> =
        (0..clients).map(|i| client(i, apps::loopback_auth(key.as_ref(), i as u64 + 1, addr), addr)).collect();
    let mut joined: Vec<Option<Duration>> = vec![None; clients];
    let mut frames_seen = Frames::default();
    while joined.iter().any(Option::is_none) && t.elapsed() < Duration::from_secs(60) {
        step(&mut server, &mut apps, &mut frames_seen);
        for (i, c) in apps.iter().enumerate() {
            if joined[i].is_none() && synced(c) {
                joined[i] = Some(t.elapsed());
            }
        }
    }
    let times: Vec<String> =
        joined.iter().map(|j| j.map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64()))).collect();
    let s = *server.world().resource::<RegionStats>();
    println!(
        "joined (connect to region received and resident): {} ({} sectors, {} edits, {:.2} MiB sent)",
        times.join(", "),
        s.sectors_sent,
        s.sector_edits_sent,
        s.bytes_total as f64 / f64::from(1 << 20)
    );
    println!("while joining: {}", frames_seen.line());
    for c in &mut apps {
        c.add_systems(Update, wander);
    }
    for _ in 0..frames {
        step(&mut server, &mut apps, &mut frames_seen);
    }
    println!("wandering {frames} frames: {}", frames_seen.line());
    let settle = Instant::now();
    while !apps.iter().all(synced) && settle.elapsed() < Duration::from_secs(30) {
        step(&mut server, &mut apps, &mut frames_seen);
    }
    for _ in 0..3 {
        step(&mut server, &mut apps, &mut frames_seen);
    }
    let bad = verify(&mut server, &apps);
    if bad || joined.iter().any(Option::is_none) {
        std::process::exit(1);
    }
}

/// Reads every edited voxel and 2,000 sampled ones of each client's
/// received sectors against the server; whether any differed.
fn verify(server: &mut App, clients: &[App]) -> bool {
    let made = server.world_mut().resource_mut::<Edits>().made.clone();
    let mut rng = 5u64;
    let mut bad = false;
    for (i, c) in clients.iter().enumerate() {
        let (copy, sync) = (c.world().resource::<PagedStore>(), c.world().resource::<RegionSync>());
        let held = |p: IVec3| copy.sector_of(p).is_ok_and(|k| sync.is_received(k) && copy.is_sector_resident(k));
        let (mut compared, mut mismatches) = (0u64, 0u64);
        for (&p, &m) in made.iter().filter(|(p, _)| held(**p)) {
            compared += 1;
            mismatches += u64::from(copy.get(p) != Ok(Paged::Resident(m)));
        }
        let keys: Vec<IVec2> = copy.wanted_sectors().iter().copied().filter(|k| sync.is_received(*k)).collect();
        let mut truth = server.world_mut().resource_mut::<PagedStore>();
        for n in 0..2000 {
            let Some(b) = keys.get(n % keys.len().max(1)).and_then(|k| copy.sector_bounds(*k)) else { break };
            let r = apps::splitmix(&mut rng);
            let s = b.size().as_u64vec3();
            let p = b.min + IVec3::new((r % s.x) as i32, ((r >> 20) % s.y) as i32, ((r >> 40) % s.z) as i32);
            compared += 1;
            mismatches += u64::from(truth.get_blocking(p).ok().map(Paged::Resident) != copy.get(p).ok());
        }
        let stats = *c.world().resource::<RegionClientStats>();
        println!(
            "client {}: {} sectors received, {compared} voxels compared, {mismatches} mismatches, {} changes applied, {} malformed",
            i + 1,
            stats.sectors_received,
            stats.changes_applied,
            stats.malformed
        );
        bad |= mismatches > 0 || compared == 0;
    }
    bad
}
