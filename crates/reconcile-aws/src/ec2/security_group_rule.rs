//! `security_group_rule`: one rule kept apart from its group, so that two groups
//! can allow each other without a dependency cycle between them.
//!
//! The resource id is the rule's identity as AWS tells rules apart (the
//! description is not part of it), joined by `|`:
//! `GROUP_ID|TYPE|PROTOCOL|FROM_PORT|TO_PORT|SOURCE`, for example
//! `sg-123|ingress|tcp|5432|5432|sg-456` or `sg-123|egress|-1|0|0|0.0.0.0/0`.
//! That is also the id `reconcile import` takes for this kind.
//!
//! A group whose rules are managed here must leave that direction undeclared on
//! its `security_group`, or the two would keep undoing each other.

use crate::ec2::security_group::{
    authorize, describe_groups_by_id, normalise_protocol, revoke, rule_problems, rules_of,
    Direction, Rule, Source, CIDR, FROM_PORT, NOTE, PROTOCOL, SOURCE_GROUP, TO_PORT,
};
use crate::ec2::{self, Result};
use crate::kit::fields::str_of;
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use indexmap::IndexMap;
use reconcile_core::model::schema::{Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeSet, HashMap};

pub struct SecurityGroupRule;

pub static SCHEMA: Schema = Schema {
    kind: "security_group_rule",
    doc: "One ingress or egress rule of a security group, managed on its own. \
          Rules have no tags: they are matched by content.",
    fields: &[
        Field::new(
            "security_group_id",
            Ty::Str,
            "The group the rule belongs to.",
        )
        .required()
        .force_new(),
        Field::new(
            "type",
            Ty::Enum(&["ingress", "egress"]),
            "Whether the rule allows inbound or outbound traffic.",
        )
        .required()
        .force_new(),
        PROTOCOL.force_new(),
        FROM_PORT.force_new(),
        TO_PORT.force_new(),
        CIDR.force_new(),
        SOURCE_GROUP.force_new(),
        NOTE.force_new(),
    ],
    attributes: &[(
        "id",
        "The rule's id: GROUP_ID|TYPE|PROTOCOL|FROM_PORT|TO_PORT|SOURCE.",
    )],
    taggable: false,
};

/// The fields that make up a rule's identity; changing one makes another rule.
const IDENTITY: &[&str] = &[
    "security_group_id",
    "type",
    "protocol",
    "from_port",
    "to_port",
    "cidr_block",
    "source_security_group_id",
];

/// A rule located by its id; the description is whatever AWS holds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RuleId {
    group: String,
    dir: Direction,
    rule: Rule,
}

impl RuleId {
    fn parse(id: &str) -> Result<RuleId> {
        let bad = || {
            ProviderError::InvalidInput(format!(
                "`{id}` is not a security_group_rule id; write it as GROUP_ID|TYPE|PROTOCOL|FROM_PORT|TO_PORT|SOURCE, \
                 e.g. sg-123|ingress|tcp|5432|5432|sg-456"
            ))
        };
        let parts: Vec<&str> = id.split('|').collect();
        let [group, dir, protocol, from, to, source] = parts.as_slice() else {
            return Err(bad());
        };
        let dir = Direction::parse(dir).ok_or_else(bad)?;
        let mut from_port: i64 = from.parse().map_err(|_| bad())?;
        let mut to_port: i64 = to.parse().map_err(|_| bad())?;
        if group.is_empty() || protocol.is_empty() || source.is_empty() {
            return Err(bad());
        }
        // An id typed by hand for `import` may spell the protocol or ports another way.
        let protocol = normalise_protocol(protocol);
        if protocol == "-1" {
            (from_port, to_port) = (0, 0);
        }
        Ok(RuleId {
            group: group.to_string(),
            dir,
            rule: Rule {
                protocol,
                from_port,
                to_port,
                source: Source::parse(source),
                description: None,
            },
        })
    }

    fn render(&self) -> String {
        let r = &self.rule;
        format!(
            "{}|{}|{}|{}|{}|{}",
            self.group,
            self.dir.as_str(),
            r.protocol,
            r.from_port,
            r.to_port,
            r.source.key_value().1
        )
    }

