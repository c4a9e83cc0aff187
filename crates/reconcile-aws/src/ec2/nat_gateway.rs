//! `nat_gateway`: a NAT gateway in a subnet, created and deleted to completion so
//! that routes, subnets and addresses depending on it can follow.

use crate::ec2::{self, eventual, eventual_delete, tag_spec, tags_of, Result};
use crate::kit::fields::{changes_field, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::operation::create_nat_gateway::CreateNatGatewayError;
use aws_sdk_ec2::operation::delete_nat_gateway::DeleteNatGatewayError;
use aws_sdk_ec2::types::{
    ConnectivityType, Filter, NatGateway as Nat, NatGatewayState, ResourceType,
};
use aws_smithy_runtime_api::client::waiters::error::WaiterError;
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;
use std::time::Duration;

pub struct NatGateway;

/// AWS takes one to five minutes either way; ten is the point where waiting
/// longer will not help.
const MAX_WAIT: Duration = Duration::from_secs(600);

pub static SCHEMA: Schema = Schema {
    kind: "nat_gateway",
    doc: "A NAT gateway, giving private subnets outbound access.",
    fields: &[
        Field::new(
            "subnet_id",
            Ty::Str,
            "The subnet the gateway lives in (a public one for a public gateway).",
        )
        .required()
        .force_new(),
        Field::new(
            "allocation_id",
            Ty::Str,
            "The Elastic IP allocation the gateway uses; public gateways need one.",
        )
        .force_new(),
        Field::new(
            "connectivity_type",
            Ty::Enum(&["public", "private"]),
            "Whether the gateway reaches the internet (public) or only other networks (private).",
        )
        .default(Default::Str("public"))
        .force_new(),
    ],
    attributes: &[
        ("id", "The NAT gateway id (nat-...)."),
        (
            "public_ip",
            "The gateway's public IPv4 address (empty for a private gateway).",
        ),
        (
            "private_ip",
            "The gateway's private IPv4 address in its subnet.",
        ),
        ("network_interface_id", "The gateway's network interface."),
    ],
    taggable: true,
};

/// A gateway in any of these states is gone or going, and never comes back:
/// AWS keeps listing it for about an hour.
fn is_gone(n: &Nat) -> bool {
    matches!(
        n.state(),
        Some(NatGatewayState::Deleted | NatGatewayState::Deleting | NatGatewayState::Failed)
    )
}

fn observed(n: &Nat) -> Option<Observed> {
    let id = n.nat_gateway_id()?;
    let addrs = n.nat_gateway_addresses();
    let primary = addrs
        .iter()
        .find(|a| a.is_primary() == Some(true))
        .or_else(|| addrs.first());
    let connectivity = n.connectivity_type().map_or("public", |c| c.as_str());
    let fields = Fields::from([
        ("subnet_id".into(), ec2::text(n.subnet_id())),
        // "" for a gateway without an address, so that a declared one shows as a change.
        (
            "allocation_id".into(),
            ec2::text(primary.and_then(|a| a.allocation_id())),
        ),
        ("connectivity_type".into(), Value::str(connectivity)),
    ]);
    let attributes = Fields::from([
        ("id".into(), Value::str(id)),
        (
            "public_ip".into(),
            ec2::text(primary.and_then(|a| a.public_ip())),
        ),
        (
            "private_ip".into(),
            ec2::text(primary.and_then(|a| a.private_ip())),
        ),
        (
            "network_interface_id".into(),
            ec2::text(primary.and_then(|a| a.network_interface_id())),
        ),
    ]);
    Some(Observed {
        id: id.to_string(),
        fields,
        attributes,
        tags: tags_of(Some(n.tags())),
    })
}

/// A waiter that did not reach its goal, as a provider error naming the gateway.
fn waiter_error<O, E>(
    id: &str,
    goal: &str,
    e: WaiterError<O, E>,
    failure: impl Fn(&O) -> Option<String>,
) -> ProviderError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    match e {
        WaiterError::OperationFailed(op) => ProviderError::from_sdk(op.into_error()),
        WaiterError::ExceededMaxWait(w) => ProviderError::Other(format!(
            "NAT gateway {id} did not become {goal} within {} s",
            w.max_wait().as_secs()
        )),
        WaiterError::FailureState(f) => {
            let why = match f.final_poll().as_result() {
                Ok(out) => failure(out),
                Err(err) => err.message().map(str::to_string),
            };
            ProviderError::Aws {
                code: "NatGatewayFailed".into(),
                message: format!(
                    "NAT gateway {id} will not become {goal}: {}",
                    why.unwrap_or_else(|| "AWS gave no reason".into())
                ),
            }
        }
        other => ProviderError::Other(format!(
            "waiting for NAT gateway {id} to become {goal}: {other}"
        )),
    }
}

#[async_trait]
impl ec2::Describe for NatGateway {
    const ID_FILTER: &'static str = "nat-gateway-id";

