//! `vpc`: an Amazon VPC with its DNS attributes.

use crate::ec2::{self, eventual, eventual_delete, tag_spec, tags_of, Result};
use crate::kit::fields::{bool_of, changes_field, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_ec2::operation::{
    delete_vpc::DeleteVpcError, modify_vpc_attribute::ModifyVpcAttributeError,
};
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType, Tenancy, VpcAttributeName};
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct Vpc;

pub static SCHEMA: Schema = Schema {
    kind: "vpc",
    doc: "An Amazon VPC.",
    fields: &[
        Field::new(
            "cidr_block",
            Ty::Cidr,
            "The IPv4 range of the VPC, /16 to /28.",
        )
        .required()
        .force_new(),
        Field::new(
            "enable_dns_support",
            Ty::Bool,
            "Whether the Amazon DNS server resolves names in the VPC.",
        )
        .default(Default::Bool(true)),
        Field::new(
            "enable_dns_hostnames",
            Ty::Bool,
            "Whether instances get public DNS hostnames.",
        )
        .default(Default::Bool(false)),
        Field::new(
            "instance_tenancy",
            Ty::Enum(&["default", "dedicated"]),
            "Tenancy of instances launched in the VPC.",
        )
        .default(Default::Str("default"))
        .force_new(),
    ],
    attributes: &[
        ("id", "The VPC id (vpc-...)."),
        ("arn", "The VPC's ARN."),
        ("owner_id", "The AWS account that owns the VPC."),
    ],
    taggable: true,
};

impl Vpc {
    /// DNS settings are not in DescribeVpcs: EC2 answers them one attribute per call.
    async fn dns(&self, cx: &Cx, id: &str, attr: VpcAttributeName) -> Result<bool> {
        let out = cx
            .ec2
            .describe_vpc_attribute()
            .vpc_id(id)
            .attribute(attr.clone())
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        let on = match attr {
            VpcAttributeName::EnableDnsSupport => out.enable_dns_support(),
            _ => out.enable_dns_hostnames(),
        };
        Ok(on.and_then(|a| a.value()).unwrap_or(false))
    }

    async fn set_dns(&self, cx: &Cx, id: &str, attr: &str, on: bool) -> Result<()> {
        let v = AttributeBooleanValue::builder().value(on).build();
        let req = cx.ec2.modify_vpc_attribute().vpc_id(id);
        let req = if attr == "enable_dns_support" {
            req.enable_dns_support(v)
        } else {
            req.enable_dns_hostnames(v)
        };
        req.customize()
            .config_override(eventual::<ModifyVpcAttributeError>())
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        Ok(())
    }
}

#[async_trait]
impl ec2::Describe for Vpc {
    const ID_FILTER: &'static str = "vpc-id";

    async fn describe(&self, cx: &Cx, filters: Vec<Filter>) -> Result<Vec<Observed>> {
        let vpcs = ec2::all_items!(cx.ec2.describe_vpcs().set_filters(Some(filters)))?;
        let mut out = Vec::new();
        for v in &vpcs {
            let Some(id) = v.vpc_id() else { continue };
            let tenancy = v.instance_tenancy().map_or("default", |t| t.as_str());
            let support = self.dns(cx, id, VpcAttributeName::EnableDnsSupport).await?;
            let hostnames = self
                .dns(cx, id, VpcAttributeName::EnableDnsHostnames)
                .await?;
            let fields = Fields::from([
                ("cidr_block".into(), ec2::text(v.cidr_block())),
                ("enable_dns_support".into(), Value::Bool(support)),
                ("enable_dns_hostnames".into(), Value::Bool(hostnames)),
                ("instance_tenancy".into(), Value::str(tenancy)),
            ]);
            let owner = v.owner_id().unwrap_or_default();
            out.push(Observed {
                id: id.to_string(),
                attributes: ec2::arn_attributes(cx, "vpc", id, owner, None),
                fields,
                tags: tags_of(Some(v.tags())),
            });
        }
        Ok(out)
    }
}

#[async_trait]
impl Provider for Vpc {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        let Some(net) = ec2::literal_cidr(r.fields.get("cidr_block")) else {
            return vec![];
        };
        ec2::prefix_problem(&net)
            .map(|(msg, help)| ec2::diagnostic(r, "cidr_block", msg, help))
            .into_iter()
            .collect()
    }

    async fn observe(&self, cx: &Cx, ids: &[String]) -> Result<HashMap<String, Observed>> {
        ec2::observe_by_id(self, cx, ids).await
    }

    async fn find_tagged(&self, cx: &Cx, addresses: &[String]) -> Result<Vec<(String, Observed)>> {
        ec2::find_by_tags(self, cx, addresses).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed> {
        let f = want.fields;
        let out = cx
            .ec2
            .create_vpc()
            .cidr_block(str_of(f, "cidr_block").unwrap_or_default())
            .instance_tenancy(Tenancy::from(
                str_of(f, "instance_tenancy").unwrap_or("default"),
            ))
            .tag_specifications(tag_spec(ResourceType::Vpc, want.tags))
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        let v = out
            .vpc()
            .ok_or_else(|| ProviderError::Other("CreateVpc returned no VPC".into()))?;
        let id = v.vpc_id().unwrap_or_default().to_string();
        // AWS defaults: DNS support on, hostnames off. Only differences cost a call.
        if !bool_of(f, "enable_dns_support").unwrap_or(true) {
            self.set_dns(cx, &id, "enable_dns_support", false).await?;
        }
        if bool_of(f, "enable_dns_hostnames").unwrap_or(false) {
            self.set_dns(cx, &id, "enable_dns_hostnames", true).await?;
        }
        let owner = v.owner_id().unwrap_or_default();
        Ok(Observed {
            attributes: ec2::arn_attributes(cx, "vpc", &id, owner, None),
            id,
            fields: f.clone(),
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
        for attr in ["enable_dns_support", "enable_dns_hostnames"] {
            if changes_field(changes, attr) {
                let on = bool_of(want.fields, attr).unwrap_or(false);
                self.set_dns(cx, &live.id, attr, on).await?;
            }
        }
        ec2::finish_update(cx, live, want, changes).await
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<()> {
        let req = cx.ec2.delete_vpc().vpc_id(id).customize();
        let req = req.config_override(eventual_delete::<DeleteVpcError>());
        ec2::gone_is_done(req.send().await)
    }
}
