//! `cognito_identity_pool`: AWS credentials for signed-in users (and, when
//! allowed, guests), from the user pool clients it trusts. Its roles are
//! `cognito_identity_pool_roles`, a kind of their own: each role's trust
//! policy names the pool's id, so roles inside the pool would make a cycle.

use crate::kit::adopt;
use crate::kit::error::{at, unless_gone};
use crate::kit::fields::{bool_of, diagnostics, refuse, str_of};
use crate::kit::{each, Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_cognitoidentity::types::CognitoIdentityProvider;
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct IdentityPool;

const PROVIDER_FIELDS: &[Field] = &[
    Field::new(
        "provider_name",
        Ty::Str,
        "The user pool's issuer, like \"${cognito_user_pool.users.endpoint}\" \
         (cognito-idp.REGION.amazonaws.com/POOL_ID).",
    )
    .required(),
    Field::new(
        "client_id",
        Ty::Str,
        "The app client, like \"${cognito_user_pool_client.web.client_id}\".",
    )
    .required(),
    Field::new(
        "server_side_token_check",
        Ty::Bool,
        "Ask the user pool whether a token was revoked (the user signed out globally) \
         before handing out credentials.",
    )
    .default(Default::Bool(false)),
];

pub static SCHEMA: Schema = Schema {
    kind: "cognito_identity_pool",
    doc: "A Cognito identity pool (federated identities): it trades a user pool sign-in, or \
          nothing for a guest, for temporary AWS credentials of its authenticated or \
          `unauthenticated_role` (see `cognito_identity_pool_roles`). Each user keeps an identity id in the pool, which apps use \
          as an S3 prefix: deleting the pool loses them, so protect it like the user pool. \
          Observing costs a DescribeIdentityPool per pool. Tags are written with the pool's own \
          create and update calls, as for user pools. Emulator: moto 5.2.5 keeps a \
          pool's old name on UpdateIdentityPool and never removes a tag.",
    fields: &[
        Field::new(
            "name",
            Ty::Str,
            "The pool's name: letters, digits, spaces and + = , . @ - _, at most 128.",
        )
        .required(),
        Field::new(
            "allow_unauthenticated_identities",
            Ty::Bool,
            "Hand out `unauthenticated_role` credentials to anyone who asks (guests).",
        )
        .default(Default::Bool(false)),
        Field::new(
            "allow_classic_flow",
            Ty::Bool,
            "Allow the basic (classic) authentication flow.",
        )
        .default(Default::Bool(false)),
        Field::new(
            "cognito_identity_providers",
            Ty::List(&Ty::Object(PROVIDER_FIELDS)),
            "The user pool clients whose sign-ins the pool accepts.",
        )
        .set()
        .absent_clears(),
        Field::new(
            "supported_login_providers",
            Ty::Map(&Ty::Str),
            "Public identity providers and their app ids, like \
             { \"accounts.google.com\" = \"CLIENT_ID\" }.",
        )
        .absent_clears(),
    ],
    attributes: &[
        ("id", "The pool's id (REGION:GUID), as apps are configured with it."),
    ],
    taggable: true,
};

type Problem = (&'static str, String, String);

fn literal(s: &str) -> bool {
    !s.contains("${")
}

fn problems(f: &Fields) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(name) = str_of(f, "name").filter(|n| literal(n)) {
        let ok_char = |c: char| c.is_alphanumeric() || c.is_whitespace() || "+=,.@-_".contains(c);
        if name.is_empty() || name.chars().count() > 128 || !name.chars().all(ok_char) {
            out.push((
                "name",
                format!("`{name}` is not a name Cognito takes"),
                "use 1 to 128 letters, digits, spaces and + = , . @ - _".into(),
            ));
        }
    }
    if let Some(Value::List(l)) = f.get("cognito_identity_providers") {
        for p in l.iter().filter_map(Value::as_map) {
            let Some(name) = p.get("provider_name").and_then(Value::as_str) else {
                continue;
            };
            if literal(name) && !is_issuer(name) {
                out.push((
                    "cognito_identity_providers",
                    format!("`{name}` is not a user pool issuer"),
                    "write cognito-idp.REGION.amazonaws.com/POOL_ID, or \
                     \"${cognito_user_pool.NAME.endpoint}\""
                        .into(),
                ));
            }
        }
    }
    out
}

/// `cognito-idp.REGION.amazonaws.com/REGION_ID`.
fn is_issuer(s: &str) -> bool {
    let Some((host, pool)) = s.split_once('/') else {
        return false;
    };
    let region = host
        .strip_prefix("cognito-idp.")
        .and_then(|h| h.strip_suffix(".amazonaws.com"));
    matches!((region, pool.split_once('_')), (Some(r), Some((pr, id))) if r == pr && !id.is_empty())
}

fn providers(f: &Fields) -> Option<Vec<CognitoIdentityProvider>> {
    let Some(Value::List(l)) = f.get("cognito_identity_providers") else {
        return None;
    };
    Some(
        l.iter()
            .filter_map(Value::as_map)
            .map(|p| {
                let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
                CognitoIdentityProvider::builder()
                    .set_provider_name(s("provider_name"))
                    .set_client_id(s("client_id"))
                    .server_side_token_check(
                        p.get("server_side_token_check").and_then(Value::as_bool) == Some(true),
                    )
                    .build()
            })
            .collect(),
    )
}

fn logins(f: &Fields) -> Option<HashMap<String, String>> {
    f.get("supported_login_providers")
        .and_then(Value::as_map)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
}

/// A pool as DescribeIdentityPool answers it, without its roles.
fn observed(
    d: &aws_sdk_cognitoidentity::operation::describe_identity_pool::DescribeIdentityPoolOutput,
) -> Observed {
    let id = d.identity_pool_id();
    let mut f = Fields::new();
    f.insert("name".into(), Value::str(d.identity_pool_name()));
    f.insert(
        "allow_unauthenticated_identities".into(),
        Value::Bool(d.allow_unauthenticated_identities()),
    );
    f.insert(
        "allow_classic_flow".into(),
        Value::Bool(d.allow_classic_flow() == Some(true)),
    );
    let ps = d
        .cognito_identity_providers()
        .iter()
        .map(|p| {
            let mut m = IndexMap::new();
            m.insert(
                "provider_name".to_string(),
                Value::str(p.provider_name().unwrap_or_default()),
            );
            m.insert(
                "client_id".to_string(),
                Value::str(p.client_id().unwrap_or_default()),
            );
            m.insert(
                "server_side_token_check".to_string(),
                Value::Bool(p.server_side_token_check() == Some(true)),
            );
            Value::Map(m)
        })
        .collect();
    f.insert("cognito_identity_providers".into(), Value::List(ps));
    let mut logins: Vec<(&String, &String)> = d
        .supported_login_providers()
        .into_iter()
        .flatten()
        .collect();
    logins.sort();
    f.insert(
        "supported_login_providers".into(),
        Value::Map(
            logins
                .into_iter()
                .map(|(k, v)| (k.clone(), Value::str(v)))
                .collect(),
        ),
    );
    let tags = crate::kit::tags::own_tags(
        d.identity_pool_tags()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let mut attributes = Fields::new();
    attributes.insert("id".into(), Value::str(id));
    Observed {
        id: id.to_string(),
        fields: f,
        attributes,
        tags,
    }
}

/// One pool without its roles; `None` when it is gone.
async fn describe(cx: &Cx, id: &str) -> Result<Option<Observed>, ProviderError> {
    let d = unless_gone(
        cx.cognito_identity
            .describe_identity_pool()
            .identity_pool_id(id)
            .send()
            .await,
    )?;
    Ok(d.map(|d| observed(&d)))
}

/// Ids of every pool named `name`, or of every pool when `None`: ListIdentityPools, 60 a page.
async fn pool_ids(cx: &Cx, name: Option<&str>) -> Result<Vec<String>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = cx
        .cognito_identity
        .list_identity_pools()
        .max_results(60)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProviderError::from_sdk)?;
        out.extend(
            page.identity_pools()
                .iter()
                .filter(|p| name.is_none() || p.identity_pool_name() == name)
                .filter_map(|p| p.identity_pool_id().map(str::to_string)),
        );
    }
    Ok(out)
}

