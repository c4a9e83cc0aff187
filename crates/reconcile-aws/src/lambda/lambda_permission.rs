//! `lambda_permission`: one statement of a function's resource-based policy,
//! letting a service (EventBridge, SNS, API Gateway) or an account invoke it.
//!
//! Lambda has no call to change a statement: every field forces a
//! replacement, and a replacement removes the old statement before adding the
//! new one (the statement id is unique within the policy). All the
//! permissions of one function are observed with one GetPolicy.

use super::function_name_of;
use crate::kit::error::{at, gone_is_done, unless_gone};
use crate::kit::fields::{fields_of, str_of};
use crate::kit::{each, Cx, Desired, Provider, ProviderError, SchemaDiff};
use async_trait::async_trait;
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};

pub struct LambdaPermission;

pub static SCHEMA: Schema = Schema {
    kind: "lambda_permission",
    doc: "One statement of a Lambda function's resource-based policy: who may call the \
          function, such as `principal = \"events.amazonaws.com\"` with `source_arn = \
          \"${eventbridge_rule.NAME.arn}\"` for a schedule. Its id is \
          `FUNCTION_NAME/STATEMENT_ID`. Lambda cannot change a statement: every field forces a \
          replacement, made by RemovePermission then AddPermission. A create looks at the \
          policy first: a statement with the same id and the same content (left by an \
          interrupted apply) is taken over, one with other content is refused. Observing costs \
          one GetPolicy per function, whatever the number of its permissions. Not taggable: \
          policy statements carry no tags. The emulator (moto 5.2.5) accepts a second statement \
          under an id already used (AWS refuses it) and reports the principal as written.",
    fields: &[
        Field::new(
            "function",
            Ty::Str,
            "The function: its name or ARN, `${lambda_function.NAME.function_name}`. Changing \
             it replaces the permission.",
        )
        .required()
        .force_new()
        .norm(Norm::With(function_name)),
        Field::new(
            "statement_id",
            Ty::Pattern(check_statement_id),
            "The statement's id, unique within the function's policy: 1 to 100 letters, \
             digits, hyphens and underscores. Changing it replaces the permission.",
        )
        .required()
        .force_new(),
        Field::new(
            "action",
            Ty::Str,
            "What the principal may do. Changing it replaces the permission.",
        )
        .default(Default::Str("lambda:InvokeFunction"))
        .force_new(),
        Field::new(
            "principal",
            Ty::Str,
            "Who may: a service (\"events.amazonaws.com\", \"sns.amazonaws.com\") or an account \
             id. Changing it replaces the permission.",
        )
        .required()
        .force_new(),
        Field::new(
            "source_arn",
            Ty::Str,
            "Only on behalf of this resource, such as `${eventbridge_rule.NAME.arn}`: without \
             it, any rule of any account could invoke the function through the service. \
             Changing it replaces the permission.",
        )
        .absent_clears()
        .force_new(),
    ],
    attributes: &[
        ("id", "FUNCTION_NAME/STATEMENT_ID."),
        ("statement_id", "The statement's id."),
    ],
    taggable: false,
};

fn function_name(v: &Value, _: &IndexMap<String, Value>) -> Value {
    match v.as_str() {
        Some(s) if !s.contains("${") => Value::str(function_name_of(s)),
        _ => v.clone(),
    }
}

pub fn check_statement_id(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 100 {
        return Err(format!("\"{s}\": a statement id has 1 to 100 characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "\"{s}\" contains {c:?}; use letters, digits, hyphens and underscores only"
        ));
    }
    Ok(())
}

/// The id of a permission: `FUNCTION_NAME/STATEMENT_ID`.
pub fn id_of(function: &str, statement_id: &str) -> String {
    format!("{}/{statement_id}", function_name_of(function))
}

fn split_id(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once('/').ok_or_else(|| {
        ProviderError::InvalidInput(format!(
            "`{id}` is not a permission id; write FUNCTION_NAME/STATEMENT_ID"
        ))
    })
}

/// A policy statement as fields, keyed by its `Sid`.
pub fn statements(function: &str, policy: &str) -> HashMap<String, Fields> {
    let Ok(doc) = serde_json::from_str::<Json>(policy) else {
        return HashMap::new();
    };
    let list = match doc.get("Statement") {
        Some(Json::Array(l)) => l.clone(),
        Some(one @ Json::Object(_)) => vec![one.clone()],
        _ => vec![],
    };
    let text = |v: Option<&Json>| match v {
        Some(Json::String(s)) => Some(s.clone()),
        Some(Json::Array(l)) if l.len() == 1 => l[0].as_str().map(str::to_string),
        _ => None,
    };
    let mut out = HashMap::new();
    for s in list {
        let Some(sid) = s.get("Sid").and_then(Json::as_str) else {
            continue;
        };
        let principal = match s.get("Principal") {
            Some(Json::Object(m)) => text(m.get("Service").or(m.get("AWS"))),
            other => text(other),
        }
        .unwrap_or_default();
        // An account id comes back as the account's root ARN.
        let principal = principal
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.strip_suffix(":root"))
            .map(str::to_string)
            .unwrap_or(principal);
        let mut f = fields_of([
            ("function", Value::str(function)),
            ("statement_id", Value::str(sid)),
            (
                "action",
                Value::str(text(s.get("Action")).unwrap_or_default()),
            ),
            ("principal", Value::str(principal)),
        ]);
        let source = s
            .get("Condition")
            .and_then(|c| c.get("ArnLike"))
            .and_then(|c| c.get("AWS:SourceArn"));
        if let Some(arn) = text(source) {
            f.insert("source_arn".into(), Value::str(arn));
        }
        out.insert(sid.to_string(), f);
    }
    out
}

