//! `vpc`: an Amazon VPC with its DNS attributes.

use crate::ec2::{self, eventual, eventual_delete, tag_spec, tags_of};
use crate::kit::fields::changes_field;
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
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
    async fn dns(&self, cx: &Cx, id: &str) -> Result<(bool, bool), ProviderError> {
        let support = cx
            .ec2
            .describe_vpc_attribute()
            .vpc_id(id)
            .attribute(VpcAttributeName::EnableDnsSupport)
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        let hostnames = cx
            .ec2
            .describe_vpc_attribute()
            .vpc_id(id)
            .attribute(VpcAttributeName::EnableDnsHostnames)
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        Ok((
            support
                .enable_dns_support()
                .and_then(|a| a.value())
                .unwrap_or(false),
            hostnames
                .enable_dns_hostnames()
                .and_then(|a| a.value())
                .unwrap_or(false),
        ))
    }

    async fn set_dns(&self, cx: &Cx, id: &str, attr: &str, on: bool) -> Result<(), ProviderError> {
        let v = AttributeBooleanValue::builder().value(on).build();
        let req = cx.ec2.modify_vpc_attribute().vpc_id(id);
        let req = if attr == "enable_dns_support" {
            req.enable_dns_support(v)
        } else {
            req.enable_dns_hostnames(v)
        };
        req.customize()
            .config_override(eventual::<
                aws_sdk_ec2::operation::modify_vpc_attribute::ModifyVpcAttributeError,
            >())
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        Ok(())
    }
}

fn attributes(cx: &Cx, id: &str, owner: &str) -> Fields {
    let mut a = Fields::new();
    a.insert("id".into(), Value::str(id));
    a.insert(
        "arn".into(),
        Value::str(format!("arn:aws:ec2:{}:{owner}:vpc/{id}", cx.region)),
    );
    a.insert("owner_id".into(), Value::str(owner));
    a
}

#[async_trait]
impl ec2::Describe for Vpc {
    const ID_FILTER: &'static str = "vpc-id";

    async fn describe(
        &self,
        cx: &Cx,
        filters: Vec<Filter>,
    ) -> Result<Vec<Observed>, ProviderError> {
        let mut out = Vec::new();
        let mut pages = cx
            .ec2
            .describe_vpcs()
            .set_filters(Some(filters))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(ProviderError::from_sdk)?;
            for v in page.vpcs() {
                let Some(id) = v.vpc_id() else { continue };
                let (support, hostnames) = self.dns(cx, id).await?;
                let owner = v.owner_id().unwrap_or_default().to_string();
                let mut fields = Fields::new();
                fields.insert(
                    "cidr_block".into(),
                    Value::str(v.cidr_block().unwrap_or_default()),
                );
                fields.insert("enable_dns_support".into(), Value::Bool(support));
                fields.insert("enable_dns_hostnames".into(), Value::Bool(hostnames));
                fields.insert(
                    "instance_tenancy".into(),
                    Value::str(
                        v.instance_tenancy()
                            .map(|t| t.as_str())
                            .unwrap_or("default"),
                    ),
                );
                out.push(Observed {
                    id: id.to_string(),
                    attributes: attributes(cx, id, &owner),
                    fields,
                    tags: tags_of(Some(v.tags())),
                });
            }
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
            .map(|(msg, help)| {
                let pos = r
                    .field_pos
                    .get("cidr_block")
                    .cloned()
                    .unwrap_or(r.pos.clone());
                Diagnostic::at(pos, format!("`{}`: {msg}", r.address), help)
            })
            .into_iter()
            .collect()
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        ec2::observe_by_id(self, cx, ids).await
    }

    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        ec2::find_by_tags(self, cx, addresses).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let cidr = f
            .get("cidr_block")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let tenancy = f
            .get("instance_tenancy")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let out = cx
            .ec2
            .create_vpc()
            .cidr_block(cidr)
            .instance_tenancy(Tenancy::from(tenancy))
            .tag_specifications(tag_spec(ResourceType::Vpc, want.tags))
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        let v = out
            .vpc()
            .ok_or_else(|| ProviderError::Other("CreateVpc returned no VPC".into()))?;
        let id = v.vpc_id().unwrap_or_default().to_string();
        // AWS defaults: DNS support on, hostnames off. Only differences cost a call.
        let support = f
            .get("enable_dns_support")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let hostnames = f
            .get("enable_dns_hostnames")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !support {
            self.set_dns(cx, &id, "enable_dns_support", false).await?;
        }
        if hostnames {
            self.set_dns(cx, &id, "enable_dns_hostnames", true).await?;
        }
        Ok(Observed {
            attributes: attributes(cx, &id, v.owner_id().unwrap_or_default()),
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
    ) -> Result<Observed, ProviderError> {
        for attr in ["enable_dns_support", "enable_dns_hostnames"] {
            if changes_field(changes, attr) {
                let on = want
                    .fields
                    .get(attr)
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                self.set_dns(cx, &live.id, attr, on).await?;
            }
        }
        if changes_field(changes, "tags") {
            ec2::sync_tags(cx, &live.id, &live.tags, want.tags).await?;
        }
        let mut fields = live.fields.clone();
        fields.extend(want.fields.clone());
        Ok(Observed {
            id: live.id.clone(),
            fields,
            attributes: live.attributes.clone(),
            tags: want.tags.clone(),
        })
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        match cx
            .ec2
            .delete_vpc()
            .vpc_id(id)
            .customize()
            .config_override(eventual_delete::<
                aws_sdk_ec2::operation::delete_vpc::DeleteVpcError,
            >())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match ProviderError::from_sdk(e) {
                ProviderError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }
}
