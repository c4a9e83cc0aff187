//! `internet_gateway`: an internet gateway and its attachment to (at most) one VPC.

use crate::ec2::{self, eventual, eventual_delete, filter, tag_spec, tags_of};
use crate::kit::fields::changes_field;
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_ec2::types::{AttachmentStatus, Filter, InternetGateway as Igw, ResourceType};
use reconcile_core::model::schema::{Field, Schema, Ty};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct InternetGateway;

pub static SCHEMA: Schema = Schema {
    kind: "internet_gateway",
    doc: "An internet gateway, attached to a VPC.",
    fields: &[Field::new(
        "vpc_id",
        Ty::Str,
        "The VPC the gateway is attached to; changing it moves the gateway to another VPC.",
    )],
    attributes: &[
        ("id", "The internet gateway id (igw-...)."),
        ("arn", "The internet gateway's ARN."),
        (
            "owner_id",
            "The AWS account that owns the internet gateway.",
        ),
    ],
    taggable: true,
};

/// The VPC the gateway is attached to, or attaching to; detaching counts as gone
/// because it will be by the time anything acts on the answer.
fn attached_vpc(g: &Igw) -> Option<&str> {
    g.attachments()
        .iter()
        .find(|a| {
            !matches!(
                a.state(),
                Some(AttachmentStatus::Detaching | AttachmentStatus::Detached)
            )
        })
        .and_then(|a| a.vpc_id())
        .filter(|v| !v.is_empty())
}

fn attributes(cx: &Cx, id: &str, owner: &str) -> Fields {
    let mut a = Fields::new();
    a.insert("id".into(), Value::str(id));
    a.insert(
        "arn".into(),
        Value::str(format!(
            "arn:aws:ec2:{}:{owner}:internet-gateway/{id}",
            cx.region
        )),
    );
    a.insert("owner_id".into(), Value::str(owner));
    a
}

/// `vpc_id` as the TOML gives it; "" (detached) when absent, as observe reports it.
fn wanted_vpc(fields: &Fields) -> &str {
    fields
        .get("vpc_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

impl InternetGateway {
    async fn describe_raw(
        &self,
        cx: &Cx,
        filters: Vec<aws_sdk_ec2::types::Filter>,
    ) -> Result<Vec<Igw>, ProviderError> {
        let mut out = Vec::new();
        let mut pages = cx
            .ec2
            .describe_internet_gateways()
            .set_filters(Some(filters))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(ProviderError::from_sdk)?;
            out.extend(page.internet_gateways().iter().cloned());
        }
        Ok(out)
    }

    async fn attach(&self, cx: &Cx, id: &str, vpc: &str) -> Result<(), ProviderError> {
        cx.ec2
            .attach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc)
            .customize()
            .config_override(eventual::<
                aws_sdk_ec2::operation::attach_internet_gateway::AttachInternetGatewayError,
            >())
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        Ok(())
    }

    /// Detaching an already detached gateway, or from a VPC that is gone, is success.
    async fn detach(&self, cx: &Cx, id: &str, vpc: &str) -> Result<(), ProviderError> {
        // DependencyViolation while a NAT gateway's or instance's public address in
        // the VPC is still being released: retried with the delete policy.
        match cx
            .ec2
            .detach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc)
            .customize()
            .config_override(eventual_delete::<
                aws_sdk_ec2::operation::detach_internet_gateway::DetachInternetGatewayError,
            >())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match ProviderError::from_sdk(e) {
                ProviderError::NotFound(_) => Ok(()),
                ProviderError::Aws { code, .. } if code == "Gateway.NotAttached" => Ok(()),
                other => Err(other),
            },
        }
    }
}

#[async_trait]
impl ec2::Describe for InternetGateway {
    const ID_FILTER: &'static str = "internet-gateway-id";

    async fn describe(
        &self,
        cx: &Cx,
        filters: Vec<Filter>,
    ) -> Result<Vec<Observed>, ProviderError> {
        Ok(self
            .describe_raw(cx, filters)
            .await?
            .iter()
            .filter_map(|g| {
                let id = g.internet_gateway_id()?;
                let mut fields = Fields::new();
                // A detached gateway reports "" so that a declared vpc_id shows as a change.
                fields.insert(
                    "vpc_id".into(),
                    Value::str(attached_vpc(g).unwrap_or_default()),
                );
                Some(Observed {
                    id: id.to_string(),
                    attributes: attributes(cx, id, g.owner_id().unwrap_or_default()),
                    fields,
                    tags: tags_of(Some(g.tags())),
                })
            })
            .collect())
    }
}

#[async_trait]
impl Provider for InternetGateway {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
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
        let out = cx
            .ec2
            .create_internet_gateway()
            .tag_specifications(tag_spec(ResourceType::InternetGateway, want.tags))
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        let g = out.internet_gateway().ok_or_else(|| {
            ProviderError::Other("CreateInternetGateway returned no gateway".into())
        })?;
        let id = g
            .internet_gateway_id()
            .ok_or_else(|| {
                ProviderError::Other(
                    "CreateInternetGateway returned a gateway without an id".into(),
                )
            })?
            .to_string();
        let vpc = wanted_vpc(want.fields);
        if !vpc.is_empty() {
            self.attach(cx, &id, vpc).await?;
        }
        let mut fields = want.fields.clone();
        fields.insert("vpc_id".into(), Value::str(vpc));
        Ok(Observed {
            attributes: attributes(cx, &id, g.owner_id().unwrap_or_default()),
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
    ) -> Result<Observed, ProviderError> {
        let mut fields = live.fields.clone();
        fields.extend(want.fields.clone());
        if changes_field(changes, "vpc_id") {
            let old = wanted_vpc(&live.fields);
            let new = wanted_vpc(want.fields);
            if old != new {
                // A gateway attaches to one VPC at a time: leave the old one first.
                if !old.is_empty() {
                    self.detach(cx, &live.id, old).await?;
                }
                if !new.is_empty() {
                    self.attach(cx, &live.id, new).await?;
                }
            }
            fields.insert("vpc_id".into(), Value::str(new));
        }
        if changes_field(changes, "tags") {
            ec2::sync_tags(cx, &live.id, &live.tags, want.tags).await?;
        }
        Ok(Observed {
            id: live.id.clone(),
            fields,
            attributes: live.attributes.clone(),
            tags: want.tags.clone(),
        })
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        // The id alone does not say where the gateway is attached, and AWS refuses to
        // delete an attached gateway: look, detach, then delete.
        let found = self
            .describe_raw(cx, vec![filter("internet-gateway-id", [id.to_string()])])
            .await?;
        let Some(g) = found.first() else {
            return Ok(());
        };
        for vpc in g.attachments().iter().filter_map(|a| a.vpc_id()) {
            self.detach(cx, id, vpc).await?;
        }
        match cx
            .ec2
            .delete_internet_gateway()
            .internet_gateway_id(id)
            .customize()
            .config_override(eventual_delete::<
                aws_sdk_ec2::operation::delete_internet_gateway::DeleteInternetGatewayError,
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
