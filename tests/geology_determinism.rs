//! A geology run depends on simulated time, not on the frame rate: with the
//! overlay and the processes in `FixedUpdate`, each fixed step is one whole
//! frame of the store (the processes, the ingest of their edits, the clock
//! advanced by the step), so 32 and 64 frames a second over the same
//! simulated time make the same world.

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use bevy_delta_overlay::geology::{HydraulicSettings, IntrusionSettings};
use bevy_delta_overlay::prelude::*;
use std::time::Duration;

fn run(frames_per_second: u32, seconds: u32) -> (u64, u64) {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins);
    app.insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_secs(1) / frames_per_second));
    app.insert_resource(Time::<Fixed>::from_hz(64.0));
    let generator = WorldGen { size: IVec3::new(96, 64, 96), sea_level: 24, ..WorldGen::default() };
    app.insert_resource(HydraulicSettings { droplets_per_frame: 40, ..default() })
        .insert_resource(IntrusionSettings { source: Some(IVec3::new(48, 8, 48)), radius: 6.0, ..default() })
        .add_plugins(DeltaOverlayPlugins::new(FixedUpdate).world(generator));
    app.finish();
    app.cleanup();
    // The first update has no elapsed time; then `seconds` of simulated time.
    for _ in 0..=frames_per_second * seconds {
        app.update();
    }
    let storage = app.world().resource::<DeltaStorage>();
    (storage.digest(), storage.sequence())
}

#[test]
fn the_same_simulated_time_at_32_and_64_frames_a_second_makes_the_same_world() {
    let (at_64, changes) = run(64, 3);
    assert!(changes > 500, "the processes ran: {changes} changes");
    assert_eq!(run(32, 3), (at_64, changes), "the world depends on the frame rate");
}
