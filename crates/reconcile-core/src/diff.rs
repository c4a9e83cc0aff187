//! Schema-driven field comparison: what differs between desired and live, and whether it forces a replacement.

use crate::model::{Fields, Schema, Value};
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

/// Compares every desired field with its live value. Set-like lists compare
/// without order; an unknown desired value always counts as a change.
pub fn diff_fields(schema: &Schema, desired: &Fields, live: &Fields) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (k, want) in desired {
        let field = schema.field(k);
        let set = field.is_some_and(|f| f.set);
        let force = field.is_some_and(|f| f.force_new);
        let have = live.get(k);
        let same = match have {
            Some(h) if !want.is_unknown() => normalise(want, set) == normalise(h, set),
            _ => false,
        };
        if !same {
            out.push(FieldChange::new(
                k,
                have.cloned(),
                Some(want.clone()),
                force,
            ));
        }
    }
    out
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
    use crate::model::schema::{Field, Ty};

    static S: Schema = Schema {
        kind: "t",
        doc: "",
        fields: &[
            Field::new("cidr", Ty::Cidr, "").force_new(),
            Field::new("flag", Ty::Bool, ""),
            Field::new("ids", Ty::List(&Ty::Str), "").set(),
        ],
        attributes: &[],
        taggable: false,
    };

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
