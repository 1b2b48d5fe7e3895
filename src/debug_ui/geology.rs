//! The geology section: every process in [`GeologyProcesses`], its figures
//! and its settings, found by reflection, so a process of the app's own shows
//! here as the crate's do, with no code naming it.
//!
//! A process's figures are the numbers of its state's `stats` field; its
//! settings are edited field by field (numbers, switches, materials): a copy is
//! edited, and the resource is written back only when a value moved.

use crate::geology::GeologyProcesses;
use crate::material::MaterialId;
use bevy::ecs::reflect::ReflectComponent;
use bevy::prelude::*;
use bevy::reflect::{PartialReflect, ReflectMut, ReflectRef, TypeRegistry};
use bevy_egui::egui;
use std::any::TypeId;

/// The section: a collapsing header per process.
pub(super) fn show(ui: &mut egui::Ui, world: &mut World) {
    let Some(processes) = world.get_resource::<GeologyProcesses>().map(|p| p.0.clone()) else { return };
    if processes.is_empty() {
        return;
    }
    let registry = world.resource::<AppTypeRegistry>().clone();
    let registry = registry.read();
    ui.separator();
    egui::CollapsingHeader::new("Geology").default_open(false).show(ui, |ui| {
        for process in &processes {
            ui.label(egui::RichText::new(process.name).strong());
            if let Some(state) = reflect(world, &registry, process.state) {
                figures(ui, state);
            }
            tune(ui, world, &registry, process.settings, process.name);
        }
    });
}

/// The resource of type `type_id`, reflected.
fn reflect<'w>(world: &'w World, registry: &TypeRegistry, type_id: TypeId) -> Option<&'w dyn Reflect> {
    let component = world.components().get_id(type_id)?;
    let entity = world.resource_entities().get(component)?;
    registry.get_type_data::<ReflectComponent>(type_id)?.reflect(world.entity(entity))
}

/// The numbers of a process state's `stats` field, one row each.
fn figures(ui: &mut egui::Ui, state: &dyn Reflect) {
    let ReflectRef::Struct(state) = state.reflect_ref() else { return };
    let Some(stats) = state.field("stats") else { return };
    let ReflectRef::Struct(stats) = stats.reflect_ref() else { return };
    let numbers: Vec<String> = (0..stats.field_len())
        .filter_map(|i| Some(format!("{} {}", number(stats.field_at(i)?)?, stats.name_at(i)?.replace('_', " "))))
        .collect();
    ui.label(numbers.join(", "));
}

/// A number field as text.
fn number(field: &dyn PartialReflect) -> Option<String> {
    let any = field.try_as_reflect()?.as_any();
    any.downcast_ref::<u64>()
        .map(u64::to_string)
        .or_else(|| any.downcast_ref::<u32>().map(u32::to_string))
        .or_else(|| any.downcast_ref::<usize>().map(usize::to_string))
}

/// Edits a copy of the settings resource of type `type_id`; writes it back
/// when a value moved.
fn tune(ui: &mut egui::Ui, world: &mut World, registry: &TypeRegistry, type_id: TypeId, name: &str) {
    let Some(current) = reflect(world, registry, type_id) else { return };
    let Ok(mut copy) = current.reflect_clone() else { return };
    let mut changed = false;
    egui::CollapsingHeader::new("settings").id_salt(name).show(ui, |ui| {
        if let ReflectMut::Struct(fields) = copy.reflect_mut() {
            egui::Grid::new(name).num_columns(2).show(ui, |ui| {
                for i in 0..fields.field_len() {
                    let label = fields.name_at(i).unwrap_or_default().replace('_', " ");
                    if let Some(field) = fields.field_at_mut(i) {
                        ui.label(label);
                        changed |= edit(ui, field);
                        ui.end_row();
                    }
                }
            });
        }
    });
    if changed {
        let component = world.components().get_id(type_id);
        let entity = component.and_then(|c| world.resource_entities().get(c));
        if let (Some(entity), Some(reflect)) = (entity, registry.get_type_data::<ReflectComponent>(type_id)) {
            reflect.apply(world.entity_mut(entity), copy.as_partial_reflect());
        }
    }
}

/// A widget for one field: numbers, switches and materials are editable,
/// anything else is shown as text. Returns whether the value moved.
fn edit(ui: &mut egui::Ui, field: &mut dyn PartialReflect) -> bool {
    if let Some(v) = field.try_downcast_mut::<bool>() {
        return ui.checkbox(v, "").changed();
    }
    if let Some(v) = field.try_downcast_mut::<f32>() {
        return ui.add(egui::DragValue::new(v).speed(0.01)).changed();
    }
    if let Some(v) = field.try_downcast_mut::<u32>() {
        return ui.add(egui::DragValue::new(v)).changed();
    }
    if let Some(v) = field.try_downcast_mut::<i32>() {
        return ui.add(egui::DragValue::new(v)).changed();
    }
    if let Some(v) = field.try_downcast_mut::<u64>() {
        return ui.add(egui::DragValue::new(v)).changed();
    }
    if let Some(v) = field.try_downcast_mut::<usize>() {
        return ui.add(egui::DragValue::new(v)).changed();
    }
    if let Some(MaterialId(v)) = field.try_downcast_mut::<MaterialId>() {
        return ui.add(egui::DragValue::new(v)).changed();
    }
    ui.label(format!("{field:?}"));
    false
}
