//! `security_group`: a VPC security group with its ingress and egress rules managed
//! inline, plus the rule model (parse, normalise, authorize, revoke) that
//! `security_group_rule` shares.
//!
//! A rule is written the way AWS stores it after flattening: one source per rule.
//! All traffic is written `protocol = "-1", from_port = 0, to_port = 0`; AWS
//! ignores ports for `-1`, so any ports given with it are read as 0 and 0.

use crate::ec2::{self, eventual, eventual_delete, tag_spec, tags_of, Describe, Result};
use crate::kit::fields::{changes_field, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_ec2::operation::authorize_security_group_egress::AuthorizeSecurityGroupEgressError;
use aws_sdk_ec2::operation::authorize_security_group_ingress::AuthorizeSecurityGroupIngressError;
use aws_sdk_ec2::operation::create_security_group::CreateSecurityGroupError;
use aws_sdk_ec2::operation::delete_security_group::DeleteSecurityGroupError;
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, UserIdGroupPair,
};
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeSet, HashMap};

pub struct SecurityGroup;

/// The fields of one rule table in `ingress` / `egress`.
pub const RULE_FIELDS: &[Field] = &[PROTOCOL, FROM_PORT, TO_PORT, CIDR, SOURCE_GROUP, NOTE];

// One rule's fields, which `security_group_rule` declares as its own too.
pub const PROTOCOL: Field = Field::new(
    "protocol",
    Ty::Enum(&["tcp", "udp", "icmp", "-1"]),
    "tcp, udp, icmp, or -1 for all traffic.",
)
.required();
pub const FROM_PORT: Field = Field::new(
    "from_port",
    Ty::Int,
    "First port of the range (ICMP: the type; all traffic: 0).",
)
.norm(Norm::With(all_traffic_port))
.required();
pub const TO_PORT: Field = Field::new(
    "to_port",
    Ty::Int,
    "Last port of the range (ICMP: the code; all traffic: 0).",
)
.norm(Norm::With(all_traffic_port))
.required();
pub const CIDR: Field = Field::new(
    "cidr_block",
    Ty::Cidr,
    "The IPv4 range the rule allows; exclusive with source_security_group_id.",
);
pub const SOURCE_GROUP: Field = Field::new(
    "source_security_group_id",
    Ty::Str,
    "The security group whose members the rule allows; exclusive with cidr_block.",
);
pub const NOTE: Field = Field::new(
    "description",
    Ty::Str,
    "A note on the rule, up to 255 characters.",
);

pub static SCHEMA: Schema = Schema {
    kind: "security_group",
    doc: "A VPC security group. `ingress` and `egress`, when declared, are the group's exact rule sets; \
          when left out, that direction is not managed (AWS's default allow-all egress stays).",
    fields: &[
        Field::new("name", Ty::Pattern(check_sg_name), "The group name, unique within its VPC.")
            .required()
            .force_new(),
        Field::new("description", Ty::Str, "What the group is for. AWS cannot change it in place.")
            .default(Default::Str("Managed by reconcile"))
            .force_new(),
        Field::new("vpc_id", Ty::Str, "The VPC the group belongs to.")
            .required()
            .force_new(),
        Field::new("ingress", Ty::List(&Ty::Object(RULE_FIELDS)), "Inbound rules, compared as a set.").set(),
        Field::new("egress", Ty::List(&Ty::Object(RULE_FIELDS)), "Outbound rules, compared as a set.").set(),
    ],
    attributes: &[
        ("id", "The security group id (sg-...)."),
        ("arn", "The security group's ARN."),
        ("name", "The group name."),
        ("owner_id", "The AWS account that owns the group."),
    ],
    taggable: true,
};

/// Where a rule lets traffic come from (ingress) or go to (egress).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    Cidr(String),
    /// Not declarable, but observed so that an out-of-band IPv6 rule shows as drift.
    Ipv6(String),
    Group(String),
    /// Not declarable, but observed so that an out-of-band prefix-list rule shows as drift.
    PrefixList(String),
}

