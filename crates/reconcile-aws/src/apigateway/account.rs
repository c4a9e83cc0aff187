//! `api_gateway_account`: the region's API Gateway account settings, the IAM
//! role through which stages write execution logs to CloudWatch. One per
//! account and region: there is nothing to create or delete, only a setting
//! to keep.

use crate::kit::error::at;
use crate::kit::fields::{fields_of, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_apigateway::types::{Op, PatchOperation};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct Account;

pub static SCHEMA: Schema = Schema {
    kind: "api_gateway_account",
    doc: "The region's API Gateway account settings: the IAM role API Gateway assumes to \
          write stages' execution logs (`logging_level`) to CloudWatch. A singleton: its id \
          is the region, and a stack declares it at most once. Removing it from the stack \
          leaves the role set in AWS, as Terraform's `aws_api_gateway_account` does by \
          default: other APIs of the account may log through it. The role must trust \
          apigateway.amazonaws.com and allow writing to CloudWatch Logs (the managed policy \
          AmazonAPIGatewayPushToCloudWatchLogs). Observing costs one GetAccount. The emulator \
          accepts any ARN, even of a role that does not exist or does not trust API Gateway.",
    fields: &[Field::new(
        "cloudwatch_role_arn",
        Ty::Str,
        "The role's ARN, like `${iam_role.apigateway_logs.arn}`.",
    )
    .required()],
    attributes: &[("id", "The region the settings apply to.")],
    taggable: false,
};

async fn read(cx: &Cx) -> Result<Observed, ProviderError> {
    let out = cx
        .apigateway
        .get_account()
        .send()
        .await
        .map_err(ProviderError::from_sdk)?;
    let mut fields = IndexMap::new();
    if let Some(r) = out.cloudwatch_role_arn().filter(|r| !r.is_empty()) {
        fields.insert("cloudwatch_role_arn".to_string(), Value::str(r));
    }
    Ok(Observed {
        id: cx.region.clone(),
        fields,
        attributes: fields_of([("id", Value::str(&cx.region))]),
        tags: IndexMap::new(),
    })
}

async fn set_role(cx: &Cx, a: &str, role: &str) -> Result<(), ProviderError> {
    cx.apigateway
        .update_account()
        .patch_operations(
            PatchOperation::builder()
                .op(Op::Replace)
                .path("/cloudwatchRoleArn")
                .value(role)
                .build(),
        )
        .send()
        .await
        .map(drop)
        .map_err(|e| at(a, "UpdateAccount", e.into()))
}

#[async_trait]
impl Provider for Account {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    /// Two declarations would undo each other at every apply.
    fn validate(&self, stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        let first = stack
            .resources
            .values()
            .find(|x| x.kind == SCHEMA.kind)
            .map(|x| x.address.as_str());
        match first {
            Some(f) if f != r.address => vec![crate::kit::fields::diagnostic(
                r,
                "",
                format!("the account settings are already declared by `{f}`"),
                "declare `api_gateway_account` once per stack".into(),
            )],
            _ => vec![],
        }
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        if !ids.contains(&cx.region) {
            return Ok(HashMap::new());
        }
        let o = read(cx).await?;
        Ok([(o.id.clone(), o)].into_iter().collect())
    }

    /// Not taggable: a create is idempotent and needs nothing found again.
    async fn find_tagged(
        &self,
        _cx: &Cx,
        _addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(vec![])
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let role = str_of(want.fields, "cloudwatch_role_arn").unwrap_or_default();
        set_role(cx, want.address, role).await?;
        read(cx).await
    }

    async fn update(
        &self,
        cx: &Cx,
        _live: &Observed,
        want: &Desired<'_>,
        _changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        self.create(cx, want).await
    }

    /// Leaves the role set: other APIs of the account may log through it.
    async fn delete(&self, _cx: &Cx, _id: &str) -> Result<(), ProviderError> {
        Ok(())
    }

    fn delete_note(&self, _applied: Option<&reconcile_core::model::Fields>) -> Option<String> {
        Some("leaves the account's CloudWatch role set in AWS".into())
    }
}
