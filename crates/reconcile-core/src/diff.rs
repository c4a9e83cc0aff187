//! Schema-driven field comparison: what differs between desired and live, and whether it forces a replacement.

use crate::model::schema::{Field, Norm, Ty};
use crate::model::{Fields, Schema, Value};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    pub forces_replace: bool,
}

impl FieldChange {
    pub fn new(field: &str, old: Option<Value>, new: Option<Value>, forces_replace: bool) -> Self {
        FieldChange {
            field: field.to_string(),
            old,
            new,
            forces_replace,
        }
    }
}

/// Compares every desired field with its live value, recursively through
/// nested tables and lists, after putting both sides in the normal form the
/// schema describes: set-like lists without order, nested defaults filled in,
/// empty lists and tables inside a table taken as absent, and each field's
/// [`Norm`]. An unknown desired value always counts as a change. A field marked
/// `absent_clears` that the declaration leaves out must have no live value.
pub fn diff_fields(schema: &Schema, desired: &Fields, live: &Fields) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (k, want) in desired {
        let field = schema.field(k);
        let force = field.is_some_and(|f| f.force_new);
        let want_nf = canonical(field, want, desired, false);
        let have = live.get(k);
        let same = match have {
            Some(h) if !want.is_unknown() => {
                equivalent(field, &want_nf, &canonical(field, h, live, false))
            }
            _ => false,
        };
        if !same {
            let force = force
                && !(field.is_some_and(|f| f.grows_in_place)
                    && have
                        .is_some_and(|h| only_adds(&canonical(field, h, live, false), &want_nf)));
            out.push(FieldChange::new(k, have.cloned(), Some(want_nf), force));
        }
    }
    for f in schema.fields.iter().filter(|f| f.absent_clears) {
        if desired.contains_key(f.name) {
            continue;
        }
        if let Some(h) = live.get(f.name).filter(|v| !is_empty(v)) {
            out.push(FieldChange::new(f.name, Some(h.clone()), None, f.force_new));
        }
    }
    out
}

/// Every field of `fields` in the normal form the schema describes: how an
/// observation reports what it read, so plans and state show tidy values.
pub fn normal_form(schema: &Schema, fields: &Fields) -> Fields {
    fields
        .iter()
        .map(|(k, v)| (k.clone(), canonical(schema.field(k), v, fields, false)))
        .collect()
}

/// Whether `want` is `have` with items added: every item of `have` is still
/// in `want`, unchanged.
fn only_adds(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::List(h), Value::List(w)) => h.iter().all(|x| w.contains(x)),
        _ => false,
    }
}

/// An empty list, table or string: what AWS reports for a setting that is not set.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::Str(s) => s.is_empty(),
        _ => false,
    }
}

/// One field's value in normal form; `parent` is the table it sits in.
fn canonical(field: Option<&Field>, v: &Value, parent: &Fields, set: bool) -> Value {
    let Some(f) = field else {
        return normalise(v, set);
    };
    let v = match f.norm {
        Some(Norm::With(func)) if !matches!(v, Value::Unknown) => func(v, parent),
        Some(Norm::Case) => lower(v),
        _ => v.clone(),
    };
    canonical_ty(&f.ty, &v, set || f.set)
}

fn lower(v: &Value) -> Value {
    match v {
        Value::Str(s) => Value::Str(s.to_ascii_lowercase()),
        Value::List(l) => Value::List(l.iter().map(lower).collect()),
        other => other.clone(),
    }
}