    async fn describe(&self, cx: &Cx, filters: Vec<Filter>) -> Result<Vec<Observed>> {
        let gateways = ec2::all_items!(cx.ec2.describe_nat_gateways().set_filter(Some(filters)))?;
        Ok(gateways
            .iter()
            .filter(|n| !is_gone(n))
            .filter_map(observed)
            .collect())
    }
}

#[async_trait]
impl Provider for NatGateway {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    /// An Elastic IP serves one gateway at a time, so only a replacement that
    /// brings a new address creates first. Any other deletes the old gateway
    /// first (a private one too: which it is cannot be told from the changes).
    fn create_before_destroy(&self, changes: &[FieldChange]) -> bool {
        changes_field(changes, "allocation_id")
    }

    async fn observe(&self, cx: &Cx, ids: &[String]) -> Result<HashMap<String, Observed>> {
        ec2::observe_by_id(self, cx, ids).await
    }

    async fn find_tagged(&self, cx: &Cx, addresses: &[String]) -> Result<Vec<(String, Observed)>> {
        ec2::find_by_tags(self, cx, addresses).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed> {
        let f = want.fields;
        let subnet = str_of(f, "subnet_id").unwrap_or_default();
        let allocation = str_of(f, "allocation_id").filter(|a| !a.is_empty());
        let connectivity = str_of(f, "connectivity_type").unwrap_or("public");
        let out = cx
            .ec2
            .create_nat_gateway()
            .subnet_id(subnet)
            .set_allocation_id(allocation.map(str::to_string))
            .connectivity_type(ConnectivityType::from(connectivity))
            // Same token, same gateway: a create retried after a crash does not make a second one.
            .client_token(want.token)
            .tag_specifications(tag_spec(ResourceType::Natgateway, want.tags))
            .customize()
            .config_override(eventual::<CreateNatGatewayError>())
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        let id = out
            .nat_gateway()
            .and_then(|n| n.nat_gateway_id())
            .ok_or_else(|| ProviderError::Other("CreateNatGateway returned no gateway id".into()))?
            .to_string();
        // Waited for by id, not by filter: AWS answers an id it has not propagated yet
        // with NatGatewayNotFound, which the waiter retries, where a filter would
        // answer an empty list that never satisfies it.
        let done = cx
            .ec2
            .wait_until_nat_gateway_available()
            .nat_gateway_ids(&id)
            .wait(MAX_WAIT)
            .await
            .map_err(|e| {
                waiter_error(&id, "available", e, |out| {
                    out.nat_gateways()
                        .iter()
                        .find_map(|n| n.failure_message().map(str::to_string))
                })
            })?;
        // The final poll describes the gateway as available, its addresses assigned:
        // the create response, taken while pending, may lack the public IP.
        let live = done
            .as_result()
            .ok()
            .and_then(|o| {
                o.nat_gateways()
                    .iter()
                    .find(|n| n.nat_gateway_id() == Some(id.as_str()))
            })
            .or(out.nat_gateway())
            .and_then(observed)
            .ok_or_else(|| {
                ProviderError::Other(format!(
                    "NAT gateway {id} vanished while becoming available"
                ))
            })?;
        let mut fields = f.clone();
        fields.insert(
            "allocation_id".into(),
            Value::str(allocation.unwrap_or_default()),
        );
        fields.insert("connectivity_type".into(), Value::str(connectivity));
        Ok(Observed {
            id,
            fields,
            attributes: live.attributes,
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
        // Every field forces a replacement: tags are all an update can change.
        ec2::finish_update(cx, live, want, changes).await
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<()> {
        let req = cx.ec2.delete_nat_gateway().nat_gateway_id(id).customize();
        let req = req.config_override(eventual_delete::<DeleteNatGatewayError>());
        match req.send().await.map_err(ProviderError::from_sdk) {
            Err(e) if e.is_not_found() => return Ok(()),
            other => other?,
        };
        // Its subnet and Elastic IP cannot be deleted while the gateway is still
        // "deleting": finish here so that they can follow at once.
        cx.ec2
            .wait_until_nat_gateway_deleted()
            .nat_gateway_ids(id)
            .wait(MAX_WAIT)
            .await
            .map_err(|e| waiter_error(id, "deleted", e, |_| None))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_new_address_lets_the_replacement_create_first() {
        let moved = FieldChange::new(
            "subnet_id",
            Some(Value::str("subnet-1")),
            Some(Value::str("subnet-2")),
            true,
        );
        let readdressed = FieldChange::new(
            "allocation_id",
            Some(Value::str("eipalloc-1")),
            Some(Value::str("eipalloc-2")),
            true,
        );
        assert!(!NatGateway.create_before_destroy(std::slice::from_ref(&moved)));
        assert!(NatGateway.create_before_destroy(&[moved, readdressed]));
    }
}
