//! `route_table`: a VPC route table with its routes and subnet associations managed inline.
//!
//! `routes` and `subnet_ids`, when declared, are exact: a route or association
//! added or removed outside reconcile is drift. When left out, they are not managed.

use crate::ec2::{self, eventual, eventual_delete, filter, tag_spec, tags_of, Describe, Result};
use crate::kit::fields::{changes_field, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_ec2::operation::associate_route_table::AssociateRouteTableError;
use aws_sdk_ec2::operation::create_route::CreateRouteError;
use aws_sdk_ec2::operation::create_route_table::CreateRouteTableError;
use aws_sdk_ec2::operation::delete_route_table::DeleteRouteTableError;
use aws_sdk_ec2::operation::replace_route::ReplaceRouteError;
use aws_sdk_ec2::types::{
    Filter, ResourceType, Route, RouteOrigin, RouteTableAssociationStateCode,
};
use reconcile_core::model::schema::{Field, Schema, Ty};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub struct RouteTable;

/// The fields of one route table in `routes`.
pub const ROUTE_FIELDS: &[Field] = &[
    Field::new(
        "destination_cidr_block",
        Ty::Cidr,
        "The IPv4 range the route sends, e.g. \"0.0.0.0/0\".",
    )
    .required(),
    Field::new(
        "gateway_id",
        Ty::Str,
        "An internet gateway (igw-...) to send it to; exclusive with nat_gateway_id.",
    ),
    Field::new(
        "nat_gateway_id",
        Ty::Str,
        "A NAT gateway (nat-...) to send it to; exclusive with gateway_id.",
    ),
];

pub static SCHEMA: Schema = Schema {
    kind: "route_table",
    doc: "A VPC route table. `routes` and `subnet_ids`, when declared, are its exact routes \
          (the VPC's local route aside) and subnet associations.",
    fields: &[
        Field::new("vpc_id", Ty::Str, "The VPC the table belongs to.")
            .required()
            .force_new(),
        Field::new(
            "routes",
            Ty::List(&Ty::Object(ROUTE_FIELDS)),
            "Routes, compared as a set; the local route is implicit.",
        )
        .set(),
        Field::new(
            "subnet_ids",
            Ty::List(&Ty::Str),
            "Subnets associated with the table, compared as a set.",
        )
        .set(),
    ],
    attributes: &[
        ("id", "The route table id (rtb-...)."),
        ("arn", "The route table's ARN."),
        ("owner_id", "The AWS account that owns the table."),
    ],
    taggable: true,
};

/// A declared route: one destination, one target.
#[derive(Clone, Debug, PartialEq, Eq)]
struct WantRoute {
    destination: String,
    /// `gateway_id` or `nat_gateway_id`, and its value.
    target: (&'static str, String),
}

impl WantRoute {
    /// The target when it is of kind `k` (`gateway_id`, `nat_gateway_id`).
    fn via(&self, k: &str) -> Option<String> {
        (self.target.0 == k).then(|| self.target.1.clone())
    }

    fn fields(&self) -> Fields {
        let mut m = Fields::new();
        m.insert(
            "destination_cidr_block".into(),
            Value::str(&self.destination),
        );
        m.insert(self.target.0.into(), Value::str(&self.target.1));
        m
    }
}

fn invalid(msg: String) -> ProviderError {
    ProviderError::InvalidInput(msg)
}

/// Reads and checks the declared routes; `None` when `routes` is not managed.
fn declared_routes(f: &Fields, address: &str) -> Result<Option<Vec<WantRoute>>> {
    let Some(v) = f.get("routes") else {
        return Ok(None);
    };
    let Some(items) = v.as_list() else {
        return Err(invalid(format!(
            "{address}.routes must be a known list of routes, found {v}"
        )));
    };
    let mut out: Vec<WantRoute> = Vec::new();
    for (i, r) in items.iter().enumerate() {
        let what = format!("{address}.routes[{i}] {r}");
        let Some(m) = r.as_map() else {
            return Err(invalid(format!("{what}: a route must be a table")));
        };
        let text = |k: &str| match m.get(k) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(format!(
                "{what}: `{k}` must be a known string, found {other}"
            ))),
        };
        let destination = text("destination_cidr_block")?
            .ok_or_else(|| invalid(format!("{what}: `destination_cidr_block` is missing")))?;
        let target = match (text("gateway_id")?, text("nat_gateway_id")?) {
            (Some(g), None) => ("gateway_id", g),
            (None, Some(n)) => ("nat_gateway_id", n),
            _ => {
                return Err(invalid(format!(
                    "{what}: give exactly one of `gateway_id` or `nat_gateway_id`"
                )))
            }
        };
        if out.iter().any(|o| o.destination == destination) {
            return Err(invalid(format!(
                "{what}: a second route to {destination}; a table has one route per destination"
            )));
        }
        out.push(WantRoute {
            destination,
            target,
        });
    }
    Ok(Some(out))
}

