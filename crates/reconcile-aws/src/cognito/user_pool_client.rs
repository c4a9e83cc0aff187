//! `cognito_user_pool_client`: an app that signs users in against a pool
//! (auth flows, OAuth, token lifetimes).
//!
//! With `generate_secret`, Cognito makes a client secret. It is a secret like
//! a password: it is read only into `Sensitive`, never into an observation,
//! plan, state or log. `client_secret_to` writes it into a declared `secret`
//! (one whose value a person would otherwise set), from memory straight to
//! Secrets Manager.
//! Its id is `<user pool id>/<client id>`, as Terraform imports it.

use crate::kit::duration::{duration_norm, parse_duration};
use crate::kit::error::{at, unless_gone};
use crate::kit::fields::{
    bool_of, changes_field, diagnostics, referenced, refuse, str_of, strs_of,
};
use crate::kit::{each, Cx, Desired, Provider, ProviderError};
use crate::secretsmanager::secret::put_value;
use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::types::{
    ExplicitAuthFlowsType, OAuthFlowType, PreventUserExistenceErrorTypes, TimeUnitsType,
    TokenValidityUnitsType, UserPoolClientType,
};
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use reconcile_core::sensitive::Sensitive;
use std::collections::HashMap;

pub struct UserPoolClient;

const FLOWS: &[&str] = &[
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_CUSTOM_AUTH",
    "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
    "ALLOW_USER_AUTH",
];
const OAUTH_FLOWS: &[&str] = &["code", "implicit", "client_credentials"];
const STANDARD_SCOPES: &[&str] = &[
    "phone",
    "email",
    "openid",
    "profile",
    "aws.cognito.signin.user.admin",
];

pub static SCHEMA: Schema = Schema {
    kind: "cognito_user_pool_client",
    doc: "An app client of a user pool: auth flows, OAuth flows, scopes, callback and logout \
          URLs, token lifetimes. With `generate_secret = true` Cognito makes a client secret; \
          it never appears in plans, state or logs. Give `client_secret_to = \
          \"${secret.NAME.arn}\"` (a `secret` with neither `generate` nor `value_from_env`) and \
          the secret is written there at create, from memory to Secrets Manager. Its id is \
          `<user pool id>/<client id>`. Observing costs one DescribeUserPoolClient per client. \
          Not taggable: a client whose create was interrupted (or that state forgot) is found \
          again by its name in the pool and taken over.",
    fields: &[
        Field::new(
            "user_pool_id",
            Ty::Str,
            "The pool, like \"${cognito_user_pool.main.id}\". Changing it replaces the client.",
        )
        .required()
        .force_new(),
        Field::new("name", Ty::Str, "The client's name.").required(),
        Field::new(
            "generate_secret",
            Ty::Bool,
            "Have Cognito make a client secret (for a server-side app). Changing it replaces \
             the client.",
        )
        .default(Default::Bool(false))
        .force_new(),
        Field::new(
            "client_secret_to",
            Ty::Str,
            "A declared `secret` to write the client secret into, like \
             \"${secret.web_client.arn}\". Needs `generate_secret`. Written at create and \
             whenever this field changes.",
        )
        .local(),
        Field::new(
            "explicit_auth_flows",
            Ty::List(&Ty::Enum(FLOWS)),
            "Sign-in flows the client may use (ALLOW_USER_SRP_AUTH, ...).",
        )
        .set(),
        Field::new(
            "allowed_oauth_flows",
            Ty::List(&Ty::Enum(OAUTH_FLOWS)),
            "OAuth flows: code, implicit, client_credentials. Needs callback URLs for code \
             and implicit.",
        )
        .set(),
        Field::new(
            "allowed_oauth_scopes",
            Ty::List(&Ty::Str),
            "OAuth scopes: openid, email, profile, phone, aws.cognito.signin.user.admin or a \
             resource server's `server/scope`.",
        )
        .set(),
        Field::new(
            "callback_urls",
            Ty::List(&Ty::Str),
            "Where Cognito may redirect after sign-in: https, or http only on localhost.",
        )
        .set(),
        Field::new(
            "logout_urls",
            Ty::List(&Ty::Str),
            "Where Cognito may redirect after sign-out: https, or http only on localhost.",
        )
        .set(),
        Field::new(
            "supported_identity_providers",
            Ty::List(&Ty::Str),
            "Identity providers the client may use; COGNITO for the pool's own users.",
        )
        .set(),
        Field::new(
            "access_token_validity",
            Ty::Pattern(crate::kit::duration::check_duration),
            "How long access tokens live, 5m to 1d (\"1h\").",
        )
        .norm(Norm::With(duration_norm))
        .default(Default::Str("1h")),
        Field::new(
            "id_token_validity",
            Ty::Pattern(crate::kit::duration::check_duration),
            "How long id tokens live, 5m to 1d (\"1h\").",
        )
        .norm(Norm::With(duration_norm))
        .default(Default::Str("1h")),
        Field::new(
            "refresh_token_validity",
            Ty::Pattern(crate::kit::duration::check_duration),
            "How long refresh tokens live, 1h to 3650d (\"30d\").",
        )
        .norm(Norm::With(duration_norm))
        .default(Default::Str("30d")),
        Field::new(
            "prevent_user_existence_errors",
            Ty::Bool,
            "Answer a wrong user name as a wrong password, so sign-in does not tell who has an account.",
        )
        .default(Default::Bool(true)),
    ],
    attributes: &[
        ("id", "`<user pool id>/<client id>`."),
        ("client_id", "The client id apps are configured with."),
    ],
    taggable: false,
};

