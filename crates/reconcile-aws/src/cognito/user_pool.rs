//! `cognito_user_pool`: where patients and clinicians sign in. It holds every
//! user account, so it is guarded like a database: a change AWS can only make
//! by replacing the pool (its sign-in attributes, a custom attribute changed or
//! removed) is refused while `protect` or `deletion_protection` is on.
//!
//! AWS resets every setting UpdateUserPool is not given to its default, so an
//! update always sends the whole declared configuration. MFA is read and set
//! with its own pair of calls (Get/SetUserPoolMfaConfig), the only ones that
//! say which second factors are on.

use crate::kit::error::{at, unless_gone};
use crate::kit::fields::{bool_of, changes_field, diagnostics, refuse, str_of};
use crate::kit::{adopt, each, Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::types::{
    AccountRecoverySettingType, AdminCreateUserConfigType, AliasAttributeType, AttributeDataType,
    DeletionProtectionType, NumberAttributeConstraintsType, PasswordPolicyType,
    RecoveryOptionNameType, RecoveryOptionType, SchemaAttributeType, SmsConfigurationType,
    SmsMfaConfigType, SoftwareTokenMfaConfigType, StringAttributeConstraintsType, UserPoolMfaType,
    UserPoolPolicyType, UserPoolType, UsernameAttributeType, VerifiedAttributeType,
};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct UserPool;

const SIGN_IN: &[&str] = &["email", "phone_number"];
const ALIASES: &[&str] = &["email", "phone_number", "preferred_username"];
const MFA: &[&str] = &["OFF", "ON", "OPTIONAL"];
const RECOVERY: &[&str] = &["verified_email", "verified_phone_number", "admin_only"];
/// ListUserPools answers at most 60 a page.
const LIST_PAGE: i32 = 60;

const PASSWORD_FIELDS: &[Field] = &[
    Field::new("minimum_length", Ty::Int, "Shortest password accepted.")
        .range(6, 99)
        .default(Default::Int(8)),
    Field::new(
        "require_lowercase",
        Ty::Bool,
        "At least one lower-case letter.",
    )
    .default(Default::Bool(true)),
    Field::new(
        "require_uppercase",
        Ty::Bool,
        "At least one upper-case letter.",
    )
    .default(Default::Bool(true)),
    Field::new("require_numbers", Ty::Bool, "At least one digit.").default(Default::Bool(true)),
    Field::new("require_symbols", Ty::Bool, "At least one symbol.").default(Default::Bool(true)),
    Field::new(
        "temporary_password_validity_days",
        Ty::Int,
        "How long a password an administrator set stays usable.",
    )
    .range(0, 365)
    .default(Default::Int(7)),
];

const SMS_FIELDS: &[Field] = &[
    Field::new(
        "sns_caller_arn",
        Ty::Str,
        "The IAM role Cognito assumes to send SMS through SNS, like \"${iam_role.cognito_sms.arn}\".",
    )
    .required(),
    Field::new(
        "external_id",
        Ty::Str,
        "The external id the role's trust policy expects from Cognito.",
    ),
    Field::new("sns_region", Ty::Str, "The region whose SNS sends the messages."),
];

const RECOVERY_FIELDS: &[Field] = &[
    Field::new("name", Ty::Enum(RECOVERY), "How an account is recovered.").required(),
    Field::new("priority", Ty::Int, "1 is tried first.")
        .required()
        .range(1, 2),
];

const ATTRIBUTE_FIELDS: &[Field] = &[
    Field::new(
        "name",
        Ty::Str,
        "The attribute's name without `custom:` (users carry it as `custom:NAME`).",
    )
    .required(),
    Field::new("type", Ty::Enum(&["String", "Number"]), "Its data type.")
        .default(Default::Str("String")),
    Field::new(
        "mutable",
        Ty::Bool,
        "Whether a user's value can change after sign-up.",
    )
    .default(Default::Bool(true)),
    Field::new("min_length", Ty::Int, "For a String: shortest value.").range(0, 2048),
    Field::new("max_length", Ty::Int, "For a String: longest value.").range(0, 2048),
    Field::new("min_value", Ty::Int, "For a Number: smallest value."),
    Field::new("max_value", Ty::Int, "For a Number: largest value."),
];

pub static SCHEMA: Schema = Schema {
    kind: "cognito_user_pool",
    doc: "A Cognito user pool: sign-in attributes, MFA, password policy, self sign-up, \
          account recovery, custom attributes, deletion protection and tags. It holds the \
          users, so a change AWS can only make by replacing the pool is refused while \
          `protect` (or `deletion_protection`) is on, and the plan names the field. Adding a \
          custom attribute is done in place (AddCustomAttributes); changing or removing one \
          cannot be done by AWS and forces a replacement. Observing costs a DescribeUserPool \
          and a GetUserPoolMfaConfig per pool. `username_attributes` and `alias_attributes` \
          are compared with the last apply: AWS never changes them after create (and the \
          emulator forgets them on UpdateUserPool). The emulator keeps the pool's name on \
          UpdateUserPool (AWS renames it).",
    fields: &[
        Field::new("name", Ty::Str, "The pool's name.").required(),
        Field::new(
            "username_attributes",
            Ty::List(&Ty::Enum(SIGN_IN)),
            "What users sign in with instead of a user name (`[\"email\"]`). Exclusive with \
             `alias_attributes`. Changing it replaces the pool.",
        )
        .set()
        .force_new()
        .local(),
        Field::new(
            "alias_attributes",
            Ty::List(&Ty::Enum(ALIASES)),
            "Attributes users may sign in with beside their user name. Changing it replaces \
             the pool.",
        )
        .set()
        .force_new()
        .local(),
        Field::new(
            "auto_verified_attributes",
            Ty::List(&Ty::Enum(SIGN_IN)),
            "Attributes Cognito verifies by sending a code (`[\"email\"]`).",
        )
        .set(),
        Field::new(
            "mfa_configuration",
            Ty::Enum(MFA),
            "OFF, OPTIONAL (each user chooses) or ON (required). ON and OPTIONAL need \
             `software_token_mfa` or `sms_mfa`.",
        )
        .default(Default::Str("OFF")),
        Field::new(
            "software_token_mfa",
            Ty::Bool,
            "Authenticator apps (TOTP) as a second factor.",
        )
        .default(Default::Bool(false)),
        Field::new(
            "sms_mfa",
            Ty::Bool,
            "Text messages as a second factor; needs `sms_configuration`.",
        )
        .default(Default::Bool(false)),
        Field::new(
            "sms_configuration",
            Ty::Object(SMS_FIELDS),
            "How Cognito sends text messages (verification codes, SMS MFA).",
        ),
        Field::new(
            "password_policy",
            Ty::Object(PASSWORD_FIELDS),
            "Rules for passwords; AWS's defaults apply to what is left out.",
        ),
        Field::new(
            "allow_admin_create_user_only",
            Ty::Bool,
            "Self sign-up off: only administrators create users.",
        )
        .default(Default::Bool(false)),
        Field::new(
            "account_recovery",
            Ty::List(&Ty::Object(RECOVERY_FIELDS)),
            "How a forgotten password is recovered, in priority order.",
        ),
        Field::new(
            "custom_attributes",
            Ty::List(&Ty::Object(ATTRIBUTE_FIELDS)),
            "Custom user attributes. Adding one is done in place; changing or removing one \
             replaces the pool (AWS cannot), which `protect` refuses.",
        )
        .grows_in_place(),
        Field::new(
            "deletion_protection",
            Ty::Bool,
            "AWS refuses to delete the pool while on; reconcile refuses a plan that would.",
        )
        .default(Default::Bool(false)),
    ],
    attributes: &[
        ("id", "The pool's id (us-east-1_AbC123)."),
        ("arn", "The pool's ARN."),
        (
            "endpoint",
            "The issuer host for tokens and for an identity pool's provider name \
             (cognito-idp.REGION.amazonaws.com/POOL_ID).",
        ),
    ],
    taggable: true,
};

type Problem = (&'static str, String, String);

fn problems(f: &Fields) -> Vec<Problem> {
    let mut out = Vec::new();
    let on = |k: &str| bool_of(f, k) == Some(true);
    let mfa = str_of(f, "mfa_configuration").unwrap_or("OFF");
    if mfa != "OFF" && !on("software_token_mfa") && !on("sms_mfa") {
        out.push((
            "mfa_configuration",
            format!("MFA is {mfa} but no second factor is on"),
            "set `software_token_mfa = true` (authenticator apps) and/or `sms_mfa = true`".into(),
        ));
    }
    if mfa == "OFF" && (on("software_token_mfa") || on("sms_mfa")) {
        out.push((
            "mfa_configuration",
            "a second factor is on while MFA is OFF".into(),
            "set `mfa_configuration = \"OPTIONAL\"` or \"ON\", or turn the factor off".into(),
        ));
    }
    if on("sms_mfa") && !f.contains_key("sms_configuration") {
        out.push((
            "sms_mfa",
            "SMS MFA needs a way to send text messages".into(),
            "add `sms_configuration = { sns_caller_arn = \"${iam_role.NAME.arn}\" }`".into(),
        ));
    }
    if f.contains_key("username_attributes") && f.contains_key("alias_attributes") {
        out.push((
            "alias_attributes",
            "`username_attributes` and `alias_attributes` are both set".into(),
            "keep `username_attributes` to sign in with an email instead of a user name, or \
             `alias_attributes` to allow both"
                .into(),
        ));
    }
    if let Some(Value::List(rs)) = f.get("account_recovery") {
        let mut prio: Vec<i64> = rs
            .iter()
            .filter_map(|r| r.as_map()?.get("priority")?.as_int())
            .collect();
        prio.sort();
        if prio.windows(2).any(|w| w[0] == w[1]) {
            out.push((
                "account_recovery",
                "two recovery mechanisms have the same priority".into(),
                "number them 1 and 2".into(),
            ));
        }
    }
    if let Some(Value::List(attrs)) = f.get("custom_attributes") {
        let mut seen = std::collections::BTreeSet::new();
        for a in attrs.iter().filter_map(Value::as_map) {
            let Some(name) = a.get("name").and_then(Value::as_str) else {
                continue;
            };
            if !seen.insert(name) {
                out.push((
                    "custom_attributes",
                    format!("custom attribute `{name}` is declared twice"),
                    "keep one".into(),
                ));
            }
            if name.starts_with("custom:") || name.len() > 20 || name.is_empty() {
                out.push((
                    "custom_attributes",
                    format!("`{name}` is not a custom attribute name AWS takes"),
                    "write the name without `custom:`, 1 to 20 characters".into(),
                ));
            }
            let int = |k: &str| a.get(k).and_then(Value::as_int);
            if let (Some(lo), Some(hi)) = (int("min_length"), int("max_length")) {
                if lo > hi {
                    out.push((
                        "custom_attributes",
                        format!("`{name}`: min_length {lo} is above max_length {hi}"),
                        "swap them".into(),
                    ));
                }
            }
        }
    }
    out
}

fn strs(xs: impl IntoIterator<Item = impl AsRef<str>>) -> Value {
    Value::List(xs.into_iter().map(|x| Value::str(x.as_ref())).collect())
}

fn map<const N: usize>(pairs: [(&str, Option<Value>); N]) -> Value {
    Value::Map(crate::kit::fields::some_fields_of(pairs))
}

/// The declared fields as AWS reports them, for one pool.
fn fields_from(up: &UserPoolType) -> Fields {
    let mut f = Fields::new();
    f.insert("name".into(), Value::str(up.name().unwrap_or_default()));
    if !up.username_attributes().is_empty() {
        f.insert(
            "username_attributes".into(),
            strs(up.username_attributes().iter().map(|a| a.as_str())),
        );
    }
    if !up.alias_attributes().is_empty() {
        f.insert(
            "alias_attributes".into(),
            strs(up.alias_attributes().iter().map(|a| a.as_str())),
        );
    }
    f.insert(
        "auto_verified_attributes".into(),
        strs(up.auto_verified_attributes().iter().map(|a| a.as_str())),
    );
    if let Some(p) = up.policies().and_then(|p| p.password_policy()) {
        f.insert(
            "password_policy".into(),
            map([
                (
                    "minimum_length",
                    p.minimum_length().map(|n| Value::Int(n.into())),
                ),
                (
                    "require_lowercase",
                    Some(Value::Bool(p.require_lowercase())),
                ),
                (
                    "require_uppercase",
                    Some(Value::Bool(p.require_uppercase())),
                ),
                ("require_numbers", Some(Value::Bool(p.require_numbers()))),
                ("require_symbols", Some(Value::Bool(p.require_symbols()))),
                (
                    "temporary_password_validity_days",
                    Some(Value::Int(p.temporary_password_validity_days().into())),
                ),
            ]),
        );
    }
    f.insert(
        "allow_admin_create_user_only".into(),
        Value::Bool(
            up.admin_create_user_config()
                .map(|c| c.allow_admin_create_user_only())
                .unwrap_or(false),
        ),
    );
    if let Some(r) = up.account_recovery_setting() {
        f.insert(
            "account_recovery".into(),
            Value::List(
                r.recovery_mechanisms()
                    .iter()
                    .map(|m| {
                        map([
                            ("name", Some(Value::str(m.name().as_str()))),
                            ("priority", Some(Value::Int(m.priority().into()))),
                        ])
                    })
                    .collect(),
            ),
        );
    }
    let custom: Vec<Value> = up
        .schema_attributes()
        .iter()
        .filter_map(|a| {
            let name = a.name()?.strip_prefix("custom:")?;
            let s = a.string_attribute_constraints();
            let n = a.number_attribute_constraints();
            let int = |v: Option<&str>| v.and_then(|x| x.parse::<i64>().ok()).map(Value::Int);
            Some(map([
                ("name", Some(Value::str(name))),
                (
                    "type",
                    Some(Value::str(
                        a.attribute_data_type()
                            .map(|t| t.as_str())
                            .unwrap_or("String"),
                    )),
                ),
                ("mutable", Some(Value::Bool(a.mutable().unwrap_or(true)))),
                ("min_length", int(s.and_then(|s| s.min_length()))),
                ("max_length", int(s.and_then(|s| s.max_length()))),
                ("min_value", int(n.and_then(|n| n.min_value()))),
                ("max_value", int(n.and_then(|n| n.max_value()))),
            ]))
        })
        .collect();
    if !custom.is_empty() {
        f.insert("custom_attributes".into(), Value::List(custom));
    }
    f.insert(
        "deletion_protection".into(),
        Value::Bool(up.deletion_protection() == Some(&DeletionProtectionType::Active)),
    );
    if let Some(s) = up.sms_configuration() {
        f.insert(
            "sms_configuration".into(),
            map([
                ("sns_caller_arn", Some(Value::str(s.sns_caller_arn()))),
                ("external_id", s.external_id().map(Value::str)),
                ("sns_region", s.sns_region().map(Value::str)),
            ]),
        );
    }
    f
}

/// Adds the MFA fields to a pool's observation (GetUserPoolMfaConfig); `None`
/// when the pool is gone.
async fn with_mfa(cx: &Cx, mut o: Observed) -> Result<Option<Observed>, ProviderError> {
    let Some(m) = unless_gone(
        cx.cognito_idp
            .get_user_pool_mfa_config()
            .user_pool_id(&o.id)
            .send()
            .await,
    )?
    else {
        return Ok(None);
    };
    let mode = m.mfa_configuration().map(|m| m.as_str()).unwrap_or("OFF");
    let totp = m
        .software_token_mfa_configuration()
        .is_some_and(|t| t.enabled());
    o.fields
        .insert("mfa_configuration".into(), Value::str(mode));
    o.fields
        .insert("software_token_mfa".into(), Value::Bool(totp));
    o.fields.insert(
        "sms_mfa".into(),
        Value::Bool(m.sms_mfa_configuration().is_some()),
    );
    Ok(Some(o))
}

/// A pool as DescribeUserPool answers it, without its MFA fields.
fn observed(up: &UserPoolType, region: &str) -> Option<Observed> {
    let id = up.id()?;
    let tags: IndexMap<String, String> = crate::kit::tags::own_tags(
        up.user_pool_tags()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let mut attributes = Fields::new();
    attributes.insert("id".into(), Value::str(id));
    attributes.insert("arn".into(), Value::str(up.arn().unwrap_or_default()));
    attributes.insert(
        "endpoint".into(),
        Value::str(format!("cognito-idp.{region}.amazonaws.com/{id}")),
    );
    Some(Observed {
        id: id.to_string(),
        fields: fields_from(up),
        attributes,
        tags,
    })
}

/// One pool without its MFA settings; `None` when it is gone.
async fn describe(cx: &Cx, id: &str) -> Result<Option<Observed>, ProviderError> {
    let Some(d) = unless_gone(
        cx.cognito_idp
            .describe_user_pool()
            .user_pool_id(id)
            .send()
            .await,
    )?
    else {
        return Ok(None);
    };
    let Some(up) = d.user_pool() else {
        return Ok(None);
    };
    Ok(observed(up, &cx.region))
}

/// One pool with its MFA settings; `None` when it is gone.
async fn read(cx: &Cx, id: &str) -> Result<Option<Observed>, ProviderError> {
    match describe(cx, id).await? {
        Some(o) => with_mfa(cx, o).await,
        None => Ok(None),
    }
}

/// Ids of every pool named `name`, or of every pool when `None`: ListUserPools, 60 a page.
async fn pool_ids(cx: &Cx, name: Option<&str>) -> Result<Vec<String>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = cx
        .cognito_idp
        .list_user_pools()
        .max_results(LIST_PAGE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProviderError::from_sdk)?;
        out.extend(
            page.user_pools()
                .iter()
                .filter(|p| name.is_none() || p.name() == name)
                .filter_map(|p| p.id().map(str::to_string)),
        );
    }
    Ok(out)
}

fn obj<'a>(f: &'a Fields, k: &str) -> Option<&'a IndexMap<String, Value>> {
    f.get(k).and_then(Value::as_map)
}