impl Source {
    /// The rule key this source is written under, and its value.
    pub fn key_value(&self) -> (&'static str, &str) {
        match self {
            Source::Cidr(c) | Source::Ipv6(c) => ("cidr_block", c),
            Source::Group(g) => ("source_security_group_id", g),
            Source::PrefixList(p) => ("prefix_list_id", p),
        }
    }

    /// Reads a source back from its own text (as in a `security_group_rule` id).
    pub fn parse(s: &str) -> Source {
        if s.starts_with("sg-") {
            Source::Group(s.to_string())
        } else if s.starts_with("pl-") {
            Source::PrefixList(s.to_string())
        } else if s.contains(':') {
            Source::Ipv6(s.to_string())
        } else {
            Source::Cidr(s.to_string())
        }
    }
}

/// Inbound or outbound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "ingress" => Some(Direction::Ingress),
            "egress" => Some(Direction::Egress),
            _ => None,
        }
    }
}

/// One flattened rule: one protocol and port range, one source.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    pub protocol: String,
    pub from_port: i64,
    pub to_port: i64,
    pub source: Source,
    pub description: Option<String>,
}

impl Rule {
    /// Reads a rule from rule fields: a declared rule table, an observed one, or
    /// the fields of a `security_group_rule`. `what` names the rule in errors.
    pub fn from_fields(m: &Fields, what: &str) -> Result<Rule> {
        let bad = |msg: String| ProviderError::InvalidInput(format!("{what}: {msg}"));
        let text = |k: &str| -> Result<Option<String>> {
            match m.get(k) {
                None => Ok(None),
                Some(Value::Str(s)) => Ok(Some(s.clone())),
                Some(Value::Unknown) => Err(bad(format!("`{k}` is not known yet"))),
                Some(other) => Err(bad(format!("`{k}` must be a string, found {other}"))),
            }
        };
        let port = |k: &str| -> Result<i64> {
            match m.get(k) {
                Some(Value::Int(i)) if (-1..=65535).contains(i) => Ok(*i),
                Some(Value::Int(i)) => Err(bad(format!("`{k}` = {i} is outside -1..65535"))),
                Some(Value::Unknown) => Err(bad(format!("`{k}` is not known yet"))),
                Some(other) => Err(bad(format!("`{k}` must be an integer, found {other}"))),
                None => Err(bad(format!("`{k}` is missing"))),
            }
        };
        let protocol = text("protocol")?.ok_or_else(|| bad("`protocol` is missing".into()))?;
        let protocol = normalise_protocol(&protocol);
        let (from_port, to_port) = if protocol == "-1" {
            (0, 0)
        } else {
            (port("from_port")?, port("to_port")?)
        };
        let sources = [
            text("cidr_block")?.map(|c| Source::parse(&c)),
            text("source_security_group_id")?.map(Source::Group),
            text("prefix_list_id")?.map(Source::PrefixList),
        ];
        let mut given = sources.into_iter().flatten();
        let source = match (given.next(), given.next()) {
            (Some(s), None) => s,
            _ => {
                return Err(bad(
                    "give exactly one of `cidr_block` or `source_security_group_id`".into(),
                ))
            }
        };
        Ok(Rule {
            protocol,
            from_port,
            to_port,
            source,
            description: text("description")?.filter(|d| !d.is_empty()),
        })
    }

    /// The rule as the user writes it: only the keys that are set.
    pub fn to_fields(&self) -> Fields {
        let mut m = Fields::new();
        m.insert("protocol".into(), Value::str(&self.protocol));
        m.insert("from_port".into(), Value::Int(self.from_port));
        m.insert("to_port".into(), Value::Int(self.to_port));
        let (k, v) = self.source.key_value();
        m.insert(k.into(), Value::str(v));
        if let Some(d) = &self.description {
            m.insert("description".into(), Value::str(d));
        }
        m
    }

    /// The rule without its description: what AWS uses to tell rules apart.
    pub fn same_target(&self, other: &Rule) -> bool {
        self.protocol == other.protocol
            && self.from_port == other.from_port
            && self.to_port == other.to_port
            && self.source == other.source
    }

