//! The one place kinds are registered: every kind this build knows, in
//! documentation order, and the catalog the pure layers learn them through.

use crate::kit::Provider;
use crate::{
    acm, apigateway, appautoscaling, cloudfront, cloudwatch, cognito, dynamodb, ec2, ecr, ecs,
    elbv2, events, iam, kms, lambda, logs, rds, route53, s3, secretsmanager, sns, wafv2,
};
use reconcile_core::model::{Diagnostic, Fields, Resource, Schema, Schemas, Stack};
use reconcile_core::plan::{FieldChange, KindCatalog, Takeover};
use std::sync::Arc;

// Services as the SDK names them in its operation metadata (and so in call
// counts and throttle counts).
const EC2: &str = "EC2";
const RDS: &str = "RDS";
const SECRETS: &str = "Secrets Manager";
const ECS: &str = "ECS";
const ELBV2: &str = "Elastic Load Balancing v2";
const WAFV2: &str = "WAFV2";
const IAM: &str = "IAM";
const LOGS: &str = "CloudWatch Logs";
const ECR: &str = "ECR";
const ACM: &str = "ACM";
const KMS: &str = "KMS";
const S3: &str = "S3";
const DYNAMODB: &str = "DynamoDB";
const AUTOSCALING: &str = "Application Auto Scaling";
const SNS: &str = "SNS";
const CLOUDWATCH: &str = "CloudWatch";
const LAMBDA: &str = "Lambda";
const EVENTBRIDGE: &str = "EventBridge";
const ROUTE53: &str = "Route 53";
const COGNITO: &str = "Cognito Identity Provider";
const COGNITO_IDENTITY: &str = "Cognito Identity";
const CLOUDFRONT: &str = "CloudFront";
const APIGATEWAY: &str = "API Gateway";

/// Every kind with the AWS service it calls, in documentation order. Adding a
/// kind is one line here.
fn all() -> Vec<(&'static str, Arc<dyn Provider>)> {
    vec![
        (EC2, Arc::new(ec2::vpc::Vpc)),
        (EC2, Arc::new(ec2::subnet::Subnet)),
        (EC2, Arc::new(ec2::internet_gateway::InternetGateway)),
        (EC2, Arc::new(ec2::elastic_ip::ElasticIp)),
        (EC2, Arc::new(ec2::nat_gateway::NatGateway)),
        (EC2, Arc::new(ec2::route_table::RouteTable)),
        (EC2, Arc::new(ec2::security_group::SecurityGroup)),
        (EC2, Arc::new(ec2::security_group_rule::SecurityGroupRule)),
        (RDS, Arc::new(rds::db_subnet_group::DbSubnetGroup)),
        (RDS, Arc::new(rds::db_instance::DbInstance)),
        (RDS, Arc::new(rds::db_cluster::DbCluster)),
        (SECRETS, Arc::new(secretsmanager::secret::Secret)),
        (
            SECRETS,
            Arc::new(secretsmanager::secret_target_attachment::SecretTargetAttachment),
        ),
        (ECS, Arc::new(ecs::ecs_cluster::EcsCluster)),
        (ECS, Arc::new(ecs::ecs_task_definition::EcsTaskDefinition)),
        (ECS, Arc::new(ecs::ecs_service::EcsService)),
        (ELBV2, Arc::new(elbv2::load_balancer::LoadBalancer)),
        (ELBV2, Arc::new(elbv2::target_group::TargetGroup)),
        (ELBV2, Arc::new(elbv2::listener::Listener)),
        (ELBV2, Arc::new(elbv2::listener_rule::ListenerRule)),
        (WAFV2, Arc::new(wafv2::web_acl::WebAcl)),
        (
            WAFV2,
            Arc::new(wafv2::web_acl_association::WebAclAssociation),
        ),
        (IAM, Arc::new(iam::iam_role::IamRole)),
        (LOGS, Arc::new(logs::log_group::LogGroup)),
        (ECR, Arc::new(ecr::ecr_repository::EcrRepository)),
        (ACM, Arc::new(acm::certificate::Certificate)),
        (KMS, Arc::new(kms::kms_key::KmsKey)),
        (KMS, Arc::new(kms::kms_alias::KmsAlias)),
        (S3, Arc::new(s3::s3_bucket::S3Bucket)),
        (DYNAMODB, Arc::new(dynamodb::dynamodb_table::DynamodbTable)),
        (
            AUTOSCALING,
            Arc::new(appautoscaling::appautoscaling_target::AppautoscalingTarget),
        ),
        (
            AUTOSCALING,
            Arc::new(appautoscaling::appautoscaling_policy::AppautoscalingPolicy),
        ),
        (SNS, Arc::new(sns::sns_topic::SnsTopic)),
        (
            CLOUDWATCH,
            Arc::new(cloudwatch::cloudwatch_alarm::CloudwatchAlarm),
        ),
        (LAMBDA, Arc::new(lambda::lambda_function::LambdaFunction)),
        (
            LAMBDA,
            Arc::new(lambda::lambda_permission::LambdaPermission),
        ),
        (
            EVENTBRIDGE,
            Arc::new(events::eventbridge_rule::EventbridgeRule),
        ),
        (ROUTE53, Arc::new(route53::route53_zone::Route53Zone)),
        (ROUTE53, Arc::new(route53::route53_record::Route53Record)),
        (COGNITO, Arc::new(cognito::user_pool::UserPool)),
        (COGNITO, Arc::new(cognito::user_pool_client::UserPoolClient)),
        (
            COGNITO_IDENTITY,
            Arc::new(cognito::identity_pool::IdentityPool),
        ),
        (
            COGNITO_IDENTITY,
            Arc::new(cognito::identity_pool_roles::IdentityPoolRoles),
        ),
        (S3, Arc::new(s3::s3_bucket_policy::S3BucketPolicy)),
        (
            CLOUDFRONT,
            Arc::new(cloudfront::cloudfront_origin_access_control::CloudfrontOriginAccessControl),
        ),
        (
            CLOUDFRONT,
            Arc::new(cloudfront::cloudfront_distribution::CloudfrontDistribution),
        ),
        (APIGATEWAY, Arc::new(apigateway::rest_api::RestApi)),
        (APIGATEWAY, Arc::new(apigateway::account::Account)),
    ]
}