/// The statements of one function's policy; empty when it has none or is gone.
async fn policy_of(cx: &Cx, function: &str) -> Result<HashMap<String, Fields>, ProviderError> {
    let out = unless_gone(cx.lambda.get_policy().function_name(function).send().await)?;
    Ok(out
        .and_then(|o| o.policy().map(|p| statements(function, p)))
        .unwrap_or_default())
}

fn observed(function: &str, fields: Fields) -> Observed {
    let sid = str_of(&fields, "statement_id")
        .unwrap_or_default()
        .to_string();
    let id = id_of(function, &sid);
    Observed {
        id: id.clone(),
        fields,
        attributes: fields_of([("id", Value::str(id)), ("statement_id", Value::str(sid))]),
        tags: IndexMap::new(),
    }
}

#[async_trait]
impl Provider for LambdaPermission {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        let mut p = Vec::new();
        if str_of(&r.fields, "principal").is_some_and(str::is_empty) {
            p.push((
                "principal",
                "the principal is empty".to_string(),
                "name a service such as \"events.amazonaws.com\", or an account id".to_string(),
            ));
        }
        crate::kit::fields::diagnostics(r, p)
    }

    /// One GetPolicy per function, a few functions at a time.
    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let mut by_function: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for id in ids {
            let (f, sid) = split_id(id)?;
            by_function.entry(f).or_default().push(sid);
        }
        let reads = by_function
            .into_iter()
            .map(|(function, sids)| async move {
                let mut found = policy_of(cx, function).await?;
                let mine: Vec<Observed> = sids
                    .into_iter()
                    .filter_map(|sid| found.remove(sid))
                    .map(|f| observed(function, f))
                    .collect();
                Ok(Some(mine))
            })
            .collect();
        Ok(crate::kit::by_id(
            each(reads).await?.into_iter().flatten().collect(),
        ))
    }

    async fn find_tagged(
        &self,
        _cx: &Cx,
        _addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(vec![])
    }

    fn create_before_destroy(&self, _changes: &[FieldChange]) -> bool {
        false
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        let known = |k: &str| {
            str_of(f, k).ok_or_else(|| {
                ProviderError::InvalidInput(format!("{a}: `{k}` must be a known string"))
            })
        };
        let function = function_name_of(known("function")?).to_string();
        let sid = known("statement_id")?;
        // AddPermission under a used id fails (the emulator even adds a second
        // statement): look first, and take over only the very same statement.
        if let Some(live) = policy_of(cx, &function).await?.remove(sid) {
            let changes = self.diff(f, &live);
            if changes.is_empty() {
                tracing::info!(
                    address = a,
                    "taking over the same statement already in the policy"
                );
                return Ok(observed(&function, live));
            }
            let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
            return Err(ProviderError::InvalidInput(format!(
                "{a}: the function `{function}` already has a statement `{sid}` that differs in \
                 {}; choose another statement_id, or remove that statement",
                fields.join(", ")
            )));
        }
        cx.lambda
            .add_permission()
            .function_name(&function)
            .statement_id(sid)
            .action(str_of(f, "action").unwrap_or("lambda:InvokeFunction"))
            .principal(known("principal")?)
            .set_source_arn(str_of(f, "source_arn").map(str::to_string))
            .send()
            .await
            .map_err(|e| at(a, "AddPermission", e.into()))?;
        let mut fields = f.clone();
        fields.insert("function".into(), Value::str(&function));
        Ok(observed(&function, fields))
    }

    /// Nothing to do in place: every field forces a replacement.
    async fn update(
        &self,
        _cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        _changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        Ok(Observed {
            fields: want.fields.clone(),
            ..live.clone()
        })
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let (function, sid) = split_id(id)?;
        gone_is_done(
            cx.lambda
                .remove_permission()
                .function_name(function)
                .statement_id(sid)
                .send()
                .await,
        )
        .map_err(|e| {
            at(
                &format!("lambda_permission {id} (stack {})", cx.stack),
                "RemovePermission",
                e,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_read_as_fields() {
        let policy = r#"{"Version":"2012-10-17","Id":"default","Statement":[
          {"Sid":"events","Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},
           "Action":"lambda:InvokeFunction",
           "Resource":"arn:aws:lambda:us-east-1:1:function:backup",
           "Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:events:us-east-1:1:rule/daily"}}},
          {"Sid":"acct","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222233334444:root"},
           "Action":"lambda:GetFunction","Resource":"arn:aws:lambda:us-east-1:1:function:backup"}
        ]}"#;
        let s = statements("backup", policy);
        assert_eq!(s.len(), 2);
        let e = &s["events"];
        assert_eq!(e["principal"], Value::str("events.amazonaws.com"));
        assert_eq!(
            e["source_arn"],
            Value::str("arn:aws:events:us-east-1:1:rule/daily")
        );
        assert_eq!(e["action"], Value::str("lambda:InvokeFunction"));
        assert_eq!(s["acct"]["principal"], Value::str("222233334444"));
        assert!(!s["acct"].contains_key("source_arn"));
    }

    #[test]
    fn a_function_arn_and_its_name_are_the_same_function() {
        let want = fields_of([
            (
                "function",
                Value::str("arn:aws:lambda:us-east-1:1:function:backup"),
            ),
            ("statement_id", Value::str("events")),
            ("action", Value::str("lambda:InvokeFunction")),
            ("principal", Value::str("events.amazonaws.com")),
        ]);
        let mut live = want.clone();
        live.insert("function".into(), Value::str("backup"));
        assert!(LambdaPermission.diff(&want, &live).is_empty());
        assert_eq!(
            id_of("arn:aws:lambda:us-east-1:1:function:backup", "x"),
            "backup/x"
        );
        assert!(check_statement_id("AllowEvents-1").is_ok());
        assert!(check_statement_id("no spaces").is_err());
    }
}