fn canonical_ty(ty: &Ty, v: &Value, set: bool) -> Value {
    match (ty, v) {
        (Ty::List(inner), Value::List(items)) => {
            let mut items: Vec<Value> = items.iter().map(|x| canonical_ty(inner, x, set)).collect();
            if set {
                items.sort_by_key(|x| x.to_string());
                items.dedup();
            }
            Value::List(items)
        }
        (Ty::Map(inner), Value::Map(m)) => {
            let mut entries: Vec<(String, Value)> = m
                .iter()
                .map(|(k, x)| (k.clone(), canonical_ty(inner, x, set)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(entries.into_iter().collect())
        }
        (Ty::Object(fields), Value::Map(m)) => {
            let mut out: Fields = IndexMap::new();
            for (k, x) in m {
                let sub = fields.iter().find(|f| f.name == k);
                let x = canonical(sub, x, m, set);
                if !is_empty_collection(&x) {
                    out.insert(k.clone(), x);
                }
            }
            // AWS reports its defaults; a table written without them means them.
            for f in fields.iter() {
                if let (false, Some(d)) = (out.contains_key(f.name), f.default) {
                    out.insert(f.name.to_string(), canonical(Some(f), &d.value(), m, set));
                }
            }
            out.sort_keys();
            Value::Map(out)
        }
        (_, other) => normalise(other, set),
    }
}

fn is_empty_collection(v: &Value) -> bool {
    matches!(v, Value::List(l) if l.is_empty()) || matches!(v, Value::Map(m) if m.is_empty())
}

/// Whether two values in normal form mean the same, honouring the
/// equivalences a field declares (version prefixes, names for ARNs).
fn equivalent(field: Option<&Field>, want: &Value, have: &Value) -> bool {
    let Some(f) = field else {
        return want == have;
    };
    match (f.norm, want, have) {
        (Some(Norm::VersionPrefix), Value::Str(w), Value::Str(h)) => {
            w == h
                || h.strip_prefix(w.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        }
        (Some(Norm::NameOrArn), Value::Str(w), Value::Str(h)) => name_or_arn(w, h),
        _ => equivalent_ty(&f.ty, want, have),
    }
}

fn equivalent_ty(ty: &Ty, want: &Value, have: &Value) -> bool {
    match (ty, want, have) {
        (Ty::Object(fields), Value::Map(w), Value::Map(h)) => {
            w.len() == h.len()
                && w.iter().all(|(k, x)| {
                    h.get(k)
                        .is_some_and(|y| equivalent(fields.iter().find(|f| f.name == k), x, y))
                })
        }
        (Ty::List(inner), Value::List(w), Value::List(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(x, y)| equivalent_ty(inner, x, y))
        }
        _ => want == have,
    }
}

/// A declared name, or `name:revision`, against the ARN AWS answers with.
fn name_or_arn(want: &str, live: &str) -> bool {
    if want == live || want.starts_with("arn:") {
        return want == live;
    }
    let Some((_, tail)) = live.rsplit_once('/') else {
        return false;
    };
    tail == want || (!want.contains(':') && tail.split(':').next() == Some(want))
}

/// Lists marked as sets are sorted by their rendering, recursively for maps.
pub fn normalise(v: &Value, set: bool) -> Value {
    match v {
        Value::List(l) => {
            let mut items: Vec<Value> = l.iter().map(|x| normalise(x, set)).collect();
            if set {
                items.sort_by_key(|x| x.to_string());
                items.dedup();
            }
            Value::List(items)
        }
        Value::Map(m) => {
            let mut entries: Vec<(String, Value)> = m
                .iter()
                .map(|(k, x)| (k.clone(), normalise(x, set)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(entries.into_iter().collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static S: Schema = Schema {
        kind: "t",
        doc: "",
        fields: &[
            Field::new("cidr", Ty::Cidr, "").force_new(),
            Field::new("flag", Ty::Bool, ""),
            Field::new("ids", Ty::List(&Ty::Str), "").set(),
            Field::new("attrs", Ty::List(&Ty::Str), "").grows_in_place(),
        ],
        attributes: &[],
        taggable: false,
    };

    #[test]
    fn a_list_that_grows_in_place_replaces_only_when_an_item_changes_or_goes() {
        let l = |xs: &[&str]| {
            f(&[(
                "attrs",
                Value::List(xs.iter().map(|x| Value::str(*x)).collect()),
            )])
        };
        let added = diff_fields(&S, &l(&["a", "b", "c"]), &l(&["a", "b"]));
        assert_eq!(added.len(), 1);
        assert!(!added[0].forces_replace);
        let changed = diff_fields(&S, &l(&["a", "x"]), &l(&["a", "b"]));
        assert!(changed[0].forces_replace);
        let removed = diff_fields(&S, &l(&["a"]), &l(&["a", "b"]));
        assert!(removed[0].forces_replace);
    }

    fn f(pairs: &[(&str, Value)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn equal_sets_in_other_order_do_not_differ() {
        let a = f(&[("ids", Value::List(vec![Value::str("b"), Value::str("a")]))]);
        let b = f(&[("ids", Value::List(vec![Value::str("a"), Value::str("b")]))]);
        assert!(diff_fields(&S, &a, &b).is_empty());
    }

    #[test]
    fn force_new_and_unknown() {
        let want = f(&[
            ("cidr", Value::str("10.1.0.0/16")),
            ("flag", Value::Unknown),
        ]);
        let have = f(&[
            ("cidr", Value::str("10.0.0.0/16")),
            ("flag", Value::Bool(true)),
        ]);
        let d = diff_fields(&S, &want, &have);
        assert_eq!(d.len(), 2);
        assert!(d[0].forces_replace);
        assert!(!d[1].forces_replace);
    }

    fn lower_first(v: &Value, parent: &Fields) -> Value {
        // A default that depends on a sibling: the metric is named after the rule.
        match (v, parent.get("name")) {
            (Value::Map(m), Some(n)) if !m.contains_key("metric") => {
                let mut m = m.clone();
                m.insert("metric".into(), n.clone());
                Value::Map(m)
            }
            _ => v.clone(),
        }
    }

    static RICH: Schema = Schema {
        kind: "rich",
        doc: "",
        fields: &[
            Field::new("proto", Ty::Str, "").norm(Norm::Case),
            Field::new("version", Ty::Str, "").norm(Norm::VersionPrefix),
            Field::new("cluster", Ty::Str, "").norm(Norm::NameOrArn),
            Field::new("role", Ty::Str, "").absent_clears().force_new(),
            Field::new("name", Ty::Str, ""),
            Field::new(
                "rules",
                Ty::List(&Ty::Object(&[
                    Field::new("port", Ty::Int, ""),
                    Field::new("proto", Ty::Str, "")
                        .norm(Norm::Case)
                        .default(crate::model::schema::Default::Str("tcp")),
                    Field::new("cidrs", Ty::List(&Ty::Str), "").set(),
                ])),
                "",
            )
            .set(),
            Field::new("vis", Ty::Object(&[Field::new("metric", Ty::Str, "")]), "")
                .norm(Norm::With(lower_first)),
        ],
        attributes: &[],
        taggable: false,
    };

    fn rule(port: i64, proto: Option<&str>, cidrs: &[&str]) -> Value {
        let mut m = Fields::new();
        m.insert("port".into(), Value::Int(port));
        if let Some(p) = proto {
            m.insert("proto".into(), Value::str(p));
        }
        m.insert(
            "cidrs".into(),
            Value::List(cidrs.iter().map(|c| Value::str(*c)).collect()),
        );
        Value::Map(m)
    }

    #[test]
    fn normal_forms_make_equal_meanings_equal() {
        let want = f(&[
            ("proto", Value::str("TCP")),
            ("version", Value::str("16")),
            ("cluster", Value::str("main")),
            ("name", Value::str("r1")),
            (
                "rules",
                Value::List(vec![
                    rule(443, None, &["b", "a"]),
                    rule(80, Some("UDP"), &[]),
                ]),
            ),
            ("vis", Value::Map(Fields::new())),
        ]);
        let mut vis = Fields::new();
        vis.insert("metric".into(), Value::str("r1"));
        let have = f(&[
            ("proto", Value::str("tcp")),
            ("version", Value::str("16.3")),
            (
                "cluster",
                Value::str("arn:aws:ecs:us-east-1:1:cluster/main"),
            ),
            ("name", Value::str("r1")),
            (
                "rules",
                Value::List(vec![
                    rule(80, Some("udp"), &[]),
                    rule(443, Some("tcp"), &["a", "b"]),
                ]),
            ),
            ("vis", Value::Map(vis)),
        ]);
        assert_eq!(diff_fields(&RICH, &want, &have), vec![]);
    }

    #[test]
    fn normal_forms_still_see_real_differences() {
        let want = f(&[
            ("version", Value::str("16")),
            ("cluster", Value::str("main")),
            ("rules", Value::List(vec![rule(443, None, &["a"])])),
        ]);
        let have = f(&[
            ("version", Value::str("160.1")),
            (
                "cluster",
                Value::str("arn:aws:ecs:us-east-1:1:cluster/mainline"),
            ),
            ("rules", Value::List(vec![rule(443, Some("udp"), &["a"])])),
            ("role", Value::str("arn:aws:iam::1:role/x")),
        ]);
        let d = diff_fields(&RICH, &want, &have);
        let names: Vec<&str> = d.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(names, ["version", "cluster", "rules", "role"]);
        // The plan shows the declared rule with the default it stands for.
        assert_eq!(
            d[2].new,
            Some(Value::List(vec![rule(443, Some("tcp"), &["a"])]))
        );
        // Leaving `role` out clears it, and clearing it replaces.
        assert_eq!(d[3].new, None);
        assert!(d[3].forces_replace);
    }

    #[test]
    fn undeclared_fields_are_not_managed() {
        let want = f(&[("flag", Value::Bool(true))]);
        let have = f(&[
            ("flag", Value::Bool(true)),
            ("cidr", Value::str("10.0.0.0/16")),
        ]);
        assert!(diff_fields(&S, &want, &have).is_empty());
    }
}
