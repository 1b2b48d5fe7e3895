//! Seeds and a client session for the wire fuzzer (`codec::fuzzing`): valid
//! messages of both directions, and the client's state machine fed a stream.

use super::client::ClientSync;
use super::wire;
use crate::consolidation::DeltaConfig;
use crate::coords::Aabb;
use crate::material::{MaterialId, MaterialUpdate};
use crate::storage::DeltaStorage;
use crate::worldgen::WorldGen;
use glam::IVec3;

fn world() -> DeltaStorage {
    let generator = WorldGen { size: IVec3::new(40, 32, 36), sea_level: 16, ..WorldGen::default() };
    match generator.build() {
        Ok(base) => DeltaStorage::new(base, DeltaConfig::default()),
        Err(_) => unreachable!("the generator's own settings make a world"),
    }
}

pub(crate) fn server_messages() -> Vec<Vec<u8>> {
    let mut server = world();
    server.record_changes(1 << 12);
    let snapshot = super::server::encode(server.snapshot());
    let mut out: Vec<Vec<u8>> = snapshot.messages.iter().map(|m| m.to_vec()).collect();
    let edits = (0..30).map(|i| MaterialUpdate::new(IVec3::new(i, 20, i), MaterialId((i % 7) as u16)));
    let _ = server.batch_update(edits);
    out.push(crate::codec::encode_batch(&server.take_changes(), server.bounds()));
    let region = super::audit::region(server.bounds(), 0);
    out.push(wire::audit(server.sequence(), region, 77));
    out.push(wire::refused(wire::RefusedReason::ServerBusy, 5, IVec3::ONE));
    out
}

pub(crate) fn client_messages() -> Vec<Vec<u8>> {
    let edits: Vec<MaterialUpdate> =
        (0..60).map(|i| MaterialUpdate::new(IVec3::new(i, -i, 3 * i), MaterialId((i % 5) as u16))).collect();
    vec![wire::edits(&edits[..3]), wire::edits(&edits), wire::resync(), wire::progress(9, 1 << 20)]
}

pub(crate) fn client_session(messages: &[Vec<u8>]) -> usize {
    let config = DeltaConfig::default();
    let mut sync = ClientSync::default();
    let mut storage = DeltaStorage::new(
        match crate::base::BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(16)), MaterialId::AIR) {
            Ok(base) => base,
            Err(_) => unreachable!("a 16³ world is valid"),
        },
        config.clone(),
    );
    let mut kept = 0;
    for m in messages {
        let _ = sync.on_message(m, &mut storage, &config);
        kept = kept.max(sync.records_held());
    }
    kept
}
