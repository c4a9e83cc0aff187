//! A small fake kind catalog for the planner's tests: three network-like kinds
//! with the rules the planner must honour (defaults, sets, replace-forcing
//! fields, delete-first replacements, a deletion guard, a field taken over by
//! another resource), and no AWS behind them.

use crate::catalog::{KindCatalog, Takeover};
use crate::diff::FieldChange;
use crate::model::schema::{Default, Field, Schema, Ty};
use crate::model::{Fields, Schemas, Value};

static VPC: Schema = Schema {
    kind: "vpc",
    doc: "A network.",
    fields: &[
        Field::new("cidr_block", Ty::Cidr, "")
            .required()
            .force_new(),
        Field::new("enable_dns_support", Ty::Bool, "").default(Default::Bool(true)),
        Field::new("enable_dns_hostnames", Ty::Bool, "").default(Default::Bool(false)),
        Field::new("instance_tenancy", Ty::Enum(&["default", "dedicated"]), "")
            .default(Default::Str("default"))
            .force_new(),
    ],
    attributes: &[("id", ""), ("arn", "")],
    taggable: true,
};

static SUBNET: Schema = Schema {
    kind: "subnet",
    doc: "A range of a network.",
    fields: &[
        Field::new("vpc_id", Ty::Str, "").required().force_new(),
        Field::new("cidr_block", Ty::Cidr, "")
            .required()
            .force_new(),
        Field::new("availability_zone", Ty::Az, "")
            .required()
            .force_new(),
        Field::new("map_public_ip_on_launch", Ty::Bool, "").default(Default::Bool(false)),
    ],
    attributes: &[("id", ""), ("arn", "")],
    taggable: true,
};

const RULE: &[Field] = &[
    Field::new("protocol", Ty::Enum(&["tcp", "udp", "icmp", "-1"]), "").required(),
    Field::new("from_port", Ty::Int, "").required(),
    Field::new("to_port", Ty::Int, "").required(),
    Field::new("cidr_block", Ty::Cidr, ""),
    Field::new("source_security_group_id", Ty::Str, ""),
    Field::new("description", Ty::Str, ""),
];

static GROUP: Schema = Schema {
    kind: "security_group",
    doc: "A firewall.",
    fields: &[
        Field::new("name", Ty::Str, "").required().force_new(),
        Field::new("description", Ty::Str, "")
            .default(Default::Str("Managed by reconcile"))
            .force_new(),
        Field::new("vpc_id", Ty::Str, "").required().force_new(),
        Field::new("ingress", Ty::List(&Ty::Object(RULE)), "").set(),
        Field::new("egress", Ty::List(&Ty::Object(RULE)), "").set(),
    ],
    attributes: &[("id", ""), ("arn", "")],
    taggable: true,
};

/// Takes over the subnet it names: after creation, that subnet's
/// `map_public_ip_on_launch` is its business, not the stack's.
static AUTOPILOT: Schema = Schema {
    kind: "autopilot",
    doc: "Manages a subnet's public IP setting.",
    fields: &[Field::new("subnet_id", Ty::Str, "").required()],
    attributes: &[("id", "")],
    taggable: false,
};

/// The guard field of the fake `subnet`: named unlike any real one, so a test
/// that sees it in a message knows the planner took it from the catalog.
pub const GUARD: &str = "termination_protection";

pub struct FakeCatalog;

impl Schemas for FakeCatalog {
    fn kinds(&self) -> Vec<&'static str> {
        vec!["vpc", "subnet", "security_group", "autopilot"]
    }
    fn schema(&self, kind: &str) -> Option<&'static Schema> {
        [&VPC, &SUBNET, &GROUP, &AUTOPILOT]
            .into_iter()
            .find(|s| s.kind == kind)
    }
}

fn changed<'a>(changes: &'a [FieldChange], field: &str) -> Option<&'a FieldChange> {
    changes.iter().find(|c| c.field == field)
}

fn cidr(v: Option<&Value>) -> Option<ipnet::Ipv4Net> {
    v.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

impl KindCatalog for FakeCatalog {
    /// A subnet can only exist twice when the two ranges do not overlap (or the
    /// VPCs differ); a group when its name or VPC changes; a network always.
    fn create_before_destroy(&self, kind: &str, changes: &[FieldChange]) -> bool {
        match kind {
            "subnet" => {
                if changed(changes, "vpc_id").is_some() {
                    return true;
                }
                let Some(c) = changed(changes, "cidr_block") else {
                    return false;
                };
                match (cidr(c.old.as_ref()), cidr(c.new.as_ref())) {
                    (Some(o), Some(n)) => !(o.contains(&n.network()) || n.contains(&o.network())),
                    _ => true,
                }
            }
            "security_group" => {
                changed(changes, "name").is_some() || changed(changes, "vpc_id").is_some()
            }
            _ => true,
        }
    }

    /// The subnet its `subnet_id` refers to when declared; from state, where
    /// references are resolved, the subnet it depended on.
    fn takes_over(&self, kind: &str, fields: &Fields, uses: &[String]) -> Vec<Takeover> {
        if kind != "autopilot" {
            return vec![];
        }
        let referenced: Vec<String> = fields
            .get("subnet_id")
            .map(|v| v.references())
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r.address())
            .collect();
        let subnets = if referenced.is_empty() {
            uses.to_vec()
        } else {
            referenced
        };
        subnets
            .into_iter()
            .filter(|a| a.starts_with("subnet."))
            .map(|address| Takeover {
                address,
                field: "map_public_ip_on_launch".into(),
            })
            .collect()
    }

    fn deletion_guard(&self, kind: &str) -> Option<&'static str> {
        (kind == "subnet").then_some(GUARD)
    }

    /// A group is not deleted while something declared still uses it.
    fn in_use_guard(&self, kind: &str) -> Option<&'static str> {
        (kind == "security_group").then_some("their rules would lose their source")
    }

    /// A subnet whose applied `map_public_ip_on_launch` is on is deleted after
    /// a wait, so a test can tell the note comes from the applied inputs.
    fn delete_note(&self, kind: &str, applied: Option<&Fields>) -> Option<String> {
        let waits = applied?.get("map_public_ip_on_launch")? == &Value::Bool(true);
        (kind == "subnet" && waits).then(|| "takes effect after a wait".to_string())
    }
}
