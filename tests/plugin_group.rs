//! The plugin group's members can be added in any order: every order (and the
//! group itself) gives the same schedules (the same systems, sets and ordering
//! constraints) and the same resources, with the same values.

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

/// Every member the enabled features provide, each adding itself: those of a
/// world of its own, or (`client`) those of a replica of a server's world.
fn members(client: bool) -> Vec<Member> {
    let source = move || -> WorldSource {
        // Only a replication build has a server to follow.
        #[cfg(feature = "replication")]
        if client {
            return WorldSource::Server;
        }
        world().into()
    };
    let mut out: Vec<Member> = vec![Box::new(move |app: &mut App| {
        app.add_plugins(DeltaOverlayPlugin { world: source(), ..DeltaOverlayPlugin::new(Update) });
    })];
    #[cfg(feature = "persistence")]
    out.push(Box::new(|app: &mut App| {
        app.add_plugins(bevy_delta_overlay::plugin::PersistencePlugin::new(Update));
    }));
    #[cfg(feature = "geology")]
    if !client {
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
        if !client {
            out.push(Box::new(|app: &mut App| {
                app.add_plugins(ReplicationServerPlugin::new(Update));
            }));
        }
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

/// What must be equal: the resources' types, the values of this crate's
/// reflected resources (settings, the process list), and per schedule the
/// systems (by their type, with their run conditions) and every ordering and
/// membership edge. Types, not names: names need Bevy's `debug` feature.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    resources: BTreeSet<TypeId>,
    values: Vec<String>,
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

/// The values of this crate's resources that can be read without knowing their
/// type (through reflection), and of the process list (which cannot).
fn values(world: &World, resources: &BTreeSet<TypeId>) -> Vec<String> {
    use bevy::ecs::reflect::{ReflectComponent, ReflectResource};
    let registry = world.resource::<AppTypeRegistry>().read();
    let mut out = Vec::new();
    for registration in registry.iter() {
        let path = registration.type_info().type_path();
        if !path.starts_with("bevy_delta_overlay") || registration.data::<ReflectResource>().is_none() {
            continue;
        }
        let id = registration.type_id();
        let read = resources.contains(&id).then(|| {
            let component = world.components().get_id(id)?;
            let entity = world.resource_entities().get(component)?;
            registration.data::<ReflectComponent>()?.reflect(world.entity(entity)).map(|r| format!("{r:?}"))
        });
        out.push(format!("{path}: {read:?}"));
    }
    #[cfg(feature = "geology")]
    out.push(format!("{:?}", world.get_resource::<bevy_delta_overlay::geology::GeologyProcesses>()));
    out.sort();
    out
}

fn shape(app: &mut App) -> Shape {
    let mut marked = app.world_mut().query::<&bevy::ecs::resource::IsResource>();
    let world = app.world();
    let resources =
        marked.iter(world).filter_map(|r| world.components().get_info(r.resource_component_id())?.type_id()).collect();
    let values = values(world, &resources);
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
    Shape { resources, values, schedules }
}

/// Each of a few orders of the members, and the group, make the same app.
fn same_app_in_any_order(client: bool, add_group: impl FnOnce(&mut App)) {
    let n = members(client).len();
    let orders: Vec<Vec<usize>> = vec![
        (0..n).collect(),
        (0..n).rev().collect(),
        (0..n).map(|i| (i + n / 2) % n).collect(),
        (0..n).map(|i| if i % 2 == 0 { i / 2 } else { n - 1 - i / 2 }).collect(),
    ];
    let mut shapes = orders.iter().map(|order| {
        let all = members(client);
        shape(&mut app(|app| order.iter().for_each(|&i| all[i](app))))
    });
    let first = shapes.next().expect("an order");
    assert!(first.schedules.iter().any(|(_, systems, _)| systems.len() > 5), "the members added systems");
    assert!(first.values.iter().any(|v| v.contains("Some(")), "values were read: {:?}", first.values);
    for (i, other) in shapes.enumerate() {
        assert_eq!(first, other, "order {:?} differs from {:?}", orders[i + 1], orders[0]);
    }
    assert_eq!(shape(&mut app(add_group)), first, "the group differs from its members");
}

#[test]
fn members_in_any_order_make_the_same_app() {
    let group = DeltaOverlayPlugins::new(Update).world(world());
    // Every member enabled: the server's and the client's too.
    #[cfg(feature = "replication")]
    let group = group.serve().build().enable::<bevy_delta_overlay::replication::ReplicationClientPlugin>();
    same_app_in_any_order(false, |app| {
        app.add_plugins(group);
    });
}

/// A replica: the group on `WorldSource::Server` enables the client and leaves
/// the processes out (the server simulates).
#[cfg(feature = "replication")]
#[test]
fn a_client_group_is_its_members_in_any_order() {
    same_app_in_any_order(true, |app| {
        app.add_plugins(DeltaOverlayPlugins::new(Update).world(WorldSource::Server));
    });
}