/// Reads the declared subnets; `None` when associations are not managed.
fn declared_subnets(f: &Fields, address: &str) -> Result<Option<BTreeSet<String>>> {
    let Some(v) = f.get("subnet_ids") else {
        return Ok(None);
    };
    match v {
        Value::List(items) => items
            .iter()
            .map(|s| match s {
                Value::Str(s) => Ok(s.clone()),
                other => Err(invalid(format!(
                    "{address}.subnet_ids: {other} is not a known subnet id"
                ))),
            })
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Some),
        other => Err(invalid(format!(
            "{address}.subnet_ids must be a known list of subnet ids, found {other}"
        ))),
    }
}

/// A live route in the shape the user writes, keyed by its destination; `None`
/// for routes that are not the table's own to manage: the VPC's local route,
/// routes propagated from a virtual private gateway, and VPC endpoint routes
/// (which belong to the endpoint).
fn live_route(r: &Route) -> Option<(String, Fields)> {
    if r.gateway_id() == Some("local")
        || r.origin() == Some(&RouteOrigin::EnableVgwRoutePropagation)
    {
        return None;
    }
    if r.destination_prefix_list_id().is_some() {
        return None;
    }
    let mut m = Fields::new();
    let destination = if let Some(d) = r.destination_cidr_block() {
        m.insert("destination_cidr_block".into(), Value::str(d));
        d
    } else {
        // Not declarable, but an out-of-band IPv6 route is still drift.
        let d = r.destination_ipv6_cidr_block()?;
        m.insert("destination_ipv6_cidr_block".into(), Value::str(d));
        d
    };
    // Only the first two can be declared; the others are reported so that a
    // route pointed elsewhere shows where it now goes.
    let targets = [
        ("gateway_id", r.gateway_id()),
        ("nat_gateway_id", r.nat_gateway_id()),
        ("transit_gateway_id", r.transit_gateway_id()),
        ("vpc_peering_connection_id", r.vpc_peering_connection_id()),
        (
            "egress_only_internet_gateway_id",
            r.egress_only_internet_gateway_id(),
        ),
        ("instance_id", r.instance_id()),
        ("network_interface_id", r.network_interface_id()),
        ("carrier_gateway_id", r.carrier_gateway_id()),
        ("local_gateway_id", r.local_gateway_id()),
        ("core_network_arn", r.core_network_arn()),
    ];
    for (k, v) in targets {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            m.insert(k.into(), Value::str(v));
        }
    }
    Some((destination.to_string(), m))
}

/// Live subnet associations (subnet id -> association id), the main one aside.
fn live_associations(t: &aws_sdk_ec2::types::RouteTable) -> BTreeMap<String, String> {
    t.associations()
        .iter()
        .filter(|a| a.main() != Some(true))
        .filter(|a| {
            !matches!(
                a.association_state().and_then(|s| s.state()),
                Some(
                    RouteTableAssociationStateCode::Disassociating
                        | RouteTableAssociationStateCode::Disassociated
                        | RouteTableAssociationStateCode::Failed
                )
            )
        })
        .filter_map(|a| {
            Some((
                a.subnet_id()?.to_string(),
                a.route_table_association_id()?.to_string(),
            ))
        })
        .collect()
}

