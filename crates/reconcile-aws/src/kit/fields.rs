//! Reading and writing fields of the loosely typed [`Fields`] map, and asking
//! which fields a change touches.

use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::FieldChange;

pub fn str_of<'a>(f: &'a Fields, k: &str) -> Option<&'a str> {
    f.get(k).and_then(Value::as_str)
}

pub fn bool_of(f: &Fields, k: &str) -> Option<bool> {
    f.get(k).and_then(Value::as_bool)
}

pub fn i32_of(f: &Fields, k: &str) -> Option<i32> {
    f.get(k)
        .and_then(Value::as_int)
        .and_then(|i| i32::try_from(i).ok())
}

pub fn strs_of(f: &Fields, k: &str) -> Option<Vec<String>> {
    f.get(k).map(Value::str_list)
}

pub fn str_list(items: impl IntoIterator<Item = impl Into<String>>) -> Value {
    Value::List(items.into_iter().map(|s| Value::Str(s.into())).collect())
}

/// Whether `changes` touch `field`.
pub fn changes_field(changes: &[FieldChange], field: &str) -> bool {
    changes.iter().any(|c| c.field == field)
}