fn int32(m: &IndexMap<String, Value>, k: &str) -> Option<i32> {
    m.get(k)
        .and_then(Value::as_int)
        .and_then(|n| i32::try_from(n).ok())
}

fn flag(m: &IndexMap<String, Value>, k: &str) -> Option<bool> {
    m.get(k).and_then(Value::as_bool)
}

fn password_policy(f: &Fields) -> Option<UserPoolPolicyType> {
    let p = obj(f, "password_policy")?;
    Some(
        UserPoolPolicyType::builder()
            .password_policy(
                PasswordPolicyType::builder()
                    .set_minimum_length(int32(p, "minimum_length"))
                    .set_require_lowercase(flag(p, "require_lowercase"))
                    .set_require_uppercase(flag(p, "require_uppercase"))
                    .set_require_numbers(flag(p, "require_numbers"))
                    .set_require_symbols(flag(p, "require_symbols"))
                    .set_temporary_password_validity_days(int32(
                        p,
                        "temporary_password_validity_days",
                    ))
                    .build(),
            )
            .build(),
    )
}

fn sms_configuration(f: &Fields) -> Option<SmsConfigurationType> {
    let s = obj(f, "sms_configuration")?;
    Some(
        SmsConfigurationType::builder()
            .sns_caller_arn(s.get("sns_caller_arn")?.as_str()?)
            .set_external_id(
                s.get("external_id")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            )
            .set_sns_region(
                s.get("sns_region")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            )
            .build(),
    )
}