type Problem = (&'static str, String, String);

/// Whether a redirect URL is one Cognito takes: https, or http on localhost.
fn url_problem(u: &str) -> Option<String> {
    if u.contains("${") {
        return None;
    }
    if let Some(rest) = u.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        return (host != "localhost" && host != "127.0.0.1")
            .then(|| format!("\"{u}\" is not https; Cognito takes http only for localhost"));
    }
    if !u.starts_with("https://") || u.contains('#') {
        return Some(format!(
            "\"{u}\" is not an https URL without a fragment; Cognito refuses it"
        ));
    }
    None
}

fn problems(f: &Fields) -> Vec<Problem> {
    let mut out = Vec::new();
    for k in ["callback_urls", "logout_urls"] {
        for u in strs_of(f, k).unwrap_or_default() {
            if let Some(msg) = url_problem(&u) {
                out.push((
                    k,
                    msg,
                    "use https://... (http://localhost:PORT/... is fine for development)".into(),
                ));
            }
        }
    }
    let flows = strs_of(f, "allowed_oauth_flows").unwrap_or_default();
    let redirects = flows.iter().any(|x| x == "code" || x == "implicit");
    if redirects && strs_of(f, "callback_urls").unwrap_or_default().is_empty() {
        out.push((
            "allowed_oauth_flows",
            "the code and implicit flows redirect, but no callback URL is declared".into(),
            "add `callback_urls = [\"https://...\"]`".into(),
        ));
    }
    if !flows.is_empty()
        && strs_of(f, "allowed_oauth_scopes")
            .unwrap_or_default()
            .is_empty()
    {
        out.push((
            "allowed_oauth_scopes",
            "OAuth flows are on but no scope is allowed".into(),
            "add `allowed_oauth_scopes = [\"openid\", \"email\"]`".into(),
        ));
    }
    for s in strs_of(f, "allowed_oauth_scopes").unwrap_or_default() {
        if !STANDARD_SCOPES.contains(&s.as_str()) && !s.contains('/') {
            out.push((
                "allowed_oauth_scopes",
                format!("`{s}` is neither a standard scope nor a resource server's `server/scope`"),
                format!("use one of {}", STANDARD_SCOPES.join(", ")),
            ));
        }
    }
    if f.contains_key("client_secret_to") && bool_of(f, "generate_secret") != Some(true) {
        out.push((
            "client_secret_to",
            "there is no client secret to write without `generate_secret = true`".into(),
            "set `generate_secret = true`, or remove `client_secret_to`".into(),
        ));
    }
    let bounds = [
        ("access_token_validity", 300, 86400, "5m to 1d"),
        ("id_token_validity", 300, 86400, "5m to 1d"),
        ("refresh_token_validity", 3600, 3650 * 86400, "1h to 3650d"),
    ];
    for (k, lo, hi, words) in bounds {
        if let Some(Ok(d)) = str_of(f, k).map(parse_duration) {
            if !(lo..=hi).contains(&d.as_secs()) {
                out.push((
                    k,
                    format!("`{k}` is outside what Cognito takes ({words})"),
                    format!("choose a lifetime from {words}"),
                ));
            }
        }
    }
    out
}