    /// The rule as one IpPermission. The description is sent on revokes too:
    /// AWS ignores it there, while moto only matches a group-sourced rule with it.
    pub fn permission(&self) -> IpPermission {
        let mut p = IpPermission::builder().ip_protocol(&self.protocol);
        if self.protocol != "-1" {
            // Ports were range-checked on parse, so they fit an i32.
            p = p
                .from_port(self.from_port as i32)
                .to_port(self.to_port as i32);
        }
        let d = self.description.clone();
        let p = match &self.source {
            Source::Cidr(c) => {
                p.ip_ranges(IpRange::builder().cidr_ip(c).set_description(d).build())
            }
            Source::Ipv6(c) => {
                p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).set_description(d).build())
            }
            Source::Group(g) => p.user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id(g)
                    .set_description(d)
                    .build(),
            ),
            Source::PrefixList(id) => p.prefix_list_ids(
                PrefixListId::builder()
                    .prefix_list_id(id)
                    .set_description(d)
                    .build(),
            ),
        };
        p.build()
    }

    /// AWS's allow-all egress rules that every new VPC group starts with.
    fn default_egress() -> [Rule; 2] {
        let all = |source| Rule {
            protocol: "-1".into(),
            from_port: 0,
            to_port: 0,
            source,
            description: None,
        };
        [
            all(Source::Cidr("0.0.0.0/0".into())),
            all(Source::Ipv6("::/0".into())),
        ]
    }
}

/// What AWS would refuse in one rule's ports, each with the field at fault and
/// what to do. Ports that are references are left to AWS.
pub fn rule_problems(m: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let (Some(protocol), Some(from), Some(to)) = (
        m.get("protocol").and_then(Value::as_str),
        m.get("from_port").and_then(Value::as_int),
        m.get("to_port").and_then(Value::as_int),
    ) else {
        return out;
    };
    match normalise_protocol(protocol).as_str() {
        "tcp" | "udp" => {
            for (k, v) in [("from_port", from), ("to_port", to)] {
                if !(0..=65535).contains(&v) {
                    out.push((
                        k,
                        format!("{k} {v} is outside 0-65535"),
                        "use a port from 0 to 65535 (0 to 65535 is every port)".to_string(),
                    ));
                }
            }
            if out.is_empty() && from > to {
                out.push((
                    "from_port",
                    format!("from_port {from} is above to_port {to}"),
                    format!("write the range low to high: from_port = {to}, to_port = {from}"),
                ));
            }
        }
        "icmp" => {
            for (k, what, v) in [("from_port", "type", from), ("to_port", "code", to)] {
                if !(-1..=255).contains(&v) {
                    out.push((
                        k,
                        format!("{k} {v} (the ICMP {what}) is outside -1-255"),
                        format!("use an ICMP {what} from 0 to 255, or -1 for all"),
                    ));
                }
            }
            if from == -1 && to != -1 {
                out.push((
                    "to_port",
                    format!(
                        "to_port {to}: with every ICMP type (from_port -1) AWS needs every code"
                    ),
                    "set to_port = -1, or name one ICMP type in from_port".to_string(),
                ));
            }
        }
        // All traffic: AWS ignores the ports, so any other than these would
        // read as a restriction that is not there.
        "-1" if !matches!((from, to), (0, 0) | (-1, -1)) => {
            out.push((
                "from_port",
                format!("protocol \"-1\" allows every port, yet the rule says {from}-{to}"),
                "write from_port = 0 and to_port = 0, or use protocol \"tcp\" or \"udp\" for that range".to_string(),
            ));
        }
        _ => {}
    }
    out
}

/// The inline rules' problems, for a group's `ingress` and `egress` lists.
fn inline_rule_problems(f: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    for dir in ["ingress", "egress"] {
        let Some(rules) = f.get(dir).and_then(Value::as_list) else {
            continue;
        };
        for (i, rule) in rules.iter().enumerate() {
            let Some(m) = rule.as_map() else { continue };
            for (_, msg, help) in rule_problems(m) {
                out.push((dir, format!("{dir} rule {}: {msg}", i + 1), help));
            }
        }
    }
    out
}

