//! The plugin group's members can be added in any order: every order (and the
//! group itself) gives the same schedules (the same systems, sets and ordering
//! constraints) and the same resources.

use bevy::ecs::schedule::{InternedScheduleLabel, NodeId, ScheduleGraph, ScheduleLabel, Schedules};
use bevy::prelude::*;
use bevy_delta_overlay::prelude::*;
use std::any::TypeId;
use std::collections::BTreeSet;

/// A small world: the test builds many apps.
fn world() -> WorldGen {
    WorldGen { size: IVec3::new(64, 64, 64), ..default() }
}

type Member = Box<dyn Fn(&mut App)>;

/// Every member the enabled features provide, each adding itself.
fn members() -> Vec<Member> {
    let mut out: Vec<Member> = vec![Box::new(|app: &mut App| {
        app.add_plugins(DeltaOverlayPlugin { world: world().into(), ..DeltaOverlayPlugin::new(Update) });
    })];
    #[cfg(feature = "persistence")]
    out.push(Box::new(|app: &mut App| {
        app.add_plugins(bevy_delta_overlay::plugin::PersistencePlugin::new(Update));
    }));
    #[cfg(feature = "geology")]
    {
        use bevy_delta_overlay::geology::*;
        out.push(Box::new(|app: &mut App| {
            app.add_plugins(GeologyPlugin::<Intrusion>::new(Update));
        }));
        out.push(Box::new(|app: &mut App| {
            app.add_plugins(GeologyPlugin::<HydraulicErosion>::new(Update));
        }));
        out.push(Box::new(|app: &mut App| {
            app.add_plugins(GeologyPlugin::<ThermalErosion>::new(Update));
        }));
        out.push(Box::new(|app: &mut App| {
            app.add_plugins(GeologyPlugin::<Deposition>::new(Update));
        }));
    }
    #[cfg(feature = "replication")]
    {
        use bevy_delta_overlay::replication::*;
        out.push(Box::new(|app: &mut App| {
            app.add_plugins(ReplicationServerPlugin::new(Update));
        }));
        out.push(Box::new(|app: &mut App| {
            app.add_plugins(ReplicationClientPlugin::new(Update));
        }));
    }
    out
}

/// An app with what every member needs (replicon's plugins first: replicon
/// requires it), built with `add`.
fn app(add: impl FnOnce(&mut App)) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins);
    #[cfg(feature = "replication")]
    app.add_plugins((bevy::state::app::StatesPlugin, bevy_replicon::prelude::RepliconPlugins));
    add(&mut app);
    app.finish();
    app.cleanup();
    app
}

/// What must be equal: the resources' types, and per schedule the systems (by
/// their type, with their run conditions) and every ordering and membership
/// edge. Types, not names: names need Bevy's `debug` feature.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    resources: BTreeSet<TypeId>,
    schedules: Vec<(String, BTreeSet<String>, BTreeSet<Edge>)>,
}

/// An edge between two nodes, and which graph it is in.
type Edge = (String, String, &'static str);

/// A node of a schedule graph, the same in any app of this process.
fn ident(graph: &ScheduleGraph, id: NodeId) -> String {
    match id {
        NodeId::System(key) => match graph.systems.get(key) {
            Some(s) => format!("system {:?}", s.system_type()),
            None => "a removed system".into(),
        },
        NodeId::Set(key) => {
            let Some(set) = graph.system_sets.get(key) else { return "a removed set".into() };
            if let Some(t) = set.system_type() {
                format!("the set of system {t:?}")
            } else if set.is_anonymous() {
                let mut members: Vec<String> = graph
                    .hierarchy()
                    .graph()
                    .all_edges()
                    .filter(|(set, _)| *set == id)
                    .map(|(_, member)| ident(graph, member))
                    .collect();
                members.sort();
                format!("an anonymous set of {members:?}")
            } else {
                format!("{set:?}")
            }
        }
    }
}

fn shape(app: &mut App) -> Shape {
    let mut marked = app.world_mut().query::<&bevy::ecs::resource::IsResource>();
    let world = app.world();
    let resources =
        marked.iter(world).filter_map(|r| world.components().get_info(r.resource_component_id())?.type_id()).collect();
    let labels: [InternedScheduleLabel; 5] =
        [PreUpdate.intern(), Update.intern(), PostUpdate.intern(), Last.intern(), First.intern()];
    let mut schedules = Vec::new();
    // Read before the first update: the graph still holds every system.
    let all = world.resource::<Schedules>();
    for label in labels {
        let Some(schedule) = all.get(label) else { continue };
        let graph = schedule.graph();
        let systems = graph
            .systems
            .iter()
            .map(|(key, _, conditions)| format!("{} if {}", ident(graph, key.into()), conditions.len()))
            .collect();
        let mut edges = BTreeSet::new();
        for (a, b) in graph.dependency().graph().all_edges() {
            edges.insert((ident(graph, a), ident(graph, b), "before"));
        }
        for (a, b) in graph.hierarchy().graph().all_edges() {
            edges.insert((ident(graph, a), ident(graph, b), "contains"));
        }
        schedules.push((format!("{label:?}"), systems, edges));
    }
    Shape { resources, schedules }
}

#[test]
fn members_in_any_order_make_the_same_app() {
    let n = members().len();
    assert!(n >= 1);
    let orders: Vec<Vec<usize>> = vec![
        (0..n).collect(),
        (0..n).rev().collect(),
        (0..n).map(|i| (i + n / 2) % n).collect(),
        (0..n).map(|i| if i % 2 == 0 { i / 2 } else { n - 1 - i / 2 }).collect(),
    ];
    let mut shapes = orders.iter().map(|order| {
        let all = members();
        shape(&mut app(|app| order.iter().for_each(|&i| all[i](app))))
    });
    let first = shapes.next().expect("an order");
    assert!(first.schedules.iter().any(|(_, systems, _)| systems.len() > 5), "the members added systems");
    for (i, other) in shapes.enumerate() {
        assert_eq!(first, other, "order {:?} differs from {:?}", orders[i + 1], orders[0]);
    }
    // The group adds the same members.
    let group = DeltaOverlayPlugins::new(Update).world(world());
    #[cfg(feature = "replication")]
    let group = group.serve().build().enable::<bevy_delta_overlay::replication::ReplicationClientPlugin>();
    assert_eq!(
        shape(&mut app(|app| {
            app.add_plugins(group);
        })),
        first
    );
}
