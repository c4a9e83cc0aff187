//! `internet_gateway`: an internet gateway and its attachment to (at most) one VPC.

use crate::ec2::{self, eventual, eventual_delete, filter, tag_spec, tags_of, Describe, Result};
use crate::kit::fields::{changes_field, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_ec2::operation::attach_internet_gateway::AttachInternetGatewayError;
use aws_sdk_ec2::operation::delete_internet_gateway::DeleteInternetGatewayError;
use aws_sdk_ec2::operation::detach_internet_gateway::DetachInternetGatewayError;
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

/// `vpc_id` as the TOML gives it; "" (detached) when absent, as observe reports it.
fn wanted_vpc(fields: &Fields) -> &str {
    str_of(fields, "vpc_id").unwrap_or_default()
}

impl InternetGateway {
    async fn describe_raw(&self, cx: &Cx, filters: Vec<Filter>) -> Result<Vec<Igw>> {
        let req = cx
            .ec2
            .describe_internet_gateways()
            .set_filters(Some(filters));
        ec2::all_items!(req)
    }

    async fn attach(&self, cx: &Cx, id: &str, vpc: &str) -> Result<()> {
        cx.ec2
            .attach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc)
            .customize()
            .config_override(eventual::<AttachInternetGatewayError>())
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        Ok(())
    }

    /// Detaching an already detached gateway, or from a VPC that is gone, is success.
    async fn detach(&self, cx: &Cx, id: &str, vpc: &str) -> Result<()> {
        // DependencyViolation while a NAT gateway's or instance's public address in
        // the VPC is still being released: retried with the delete policy.
        let req = cx.ec2.detach_internet_gateway().internet_gateway_id(id);
        let req = req.vpc_id(vpc).customize();
        match req
            .config_override(eventual_delete::<DetachInternetGatewayError>())
            .send()
            .await
            .map_err(ProviderError::from_sdk)
        {
            Err(ProviderError::Aws { code, .. }) if code == "Gateway.NotAttached" => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

#[async_trait]
impl Describe for InternetGateway {
    const ID_FILTER: &'static str = "internet-gateway-id";

    async fn describe(&self, cx: &Cx, filters: Vec<Filter>) -> Result<Vec<Observed>> {
        Ok(self
            .describe_raw(cx, filters)
            .await?
            .iter()
            .filter_map(|g| {
                let id = g.internet_gateway_id()?;
                // A detached gateway reports "" so that a declared vpc_id shows as a change.
                let vpc = Value::str(attached_vpc(g).unwrap_or_default());
                let owner = g.owner_id().unwrap_or_default();
                Some(Observed {
                    id: id.to_string(),
                    attributes: ec2::arn_attributes(cx, "internet-gateway", id, owner, None),
                    fields: Fields::from([("vpc_id".into(), vpc)]),
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

    async fn observe(&self, cx: &Cx, ids: &[String]) -> Result<HashMap<String, Observed>> {
        ec2::observe_by_id(self, cx, ids).await
    }

    async fn find_tagged(&self, cx: &Cx, addresses: &[String]) -> Result<Vec<(String, Observed)>> {
        ec2::find_by_tags(self, cx, addresses).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed> {
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
        let owner = g.owner_id().unwrap_or_default();
        Ok(Observed {
            attributes: ec2::arn_attributes(cx, "internet-gateway", &id, owner, None),
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
        let (old, new) = (wanted_vpc(&live.fields), wanted_vpc(want.fields));
        if changes_field(changes, "vpc_id") && old != new {
            // A gateway attaches to one VPC at a time: leave the old one first.
            if !old.is_empty() {
                self.detach(cx, &live.id, old).await?;
            }
            if !new.is_empty() {
                self.attach(cx, &live.id, new).await?;
            }
        }
        let mut o = ec2::finish_update(cx, live, want, changes).await?;
        if changes_field(changes, "vpc_id") {
            o.fields.insert("vpc_id".into(), Value::str(new));
        }
        Ok(o)
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<()> {
        // The id alone does not say where the gateway is attached, and AWS refuses to
        // delete an attached gateway: look, detach, then delete.
        let found = self
            .describe_raw(cx, vec![filter(Self::ID_FILTER, [id])])
            .await?;
        let Some(g) = found.first() else {
            return Ok(());
        };
        for vpc in g.attachments().iter().filter_map(|a| a.vpc_id()) {
            self.detach(cx, id, vpc).await?;
        }
        let req = cx.ec2.delete_internet_gateway().internet_gateway_id(id);
        let req = req.customize();
        let req = req.config_override(eventual_delete::<DeleteInternetGatewayError>());
        ec2::gone_is_done(req.send().await)
    }
}