fn stack_problems(stack: &Stack, r: &Resource) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(s) = referenced(stack, r.fields.get("client_secret_to"), "secret") {
        if s.fields.contains_key("generate") || s.fields.contains_key("value_from_env") {
            out.push((
                "client_secret_to",
                format!(
                    "{} has a value source of its own, which would overwrite the client secret",
                    s.address
                ),
                "point it at a `secret` declared without `generate` and `value_from_env`".into(),
            ));
        }
    }
    out
}

fn split(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once('/').ok_or_else(|| {
        ProviderError::InvalidInput(format!(
            "`{id}` is not a user pool client id: write it `<user pool id>/<client id>`"
        ))
    })
}

fn minutes(f: &Fields, k: &str) -> Option<i32> {
    let d = parse_duration(str_of(f, k)?).ok()?;
    i32::try_from(d.as_secs() / 60).ok()
}

/// A lifetime AWS answers in its unit, as a duration string.
fn lifetime(
    n: Option<i32>,
    unit: Option<&TimeUnitsType>,
    default_unit: TimeUnitsType,
) -> Option<Value> {
    let n = u64::try_from(n?).ok()?;
    let secs = match unit.unwrap_or(&default_unit) {
        TimeUnitsType::Seconds => n,
        TimeUnitsType::Minutes => n * 60,
        TimeUnitsType::Hours => n * 3600,
        TimeUnitsType::Days => n * 86400,
        _ => return None,
    };
    Some(Value::str(crate::kit::duration::fmt_duration(
        std::time::Duration::from_secs(secs),
    )))
}

fn strs<T: AsRef<str>>(xs: &[T]) -> Value {
    Value::List(xs.iter().map(|x| Value::str(x.as_ref())).collect())
}

fn observed(c: &UserPoolClientType) -> Option<Observed> {
    let pool = c.user_pool_id()?;
    let client = c.client_id()?;
    let id = format!("{pool}/{client}");
    let mut f = Fields::new();
    f.insert("user_pool_id".into(), Value::str(pool));
    f.insert(
        "name".into(),
        Value::str(c.client_name().unwrap_or_default()),
    );
    f.insert(
        "generate_secret".into(),
        Value::Bool(c.client_secret().is_some()),
    );
    f.insert(
        "explicit_auth_flows".into(),
        strs(
            &c.explicit_auth_flows()
                .iter()
                .map(|x| x.as_str())
                .collect::<Vec<_>>(),
        ),
    );
    f.insert(
        "allowed_oauth_flows".into(),
        strs(
            &c.allowed_o_auth_flows()
                .iter()
                .map(|x| x.as_str())
                .collect::<Vec<_>>(),
        ),
    );
    f.insert(
        "allowed_oauth_scopes".into(),
        strs(c.allowed_o_auth_scopes()),
    );
    f.insert("callback_urls".into(), strs(c.callback_urls()));
    f.insert("logout_urls".into(), strs(c.logout_urls()));
    f.insert(
        "supported_identity_providers".into(),
        strs(c.supported_identity_providers()),
    );
    let units = c.token_validity_units();
    // AWS's units when none were given: hours for access and id tokens, days for refresh tokens.
    if let Some(v) = lifetime(
        c.access_token_validity(),
        units.and_then(|u| u.access_token()),
        TimeUnitsType::Hours,
    ) {
        f.insert("access_token_validity".into(), v);
    }
    if let Some(v) = lifetime(
        c.id_token_validity(),
        units.and_then(|u| u.id_token()),
        TimeUnitsType::Hours,
    ) {
        f.insert("id_token_validity".into(), v);
    }
    if let Some(v) = lifetime(
        Some(c.refresh_token_validity()).filter(|n| *n > 0),
        units.and_then(|u| u.refresh_token()),
        TimeUnitsType::Days,
    ) {
        f.insert("refresh_token_validity".into(), v);
    }
    f.insert(
        "prevent_user_existence_errors".into(),
        Value::Bool(
            c.prevent_user_existence_errors() == Some(&PreventUserExistenceErrorTypes::Enabled),
        ),
    );
    let mut attributes = Fields::new();
    attributes.insert("id".into(), Value::str(&id));
    attributes.insert("client_id".into(), Value::str(client));
    Some(Observed {
        id,
        fields: f,
        attributes,
        tags: indexmap::IndexMap::new(),
    })
}