#[async_trait]
impl Provider for IdentityPool {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        diagnostics(r, problems(&r.fields))
    }

    /// A DescribeIdentityPool per pool: Cognito has no batch read.
    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let reads = ids.iter().map(|id| describe(cx, id)).collect();
        Ok(crate::kit::by_id(each(reads).await?))
    }

    /// ListIdentityPools answers without tags: every pool is described to
    /// find this stack's (only when a create may have been interrupted).
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let reads = pool_ids(cx, None)
            .await?
            .into_iter()
            .map(|id| async move { describe(cx, &id).await })
            .collect();
        Ok(crate::kit::tags::tagged(cx, addresses, each(reads).await?))
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        refuse(a, problems(f))?;
        let name = str_of(f, "name").ok_or_else(|| {
            ProviderError::InvalidInput(format!("{a}: `name` must be a known string"))
        })?;
        // Pool names are not unique: a copy an interrupted apply left is found by its tags.
        let named = pool_ids(cx, Some(name)).await?;
        let read = |id: String| async move { describe(cx, &id).await };
        if let Some(live) = adopt::interrupted_copy(cx, want, named, read).await? {
            let changes = adopt::changes_to(self, want, &live);
            return self.update(cx, &live, want, &changes).await;
        }
        // Tagged in the same call, so an interrupted create is found again by its tags.
        let out = cx
            .cognito_identity
            .create_identity_pool()
            .identity_pool_name(name)
            .allow_unauthenticated_identities(
                bool_of(f, "allow_unauthenticated_identities") == Some(true),
            )
            .allow_classic_flow(bool_of(f, "allow_classic_flow") == Some(true))
            .set_cognito_identity_providers(providers(f))
            .set_supported_login_providers(logins(f))
            .set_identity_pool_tags(Some(want.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| at(a, "CreateIdentityPool", ProviderError::from_sdk(e)))?;
        let id = out.identity_pool_id();
        describe(cx, id)
            .await?
            .ok_or_else(|| ProviderError::Other(format!("{a}: {id} is gone after its create")))
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        _changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        refuse(a, problems(f))?;
        let id = live.id.as_str();
        // UpdateIdentityPool resets what it is not given: send everything.
        cx.cognito_identity
            .update_identity_pool()
            .identity_pool_id(id)
            .identity_pool_name(str_of(f, "name").unwrap_or_default())
            .allow_unauthenticated_identities(
                bool_of(f, "allow_unauthenticated_identities") == Some(true),
            )
            .allow_classic_flow(bool_of(f, "allow_classic_flow") == Some(true))
            .set_cognito_identity_providers(Some(providers(f).unwrap_or_default()))
            .set_supported_login_providers(Some(logins(f).unwrap_or_default()))
            .set_identity_pool_tags(Some(want.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| at(a, "UpdateIdentityPool", ProviderError::from_sdk(e)))?;
        describe(cx, id)
            .await?
            .ok_or_else(|| ProviderError::Other(format!("{a}: {id} is gone after its update")))
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        crate::kit::error::gone_is_done(
            cx.cognito_identity
                .delete_identity_pool()
                .identity_pool_id(id)
                .send()
                .await,
        )
        .map_err(|e| at(id, "DeleteIdentityPool", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::resource;

    fn problems_of(pairs: &[(&str, Value)]) -> Vec<&'static str> {
        problems(&resource("cognito_identity_pool.p", pairs).fields)
            .into_iter()
            .map(|p| p.0)
            .collect()
    }

    #[test]
    fn names_and_issuers_are_checked() {
        assert!(problems_of(&[("name", Value::str("MentalSpace EHR files"))]).is_empty());
        assert_eq!(problems_of(&[("name", Value::str("a/b"))]), ["name"]);
        assert!(is_issuer(
            "cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC123"
        ));
        assert!(!is_issuer(
            "cognito-idp.us-east-1.amazonaws.com/eu-west-1_AbC"
        ));
        assert!(!is_issuer("accounts.google.com"));
    }
}
