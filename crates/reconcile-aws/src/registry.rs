//! The one place kinds are registered: every kind this build knows, in
//! documentation order, and the catalog the pure layers learn them through.

use crate::kit::Provider;
use crate::{acm, ec2, ecr, ecs, elbv2, iam, logs, rds, secretsmanager, wafv2};
use reconcile_core::model::{Diagnostic, Fields, Resource, Schema, Schemas, Stack};
use reconcile_core::plan::{FieldChange, KindCatalog};
use std::sync::Arc;

/// Every kind, in documentation order. Adding a kind is one line here.
fn all() -> Vec<Arc<dyn Provider>> {
    vec![
        Arc::new(ec2::vpc::Vpc),
        Arc::new(ec2::subnet::Subnet),
        Arc::new(ec2::internet_gateway::InternetGateway),
        Arc::new(ec2::elastic_ip::ElasticIp),
        Arc::new(ec2::nat_gateway::NatGateway),
        Arc::new(ec2::route_table::RouteTable),
        Arc::new(ec2::security_group::SecurityGroup),
        Arc::new(ec2::security_group_rule::SecurityGroupRule),
        Arc::new(rds::db_subnet_group::DbSubnetGroup),
        Arc::new(rds::db_instance::DbInstance),
        Arc::new(rds::db_cluster::DbCluster),
        Arc::new(secretsmanager::secret::Secret),
        Arc::new(ecs::ecs_cluster::EcsCluster),
        Arc::new(ecs::ecs_task_definition::EcsTaskDefinition),
        Arc::new(ecs::ecs_service::EcsService),
        Arc::new(elbv2::load_balancer::LoadBalancer),
        Arc::new(elbv2::target_group::TargetGroup),
        Arc::new(elbv2::listener::Listener),
        Arc::new(elbv2::listener_rule::ListenerRule),
        Arc::new(wafv2::web_acl::WebAcl),
        Arc::new(wafv2::web_acl_association::WebAclAssociation),
        Arc::new(iam::iam_role::IamRole),
        Arc::new(logs::log_group::LogGroup),
        Arc::new(ecr::ecr_repository::EcrRepository),
        Arc::new(acm::certificate::Certificate),
    ]
}

/// All providers, by kind, in documentation order.
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { providers: all() }
    }
}

impl Registry {
    /// A registry of exactly these providers: tests run the engine on fakes.
    pub fn of(providers: Vec<Arc<dyn Provider>>) -> Self {
        Registry { providers }
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.iter().find(|p| p.schema().kind == kind)
    }

    /// Every kind's schema, in documentation order.
    pub fn schemas(&self) -> Vec<&'static Schema> {
        self.providers.iter().map(|p| p.schema()).collect()
    }
}

impl Schemas for Registry {
    fn kinds(&self) -> Vec<&'static str> {
        self.providers.iter().map(|p| p.schema().kind).collect()
    }
    fn schema(&self, kind: &str) -> Option<&'static Schema> {
        self.get(kind).map(|p| p.schema())
    }
}

impl KindCatalog for Registry {
    fn validate(&self, stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        self.get(&r.kind)
            .map(|p| p.validate(stack, r))
            .unwrap_or_default()
    }
    fn diff(&self, kind: &str, desired: &Fields, live: &Fields) -> Vec<FieldChange> {
        self.get(kind)
            .map(|p| p.diff(desired, live))
            .unwrap_or_default()
    }
    fn create_before_destroy(&self, kind: &str, changes: &[FieldChange]) -> bool {
        self.get(kind)
            .is_some_and(|p| p.create_before_destroy(changes))
    }
    fn deletion_guard(&self, kind: &str) -> Option<&'static str> {
        self.get(kind).and_then(|p| p.deletion_guard())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_registered_once() {
        let kinds = Registry::default().kinds();
        let mut unique = kinds.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), kinds.len(), "{kinds:?}");
    }
}