fn recovery(f: &Fields) -> Result<Option<AccountRecoverySettingType>, ProviderError> {
    let Some(Value::List(rs)) = f.get("account_recovery") else {
        return Ok(None);
    };
    let mechanisms = rs
        .iter()
        .filter_map(Value::as_map)
        .map(|m| {
            RecoveryOptionType::builder()
                .name(RecoveryOptionNameType::from(
                    m.get("name").and_then(Value::as_str).unwrap_or_default(),
                ))
                .priority(int32(m, "priority").unwrap_or(1))
                .build()
                .map_err(|e| ProviderError::InvalidInput(format!("account_recovery: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        AccountRecoverySettingType::builder()
            .set_recovery_mechanisms(Some(mechanisms))
            .build(),
    ))
}

fn attribute(m: &IndexMap<String, Value>) -> SchemaAttributeType {
    let s = |k: &str| m.get(k).and_then(Value::as_int).map(|n| n.to_string());
    let ty = m.get("type").and_then(Value::as_str).unwrap_or("String");
    let mut b = SchemaAttributeType::builder()
        .name(m.get("name").and_then(Value::as_str).unwrap_or_default())
        .attribute_data_type(AttributeDataType::from(ty))
        .mutable(flag(m, "mutable").unwrap_or(true));
    if ty == "Number" {
        if s("min_value").is_some() || s("max_value").is_some() {
            b = b.number_attribute_constraints(
                NumberAttributeConstraintsType::builder()
                    .set_min_value(s("min_value"))
                    .set_max_value(s("max_value"))
                    .build(),
            );
        }
    } else if s("min_length").is_some() || s("max_length").is_some() {
        b = b.string_attribute_constraints(
            StringAttributeConstraintsType::builder()
                .set_min_length(s("min_length"))
                .set_max_length(s("max_length"))
                .build(),
        );
    }
    b.build()
}

fn attributes(f: &Fields) -> Vec<SchemaAttributeType> {
    match f.get("custom_attributes") {
        Some(Value::List(l)) => l.iter().filter_map(Value::as_map).map(attribute).collect(),
        _ => vec![],
    }
}

fn list_of<T: From<&'static str>>(f: &Fields, k: &str, known: &[&'static str]) -> Option<Vec<T>> {
    let Some(Value::List(l)) = f.get(k) else {
        return None;
    };
    Some(
        l.iter()
            .filter_map(Value::as_str)
            .filter_map(|s| known.iter().find(|k| **k == s).map(|k| T::from(k)))
            .collect(),
    )
}

fn protection(f: &Fields) -> DeletionProtectionType {
    if bool_of(f, "deletion_protection") == Some(true) {
        DeletionProtectionType::Active
    } else {
        DeletionProtectionType::Inactive
    }
}

/// The declared settings Create- and UpdateUserPool share (two builder types
/// with the same setters); an update must send them all, as AWS resets the rest.
macro_rules! settings {
    ($req:expr, $f:expr, $tags:expr) => {{
        let f = $f;
        $req.set_policies(password_policy(f))
            .deletion_protection(protection(f))
            .set_auto_verified_attributes(list_of::<VerifiedAttributeType>(
                f,
                "auto_verified_attributes",
                SIGN_IN,
            ))
            .set_sms_configuration(sms_configuration(f))
            .admin_create_user_config(
                AdminCreateUserConfigType::builder()
                    .allow_admin_create_user_only(
                        bool_of(f, "allow_admin_create_user_only") == Some(true),
                    )
                    .build(),
            )
            .set_account_recovery_setting(recovery(f)?)
            .set_user_pool_tags(Some($tags.clone().into_iter().collect()))
    }};
}

/// Sets the MFA mode and its factors as declared.
async fn set_mfa(cx: &Cx, a: &str, id: &str, f: &Fields) -> Result<(), ProviderError> {
    let mode = str_of(f, "mfa_configuration").unwrap_or("OFF");
    let mut req = cx
        .cognito_idp
        .set_user_pool_mfa_config()
        .user_pool_id(id)
        .mfa_configuration(UserPoolMfaType::from(mode));
    if bool_of(f, "software_token_mfa") == Some(true) || mode != "OFF" {
        req = req.software_token_mfa_configuration(
            SoftwareTokenMfaConfigType::builder()
                .enabled(bool_of(f, "software_token_mfa") == Some(true))
                .build(),
        );
    }
    if bool_of(f, "sms_mfa") == Some(true) {
        req = req.sms_mfa_configuration(
            SmsMfaConfigType::builder()
                .set_sms_configuration(sms_configuration(f))
                .build(),
        );
    }
    req.send()
        .await
        .map(drop)
        .map_err(|e| at(a, "SetUserPoolMfaConfig", ProviderError::from_sdk(e)))
}

fn mfa_declared(f: &Fields) -> bool {
    str_of(f, "mfa_configuration").unwrap_or("OFF") != "OFF"
}

impl UserPool {
    /// UpdateUserPool with the whole declared configuration: AWS resets what it is not given.
    async fn update_all(
        &self,
        cx: &Cx,
        a: &str,
        id: &str,
        f: &Fields,
        tags: &IndexMap<String, String>,
    ) -> Result<(), ProviderError> {
        let req = cx
            .cognito_idp
            .update_user_pool()
            .user_pool_id(id)
            .set_pool_name(str_of(f, "name").map(str::to_string));
        settings!(req, f, tags)
            .send()
            .await
            .map(drop)
            .map_err(|e| at(a, "UpdateUserPool", ProviderError::from_sdk(e)))
    }
}

#[async_trait]
impl Provider for UserPool {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        diagnostics(r, problems(&r.fields))
    }

    fn deletion_guard(&self) -> Option<&'static str> {
        Some("deletion_protection")
    }

    /// A DescribeUserPool and a GetUserPoolMfaConfig per pool: Cognito has no batch read.
    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let reads = ids.iter().map(|id| read(cx, id)).collect();
        Ok(crate::kit::by_id(each(reads).await?))
    }

    /// ListUserPools answers without tags: every pool is described to find
    /// this stack's (only when a create may have been interrupted), and only
    /// those have their MFA settings read.
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
        let ours: Vec<(String, Observed)> = each(reads)
            .await?
            .into_iter()
            .filter_map(|o| crate::kit::tags::stack_address(cx, &o.tags).map(|a| (a, o)))
            .filter(|(a, _)| addresses.is_empty() || addresses.contains(a))
            .collect();
        let reads = ours
            .into_iter()
            .map(|(a, o)| async move { Ok(with_mfa(cx, o).await?.map(|o| (a, o))) })
            .collect();
        each(reads).await
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
        let copy = |id: String| async move { describe(cx, &id).await };
        if let Some(live) = adopt::interrupted_copy(cx, want, named, copy).await? {
            if let Some(live) = with_mfa(cx, live).await? {
                let changes = adopt::changes_to(self, want, &live);
                return self.update(cx, &live, want, &changes).await;
            }
        }
        let req = cx
            .cognito_idp
            .create_user_pool()
            .pool_name(name)
            .set_username_attributes(list_of::<UsernameAttributeType>(
                f,
                "username_attributes",
                SIGN_IN,
            ))
            .set_alias_attributes(list_of::<AliasAttributeType>(
                f,
                "alias_attributes",
                ALIASES,
            ))
            .set_schema(Some(attributes(f)).filter(|s| !s.is_empty()));
        // Tagged in the same call, so an interrupted create is found again by its tags.
        let out = settings!(req, f, want.tags)
            .send()
            .await
            .map_err(|e| at(a, "CreateUserPool", ProviderError::from_sdk(e)))?;
        let id = out
            .user_pool()
            .and_then(|p| p.id())
            .ok_or_else(|| ProviderError::Other(format!("{a}: CreateUserPool answered no id")))?
            .to_string();
        if mfa_declared(f) {
            set_mfa(cx, a, &id, f).await?;
        }
        read(cx, &id).await?.ok_or_else(|| {
            ProviderError::Other(format!("{a}: {id} is gone right after its create"))
        })
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
        let id = live.id.as_str();
        let mfa_fields = ["mfa_configuration", "software_token_mfa", "sms_mfa"];
        let only_mfa = changes
            .iter()
            .all(|c| mfa_fields.contains(&c.field.as_str()));
        if changes_field(changes, "custom_attributes") {
            let have: Vec<String> = match live.fields.get("custom_attributes") {
                Some(Value::List(l)) => l
                    .iter()
                    .filter_map(|m| Some(m.as_map()?.get("name")?.as_str()?.to_string()))
                    .collect(),
                _ => vec![],
            };
            let added: Vec<SchemaAttributeType> = attributes(f)
                .into_iter()
                .filter(|s| !have.iter().any(|h| Some(h.as_str()) == s.name()))
                .collect();
            if !added.is_empty() {
                cx.cognito_idp
                    .add_custom_attributes()
                    .user_pool_id(id)
                    .set_custom_attributes(Some(added))
                    .send()
                    .await
                    .map_err(|e| at(a, "AddCustomAttributes", ProviderError::from_sdk(e)))?;
            }
        }
        if !only_mfa {
            self.update_all(cx, a, id, f, want.tags).await?;
        }
        if mfa_fields.iter().any(|k| changes_field(changes, k)) {
            set_mfa(cx, a, id, f).await?;
        }
        read(cx, id)
            .await?
            .ok_or_else(|| ProviderError::Other(format!("{a}: {id} is gone after its update")))
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        crate::kit::error::gone_is_done(
            cx.cognito_idp
                .delete_user_pool()
                .user_pool_id(id)
                .send()
                .await,
        )
        .map_err(|e| at(id, "DeleteUserPool", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::resource;

    fn problems_of(pairs: &[(&str, Value)]) -> Vec<&'static str> {
        problems(&resource("cognito_user_pool.p", pairs).fields)
            .into_iter()
            .map(|p| p.0)
            .collect()
    }

    #[test]
    fn mfa_needs_a_factor_and_sms_a_sender() {
        assert_eq!(
            problems_of(&[("mfa_configuration", Value::str("ON"))]),
            ["mfa_configuration"]
        );
        assert!(problems_of(&[
            ("mfa_configuration", Value::str("ON")),
            ("software_token_mfa", Value::Bool(true)),
        ])
        .is_empty());
        assert_eq!(
            problems_of(&[
                ("mfa_configuration", Value::str("OPTIONAL")),
                ("sms_mfa", Value::Bool(true)),
            ]),
            ["sms_mfa"]
        );
        assert_eq!(
            problems_of(&[("software_token_mfa", Value::Bool(true))]),
            ["mfa_configuration"]
        );
    }

    #[test]
    fn custom_attribute_names_are_checked() {
        let attr = |n: &str| {
            Value::List(vec![Value::Map(
                [("name".to_string(), Value::str(n))].into_iter().collect(),
            )])
        };
        assert!(problems_of(&[("custom_attributes", attr("role"))]).is_empty());
        assert_eq!(
            problems_of(&[("custom_attributes", attr("custom:role"))]),
            ["custom_attributes"]
        );
    }
}
