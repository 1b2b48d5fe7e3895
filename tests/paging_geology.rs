//! Geology on a paged world: the processes run on the sector under an
//! interest crossing the world, their edits are kept through evictions and
//! reloads (every one reads back), and they never run on a sector that is
//! not resident.

use bevy_delta_overlay::geology::{
    Deposition, HydraulicErosion, HydraulicSettings, Intrusion, PagedGeology, ThermalErosion,
};
use bevy_delta_overlay::paging::{Interest, PagedWorld, PagingSettings};
use bevy_delta_overlay::{DeltaConfig, MaterialId, Palette, WorldGen};
use glam::{IVec3, Vec3};
use std::collections::HashMap;
use std::time::Duration;

#[test]
fn processes_follow_the_interest_across_sectors_and_every_edit_reads_back() {
    let generator = WorldGen { size: IVec3::new(1024, 96, 192), sea_level: 40, ..WorldGen::default() };
    let settings =
        PagingSettings { sector_columns: 64, resident_budget: 6 << 20, prefetch_seconds: 2.0, ..Default::default() };
    let mut world = PagedWorld::new(generator, settings, DeltaConfig::default()).unwrap();
    let mut geology = PagedGeology::new(Palette::shipped())
        .with::<Intrusion>(Default::default())
        .with::<HydraulicErosion>(HydraulicSettings { droplets_per_frame: 100, ..Default::default() })
        .with::<ThermalErosion>(Default::default())
        .with::<Deposition>(Default::default());
    world.index_surfaces(geology.palette());
    let mut shadow: HashMap<IVec3, MaterialId> = HashMap::new();
    let mut sectors_edited = std::collections::HashSet::new();
    let (speed, dt) = (60.0f32, 1.0 / 60.0);
    let mut x = 32.0f32;
    for frame in 0..900 {
        let at = IVec3::new(x as i32, 60, 96);
        world.set_interest(&[Interest { center: at, radius: 40, velocity: Vec3::X * speed }]);
        if frame == 0 {
            world.tick_until_resident();
        }
        world.tick();
        world.advance_clock(Duration::from_secs_f32(dt));
        geology.step(&mut world, at);
        for u in geology.last_edits() {
            shadow.insert(u.position, u.material);
            sectors_edited.insert(u.position.x / 64);
        }
        x = (x + speed * dt).min(1000.0);
        std::thread::sleep(Duration::from_millis(1));
    }
    let stats = geology.stats();
    assert!(stats.frames > 800 && stats.edits > 1000 && stats.refused == 0, "{stats:?}");
    assert!(sectors_edited.len() >= 10, "edits in only {} sectors", sectors_edited.len());
    assert!(world.stats().evicted > 0, "{:?}", world.stats());
    for (p, m) in &shadow {
        assert_eq!(world.get_blocking(*p), Ok(*m), "{p}");
    }
}