/// AWS answers with names for the common protocols but accepts numbers.
pub fn normalise_protocol(p: &str) -> String {
    match p.to_ascii_lowercase().as_str() {
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "1" => "icmp".into(),
        "all" => "-1".into(),
        other => other.to_string(),
    }
}

/// Flattens AWS's grouped permissions into one rule per source.
pub fn rules_of(perms: &[IpPermission]) -> Vec<Rule> {
    let mut out = Vec::new();
    for p in perms {
        let protocol = normalise_protocol(p.ip_protocol().unwrap_or("-1"));
        let (from_port, to_port) = if protocol == "-1" {
            (0, 0)
        } else {
            (
                i64::from(p.from_port().unwrap_or(0)),
                i64::from(p.to_port().unwrap_or(0)),
            )
        };
        let mut push = |source: Source, description: Option<&str>| {
            out.push(Rule {
                protocol: protocol.clone(),
                from_port,
                to_port,
                source,
                description: description.filter(|d| !d.is_empty()).map(str::to_string),
            })
        };
        for r in p.ip_ranges() {
            if let Some(c) = r.cidr_ip() {
                push(Source::Cidr(c.to_string()), r.description());
            }
        }
        for r in p.ipv6_ranges() {
            if let Some(c) = r.cidr_ipv6() {
                push(Source::Ipv6(c.to_string()), r.description());
            }
        }
        for g in p.user_id_group_pairs() {
            if let Some(id) = g.group_id() {
                push(Source::Group(id.to_string()), g.description());
            }
        }
        for pl in p.prefix_list_ids() {
            if let Some(id) = pl.prefix_list_id() {
                push(Source::PrefixList(id.to_string()), pl.description());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Reads a declared or observed rule list; `what` names the field in errors.
pub fn rules_from_value(v: &Value, what: &str) -> Result<Vec<Rule>> {
    let items = match v {
        Value::List(l) => l,
        Value::Unknown => {
            return Err(ProviderError::InvalidInput(format!(
                "{what} is not known yet"
            )))
        }
        other => {
            return Err(ProviderError::InvalidInput(format!(
                "{what} must be a list of rules, found {other}"
            )))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, r)| match r {
            Value::Map(m) => Rule::from_fields(m, &format!("{what}[{i}] {r}")),
            other => Err(ProviderError::InvalidInput(format!(
                "{what}[{i}] must be a rule table, found {other}"
            ))),
        })
        .collect()
}

fn rules_value(rules: &[Rule]) -> Value {
    Value::List(rules.iter().map(|r| Value::Map(r.to_fields())).collect())
}

/// AWS reports the ports of an all-traffic rule as 0, whatever was declared.
pub fn all_traffic_port(v: &Value, rule: &Fields) -> Value {
    match rule.get("protocol").and_then(Value::as_str) {
        Some("-1") => Value::Int(0),
        _ => v.clone(),
    }
}

async fn authorize_once(cx: &Cx, group: &str, dir: Direction, rules: &[Rule]) -> Result<()> {
    let perms: Vec<IpPermission> = rules.iter().map(Rule::permission).collect();
    // The group or a source group may have been created a moment ago in this apply.
    match dir {
        Direction::Ingress => cx
            .ec2
            .authorize_security_group_ingress()
            .group_id(group)
            .set_ip_permissions(Some(perms))
            .customize()
            .config_override(eventual::<AuthorizeSecurityGroupIngressError>())
            .send()
            .await
            .map(|_| ())
            .map_err(ProviderError::from_sdk),
        Direction::Egress => cx
            .ec2
            .authorize_security_group_egress()
            .group_id(group)
            .set_ip_permissions(Some(perms))
            .customize()
            .config_override(eventual::<AuthorizeSecurityGroupEgressError>())
            .send()
            .await
            .map(|_| ())
            .map_err(ProviderError::from_sdk),
    }
}

async fn revoke_once(cx: &Cx, group: &str, dir: Direction, rules: &[Rule]) -> Result<()> {
    let perms: Vec<IpPermission> = rules.iter().map(Rule::permission).collect();
    match dir {
        Direction::Ingress => cx
            .ec2
            .revoke_security_group_ingress()
            .group_id(group)
            .set_ip_permissions(Some(perms))
            .send()
            .await
            .map(|_| ())
            .map_err(ProviderError::from_sdk),
        Direction::Egress => cx
            .ec2
            .revoke_security_group_egress()
            .group_id(group)
            .set_ip_permissions(Some(perms))
            .send()
            .await
            .map(|_| ())
            .map_err(ProviderError::from_sdk),
    }
}

/// Adds rules in one call. A rule that already exists is success (an earlier,
/// interrupted apply made it); since one duplicate fails the whole batch, the
/// batch is then retried rule by rule.
pub async fn authorize(cx: &Cx, group: &str, dir: Direction, rules: &[Rule]) -> Result<()> {
    let duplicate = |e: &ProviderError| matches!(e, ProviderError::Aws { code, .. } if code == "InvalidPermission.Duplicate");
    batch_or_each(rules, duplicate, |r| authorize_once(cx, group, dir, r)).await
}

/// Removes rules in one call. A rule already gone is success; since one
/// missing rule can fail the whole batch, the batch is then retried rule by rule.
pub async fn revoke(cx: &Cx, group: &str, dir: Direction, rules: &[Rule]) -> Result<()> {
    let gone = ProviderError::is_not_found;
    batch_or_each(rules, gone, |r| revoke_once(cx, group, dir, r)).await
}

/// Sends `rules` in one call; when AWS refuses it because one rule is already
/// as wanted (`done`), sends them one by one, passing over those.
async fn batch_or_each<'r, F>(
    rules: &'r [Rule],
    done: impl Fn(&ProviderError) -> bool,
    send: impl Fn(&'r [Rule]) -> F,
) -> Result<()>
where
    F: std::future::Future<Output = Result<()>>,
{
    if rules.is_empty() {
        return Ok(());
    }
    match send(rules).await {
        Err(e) if done(&e) && rules.len() > 1 => {
            for r in rules {
                match send(std::slice::from_ref(r)).await {
                    Err(e) if done(&e) => {}
                    other => other?,
                }
            }
            Ok(())
        }
        Err(e) if done(&e) => Ok(()),
        other => other,
    }
}

/// Describes security groups matching `filters`, every page.
async fn describe_groups(
    cx: &Cx,
    filters: Vec<Filter>,
) -> Result<Vec<aws_sdk_ec2::types::SecurityGroup>> {
    ec2::all_items!(cx.ec2.describe_security_groups().set_filters(Some(filters)))
}

/// Describes security groups by id, the raw groups: one call per 200 ids.
pub async fn describe_groups_by_id(
    cx: &Cx,
    ids: &[String],
) -> Result<Vec<aws_sdk_ec2::types::SecurityGroup>> {
    let mut out = Vec::new();
    for filters in ec2::id_filters(SecurityGroup::ID_FILTER, ids) {
        out.extend(describe_groups(cx, filters).await?);
    }
    Ok(out)
}

fn attributes(cx: &Cx, id: &str, name: &str, owner: &str, arn: Option<&str>) -> Fields {
    let mut a = ec2::arn_attributes(cx, "security-group", id, owner, arn);
    a.shift_insert(2, "name".into(), Value::str(name));
    a
}

fn observed(cx: &Cx, g: &aws_sdk_ec2::types::SecurityGroup) -> Option<Observed> {
    let id = g.group_id()?;
    let name = g.group_name().unwrap_or_default();
    let egress = rules_value(&rules_of(g.ip_permissions_egress()));
    let fields = Fields::from([
        ("name".into(), Value::str(name)),
        ("description".into(), ec2::text(g.description())),
        ("vpc_id".into(), ec2::text(g.vpc_id())),
        ("ingress".into(), rules_value(&rules_of(g.ip_permissions()))),
        ("egress".into(), egress),
    ]);
    let (owner, arn) = (g.owner_id().unwrap_or_default(), g.security_group_arn());
    Some(Observed {
        id: id.to_string(),
        attributes: attributes(cx, id, name, owner, arn),
        fields,
        tags: tags_of(Some(g.tags())),
    })
}

/// The declared rules of one direction; `None` when that direction is unmanaged.
fn declared(f: &Fields, dir: Direction, address: &str) -> Result<Option<Vec<Rule>>> {
    f.get(dir.as_str())
        .map(|v| rules_from_value(v, &format!("{address}.{}", dir.as_str())))
        .transpose()
}

#[async_trait]
impl Describe for SecurityGroup {
    const ID_FILTER: &'static str = "group-id";

    async fn describe(&self, cx: &Cx, filters: Vec<Filter>) -> Result<Vec<Observed>> {
        let groups = describe_groups(cx, filters).await?;
        Ok(groups.iter().filter_map(|g| observed(cx, g)).collect())
    }
}

#[async_trait]
impl Provider for SecurityGroup {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        inline_rule_problems(&r.fields)
            .into_iter()
            .map(|(field, msg, help)| ec2::diagnostic(r, field, msg, help))
            .collect()
    }

    /// A group name is unique per VPC: the new group can only exist beside the
    /// old one when it has another name or lives in another VPC.
    fn create_before_destroy(&self, changes: &[FieldChange]) -> bool {
        changes_field(changes, "name") || changes_field(changes, "vpc_id")
    }

    async fn observe(&self, cx: &Cx, ids: &[String]) -> Result<HashMap<String, Observed>> {
        ec2::observe_by_id(self, cx, ids).await
    }

    async fn find_tagged(&self, cx: &Cx, addresses: &[String]) -> Result<Vec<(String, Observed)>> {
        ec2::find_by_tags(self, cx, addresses).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed> {
        let f = want.fields;
        let name = ec2::known_str(f, "name", want.address)?;
        let vpc_id = ec2::known_str(f, "vpc_id", want.address)?;
        let description = str_of(f, "description").unwrap_or("Managed by reconcile");
        // Every rule is checked before anything is created.
        let ingress = declared(f, Direction::Ingress, want.address)?;
        let egress = declared(f, Direction::Egress, want.address)?;

        let out = cx
            .ec2
            .create_security_group()
            .group_name(name)
            .description(description)
            .vpc_id(vpc_id)
            .tag_specifications(tag_spec(ResourceType::SecurityGroup, want.tags))
            .customize()
            .config_override(eventual::<CreateSecurityGroupError>())
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        let id = out
            .group_id()
            .ok_or_else(|| ProviderError::Other("CreateSecurityGroup returned no group id".into()))?
            .to_string();

        if let Some(rules) = &ingress {
            authorize(cx, &id, Direction::Ingress, rules).await?;
        }
        if let Some(rules) = &egress {
            // A declared egress set is exact: AWS's allow-all defaults go unless declared.
            let defaults: Vec<Rule> = Rule::default_egress()
                .into_iter()
                .filter(|d| !rules.contains(d))
                .collect();
            revoke(cx, &id, Direction::Egress, &defaults).await?;
            let extra: Vec<Rule> = rules
                .iter()
                .filter(|r| !Rule::default_egress().contains(r))
                .cloned()
                .collect();
            authorize(cx, &id, Direction::Egress, &extra).await?;
        }

        // The owner is part of the ARN; only when AWS leaves the ARN out is a describe needed.
        let owner = out
            .security_group_arn()
            .and_then(|a| a.split(':').nth(4))
            .map(str::to_string);
        let attributes = match owner {
            Some(owner) => attributes(cx, &id, name, &owner, out.security_group_arn()),
            None => self
                .observe(cx, std::slice::from_ref(&id))
                .await?
                .remove(&id)
                .map(|o| o.attributes)
                .ok_or_else(|| {
                    ProviderError::Other(format!(
                        "security group {id} vanished right after its creation"
                    ))
                })?,
        };
        Ok(Observed {
            id,
            fields: f.clone(),
            attributes,
            tags: want.tags.clone(),
        })
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed> {
        let mut plans = Vec::new();
        for dir in [Direction::Ingress, Direction::Egress] {
            if !changes_field(changes, dir.as_str()) {
                continue;
            }
            let Some(wanted) = declared(want.fields, dir, want.address)? else {
                continue;
            };
            let have = match live.fields.get(dir.as_str()) {
                Some(v) => rules_from_value(v, &format!("{} live {}", live.id, dir.as_str()))?,
                None => vec![],
            };
            let wanted: BTreeSet<Rule> = wanted.into_iter().collect();
            let have: BTreeSet<Rule> = have.into_iter().collect();
            let stale: Vec<Rule> = have.difference(&wanted).cloned().collect();
            let missing: Vec<Rule> = wanted.difference(&have).cloned().collect();
            plans.push((dir, stale, missing));
        }
        for (dir, stale, missing) in &plans {
            // Revoke first, as Terraform does: a rule whose description changed is
            // the same rule to AWS, and authorizing it before the revoke is a duplicate.
            revoke(cx, &live.id, *dir, stale).await?;
            authorize(cx, &live.id, *dir, missing).await?;
        }
        ec2::finish_update(cx, live, want, changes).await
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<()> {
        let req = cx.ec2.delete_security_group().group_id(id).customize();
        let req = req.config_override(eventual_delete::<DeleteSecurityGroupError>());
        ec2::gone_is_done(req.send().await)
    }
}

/// A security group name: 1 to 255 characters, not starting with `sg-`.
pub fn check_sg_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 255 {
        return Err("a security group name has 1 to 255 characters".into());
    }
    if s.to_ascii_lowercase().starts_with("sg-") {
        return Err(format!(
            "\"{s}\": a security group name may not start with \"sg-\"; choose another name"
        ));
    }
    if !s.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Err(format!(
            "\"{s}\": use letters, digits, spaces and ._-:/()#,@[]+=&;{{}}!$* only"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(protocol: &str, from: i64, to: i64) -> Fields {
        let mut m = Fields::new();
        m.insert("protocol".into(), Value::str(protocol));
        m.insert("from_port".into(), Value::Int(from));
        m.insert("to_port".into(), Value::Int(to));
        m.insert("cidr_block".into(), Value::str("10.0.0.0/16"));
        m
    }

    fn check(protocol: &str, from: i64, to: i64) -> Vec<String> {
        rule_problems(&rule(protocol, from, to))
            .into_iter()
            .map(|(k, m, _)| format!("{k}: {m}"))
            .collect()
    }

    #[test]
    fn ports_are_checked_per_protocol() {
        assert!(check("tcp", 0, 65535).is_empty());
        assert!(check("udp", 53, 53).is_empty());
        assert_eq!(
            check("tcp", 443, 70000),
            ["to_port: to_port 70000 is outside 0-65535"]
        );
        assert_eq!(
            check("tcp", -1, 22),
            ["from_port: from_port -1 is outside 0-65535"]
        );
        assert_eq!(
            check("6", 443, 80),
            ["from_port: from_port 443 is above to_port 80"]
        );
        assert!(check("icmp", 8, 0).is_empty());
        assert!(check("icmp", -1, -1).is_empty());
        assert_eq!(
            check("icmp", 256, 0),
            ["from_port: from_port 256 (the ICMP type) is outside -1-255"]
        );
        assert!(check("icmp", -1, 4)[0].starts_with("to_port: to_port 4: with every ICMP type"));
        assert!(check("-1", 0, 0).is_empty());
        assert!(check("-1", -1, -1).is_empty());
        assert!(check("-1", 22, 22)[0].contains("allows every port, yet the rule says 22-22"));
    }

    #[test]
    fn inline_rules_are_named_by_direction_and_place() {
        let mut f = Fields::new();
        f.insert(
            "ingress".into(),
            Value::List(vec![
                Value::Map(rule("tcp", 443, 443)),
                Value::Map(rule("tcp", 8080, 80)),
            ]),
        );
        f.insert(
            "egress".into(),
            Value::List(vec![Value::Map(rule("-1", 0, 0))]),
        );
        let p = inline_rule_problems(&f);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "ingress");
        assert_eq!(p[0].1, "ingress rule 2: from_port 8080 is above to_port 80");
    }
}