    /// Reads the rule a desired resource declares.
    fn from_desired(f: &Fields, address: &str) -> Result<RuleId> {
        let group = ec2::known_str(f, "security_group_id", address)?;
        let dir = str_of(f, "type")
            .and_then(Direction::parse)
            .ok_or_else(|| {
                ProviderError::InvalidInput(format!(
                    "{address}: `type` must be \"ingress\" or \"egress\""
                ))
            })?;
        Ok(RuleId {
            group: group.to_string(),
            dir,
            rule: Rule::from_fields(f, address)?,
        })
    }

    fn fields(&self) -> Fields {
        let mut f = Fields::from([
            ("security_group_id".into(), Value::str(&self.group)),
            ("type".into(), Value::str(self.dir.as_str())),
        ]);
        f.extend(self.rule.to_fields());
        f
    }
}

fn observed(id: RuleId) -> Observed {
    let rendered = id.render();
    Observed {
        attributes: Fields::from([("id".into(), Value::str(&rendered))]),
        id: rendered,
        fields: id.fields(),
        tags: IndexMap::new(),
    }
}

/// The live rules of each requested group and direction, in one describe call.
async fn live_rules(
    cx: &Cx,
    groups: BTreeSet<String>,
) -> Result<HashMap<(String, Direction), Vec<Rule>>> {
    let mut out = HashMap::new();
    let groups: Vec<String> = groups.into_iter().collect();
    for g in describe_groups_by_id(cx, &groups).await? {
        let Some(id) = g.group_id() else { continue };
        let (ingress, egress) = (g.ip_permissions(), g.ip_permissions_egress());
        out.insert((id.to_string(), Direction::Ingress), rules_of(ingress));
        out.insert((id.to_string(), Direction::Egress), rules_of(egress));
    }
    Ok(out)
}

/// The live rule with the same identity as `want`, description included.
fn find_live(live: &HashMap<(String, Direction), Vec<Rule>>, want: &RuleId) -> Option<Rule> {
    live.get(&(want.group.clone(), want.dir))?
        .iter()
        .find(|r| r.same_target(&want.rule))
        .cloned()
}

/// A rule added to a group that also lists its rules of that direction inline
/// would be revoked by the group and re-added by the rule on every apply.
fn undone_by_group(stack: &Stack, r: &Resource) -> Option<Diagnostic> {
    let direction = str_of(&r.fields, "type").unwrap_or("ingress");
    let g = ec2::referenced(stack, r.fields.get("security_group_id"), "security_group")?;
    let group = &g.address;
    g.fields.contains_key(direction).then(|| {
        let pos = r.field_pos.get("security_group_id").cloned();
        Diagnostic::at(
            pos.unwrap_or(r.pos.clone()),
            format!("`{}` adds an {direction} rule to `{group}`, which lists its own `{direction}` rules; each apply would undo the other", r.address),
            format!("move this rule into `{group}`'s `{direction}` list, or remove that list and keep all its {direction} rules as security_group_rule resources"),
        )
    })
}

