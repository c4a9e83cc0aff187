//! `cognito_identity_pool_roles`: the IAM roles an identity pool hands out
//! credentials of. A kind beside the pool, as Terraform's roles attachment:
//! a role's trust policy must name the pool's id (`cognito-identity.amazonaws.com:aud`),
//! so the pool cannot also name the role.
//!
//! Its id is the pool's id: a pool has one set of roles.

use crate::kit::error::{at, unless_gone};
use crate::kit::fields::{bool_of, diagnostics, referenced, refuse, str_of};
use crate::kit::{each, Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use reconcile_core::model::schema::{Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct IdentityPoolRoles;

pub static SCHEMA: Schema = Schema {
    kind: "cognito_identity_pool_roles",
    doc: "The roles of an identity pool: `authenticated_role` for signed-in users, \
          `unauthenticated_role` for guests. Each role trusts cognito-identity.amazonaws.com \
          for this pool only (a condition on `cognito-identity.amazonaws.com:aud` naming \
          \"${cognito_identity_pool.NAME.id}\"), which is why the roles are not fields of \
          the pool. Its id is the pool's id; deleting it detaches both roles, and a pool \
          whose roles were all detached by hand shows it deleted outside reconcile. Observing costs \
          one GetIdentityPoolRoles per pool. Role mappings by rule or token are not managed. \
          Emulator: moto 5.2.5 lacks Set/GetIdentityPoolRoles; the bundled \
          scripts/moto_server.py adds both, storing the roles without checking them.",
    fields: &[
        Field::new(
            "identity_pool_id",
            Ty::Str,
            "The pool, like \"${cognito_identity_pool.files.id}\".",
        )
        .required()
        .force_new(),
        Field::new(
            "authenticated_role",
            Ty::Str,
            "The IAM role signed-in users get credentials of, like \
             \"${iam_role.signed_in.arn}\".",
        )
        .absent_clears(),
        Field::new(
            "unauthenticated_role",
            Ty::Str,
            "The IAM role guests get credentials of; the pool must allow guests.",
        )
        .absent_clears(),
    ],
    attributes: &[("id", "The pool's id.")],
    taggable: false,
};

const ROLES: [(&str, &str); 2] = [
    ("authenticated_role", "authenticated"),
    ("unauthenticated_role", "unauthenticated"),
];

type Problem = (&'static str, String, String);

fn problems(f: &Fields) -> Vec<Problem> {
    let mut out = Vec::new();
    for (k, _) in ROLES {
        let Some(arn) = str_of(f, k).filter(|a| !a.contains("${")) else {
            continue;
        };
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let is_role = parts.len() == 6
            && parts[0] == "arn"
            && parts[2] == "iam"
            && parts[4].len() == 12
            && parts[5].starts_with("role/");
        if !is_role {
            out.push((
                k,
                format!("`{arn}` is not an IAM role ARN"),
                "refer to a role, like \"${iam_role.NAME.arn}\"".into(),
            ));
        }
    }
    if ROLES.iter().all(|(k, _)| !f.contains_key(*k)) {
        out.push((
            "identity_pool_id",
            "no role is declared".into(),
            "add `authenticated_role`, `unauthenticated_role` or both".into(),
        ));
    }
    out
}

fn stack_problems(stack: &Stack, r: &Resource) -> Vec<Problem> {
    let mut out = Vec::new();
    let pool = r.fields.get("identity_pool_id");
    if let Some(p) = referenced(stack, pool, "cognito_identity_pool") {
        if r.fields.contains_key("unauthenticated_role")
            && bool_of(&p.fields, "allow_unauthenticated_identities") != Some(true)
        {
            out.push((
                "unauthenticated_role",
                format!(
                    "{} gives guests no credentials, so this role is never used",
                    p.address
                ),
                format!(
                    "set `allow_unauthenticated_identities = true` on {}, or remove the role",
                    p.address
                ),
            ));
        }
    }
    let twins = stack
        .resources
        .values()
        .filter(|o| o.kind == r.kind && o.address < r.address)
        .filter(|o| pool.is_some() && o.fields.get("identity_pool_id") == pool);
    if let Some(o) = twins.into_iter().next() {
        out.push((
            "identity_pool_id",
            format!(
                "{} already sets this pool's roles; the two would undo each other",
                o.address
            ),
            "declare a pool's roles once".into(),
        ));
    }
    out
}

/// The pool's roles; `None` when the pool is gone or has none: roles detached
/// by hand are this resource deleted outside reconcile.
async fn read(cx: &Cx, id: &str) -> Result<Option<Observed>, ProviderError> {
    let Some(r) = unless_gone(
        cx.cognito_identity
            .get_identity_pool_roles()
            .identity_pool_id(id)
            .send()
            .await,
    )?
    else {
        return Ok(None);
    };
    let mut f = Fields::new();
    for (field, key) in ROLES {
        if let Some(arn) = r.roles().and_then(|m| m.get(key)) {
            f.insert(field.into(), Value::str(arn));
        }
    }
    if f.is_empty() {
        return Ok(None);
    }
    f.insert("identity_pool_id".into(), Value::str(id));
    let mut attributes = Fields::new();
    attributes.insert("id".into(), Value::str(id));
    Ok(Some(Observed {
        id: id.to_string(),
        fields: f,
        attributes,
        tags: indexmap::IndexMap::new(),
    }))
}

/// SetIdentityPoolRoles replaces the whole set: what is not given is detached.
async fn set(cx: &Cx, a: &str, id: &str, f: &Fields) -> Result<(), ProviderError> {
    let roles: HashMap<String, String> = ROLES
        .iter()
        .filter_map(|(field, key)| Some((key.to_string(), str_of(f, field)?.to_string())))
        .collect();
    cx.cognito_identity
        .set_identity_pool_roles()
        .identity_pool_id(id)
        .set_roles(Some(roles))
        .send()
        .await
        .map(drop)
        .map_err(|e| at(a, "SetIdentityPoolRoles", ProviderError::from_sdk(e)))
}

#[async_trait]
impl Provider for IdentityPoolRoles {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        let mut p = problems(&r.fields);
        p.extend(stack_problems(stack, r));
        diagnostics(r, p)
    }

    /// One GetIdentityPoolRoles per pool.
    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let reads = ids.iter().map(|id| read(cx, id)).collect();
        Ok(crate::kit::by_id(each(reads).await?))
    }

    /// Not taggable; a create sets the whole set, so an interrupted one is
    /// simply made again.
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
        let id = str_of(f, "identity_pool_id").ok_or_else(|| {
            ProviderError::InvalidInput(format!("{a}: `identity_pool_id` must be a known string"))
        })?;
        set(cx, a, id, f).await?;
        read(cx, id)
            .await?
            .ok_or_else(|| ProviderError::Other(format!("{a}: pool {id} is gone")))
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        _changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        let a = want.address;
        refuse(a, problems(want.fields))?;
        set(cx, a, &live.id, want.fields).await?;
        read(cx, &live.id)
            .await?
            .ok_or_else(|| ProviderError::Other(format!("{a}: pool {} is gone", live.id)))
    }

    /// Detaches both roles; a pool already gone has none.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        crate::kit::error::gone_is_done(
            cx.cognito_identity
                .set_identity_pool_roles()
                .identity_pool_id(id)
                .set_roles(Some(HashMap::new()))
                .send()
                .await,
        )
        .map_err(|e| at(id, "SetIdentityPoolRoles", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::{resource, stack};

    #[test]
    fn roles_are_role_arns_and_at_least_one() {
        let of = |pairs: &[(&str, Value)]| -> Vec<&'static str> {
            problems(&resource("cognito_identity_pool_roles.r", pairs).fields)
                .into_iter()
                .map(|p| p.0)
                .collect()
        };
        let pool = ("identity_pool_id", Value::str("us-east-1:abc"));
        assert_eq!(of(std::slice::from_ref(&pool)), ["identity_pool_id"]);
        assert_eq!(
            of(&[
                pool.clone(),
                ("authenticated_role", Value::str("arn:aws:iam::1:user/x"))
            ]),
            ["authenticated_role"]
        );
        assert!(of(&[
            pool,
            (
                "authenticated_role",
                Value::str("arn:aws:iam::123456789012:role/signed-in")
            )
        ])
        .is_empty());
    }

    #[test]
    fn guests_need_a_pool_that_lets_them_in_and_a_pool_has_one_set() {
        let pool = resource("cognito_identity_pool.p", &[("name", Value::str("files"))]);
        let role = Value::str("arn:aws:iam::123456789012:role/guest");
        let r = resource(
            "cognito_identity_pool_roles.a",
            &[
                (
                    "identity_pool_id",
                    Value::str("${cognito_identity_pool.p.id}"),
                ),
                ("unauthenticated_role", role.clone()),
            ],
        );
        let mut b = r.clone();
        b.address = "cognito_identity_pool_roles.b".into();
        b.name = "b".into();
        let s = stack(vec![pool, r.clone(), b.clone()]);
        let fields = |x: &Resource| -> Vec<&str> {
            stack_problems(&s, x).into_iter().map(|p| p.0).collect()
        };
        assert_eq!(fields(&r), ["unauthenticated_role"]);
        assert_eq!(fields(&b), ["unauthenticated_role", "identity_pool_id"]);
    }
}
