//! The client's state machine against a server's storage, without an `App`.

use super::*;
use crate::material::{MaterialId, MaterialUpdate};
use crate::replication::server::encode;
use crate::worldgen::WorldGen;

fn server() -> DeltaStorage {
    let generator = WorldGen { size: IVec3::new(48, 40, 40), sea_level: 20, ..WorldGen::default() };
    let mut world = DeltaStorage::new(generator.build().unwrap(), DeltaConfig::default());
    world.record_changes(1 << 16);
    world
}

fn client() -> (ClientSync, DeltaStorage) {
    (ClientSync::default(), crate::plugin::placeholder(&DeltaConfig::default()))
}

fn edit(x: i32, m: u16) -> MaterialUpdate {
    MaterialUpdate::new(IVec3::new(x, 30, 5), MaterialId(m))
}

/// Joins `client` to `server`'s world through the messages of a snapshot.
fn join(server: &mut DeltaStorage, sync: &mut ClientSync, world: &mut DeltaStorage) -> Vec<Option<Effect>> {
    let snapshot = encode(server.snapshot());
    let config = DeltaConfig::default();
    snapshot.messages.iter().map(|m| sync.on_message(m, world, &config)).collect()
}

#[test]
fn a_snapshot_then_changes_make_the_servers_world() {
    let (mut server, (mut sync, mut world)) = (server(), client());
    server.batch_update([edit(1, 9), edit(2, 9)]);
    server.take_changes();
    let effects = join(&mut server, &mut sync, &mut world);
    assert!(matches!(effects.last(), Some(Some(Effect::Received(r))) if r.sequence == 2));
    assert_eq!(world.digest(), server.digest());
    server.batch_update([edit(3, 8), edit(1, 7)]);
    let record = crate::codec::encode_batch(&server.take_changes(), server.bounds());
    assert_eq!(sync.on_message(&record, &mut world, &DeltaConfig::default()), None);
    assert_eq!((world.digest(), sync.status), (server.digest(), ReplicationStatus::Synced { sequence: 4, lag: 0 }));
    assert_eq!(sync.report(&world), Some((4, sync.received)));
    assert_eq!(sync.report(&world), None, "reported once");
}

#[test]
fn a_gap_damage_or_a_local_write_asks_for_a_resync() {
    let (mut server, (mut sync, mut world)) = (server(), client());
    join(&mut server, &mut sync, &mut world);
    server.batch_update([edit(1, 9)]);
    server.take_changes();
    server.batch_update([edit(2, 9)]);
    let skipped = crate::codec::encode_batch(&server.take_changes(), server.bounds());
    assert_eq!(sync.on_message(&skipped, &mut world, &DeltaConfig::default()), Some(Effect::Resync));
    assert_eq!(sync.status, ReplicationStatus::Resyncing);
    let (mut sync, mut world) = client();
    join(&mut server, &mut sync, &mut world);
    let mut damaged =
        crate::codec::encode_batch(&crate::storage::ChangeBatch::new(3, vec![edit(4, 2)]), server.bounds());
    damaged[3] ^= 0x40;
    assert_eq!(sync.on_message(&damaged, &mut world, &DeltaConfig::default()), Some(Effect::Resync));
    let (mut sync, mut world) = client();
    join(&mut server, &mut sync, &mut world);
    world.update(IVec3::new(5, 5, 5), crate::material::materials::MAGMA).unwrap();
    assert_eq!(sync.check_local_writes(&world), Some(Effect::Resync));
}

#[test]
fn a_snapshot_holding_more_than_it_announced_is_refused() {
    let (server, (mut sync, mut world)) = (server(), client());
    let snapshot = encode(server.snapshot());
    let config = DeltaConfig::default();
    assert_eq!(sync.on_message(&snapshot.messages[0], &mut world, &config), None);
    let chunk = &snapshot.messages[1];
    let mut effect = None;
    for _ in 0..1000 {
        effect = sync.on_message(chunk, &mut world, &config);
        if effect.is_some() {
            break;
        }
    }
    assert_eq!(effect, Some(Effect::Resync));
}