/// One client, with its secret apart (never part of the observation).
async fn describe(
    cx: &Cx,
    id: &str,
) -> Result<Option<(Observed, Option<Sensitive>)>, ProviderError> {
    let (pool, client) = split(id)?;
    let out = unless_gone(
        cx.cognito_idp
            .describe_user_pool_client()
            .user_pool_id(pool)
            .client_id(client)
            .send()
            .await,
    )?;
    Ok(out.and_then(|o| {
        let c = o.user_pool_client()?;
        let secret = c.client_secret().map(Sensitive::new);
        Some((observed(c)?, secret))
    }))
}

fn enums<T: From<&'static str>>(f: &Fields, k: &str, known: &[&'static str]) -> Option<Vec<T>> {
    strs_of(f, k).map(|l| {
        l.iter()
            .filter_map(|s| known.iter().find(|k| **k == s.as_str()).map(|k| T::from(k)))
            .collect()
    })
}

fn units() -> TokenValidityUnitsType {
    TokenValidityUnitsType::builder()
        .access_token(TimeUnitsType::Minutes)
        .id_token(TimeUnitsType::Minutes)
        .refresh_token(TimeUnitsType::Minutes)
        .build()
}

fn prevent(f: &Fields) -> PreventUserExistenceErrorTypes {
    if bool_of(f, "prevent_user_existence_errors") == Some(false) {
        PreventUserExistenceErrorTypes::Legacy
    } else {
        PreventUserExistenceErrorTypes::Enabled
    }
}

/// The declared settings on a Create- or UpdateUserPoolClient request: two
/// builder types with the same setters, and an update must send them all.
macro_rules! settings {
    ($req:expr, $f:expr) => {{
        let f = $f;
        $req.set_explicit_auth_flows(enums::<ExplicitAuthFlowsType>(
            f,
            "explicit_auth_flows",
            FLOWS,
        ))
        .set_allowed_o_auth_flows(enums::<OAuthFlowType>(
            f,
            "allowed_oauth_flows",
            OAUTH_FLOWS,
        ))
        .set_allowed_o_auth_scopes(strs_of(f, "allowed_oauth_scopes"))
        .allowed_o_auth_flows_user_pool_client(
            !strs_of(f, "allowed_oauth_flows")
                .unwrap_or_default()
                .is_empty(),
        )
        .set_callback_urls(strs_of(f, "callback_urls"))
        .set_logout_urls(strs_of(f, "logout_urls"))
        .set_supported_identity_providers(strs_of(f, "supported_identity_providers"))
        .set_access_token_validity(minutes(f, "access_token_validity"))
        .set_id_token_validity(minutes(f, "id_token_validity"))
        .set_refresh_token_validity(minutes(f, "refresh_token_validity"))
        .token_validity_units(units())
        .prevent_user_existence_errors(prevent(f))
    }};
}

/// Writes the client secret into the declared secret, from memory to Secrets Manager.
async fn write_secret(
    cx: &Cx,
    a: &str,
    f: &Fields,
    secret: Option<&Sensitive>,
) -> Result<(), ProviderError> {
    let Some(target) = str_of(f, "client_secret_to") else {
        return Ok(());
    };
    let secret = secret.ok_or_else(|| {
        ProviderError::Other(format!(
            "{a}: the client has no secret to write to {target}; it was made without \
             `generate_secret`, which only a replacement changes"
        ))
    })?;
    put_value(cx, a, target, secret).await.map(drop)
}

/// Finds a client named `name` in the pool: ListUserPoolClients, 60 a page.
async fn find_by_name(cx: &Cx, pool: &str, name: &str) -> Result<Option<String>, ProviderError> {
    let mut pages = cx
        .cognito_idp
        .list_user_pool_clients()
        .user_pool_id(pool)
        .max_results(60)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProviderError::from_sdk)?;
        if let Some(c) = page
            .user_pool_clients()
            .iter()
            .find(|c| c.client_name() == Some(name))
        {
            return Ok(c.client_id().map(|id| format!("{pool}/{id}")));
        }
    }
    Ok(None)
}

