//! The value type carried by resource fields, attributes and plans, and the `${...}` template syntax.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Ordered field map: a resource's fields or attributes.
pub type Fields = IndexMap<String, Value>;

/// A field or attribute value. `Unknown` stands for a value only AWS can tell,
/// after an apply (the id of a resource not yet created, say).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    /// A fractional number (Aurora capacity units); only for fields typed `Ty::Float`.
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(IndexMap<String, Value>),
    Unknown,
}

const UNKNOWN_MARKER: &str = "$unknown";

impl Value {
    pub fn str(s: impl Into<String>) -> Self {
        Value::Str(s.into())
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    /// A number, integers included (a `Ty::Float` field written `8`).
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&IndexMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    pub fn is_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::List(l) => l.iter().any(Value::is_unknown),
            Value::Map(m) => m.values().any(Value::is_unknown),
            _ => false,
        }
    }
    /// Strings of a list value, skipping anything that is not a string.
    pub fn str_list(&self) -> Vec<String> {
        self.as_list()
            .map(|l| {
                l.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every `${...}` reference inside this value, strings nested in lists and maps included.
    pub fn references(&self) -> Vec<Reference> {
        let mut out = Vec::new();
        self.visit_strings(&mut |s| {
            if let Ok(parts) = parse_template(s) {
                for p in parts {
                    if let TemplatePart::Ref(r) = p {
                        out.push(r);
                    }
                }
            }
        });
        out
    }

    /// Whether any string inside the value contains `needle`.
    pub fn mentions(&self, needle: &str) -> bool {
        let mut found = false;
        self.visit_strings(&mut |s| found |= s.contains(needle));
        found
    }

    fn visit_strings(&self, f: &mut dyn FnMut(&str)) {
        match self {
            Value::Str(s) => f(s),
            Value::List(l) => l.iter().for_each(|v| v.visit_strings(f)),
            Value::Map(m) => m.values().for_each(|v| v.visit_strings(f)),
            _ => {}
        }
    }

    /// Replaces every reference using `lookup`; a string that is exactly one
    /// reference takes the referenced value's type. A reference `lookup` cannot
    /// answer makes the whole string `Unknown`.
    pub fn resolve(&self, lookup: &dyn Fn(&Reference) -> Value) -> Value {
        match self {
            Value::Str(s) => resolve_string(s, lookup),
            Value::List(l) => Value::List(l.iter().map(|v| v.resolve(lookup)).collect()),
            Value::Map(m) => Value::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), v.resolve(lookup)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

fn resolve_string(s: &str, lookup: &dyn Fn(&Reference) -> Value) -> Value {
    let Ok(parts) = parse_template(s) else {
        return Value::Str(s.to_string());
    };
    if let [TemplatePart::Ref(r)] = parts.as_slice() {
        return lookup(r);
    }
    let mut out = String::new();
    for p in parts {
        match p {
            TemplatePart::Text(t) => out.push_str(&t),
            TemplatePart::Ref(r) => match lookup(&r) {
                Value::Str(v) => out.push_str(&v),
                Value::Int(i) => out.push_str(&i.to_string()),
                Value::Float(x) => out.push_str(&x.to_string()),
                Value::Bool(b) => out.push_str(&b.to_string()),
                _ => return Value::Unknown,
            },
        }
    }
    Value::Str(out)
}

/// A `${KIND.NAME.ATTR}` or `${input.NAME}` reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reference {
    Resource {
        kind: String,
        name: String,
        attr: String,
    },
    Input(String),
}

impl Reference {
    pub fn address(&self) -> Option<String> {
        match self {
            Reference::Resource { kind, name, .. } => Some(format!("{kind}.{name}")),
            Reference::Input(_) => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Resource { kind, name, attr } => write!(f, "${{{kind}.{name}.{attr}}}"),
            Reference::Input(n) => write!(f, "${{input.{n}}}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum TemplatePart {
    Text(String),
    Ref(Reference),
}

/// Splits a string into literal text and references. `$${` is a literal `${`.
pub fn parse_template(s: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        text.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(escaped) = after.strip_prefix("$${") {
            text.push_str("${");
            rest = escaped;
        } else if let Some(body) = after.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed reference in \"{s}\": add the closing `}}`"))?;
            let inner = body[..end].trim();
            let segs: Vec<&str> = inner.split('.').collect();
            let valid = |x: &str| {
                !x.is_empty()
                    && x.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            };
            let r = match segs.as_slice() {
                ["input", n] if valid(n) => Reference::Input(n.to_string()),
                [k, n, a] if valid(k) && valid(n) && valid(a) && *k != "input" => {
                    Reference::Resource {
                        kind: k.to_string(),
                        name: n.to_string(),
                        attr: a.to_string(),
                    }
                }
                _ => {
                    return Err(format!(
                        "malformed reference `${{{inner}}}`: write `${{KIND.NAME.ATTR}}` or `${{input.NAME}}`"
                    ))
                }
            };
            if !text.is_empty() {
                parts.push(TemplatePart::Text(std::mem::take(&mut text)));
            }
            parts.push(TemplatePart::Ref(r));
            rest = &body[end + 1..];
        } else {
            text.push('$');
            rest = &after[1..];
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(TemplatePart::Text(text));
    }
    Ok(parts)
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            // `{:?}` keeps the point (8.0), so a float never reads as an integer.
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Unknown => write!(f, "(known after apply)"),
            Value::List(l) => {
                write!(f, "[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{v}")?;
                }
                write!(f, "]")
            }
            Value::Map(m) => {
                write!(f, "{{ ")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k} = {v}")?;
                }
                write!(f, " }}")
            }
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(x) => s.serialize_f64(*x),
            Value::Str(v) => s.serialize_str(v),
            Value::List(l) => l.serialize(s),
            Value::Map(m) => m.serialize(s),
            Value::Unknown => {
                let mut m = IndexMap::new();
                m.insert(UNKNOWN_MARKER, true);
                m.serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = serde_json::Value::deserialize(d)?;
        Value::from_json(j).map_err(serde::de::Error::custom)
    }
}

