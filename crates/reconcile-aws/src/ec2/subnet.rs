//! `subnet`: a VPC subnet in one availability zone, and whether it gives instances public IPs.

use crate::ec2::{self, eventual, eventual_delete, tag_spec, tags_of, Result};
use crate::kit::fields::{bool_of, changes_field, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_ec2::operation::create_subnet::CreateSubnetError;
use aws_sdk_ec2::operation::delete_subnet::DeleteSubnetError;
use aws_sdk_ec2::operation::modify_subnet_attribute::ModifySubnetAttributeError;
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType};
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct Subnet;

pub static SCHEMA: Schema = Schema {
    kind: "subnet",
    doc: "A subnet of a VPC, in one availability zone.",
    fields: &[
        Field::new("vpc_id", Ty::Str, "The VPC the subnet belongs to.")
            .required()
            .force_new(),
        Field::new(
            "cidr_block",
            Ty::Cidr,
            "The IPv4 range of the subnet, inside the VPC's range.",
        )
        .required()
        .force_new(),
        Field::new(
            "availability_zone",
            Ty::Az,
            "The availability zone the subnet lives in.",
        )
        .required()
        .force_new(),
        Field::new(
            "map_public_ip_on_launch",
            Ty::Bool,
            "Whether instances launched in the subnet get a public IPv4 address.",
        )
        .default(Default::Bool(false)),
    ],
    attributes: &[
        ("id", "The subnet id (subnet-...)."),
        ("arn", "The subnet's ARN."),
        ("owner_id", "The AWS account that owns the subnet."),
    ],
    taggable: true,
};

impl Subnet {
    async fn set_map_public_ip(&self, cx: &Cx, id: &str, on: bool) -> Result<()> {
        cx.ec2
            .modify_subnet_attribute()
            .subnet_id(id)
            .map_public_ip_on_launch(AttributeBooleanValue::builder().value(on).build())
            .customize()
            .config_override(eventual::<ModifySubnetAttributeError>())
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        Ok(())
    }
}

/// What AWS would refuse in this subnet's range: its size, a range outside its
/// VPC's, or one overlapping a subnet declared before it in the same VPC. Only
/// ranges known before apply are checked: literal ones, in a VPC of this stack.
fn problems(stack: &Stack, r: &Resource) -> Vec<(String, String)> {
    let Some(net) = ec2::literal_cidr(r.fields.get("cidr_block")) else {
        return vec![];
    };
    let mut out: Vec<(String, String)> = ec2::prefix_problem(&net).into_iter().collect();
    if let Some(vpc) = ec2::referenced(stack, r.fields.get("vpc_id"), "vpc") {
        if let Some(range) = ec2::literal_cidr(vpc.fields.get("cidr_block")) {
            if !range.contains(&net) {
                out.push((
                    format!("\"{net}\" is outside {}'s range {range}", vpc.address),
                    format!("choose a range inside {range}"),
                ));
            }
        }
    }
    // The same `vpc_id` text is the same VPC, a reference or a literal id alike.
    let vpc_id = r.fields.get("vpc_id");
    let earlier = stack
        .resources
        .values()
        .take_while(|o| o.address != r.address)
        .filter(|o| o.kind == r.kind && o.fields.get("vpc_id") == vpc_id);
    for o in earlier {
        if let Some(other) = ec2::literal_cidr(o.fields.get("cidr_block")) {
            if other.contains(&net.network()) || net.contains(&other.network()) {
                out.push((
                    format!("\"{net}\" overlaps {}'s range {other} in the same VPC", o.address),
                    format!("choose a range that no other subnet of the VPC uses; {} already has {other}", o.address),
                ));
                break;
            }
        }
    }
    out
}

#[async_trait]
impl ec2::Describe for Subnet {
    const ID_FILTER: &'static str = "subnet-id";

    async fn describe(&self, cx: &Cx, filters: Vec<Filter>) -> Result<Vec<Observed>> {
        let subnets = ec2::all_items!(cx.ec2.describe_subnets().set_filters(Some(filters)))?;
        Ok(subnets
            .iter()
            .filter_map(|s| {
                let id = s.subnet_id()?;
                let public = s.map_public_ip_on_launch().unwrap_or(false);
                let fields = Fields::from([
                    ("vpc_id".into(), ec2::text(s.vpc_id())),
                    ("cidr_block".into(), ec2::text(s.cidr_block())),
                    ("availability_zone".into(), ec2::text(s.availability_zone())),
                    ("map_public_ip_on_launch".into(), Value::Bool(public)),
                ]);
                let owner = s.owner_id().unwrap_or_default();
                Some(Observed {
                    id: id.to_string(),
                    attributes: ec2::arn_attributes(cx, "subnet", id, owner, s.subnet_arn()),
                    fields,
                    tags: tags_of(Some(s.tags())),
                })
            })
            .collect())
    }
}

