//! Reading and writing fields of the loosely typed [`Fields`] map, and asking
//! which fields a change touches.

use indexmap::IndexMap;
use reconcile_core::model::value::{parse_template, TemplatePart};
use reconcile_core::model::{Diagnostic, Fields, Reference, Resource, Stack, Value};
use reconcile_core::plan::FieldChange;
use reconcile_core::plan::Observed;

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

/// A field map from literal pairs: observed fields, attributes, nested tables.
pub fn fields_of<const N: usize>(pairs: [(&str, Value); N]) -> Fields {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// As [`fields_of`], leaving out the values AWS did not answer.
pub fn some_fields_of<const N: usize>(pairs: [(&str, Option<Value>); N]) -> Fields {
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v?)))
        .collect()
}

/// A problem a kind finds in a declaration: the field it concerns (`None`: the
/// whole resource), what is wrong, and what to do.
pub type Problem = (Option<&'static str>, String, String);

/// A problem with `r`, shown at its field `field` (at the resource when not declared).
pub fn diagnostic(r: &Resource, field: &str, msg: String, help: String) -> Diagnostic {
    let pos = r.field_pos.get(field).unwrap_or(&r.pos);
    Diagnostic::at(pos.clone(), format!("`{}`: {msg}", r.address), help)
}

/// A kind's problems as diagnostics, each at the line of the field it names
/// (at the resource when the field is not declared). The field may be given as
/// `Option<&str>` or as `&str` ("" for the resource as a whole).
pub fn diagnostics<'a, F: Into<Option<&'a str>>>(
    r: &Resource,
    problems: impl IntoIterator<Item = (F, String, String)>,
) -> Vec<Diagnostic> {
    problems
        .into_iter()
        .map(|(field, msg, help)| diagnostic(r, field.into().unwrap_or(""), msg, help))
        .collect()
}

/// The first of `problems` as a create's refusal: values that are references
/// are known only at apply, so a create checks them again.
pub fn refuse<F>(
    address: &str,
    problems: Vec<(F, String, String)>,
) -> Result<(), super::ProviderError> {
    match problems.into_iter().next() {
        Some((_, msg, help)) => Err(super::ProviderError::InvalidInput(format!(
            "{address}: {msg}; {help}"
        ))),
        None => Ok(()),
    }
}

/// The observation of the resource at `arn`: its id, and its `id` and `arn`
/// attributes beside `more`.
pub fn observation<const N: usize>(
    arn: &str,
    fields: Fields,
    more: [(&str, Value); N],
    tags: IndexMap<String, String>,
) -> Option<Observed> {
    let mut attributes = fields_of([("id", Value::str(arn)), ("arn", Value::str(arn))]);
    attributes.extend(fields_of(more));
    Some(Observed {
        id: arn.to_string(),
        fields,
        attributes,
        tags,
    })
}

/// The resource of `kind` that `v` refers to as a whole (`${vpc.main.id}`), if
/// it is declared in the same stack: only then are its fields known before apply.
pub fn referenced<'s>(stack: &'s Stack, v: Option<&Value>, kind: &str) -> Option<&'s Resource> {
    let parts = parse_template(v?.as_str()?).ok()?;
    let [TemplatePart::Ref(Reference::Resource { kind: k, name, .. })] = parts.as_slice() else {
        return None;
    };
    if k != kind {
        return None;
    }
    stack.resources.get(&format!("{k}.{name}"))
}
