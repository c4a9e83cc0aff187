//! `elastic_ip`: an Elastic IP address allocated for use in a VPC (a NAT gateway's, say).

use crate::ec2::{self, eventual_delete, tag_spec, tags_of, Result};
use crate::kit::fields::str_of;
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_ec2::operation::release_address::ReleaseAddressError;
use aws_sdk_ec2::types::{DomainType, Filter, ResourceType};
use reconcile_core::model::schema::{Field, Schema, Ty};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct ElasticIp;

pub static SCHEMA: Schema = Schema {
    kind: "elastic_ip",
    doc: "An Elastic IP address for use in a VPC.",
    fields: &[Field::new(
        "network_border_group",
        Ty::Str,
        "Where AWS advertises the address from; the region unless a Local or Wavelength Zone group is named.",
    )
    .force_new()],
    attributes: &[
        ("id", "The allocation id (eipalloc-...)."),
        ("allocation_id", "The allocation id (eipalloc-...), as NAT gateways take it."),
        ("public_ip", "The public IPv4 address."),
    ],
    taggable: true,
};

fn attributes(id: &str, public_ip: &str) -> Fields {
    Fields::from([
        ("id".into(), Value::str(id)),
        ("allocation_id".into(), Value::str(id)),
        ("public_ip".into(), Value::str(public_ip)),
    ])
}

/// AWS's own default border group is the region's, so an address allocated
/// without one reads back the same as one that names the region.
fn border_group<'a>(cx: &'a Cx, reported: Option<&'a str>) -> &'a str {
    reported.filter(|g| !g.is_empty()).unwrap_or(&cx.region)
}

#[async_trait]
impl ec2::Describe for ElasticIp {
    const ID_FILTER: &'static str = "allocation-id";

    async fn describe(&self, cx: &Cx, filters: Vec<Filter>) -> Result<Vec<Observed>> {
        // DescribeAddresses is not paginated: one call answers for the whole region.
        let out = cx
            .ec2
            .describe_addresses()
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        Ok(out
            .addresses()
            .iter()
            .filter_map(|a| {
                let id = a.allocation_id()?;
                let group = Value::str(border_group(cx, a.network_border_group()));
                let fields = Fields::from([("network_border_group".into(), group)]);
                Some(Observed {
                    id: id.to_string(),
                    attributes: attributes(id, a.public_ip().unwrap_or_default()),
                    fields,
                    tags: tags_of(Some(a.tags())),
                })
            })
            .collect())
    }
}

#[async_trait]
impl Provider for ElasticIp {
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
        let group = str_of(want.fields, "network_border_group").filter(|g| !g.is_empty());
        let out = cx
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .set_network_border_group(group.map(str::to_string))
            .tag_specifications(tag_spec(ResourceType::ElasticIp, want.tags))
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        let id = out
            .allocation_id()
            .ok_or_else(|| {
                ProviderError::Other("AllocateAddress returned no allocation id".into())
            })?
            .to_string();
        let mut fields = want.fields.clone();
        fields.insert(
            "network_border_group".into(),
            Value::str(border_group(cx, out.network_border_group().or(group))),
        );
        Ok(Observed {
            attributes: attributes(&id, out.public_ip().unwrap_or_default()),
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
        // The only field forces a replacement: tags are all an update can change.
        ec2::finish_update(cx, live, want, changes).await
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<()> {
        // A NAT gateway holding the address is deleted first and waited for (see
        // nat_gateway), so the address is free by the time this runs.
        let req = cx.ec2.release_address().allocation_id(id).customize();
        let req = req.config_override(eventual_delete::<ReleaseAddressError>());
        ec2::gone_is_done(req.send().await)
    }
}