#[async_trait]
impl Provider for Subnet {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        problems(stack, r)
            .into_iter()
            .map(|(msg, help)| ec2::diagnostic(r, "cidr_block", msg, help))
            .collect()
    }

    /// A VPC refuses a second subnet whose range overlaps an existing one, so
    /// the new subnet can only come first when it moves to another VPC or to a
    /// range that does not overlap the old one.
    fn create_before_destroy(&self, changes: &[FieldChange]) -> bool {
        if changes_field(changes, "vpc_id") {
            return true;
        }
        let Some(cidr) = changes.iter().find(|c| c.field == "cidr_block") else {
            return false;
        };
        match (
            ec2::literal_cidr(cidr.old.as_ref()),
            ec2::literal_cidr(cidr.new.as_ref()),
        ) {
            (Some(old), Some(new)) => {
                !(old.contains(&new.network()) || new.contains(&old.network()))
            }
            // Not knowable yet (an unresolved reference): assume the ranges differ,
            // as the change itself says they do.
            _ => true,
        }
    }

    async fn observe(&self, cx: &Cx, ids: &[String]) -> Result<HashMap<String, Observed>> {
        ec2::observe_by_id(self, cx, ids).await
    }

    async fn find_tagged(&self, cx: &Cx, addresses: &[String]) -> Result<Vec<(String, Observed)>> {
        ec2::find_by_tags(self, cx, addresses).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed> {
        let f = want.fields;
        let text = |k: &str| str_of(f, k).unwrap_or_default().to_string();
        let out = cx
            .ec2
            .create_subnet()
            .vpc_id(text("vpc_id"))
            .cidr_block(text("cidr_block"))
            .availability_zone(text("availability_zone"))
            .tag_specifications(tag_spec(ResourceType::Subnet, want.tags))
            .customize()
            .config_override(eventual::<CreateSubnetError>())
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        let s = out
            .subnet()
            .ok_or_else(|| ProviderError::Other("CreateSubnet returned no subnet".into()))?;
        let id = s
            .subnet_id()
            .ok_or_else(|| {
                ProviderError::Other("CreateSubnet returned a subnet without an id".into())
            })?
            .to_string();
        // CreateSubnet cannot set it; AWS starts every new subnet with it off.
        let public = bool_of(f, "map_public_ip_on_launch").unwrap_or(false);
        if public {
            self.set_map_public_ip(cx, &id, true).await?;
        }
        let mut fields = f.clone();
        fields.insert("map_public_ip_on_launch".into(), Value::Bool(public));
        let owner = s.owner_id().unwrap_or_default();
        Ok(Observed {
            attributes: ec2::arn_attributes(cx, "subnet", &id, owner, s.subnet_arn()),
            id,
            fields,
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
        if changes_field(changes, "map_public_ip_on_launch") {
            let on = bool_of(want.fields, "map_public_ip_on_launch").unwrap_or(false);
            self.set_map_public_ip(cx, &live.id, on).await?;
        }
        ec2::finish_update(cx, live, want, changes).await
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<()> {
        let req = cx.ec2.delete_subnet().subnet_id(id).customize();
        let req = req.config_override(eventual_delete::<DeleteSubnetError>());
        ec2::gone_is_done(req.send().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::{resource, stack};

    fn res(address: &str, fields: &[(&str, &str)]) -> Resource {
        let fields: Vec<(&str, Value)> = fields.iter().map(|(k, v)| (*k, Value::str(*v))).collect();
        resource(address, &fields)
    }

    fn messages(s: &Stack, address: &str) -> Vec<String> {
        problems(s, &s.resources[address])
            .into_iter()
            .map(|(m, _)| m)
            .collect()
    }

    #[test]
    fn a_subnet_lies_inside_its_vpc_and_overlaps_no_sibling() {
        let s = stack(vec![
            res("vpc.main", &[("cidr_block", "10.0.0.0/16")]),
            res(
                "subnet.a",
                &[("vpc_id", "${vpc.main.id}"), ("cidr_block", "10.0.0.0/23")],
            ),
            res(
                "subnet.b",
                &[("vpc_id", "${vpc.main.id}"), ("cidr_block", "10.0.1.0/24")],
            ),
            res(
                "subnet.c",
                &[("vpc_id", "${vpc.main.id}"), ("cidr_block", "10.1.0.0/24")],
            ),
            res(
                "subnet.d",
                &[("vpc_id", "${vpc.main.id}"), ("cidr_block", "10.0.2.0/24")],
            ),
            // Another VPC's ranges may repeat this one's.
            res(
                "subnet.e",
                &[("vpc_id", "vpc-0abc"), ("cidr_block", "10.0.0.0/24")],
            ),
            res(
                "subnet.f",
                &[("vpc_id", "${vpc.main.id}"), ("cidr_block", "10.0.3.0/29")],
            ),
        ]);
        assert!(messages(&s, "subnet.a").is_empty());
        assert_eq!(
            messages(&s, "subnet.b"),
            ["\"10.0.1.0/24\" overlaps subnet.a's range 10.0.0.0/23 in the same VPC"]
        );
        assert_eq!(
            messages(&s, "subnet.c"),
            ["\"10.1.0.0/24\" is outside vpc.main's range 10.0.0.0/16"]
        );
        assert!(messages(&s, "subnet.d").is_empty());
        assert!(messages(&s, "subnet.e").is_empty());
        assert_eq!(
            messages(&s, "subnet.f"),
            ["\"10.0.3.0/29\" is a /29; AWS accepts /16 to /28"]
        );
    }

    #[test]
    fn ranges_not_known_before_apply_are_left_to_aws() {
        let s = stack(vec![
            res("vpc.main", &[("cidr_block", "${input.cidr}")]),
            res(
                "subnet.a",
                &[("vpc_id", "${vpc.main.id}"), ("cidr_block", "10.9.0.0/24")],
            ),
        ]);
        assert!(messages(&s, "subnet.a").is_empty());
    }

    #[test]
    fn a_vpc_is_a_16_to_a_28() {
        let r = res("vpc.big", &[("cidr_block", "10.0.0.0/8")]);
        let d = crate::ec2::vpc::Vpc.validate(&stack(vec![]), &r);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].message,
            "`vpc.big`: \"10.0.0.0/8\" is a /8; AWS accepts /16 to /28"
        );
        let r = res("vpc.ok", &[("cidr_block", "10.0.0.0/16")]);
        assert!(crate::ec2::vpc::Vpc.validate(&stack(vec![]), &r).is_empty());
    }
}