#[async_trait]
impl Provider for SecurityGroupRule {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        let mut out: Vec<Diagnostic> = rule_problems(&r.fields)
            .into_iter()
            .map(|(field, msg, help)| ec2::diagnostic(r, field, msg, help))
            .collect();
        out.extend(undone_by_group(stack, r));
        out
    }

    /// Only a rule with another identity can exist beside the old one: with just
    /// a new description the create would find the old rule and call it done,
    /// and the delete that follows would then remove the only copy.
    fn create_before_destroy(&self, changes: &[FieldChange]) -> bool {
        changes.iter().any(|c| IDENTITY.contains(&c.field.as_str()))
    }

    async fn observe(&self, cx: &Cx, ids: &[String]) -> Result<HashMap<String, Observed>> {
        let wanted: Vec<RuleId> = ids
            .iter()
            .map(|id| RuleId::parse(id))
            .collect::<Result<_, _>>()?;
        let live = live_rules(cx, wanted.iter().map(|w| w.group.clone()).collect()).await?;
        let mut out = HashMap::new();
        for (id, want) in ids.iter().zip(wanted) {
            if let Some(rule) = find_live(&live, &want) {
                // Keyed by the id asked for, which may spell the protocol differently.
                let mut o = observed(RuleId { rule, ..want });
                o.id.clone_from(id);
                o.attributes.insert("id".into(), Value::str(id));
                out.insert(id.clone(), o);
            }
        }
        Ok(out)
    }

    /// Rules carry no tags; a rule left by an interrupted create is found by
    /// content instead, when the create sees it already exists.
    async fn find_tagged(
        &self,
        _cx: &Cx,
        _addresses: &[String],
    ) -> Result<Vec<(String, Observed)>> {
        Ok(Vec::new())
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed> {
        let id = RuleId::from_desired(want.fields, want.address)?;
        authorize(cx, &id.group, id.dir, std::slice::from_ref(&id.rule)).await?;
        let mut o = observed(id);
        o.fields = want.fields.clone();
        o.tags = want.tags.clone();
        Ok(o)
    }

    /// Every field forces a replacement, so there is never anything to change in place.
    async fn update(
        &self,
        _cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        _changes: &[FieldChange],
    ) -> Result<Observed> {
        let mut fields = live.fields.clone();
        fields.extend(want.fields.clone());
        Ok(Observed {
            fields,
            ..live.clone()
        })
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<()> {
        let want = RuleId::parse(id)?;
        // The revoke is sent exactly as the live rule reads, description included:
        // moto only matches a group-sourced rule when the description matches too.
        let live = live_rules(cx, BTreeSet::from([want.group.clone()])).await?;
        let Some(rule) = find_live(&live, &want) else {
            return Ok(());
        };
        revoke(cx, &want.group, want.dir, &[rule]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ports_point_at_the_port_field() {
        use crate::kit::testing::{resource, stack};
        let r = resource(
            "security_group_rule.ssh",
            &[
                ("security_group_id", Value::str("sg-1")),
                ("type", Value::str("ingress")),
                ("protocol", Value::str("tcp")),
                ("from_port", Value::Int(22)),
                ("to_port", Value::Int(65536)),
                ("cidr_block", Value::str("10.0.0.0/16")),
            ],
        );
        let d = SecurityGroupRule.validate(&stack(vec![]), &r);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].pos.as_ref().unwrap().line, 6, "the to_port line");
        assert_eq!(
            d[0].message,
            "`security_group_rule.ssh`: to_port 65536 is outside 0-65535"
        );
    }

    #[test]
    fn ids_round_trip() {
        for id in [
            "sg-123|ingress|tcp|5432|5432|sg-456",
            "sg-123|egress|-1|0|0|0.0.0.0/0",
            "sg-1|ingress|icmp|-1|-1|10.0.0.0/8",
        ] {
            assert_eq!(RuleId::parse(id).unwrap().render(), id);
        }
        assert!(RuleId::parse("sg-1|sideways|tcp|1|2|sg-2").is_err());
        assert!(RuleId::parse("sg-1|ingress|tcp|1|2").is_err());
        assert!(RuleId::parse("sg-1|ingress|tcp|one|2|sg-2").is_err());
    }

    #[test]
    fn description_alone_is_deleted_before_it_is_created() {
        let d = FieldChange::new("description", None, Some(Value::str("x")), true);
        let p = FieldChange::new("from_port", Some(Value::Int(1)), Some(Value::Int(2)), true);
        assert!(!SecurityGroupRule.create_before_destroy(std::slice::from_ref(&d)));
        assert!(SecurityGroupRule.create_before_destroy(&[d, p]));
    }

    #[test]
    fn desired_rule_reads_like_its_id() {
        let mut f = Fields::new();
        f.insert("security_group_id".into(), Value::str("sg-1"));
        f.insert("type".into(), Value::str("egress"));
        f.insert("protocol".into(), Value::str("-1"));
        f.insert("from_port".into(), Value::Int(0));
        f.insert("to_port".into(), Value::Int(65535));
        f.insert("cidr_block".into(), Value::str("0.0.0.0/0"));
        let id = RuleId::from_desired(&f, "security_group_rule.x").unwrap();
        assert_eq!(id.render(), "sg-1|egress|-1|0|0|0.0.0.0/0");
        f.insert("source_security_group_id".into(), Value::str("sg-2"));
        assert!(matches!(
            RuleId::from_desired(&f, "security_group_rule.x"),
            Err(ProviderError::InvalidInput(_))
        ));
    }
}