fn observed(cx: &Cx, t: &aws_sdk_ec2::types::RouteTable) -> Option<Observed> {
    let id = t.route_table_id()?;
    let routes: BTreeMap<String, Fields> = t.routes().iter().filter_map(live_route).collect();
    let subnets = live_associations(t).into_keys().map(Value::Str).collect();
    let fields = Fields::from([
        ("vpc_id".into(), Value::str(t.vpc_id().unwrap_or_default())),
        (
            "routes".into(),
            Value::List(routes.into_values().map(Value::Map).collect()),
        ),
        ("subnet_ids".into(), Value::List(subnets)),
    ]);
    let owner = t.owner_id().unwrap_or_default();
    Some(Observed {
        id: id.to_string(),
        attributes: ec2::arn_attributes(cx, "route-table", id, owner, None),
        fields,
        tags: tags_of(Some(t.tags())),
    })
}

async fn describe_tables(
    cx: &Cx,
    filters: Vec<Filter>,
) -> Result<Vec<aws_sdk_ec2::types::RouteTable>> {
    ec2::all_items!(cx.ec2.describe_route_tables().set_filters(Some(filters)))
}

/// The one table, by a filter so that a missing id is `None` rather than an error.
async fn describe_one(cx: &Cx, id: &str) -> Result<Option<aws_sdk_ec2::types::RouteTable>> {
    let tables = describe_tables(cx, vec![filter(RouteTable::ID_FILTER, [id])]).await?;
    Ok(tables.into_iter().find(|t| t.route_table_id() == Some(id)))
}

async fn create_route(cx: &Cx, table: &str, r: &WantRoute) -> Result<()> {
    let req = cx
        .ec2
        .create_route()
        .route_table_id(table)
        .destination_cidr_block(&r.destination)
        .set_gateway_id(r.via("gateway_id"))
        .set_nat_gateway_id(r.via("nat_gateway_id"));
    // The gateway may have been created a moment ago in this apply.
    match req
        .customize()
        .config_override(eventual::<CreateRouteError>())
        .send()
        .await
        .map_err(ProviderError::from_sdk)
    {
        // A route to this destination already exists (an interrupted earlier
        // apply, or someone else): point it where it is meant to go.
        Err(ProviderError::Aws { code, .. }) if code == "RouteAlreadyExists" => {
            replace_route(cx, table, r).await
        }
        other => other.map(|_| ()),
    }
}

async fn replace_route(cx: &Cx, table: &str, r: &WantRoute) -> Result<()> {
    let req = cx
        .ec2
        .replace_route()
        .route_table_id(table)
        .destination_cidr_block(&r.destination)
        .set_gateway_id(r.via("gateway_id"))
        .set_nat_gateway_id(r.via("nat_gateway_id"));
    req.customize()
        .config_override(eventual::<ReplaceRouteError>())
        .send()
        .await
        .map_err(ProviderError::from_sdk)?;
    Ok(())
}

/// Deletes an observed route by its destination; a route already gone is success.
async fn delete_route(cx: &Cx, table: &str, route: &Fields) -> Result<()> {
    let req = cx.ec2.delete_route().route_table_id(table);
    let req = match (
        str_of(route, "destination_cidr_block"),
        str_of(route, "destination_ipv6_cidr_block"),
    ) {
        (Some(d), _) => req.destination_cidr_block(d),
        (None, Some(d)) => req.destination_ipv6_cidr_block(d),
        (None, None) => return Ok(()),
    };
    ec2::gone_is_done(req.send().await)
}

async fn associate(cx: &Cx, table: &str, subnet: &str) -> Result<()> {
    // The subnet or the table may have been created a moment ago in this apply.
    cx.ec2
        .associate_route_table()
        .route_table_id(table)
        .subnet_id(subnet)
        .customize()
        .config_override(eventual::<AssociateRouteTableError>())
        .send()
        .await
        .map_err(ProviderError::from_sdk)?;
    Ok(())
}