/// A batch overlapping the world held is never cut (it is sorted by voxel, so
/// its first entries are not its oldest): the client asks again.
#[test]
fn an_overlapping_batch_asks_for_a_resync_instead_of_being_cut() {
    let (mut server, (mut sync, mut world)) = (server(), client());
    server.batch_update([edit(1, 9)]);
    server.take_changes();
    join(&mut server, &mut sync, &mut world);
    let overlapping = crate::storage::ChangeBatch::new(1, vec![edit(7, 3), edit(2, 4)]);
    let record = crate::codec::encode_batch(&overlapping, server.bounds());
    assert_eq!(sync.on_message(&record, &mut world, &DeltaConfig::default()), Some(Effect::Resync));
    assert_eq!(world.query(IVec3::new(2, 30, 5)).unwrap(), server.query(IVec3::new(2, 30, 5)).unwrap());
}

/// What a hostile server announces or sends past the client's caps, or
/// outside the world it announced, is refused before it is kept or decoded.
#[test]
fn a_hostile_snapshot_is_refused_before_it_is_kept() {
    let config = DeltaConfig::default();
    let bounds = Aabb::new(IVec3::ZERO, IVec3::splat(64));
    let begin = |sequence, bounds, nodes, bytes| wire::snapshot_begin(sequence, bounds, nodes, bytes);
    for message in [
        begin(u64::MAX, bounds, 1, 10),
        begin(1, Aabb::new(IVec3::splat(-(1 << 30)), IVec3::splat(1 << 30)), 1, 10),
        begin(1, bounds, 1 << 40, 1 << 41),
        begin(1, bounds, 4, 4 << 30),
    ] {
        let (mut sync, mut world) = client();
        assert_eq!(sync.on_message(&message, &mut world, &config), Some(Effect::Resync));
    }
    let chunk = |key| wire::snapshot_chunk(&[(key, vec![1, 2, 3])]);
    let outside = crate::codec::world::node_key(4, IVec3::new(64, 0, 0));
    let below_bricks = crate::codec::world::node_key(2, IVec3::ZERO);
    let inside = crate::codec::world::node_key(4, IVec3::new(48, 0, 0));
    for messages in [vec![chunk(outside)], vec![chunk(below_bricks)], vec![chunk(inside), chunk(inside)]] {
        let (mut sync, mut world) = client();
        assert_eq!(sync.on_message(&begin(1, bounds, 8, 100), &mut world, &config), None);
        let effects: Vec<_> = messages.iter().map(|m| sync.on_message(m, &mut world, &config)).collect();
        assert_eq!(effects.last(), Some(&Some(Effect::Resync)), "{effects:?}");
    }
}

/// A snapshot whose world is not the one its end's digest names is refused
/// and counted as a divergence.
#[test]
fn a_snapshot_with_another_digest_is_a_divergence() {
    let (server, (mut sync, mut world)) = (server(), client());
    let mut snapshot = encode(server.snapshot());
    let end = snapshot.messages.len() - 1;
    snapshot.messages[end] = wire::snapshot_end(server.sequence(), server.digest() ^ 1).into();
    let effects: Vec<_> =
        snapshot.messages.iter().map(|m| sync.on_message(m, &mut world, &DeltaConfig::default())).collect();
    assert_eq!(effects.last(), Some(&Some(Effect::Resync)));
    assert_eq!((sync.stats.divergences, sync.is_synced()), (1, false));
}

/// An audit finds a voxel changed behind the server's back without the
/// sequence moving, and only when the client is at the audit's sequence.
#[test]
fn an_audit_finds_a_world_changed_behind_the_servers_back() {
    let (mut server, (mut sync, mut world)) = (server(), client());
    join(&mut server, &mut sync, &mut world);
    let region = crate::replication::audit::region(server.bounds(), 0);
    let mut scratch = Region::default();
    let digest = crate::replication::audit::digest(&server, region, &mut scratch).unwrap();
    let config = DeltaConfig::default();
    let audit = |sequence| wire::audit(sequence, region, digest);
    assert_eq!(sync.on_message(&audit(server.sequence()), &mut world, &config), None);
    assert_eq!(sync.stats.audits, 1);
    // The same sequence, one voxel different: a world resumed from a copy.
    let mut drifted = DeltaStorage::resume(world.base().clone(), config.clone(), 0);
    drifted.update(IVec3::new(3, 30, 3), MaterialId(11)).unwrap();
    drifted.flush();
    let mut world = DeltaStorage::resume(drifted.base().clone(), config.clone(), server.sequence());
    assert_eq!(sync.on_message(&audit(server.sequence() + 5), &mut world, &config), None, "not at its sequence");
    assert_eq!(sync.on_message(&audit(server.sequence()), &mut world, &config), Some(Effect::Resync));
    assert_eq!(sync.stats.divergences, 1);
}