#[async_trait]
impl Provider for UserPoolClient {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        let mut p = problems(&r.fields);
        p.extend(stack_problems(stack, r));
        diagnostics(r, p)
    }

    /// One DescribeUserPoolClient per client: Cognito has no batch read.
    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let reads = ids
            .iter()
            .map(|id| async move { Ok(describe(cx, id).await?.map(|(o, _)| o)) })
            .collect();
        Ok(crate::kit::by_id(each(reads).await?))
    }

    async fn find_tagged(
        &self,
        _cx: &Cx,
        _addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(vec![])
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        refuse(a, problems(f))?;
        let pool = str_of(f, "user_pool_id").ok_or_else(|| {
            ProviderError::InvalidInput(format!("{a}: `user_pool_id` must be a known string"))
        })?;
        let name = str_of(f, "name").unwrap_or_default();
        // Clients carry no tags: one of this name in the pool is the one an
        // interrupted apply made (or state forgot), and is taken over.
        if let Some(id) = find_by_name(cx, pool, name).await? {
            if want.replacing != Some(id.as_str()) {
                if let Some((live, _)) = describe(cx, &id).await? {
                    let mut changes = crate::kit::adopt::changes_to(self, want, &live);
                    if f.contains_key("client_secret_to")
                        && !changes_field(&changes, "client_secret_to")
                    {
                        changes.push(FieldChange::new("client_secret_to", None, None, false));
                    }
                    return self.update(cx, &live, want, &changes).await;
                }
            }
        }
        let req = cx
            .cognito_idp
            .create_user_pool_client()
            .user_pool_id(pool)
            .client_name(name)
            .generate_secret(bool_of(f, "generate_secret") == Some(true));
        let out = settings!(req, f)
            .send()
            .await
            .map_err(|e| at(a, "CreateUserPoolClient", ProviderError::from_sdk(e)))?;
        let c = out.user_pool_client().ok_or_else(|| {
            ProviderError::Other(format!("{a}: CreateUserPoolClient answered no client"))
        })?;
        let secret = c.client_secret().map(Sensitive::new);
        let mut live = observed(c).ok_or_else(|| {
            ProviderError::Other(format!("{a}: CreateUserPoolClient answered no client id"))
        })?;
        write_secret(cx, a, f, secret.as_ref()).await?;
        if let Some(t) = str_of(f, "client_secret_to") {
            live.fields.insert("client_secret_to".into(), Value::str(t));
        }
        Ok(live)
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        refuse(a, problems(f))?;
        let (pool, client) = split(&live.id)?;
        let only_secret = changes.iter().all(|c| c.field == "client_secret_to");
        if !only_secret {
            // UpdateUserPoolClient resets what it is not given: send everything.
            let req = cx
                .cognito_idp
                .update_user_pool_client()
                .user_pool_id(pool)
                .client_id(client)
                .client_name(str_of(f, "name").unwrap_or_default());
            settings!(req, f)
                .send()
                .await
                .map_err(|e| at(a, "UpdateUserPoolClient", ProviderError::from_sdk(e)))?;
        }
        let (mut now, secret) = describe(cx, &live.id)
            .await?
            .ok_or_else(|| ProviderError::Other(format!("{a}: {} is gone", live.id)))?;
        if changes_field(changes, "client_secret_to") {
            write_secret(cx, a, f, secret.as_ref()).await?;
        }
        if let Some(t) = str_of(f, "client_secret_to") {
            now.fields.insert("client_secret_to".into(), Value::str(t));
        }
        Ok(now)
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let (pool, client) = split(id)?;
        crate::kit::error::gone_is_done(
            cx.cognito_idp
                .delete_user_pool_client()
                .user_pool_id(pool)
                .client_id(client)
                .send()
                .await,
        )
        .map_err(|e| at(id, "DeleteUserPoolClient", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_urls_are_https_or_localhost() {
        assert!(url_problem("https://vivale-healthcare.com/auth/callback").is_none());
        assert!(url_problem("http://localhost:9002/auth/callback").is_none());
        assert!(url_problem("http://vivale-healthcare.com/cb").is_some());
        assert!(url_problem("https://x.example/#frag").is_some());
        assert!(url_problem("${output.x}").is_none());
    }

    #[test]
    fn lifetimes_read_back_in_any_unit() {
        let h = lifetime(Some(1), None, TimeUnitsType::Hours).unwrap();
        let m = lifetime(
            Some(60),
            Some(&TimeUnitsType::Minutes),
            TimeUnitsType::Hours,
        )
        .unwrap();
        assert_eq!(h, m);
        let d = lifetime(Some(30), None, TimeUnitsType::Days).unwrap();
        let empty = indexmap::IndexMap::new();
        assert_eq!(d, duration_norm(&Value::str("30d"), &empty));
    }
}