impl Value {
    pub fn from_json(j: serde_json::Value) -> Result<Value, String> {
        Ok(match j {
            serde_json::Value::Bool(b) => Value::Bool(b),
            // serde_json writes a float with its point (8.0), so it reads back as a float.
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Value::Int(i),
                (None, Some(x)) if !n.is_u64() => Value::Float(x),
                _ => return Err(format!("{n} is not a 64-bit integer")),
            },
            serde_json::Value::String(s) => Value::Str(s),
            serde_json::Value::Array(a) => Value::List(
                a.into_iter()
                    .map(Value::from_json)
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(o) => {
                if o.len() == 1 && o.get(UNKNOWN_MARKER) == Some(&serde_json::Value::Bool(true)) {
                    Value::Unknown
                } else {
                    Value::Map(
                        o.into_iter()
                            .map(|(k, v)| Value::from_json(v).map(|v| (k, v)))
                            .collect::<Result<_, _>>()?,
                    )
                }
            }
            serde_json::Value::Null => return Err("null is not a value".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parts_and_escapes() {
        let p =
            parse_template("jdbc://${db_instance.kc.endpoint}:5432/$${x} ${input.domain}").unwrap();
        assert_eq!(p.len(), 4);
        assert!(
            matches!(&p[1], TemplatePart::Ref(Reference::Resource { attr, .. }) if attr == "endpoint")
        );
        assert_eq!(p[2], TemplatePart::Text(":5432/${x} ".into()));
        assert_eq!(p[3], TemplatePart::Ref(Reference::Input("domain".into())));
        assert!(parse_template("${vpc.main}").is_err());
        assert!(parse_template("${vpc.main.id").is_err());
    }

    #[test]
    fn whole_reference_keeps_type_and_partial_becomes_string_or_unknown() {
        let lookup = |r: &Reference| match r {
            Reference::Resource { attr, .. } if attr == "ids" => {
                Value::List(vec![Value::str("a"), Value::str("b")])
            }
            Reference::Resource { attr, .. } if attr == "id" => Value::str("vpc-1"),
            _ => Value::Unknown,
        };
        assert_eq!(
            Value::str("${x.y.ids}").resolve(&lookup),
            Value::List(vec![Value::str("a"), Value::str("b")])
        );
        assert_eq!(
            Value::str("id=${x.y.id}").resolve(&lookup),
            Value::str("id=vpc-1")
        );
        assert_eq!(
            Value::str("id=${x.y.other}").resolve(&lookup),
            Value::Unknown
        );
    }

    #[test]
    fn floats_round_trip_through_json_as_floats() {
        let v = Value::List(vec![Value::Float(0.5), Value::Float(8.0), Value::Int(8)]);
        let j = serde_json::to_string(&v).unwrap();
        assert_eq!(j, "[0.5,8.0,8]");
        let back: Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back, v);
        assert_eq!(Value::Float(8.0).to_string(), "8.0");
    }

    #[test]
    fn unknown_round_trips_through_json() {
        let v = Value::List(vec![Value::Unknown, Value::Int(3)]);
        let j = serde_json::to_string(&v).unwrap();
        let back: Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back, v);
    }
}