async fn disassociate(cx: &Cx, association: &str) -> Result<()> {
    let req = cx.ec2.disassociate_route_table();
    ec2::gone_is_done(req.association_id(association).send().await)
}

#[async_trait]
impl Describe for RouteTable {
    const ID_FILTER: &'static str = "route-table-id";

    async fn describe(&self, cx: &Cx, filters: Vec<Filter>) -> Result<Vec<Observed>> {
        let tables = describe_tables(cx, filters).await?;
        Ok(tables.iter().filter_map(|t| observed(cx, t)).collect())
    }
}

#[async_trait]
impl Provider for RouteTable {
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
        let f = want.fields;
        let vpc_id = ec2::known_str(f, "vpc_id", want.address)?;
        // Everything is checked before the table exists.
        let routes = declared_routes(f, want.address)?.unwrap_or_default();
        let subnets = declared_subnets(f, want.address)?.unwrap_or_default();

        let out = cx
            .ec2
            .create_route_table()
            .vpc_id(vpc_id)
            .client_token(want.token)
            .tag_specifications(tag_spec(ResourceType::RouteTable, want.tags))
            .customize()
            .config_override(eventual::<CreateRouteTableError>())
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        let t = out.route_table().ok_or_else(|| {
            ProviderError::Other("CreateRouteTable returned no route table".into())
        })?;
        let id = t
            .route_table_id()
            .ok_or_else(|| {
                ProviderError::Other("CreateRouteTable returned no route table id".into())
            })?
            .to_string();
        for r in &routes {
            create_route(cx, &id, r).await?;
        }
        for s in &subnets {
            associate(cx, &id, s).await?;
        }
        let owner = t.owner_id().unwrap_or_default();
        Ok(Observed {
            attributes: ec2::arn_attributes(cx, "route-table", &id, owner, None),
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
        let routes = if changes_field(changes, "routes") {
            declared_routes(want.fields, want.address)?
        } else {
            None
        };
        let subnets = if changes_field(changes, "subnet_ids") {
            declared_subnets(want.fields, want.address)?
        } else {
            None
        };
        if routes.is_some() || subnets.is_some() {
            // Association ids are only in the live table, and the plan's view may be stale.
            let table = describe_one(cx, &live.id).await?.ok_or_else(|| {
                ProviderError::NotFound(format!("route table {} no longer exists", live.id))
            })?;
            if let Some(routes) = routes {
                let have: BTreeMap<String, Fields> =
                    table.routes().iter().filter_map(live_route).collect();
                for r in &routes {
                    match have.get(&r.destination) {
                        None => create_route(cx, &live.id, r).await?,
                        Some(h) if *h != r.fields() => replace_route(cx, &live.id, r).await?,
                        Some(_) => {}
                    }
                }
                for (destination, h) in &have {
                    if !routes.iter().any(|r| &r.destination == destination) {
                        delete_route(cx, &live.id, h).await?;
                    }
                }
            }
            if let Some(subnets) = subnets {
                let have = live_associations(&table);
                for s in subnets.iter().filter(|s| !have.contains_key(*s)) {
                    associate(cx, &live.id, s).await?;
                }
                for (s, association) in &have {
                    if !subnets.contains(s) {
                        disassociate(cx, association).await?;
                    }
                }
            }
        }
        ec2::finish_update(cx, live, want, changes).await
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<()> {
        let Some(table) = describe_one(cx, id).await? else {
            return Ok(());
        };
        // AWS refuses to delete a table that still has subnet or gateway associations.
        for a in table
            .associations()
            .iter()
            .filter(|a| a.main() != Some(true))
        {
            if let Some(association) = a.route_table_association_id() {
                disassociate(cx, association).await?;
            }
        }
        let req = cx.ec2.delete_route_table().route_table_id(id).customize();
        let req = req.config_override(eventual_delete::<DeleteRouteTableError>());
        ec2::gone_is_done(req.send().await)
    }
}
