//! Per-kind field schemas: types, defaults, replace-forcing fields and exported attributes.
//!
//! Schemas are plain `const` data so the pure layers (`model`, `graph`, `plan`)
//! can validate and diff without touching a provider's AWS code.

use super::value::Value;
use indexmap::IndexMap;

/// The type of a field; validation checks declared values against it.
#[derive(Debug)]
pub enum Ty {
    Str,
    Bool,
    Int,
    /// A number that may have a fraction (`0.5`); an integer is accepted too.
    Float,
    /// An IPv4 CIDR block such as `10.0.0.0/16`.
    Cidr,
    /// An availability zone name such as `us-east-1a`.
    Az,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    /// A string checked by a function that explains what is wrong.
    Pattern(fn(&str) -> Result<(), String>),
    /// A local file or directory, written relative to the TOML file that
    /// declares it; the loader checks that it exists and makes it absolute,
    /// so that apply, which never reads the TOML again, finds it from anywhere.
    Path,
    List(&'static Ty),
    /// A table of string keys to values of one type (tags, say).
    Map(&'static Ty),
    /// A table with its own fields (a route, a security group rule).
    Object(&'static [Field]),
}

impl Ty {
    pub fn describe(&self) -> String {
        match self {
            Ty::Str | Ty::Pattern(_) => "a string".into(),
            Ty::Path => "a path relative to the TOML file".into(),
            Ty::Bool => "true or false".into(),
            Ty::Int => "an integer".into(),
            Ty::Float => "a number".into(),
            Ty::Cidr => "a CIDR block string like \"10.0.0.0/16\"".into(),
            Ty::Az => "an availability zone name like \"us-east-1a\"".into(),
            Ty::Enum(opts) => format!("one of {}", opts.join(", ")),
            Ty::List(t) => format!("a list of {}", t.describe()),
            Ty::Map(t) => format!("a table of {}", t.describe()),
            Ty::Object(_) => "a table".into(),
        }
    }
}

/// A default for a field that the TOML leaves out. Defaulted fields are
/// managed: an out-of-band change to them is drift.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    Bool(bool),
    Int(i64),
    Str(&'static str),
    /// A list of strings (`["FARGATE"]`).
    Strs(&'static [&'static str]),
    /// An empty table, whose own fields' defaults (and normal form) fill it in.
    Table,
}

impl Default {
    pub fn value(&self) -> Value {
        match self {
            Default::Bool(b) => Value::Bool(*b),
            Default::Int(i) => Value::Int(*i),
            Default::Str(s) => Value::str(*s),
            Default::Strs(l) => Value::List(l.iter().map(|s| Value::str(*s)).collect()),
            Default::Table => Value::Map(IndexMap::new()),
        }
    }
}

/// How a field's value is put in normal form before desired and live are
/// compared, so that what AWS reports differently but means the same is no drift.
#[derive(Debug, Clone, Copy)]
pub enum Norm {
    /// Compared without regard to ASCII case (`tcp` and `TCP`).
    Case,
    /// A declared version matches a live version it is a prefix of at a dot
    /// (`16` matches `16.3`), as Terraform's prefix matching does.
    VersionPrefix,
    /// A declared name (or `name:revision`) matches the ARN AWS answers with
    /// when the ARN's last path segment is that name (or that name with any
    /// revision); a declared ARN must match exactly.
    NameOrArn,
    /// The kind's own normal form, given the value and the table it sits in
    /// (the resource's fields at the top, the enclosing table when nested),
    /// applied to both sides: defaults that depend on a sibling, say.
    With(fn(&Value, &IndexMap<String, Value>) -> Value),
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub default: Option<Default>,
    /// Inclusive bounds an integer (or number) must lie within; checked by `validate`.
    pub range: Option<(i64, i64)>,
    pub norm: Option<Norm>,
    /// Leaving the field out means it should not be set at all (a log group's
    /// retention, a task's role): a live value is then drift, cleared by the update.
    pub absent_clears: bool,
    /// Changing this field cannot be done in place: the resource is replaced.
    pub force_new: bool,
    /// With `force_new`, a list AWS can add items to in place but never change
    /// or remove one from (a user pool's custom attributes): a change that only
    /// adds is an update; any other change replaces.
    pub grows_in_place: bool,
    /// A list whose order does not matter (compared as a set).
    pub set: bool,
    /// Not an AWS property but how reconcile acts on the resource
    /// (`apply_immediately`, `skip_final_snapshot`, wait timeouts). Compared
    /// with the last applied value instead of live AWS; a change is an update
    /// that only records the new setting.
    pub local: bool,
    pub doc: &'static str,
}

impl Field {
    pub const fn new(name: &'static str, ty: Ty, doc: &'static str) -> Self {
        Field {
            name,
            ty,
            required: false,
            default: None,
            range: None,
            norm: None,
            absent_clears: false,
            force_new: false,
            grows_in_place: false,
            set: false,
            local: false,
            doc,
        }
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn default(mut self, d: Default) -> Self {
        self.default = Some(d);
        self
    }
    pub const fn range(mut self, lo: i64, hi: i64) -> Self {
        self.range = Some((lo, hi));
        self
    }
    pub const fn norm(mut self, n: Norm) -> Self {
        self.norm = Some(n);
        self
    }
    pub const fn absent_clears(mut self) -> Self {
        self.absent_clears = true;
        self
    }
    pub const fn force_new(mut self) -> Self {
        self.force_new = true;
        self
    }
    /// See [`Field::grows_in_place`]; implies `force_new`.
    pub const fn grows_in_place(mut self) -> Self {
        self.force_new = true;
        self.grows_in_place = true;
        self
    }
    pub const fn local(mut self) -> Self {
        self.local = true;
        self
    }
    pub const fn set(mut self) -> Self {
        self.set = true;
        self
    }
}

/// Everything the pure layers need to know about one resource kind.
#[derive(Debug)]
pub struct Schema {
    pub kind: &'static str,
    pub doc: &'static str,
    pub fields: &'static [Field],
    /// Attributes AWS decides (`id`, `arn`, ...); every field is referenceable too.
    pub attributes: &'static [(&'static str, &'static str)],
    /// Carries the stack tags plus `reconcile:stack` and `reconcile:address`.
    pub taggable: bool,
}

impl Schema {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attributes.iter().any(|(a, _)| *a == name)
            || self.field(name).is_some()
            || (self.taggable && name == "tags")
    }
}

impl Schema {
    /// Values outside their field's range, nested tables included, as
    /// `field.path is N; AWS takes LO to HI`. The loader checks what the TOML
    /// writes; this checks values a reference supplied, once resolved.
    pub fn out_of_range(&self, fields: &IndexMap<String, Value>) -> Vec<String> {
        let mut out = Vec::new();
        for f in self.fields {
            if let Some(v) = fields.get(f.name) {
                out_of_range(f, v, f.name, &mut out);
            }
        }
        out
    }
}

fn out_of_range(f: &Field, v: &Value, path: &str, out: &mut Vec<String>) {
    if let (Some((lo, hi)), Some(n)) = (f.range, v.as_float()) {
        if n < lo as f64 || n > hi as f64 {
            out.push(format!("{path} is {v}; AWS takes {lo} to {hi}"));
        }
    }
    let nested =
        |fields: &[Field], m: &IndexMap<String, Value>, at: &str, out: &mut Vec<String>| {
            for g in fields {
                if let Some(x) = m.get(g.name) {
                    out_of_range(g, x, &format!("{at}.{}", g.name), out);
                }
            }
        };
    match (&f.ty, v) {
        (Ty::Object(fields), Value::Map(m)) => nested(fields, m, path, out),
        (Ty::List(Ty::Object(fields)), Value::List(items)) => {
            for (i, x) in items.iter().enumerate() {
                if let Value::Map(m) = x {
                    nested(fields, m, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// The meta keys every resource may carry besides its kind's fields.
pub const META_KEYS: &[&str] = &["depends_on", "protect", "ignore_changes", "tags"];

/// Validates a dotted IPv4 CIDR, insisting the address is the network's own.
pub fn check_cidr(s: &str) -> Result<(), String> {
    let net: ipnet::Ipv4Net = s
        .parse()
        .map_err(|_| format!("\"{s}\" is not an IPv4 CIDR block; write it like \"10.0.0.0/16\""))?;
    if net.network() != net.addr() {
        return Err(format!(
            "\"{s}\" has host bits set; the network address is \"{}\"",
            net.trunc()
        ));
    }
    Ok(())
}

/// Validates an availability zone name (`us-east-1a`, `eu-west-2c`, `us-gov-west-1b`).
pub fn check_az(s: &str) -> Result<(), String> {
    let ok = s.len() > 2
        && s.ends_with(|c: char| c.is_ascii_lowercase())
        && s[..s.len() - 1].ends_with(|c: char| c.is_ascii_digit())
        && s.split('-').count() >= 3
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{s}\" is not an availability zone name; write it like \"us-east-1a\""
        ))
    }
}

/// Validates a region name's shape (`us-east-1`, `us-gov-west-1`, `cn-north-1`):
/// a two-letter area, one or more lowercase words, a number. Checked by shape
/// rather than against a list so that a region AWS opens later is not refused.
pub fn check_region(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('-').collect();
    let word = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase());
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && word(&parts[0])
        && parts[1..parts.len() - 1].iter().all(word)
        && parts[parts.len() - 1].len() <= 2
        && !parts[parts.len() - 1].is_empty()
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!("\"{s}\" is not an AWS region name"))
    }
}

/// Checks that an AZ lies in the stack's region.
pub fn az_in_region(az: &str, region: &str) -> bool {
    az.len() == region.len() + 1 && az.starts_with(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_values_outside_their_range() {
        static S: Schema = Schema {
            kind: "k",
            doc: "",
            fields: &[
                Field::new("days", Ty::Int, "").range(1, 35),
                Field::new(
                    "ports",
                    Ty::List(&Ty::Object(&[
                        Field::new("port", Ty::Int, "").range(1, 65535)
                    ])),
                    "",
                ),
            ],
            attributes: &[],
            taggable: false,
        };
        let port = |p| Value::Map([("port".to_string(), Value::Int(p))].into_iter().collect());
        let f: IndexMap<String, Value> = [
            ("days".to_string(), Value::Int(40)),
            (
                "ports".to_string(),
                Value::List(vec![port(80), port(70000)]),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            S.out_of_range(&f),
            [
                "days is 40; AWS takes 1 to 35",
                "ports[1].port is 70000; AWS takes 1 to 65535"
            ]
        );
    }

    #[test]
    fn cidrs() {
        assert!(check_cidr("10.0.0.0/16").is_ok());
        assert!(check_cidr("10.0.0.1/16")
            .unwrap_err()
            .contains("10.0.0.0/16"));
        assert!(check_cidr("10.0.0.0").is_err());
        assert!(check_cidr("banana").is_err());
    }

    #[test]
    fn azs() {
        assert!(check_az("us-east-1a").is_ok());
        assert!(check_az("us-east-1").is_err());
        assert!(check_az("US-EAST-1A").is_err());
        assert!(az_in_region("us-east-1b", "us-east-1"));
        assert!(!az_in_region("eu-west-1b", "us-east-1"));
    }

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-4",
            "us-gov-west-1",
            "cn-north-1",
        ] {
            assert!(check_region(ok).is_ok(), "{ok}");
        }
        for bad in [
            "us-east",
            "useast1",
            "US-EAST-1",
            "us-east-1a",
            "us--east-1",
            "usa-east-1",
            "",
        ] {
            assert!(check_region(bad).is_err(), "{bad}");
        }
    }
}