/// All providers, by kind, in documentation order.
pub struct Registry {
    providers: Vec<(&'static str, Arc<dyn Provider>)>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { providers: all() }
    }
}

impl Registry {
    /// A registry of exactly these providers, each with its service: tests run
    /// the engine on fakes.
    pub fn of(providers: Vec<(&'static str, Arc<dyn Provider>)>) -> Self {
        Registry { providers }
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Provider>> {
        self.providers
            .iter()
            .find(|(_, p)| p.schema().kind == kind)
            .map(|(_, p)| p)
    }

    /// The AWS service a kind calls, as the SDK names it ("EC2", "RDS", ...).
    pub fn service(&self, kind: &str) -> Option<&'static str> {
        self.providers
            .iter()
            .find(|(_, p)| p.schema().kind == kind)
            .map(|(s, _)| *s)
    }

    /// Every kind's schema, in documentation order.
    pub fn schemas(&self) -> Vec<&'static Schema> {
        self.providers.iter().map(|(_, p)| p.schema()).collect()
    }
}

impl Schemas for Registry {
    fn kinds(&self) -> Vec<&'static str> {
        self.providers
            .iter()
            .map(|(_, p)| p.schema().kind)
            .collect()
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
    fn create_before_destroy(&self, kind: &str, changes: &[FieldChange]) -> bool {
        self.get(kind)
            .is_some_and(|p| p.create_before_destroy(changes))
    }
    fn deletion_guard(&self, kind: &str) -> Option<&'static str> {
        self.get(kind).and_then(|p| p.deletion_guard())
    }
    fn in_use_guard(&self, kind: &str) -> Option<&'static str> {
        self.get(kind).and_then(|p| p.in_use_guard())
    }
    fn delete_note(&self, kind: &str, applied: Option<&Fields>) -> Option<String> {
        self.get(kind).and_then(|p| p.delete_note(applied))
    }
    fn takes_over(&self, kind: &str, fields: &Fields, uses: &[String]) -> Vec<Takeover> {
        self.get(kind)
            .map(|p| p.takes_over(fields, uses))
            .unwrap_or_default()
            .into_iter()
            .map(|(address, field)| Takeover { address, field })
            .collect()
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
