//! `DeltaStorage` as a Bevy resource.
//!
//! `#[derive(Resource)]` must sit on the type's definition, which lives in the
//! Bevy-free core. In Bevy 0.19 a resource is a component that requires
//! `IsResource`; this is what the derive generates for it, written out here so the
//! core keeps no Bevy attribute.

use crate::DeltaStorage;
use bevy::ecs::component::{Component, ComponentId, Mutable, RequiredComponentsRegistrator, StorageType};
use bevy::ecs::resource::{IsResource, Resource};

impl Component for DeltaStorage {
    const STORAGE_TYPE: StorageType = StorageType::SparseSet;
    type Mutability = Mutable;

    fn register_required_components(_requiree: ComponentId, required: &mut RequiredComponentsRegistrator) {
        let id = match required.components_registrator().component_id::<Self>() {
            Some(id) => id,
            None => required.components_registrator().register_component::<Self>(),
        };
        required.register_required::<IsResource>(move || IsResource::new(id));
    }
}

impl Resource for DeltaStorage {}
