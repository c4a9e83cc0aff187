//! `kms_key`: a customer managed KMS key, with its policy, rotation and tags.
//!
//! A key is never deleted at once: AWS only schedules a deletion after a
//! waiting period (7 to 30 days), which the plan shows, and a key that declared
//! resources still use is not deleted or replaced at all (the planner asks
//! [`Provider::in_use_guard`]). A key scheduled for deletion is gone as far as
//! observing goes, as a secret scheduled for deletion is; a create for its
//! address restores it (cancels the deletion) instead of making a new key, so
//! what it encrypted stays readable.

use crate::kit::adopt::changes_to;
use crate::kit::error::{at, gone_is_done, unless_gone};
use crate::kit::fields::{bool_of, changes_field, fields_of, i32_of, str_of};
use crate::kit::policy::{document_problem, policy_norm};
use crate::kit::tags::{own_tags, read_each, stack_resources_of_type};
use crate::kit::{by_id, each, observe_declared, Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_kms::types::{KeyMetadata, KeySpec, KeyState, KeyUsageType, Tag};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct KmsKey;

/// The waiting period before a scheduled deletion takes effect, when none was applied.
const DEFAULT_WINDOW: i64 = 30;
/// The rotation period AWS uses when none is set, and answers for it.
const DEFAULT_ROTATION_DAYS: i64 = 365;
/// Key policies are always named so.
const POLICY_NAME: &str = "default";

const USAGES: &[&str] = &[
    "ENCRYPT_DECRYPT",
    "SIGN_VERIFY",
    "GENERATE_VERIFY_MAC",
    "KEY_AGREEMENT",
];

const SPECS: &[&str] = &[
    "SYMMETRIC_DEFAULT",
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "SM2",
];

pub static SCHEMA: Schema = Schema {
    kind: "kms_key",
    doc: "A customer managed KMS key. Removing it from the stack schedules its deletion after \
          `deletion_window_in_days` (the plan says when), never at once; a key that declared \
          resources still use (by reference or by its ARN) is neither deleted nor replaced. \
          A key scheduled for deletion outside reconcile plans as deleted, and apply restores \
          that same key (cancels the deletion) rather than create another. Observing costs one DescribeKey and one GetKeyRotationStatus \
          per key (concurrently), one GetKeyPolicy per key that declares `policy`, and tags from \
          the plan's one Resource Groups Tagging API read of the whole stack (else one \
          ListResourceTags per key). The emulator accepts a custom `rotation_period_in_days` but \
          neither keeps nor answers it: only the default 365 observes clean there.",
    fields: &[
        Field::new(
            "description",
            Ty::Str,
            "What the key protects, up to 8192 characters. Updated in place.",
        )
        .default(Default::Str("")),
        Field::new(
            "key_usage",
            Ty::Enum(USAGES),
            "What the key is for. Changing it replaces the key.",
        )
        .default(Default::Str("ENCRYPT_DECRYPT"))
        .force_new(),
        Field::new(
            "key_spec",
            Ty::Enum(SPECS),
            "The key material: SYMMETRIC_DEFAULT (AES-256) for encryption at rest, RSA_*, ECC_* \
             or SM2 for asymmetric keys, HMAC_* for MACs. Changing it replaces the key.",
        )
        .default(Default::Str("SYMMETRIC_DEFAULT"))
        .force_new(),
        Field::new(
            "policy",
            Ty::Str,
            "The key policy as a JSON document, compared by meaning (key order, spacing and \
             one-item lists do not count); references such as `${iam_role.app.arn}` may appear \
             inside. Left out, the policy AWS gave the key is kept and not compared. Updated in place.",
        )
        .norm(Norm::With(policy_norm)),
        Field::new(
            "enable_key_rotation",
            Ty::Bool,
            "Rotate the key material automatically (symmetric encryption keys only). Updated in place.",
        )
        .default(Default::Bool(false)),
        Field::new(
            "rotation_period_in_days",
            Ty::Int,
            "Days between automatic rotations, 90 to 2560 (AWS's default: 365); needs \
             `enable_key_rotation = true`. Updated in place.",
        )
        .range(90, 2560),
        Field::new(
            "multi_region",
            Ty::Bool,
            "A multi-Region primary key, which can be replicated to other Regions. Changing it \
             replaces the key.",
        )
        .default(Default::Bool(false))
        .force_new(),
        Field::new(
            "enabled",
            Ty::Bool,
            "Whether the key may be used; a key disabled outside reconcile is enabled again by \
             apply. Updated in place.",
        )
        .default(Default::Bool(true)),
        Field::new(
            "deletion_window_in_days",
            Ty::Int,
            "Days, 7 to 30, between the deletion reconcile schedules (the key removed from the \
             stack, or destroyed) and AWS really deleting the key; until then the deletion can be \
             cancelled. Takes effect as applied: removing the key uses the last applied value.",
        )
        .range(7, 30)
        .default(Default::Int(DEFAULT_WINDOW))
        .local(),
    ],
    attributes: &[
        ("id", "The key id (a UUID)."),
        ("key_id", "The key id (a UUID)."),
        (
            "arn",
            "The key's ARN: what `kms_key_id` fields of buckets, tables, databases, secrets and \
             log groups take.",
        ),
    ],
    taggable: true,
};

/// Problems with a key's fields, as (field, what, what to do).
pub fn problems(f: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let usage = str_of(f, "key_usage").unwrap_or("ENCRYPT_DECRYPT");
    let spec = str_of(f, "key_spec").unwrap_or("SYMMETRIC_DEFAULT");
    let fits = match usage {
        "ENCRYPT_DECRYPT" => {
            spec == "SYMMETRIC_DEFAULT" || spec.starts_with("RSA_") || spec == "SM2"
        }
        "SIGN_VERIFY" => spec.starts_with("RSA_") || spec.starts_with("ECC_") || spec == "SM2",
        "GENERATE_VERIFY_MAC" => spec.starts_with("HMAC_"),
        "KEY_AGREEMENT" => spec.starts_with("ECC_NIST") || spec == "SM2",
        _ => true,
    };
    if !fits {
        out.push((
            "key_spec",
            format!("a {spec} key cannot be used for {usage}"),
            "use SYMMETRIC_DEFAULT or RSA_* to encrypt, RSA_*/ECC_* to sign, HMAC_* for MACs, \
             ECC_NIST_* for key agreement"
                .into(),
        ));
    }
    let rotation = bool_of(f, "enable_key_rotation").unwrap_or(false);
    if rotation && (spec != "SYMMETRIC_DEFAULT" || usage != "ENCRYPT_DECRYPT") {
        out.push((
            "enable_key_rotation",
            format!("AWS rotates only symmetric encryption keys, and this is a {spec} {usage} key"),
            "remove `enable_key_rotation`, or use key_spec = \"SYMMETRIC_DEFAULT\"".into(),
        ));
    }
    if f.contains_key("rotation_period_in_days") && !rotation {
        out.push((
            "rotation_period_in_days",
            "a rotation period is set but automatic rotation is off".into(),
            "add `enable_key_rotation = true`, or remove the period".into(),
        ));
    }
    if let Some((msg, help)) =
        str_of(f, "policy").and_then(|p| document_problem(p, "the key policy"))
    {
        out.push(("policy", msg, help));
    }
    if str_of(f, "description").is_some_and(|d| d.len() > 8192) {
        out.push((
            "description",
            "the description is longer than 8192 characters".into(),
            "shorten it".into(),
        ));
    }
    out
}

fn tags_of(list: &[Tag]) -> IndexMap<String, String> {
    own_tags(list.iter().map(|t| (t.tag_key(), t.tag_value())))
}

fn aws_tags(tags: &IndexMap<String, String>) -> Result<Vec<Tag>, ProviderError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| ProviderError::InvalidInput(e.to_string()))
        })
        .collect()
}

/// A key's metadata; `None` when it does not exist.
async fn describe(cx: &Cx, key: &str) -> Result<Option<KeyMetadata>, ProviderError> {
    let out = unless_gone(cx.kms.describe_key().key_id(key).send().await)?;
    Ok(out.and_then(|o| o.key_metadata().cloned()))
}

/// A key's tags with its own API; `None` when it is gone.
async fn list_tags(cx: &Cx, key: &str) -> Result<Option<IndexMap<String, String>>, ProviderError> {
    let mut tags = Vec::new();
    let mut marker = None;
    loop {
        let Some(out) = unless_gone(
            cx.kms
                .list_resource_tags()
                .key_id(key)
                .set_marker(marker)
                .send()
                .await,
        )?
        else {
            return Ok(None);
        };
        tags.extend(out.tags().iter().cloned());
        match out.next_marker().filter(|_| out.truncated()) {
            Some(m) => marker = Some(m.to_string()),
            None => return Ok(Some(tags_of(&tags))),
        }
    }
}

/// The key policy; `None` when the key is gone.
async fn policy_of(cx: &Cx, key: &str) -> Result<Option<String>, ProviderError> {
    let out = unless_gone(
        cx.kms
            .get_key_policy()
            .key_id(key)
            .policy_name(POLICY_NAME)
            .send()
            .await,
    )?;
    Ok(out.and_then(|o| o.policy().map(str::to_string)))
}

/// Rotation as observed: whether it is on, and its period when it is.
async fn rotation(cx: &Cx, key: &str) -> Result<Option<(bool, Option<i64>)>, ProviderError> {
    let out = unless_gone(cx.kms.get_key_rotation_status().key_id(key).send().await)?;
    Ok(out.map(|o| {
        let on = o.key_rotation_enabled();
        let days = on.then(|| {
            o.rotation_period_in_days()
                .map(i64::from)
                .unwrap_or(DEFAULT_ROTATION_DAYS)
        });
        (on, days)
    }))
}

fn rotates(m: &KeyMetadata) -> bool {
    m.key_spec() == Some(&KeySpec::SymmetricDefault)
        && m.key_usage() == Some(&KeyUsageType::EncryptDecrypt)
}

/// Whether the key is scheduled for deletion (or already deleted).
fn pending(m: &KeyMetadata) -> bool {
    matches!(
        m.key_state(),
        Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion)
    )
}

/// One key, fully read: metadata, rotation, tags (from the stack index where
/// it lists the key). Keys AWS manages itself, and keys scheduled for
/// deletion, are not there to observe.
async fn read(cx: &Cx, key: &str) -> Result<Option<Observed>, ProviderError> {
    let Some(m) = describe(cx, key).await? else {
        return Ok(None);
    };
    if pending(&m) || m.key_manager().is_some_and(|k| k.as_str() == "AWS") {
        return Ok(None);
    }
    let id = m.key_id().to_string();
    let arn = m.arn().unwrap_or_default().to_string();
    let turn = if rotates(&m) {
        rotation(cx, &id).await?
    } else {
        Some((false, None))
    };
    let tags = match crate::kit::tags::indexed(cx, SCHEMA.kind, &id, &arn).await {
        Some(t) => t,
        None => match list_tags(cx, &id).await? {
            Some(t) => t,
            None => return Ok(None),
        },
    };
    let (rotating, period) = turn.unwrap_or((false, None));
    let mut f = fields_of([
        (
            "description",
            Value::str(m.description().unwrap_or_default()),
        ),
        (
            "key_usage",
            Value::str(
                m.key_usage()
                    .map(|u| u.as_str())
                    .unwrap_or("ENCRYPT_DECRYPT"),
            ),
        ),
        (
            "key_spec",
            Value::str(
                m.key_spec()
                    .map(|s| s.as_str())
                    .unwrap_or("SYMMETRIC_DEFAULT"),
            ),
        ),
        ("enable_key_rotation", Value::Bool(rotating)),
        (
            "multi_region",
            Value::Bool(m.multi_region().unwrap_or(false)),
        ),
        ("enabled", Value::Bool(m.enabled())),
    ]);
    if let Some(days) = period {
        f.insert("rotation_period_in_days".into(), Value::Int(days));
    }
    Ok(Some(Observed {
        id: id.clone(),
        fields: f,
        attributes: fields_of([
            ("id", Value::str(&id)),
            ("key_id", Value::str(&id)),
            ("arn", Value::str(&arn)),
        ]),
        tags,
    }))
}

/// The ARNs of this stack's keys for `addresses` (all when empty), each
/// with its address, from one Tagging API listing: KMS lists keys without tags.
async fn tagged_arns(
    cx: &Cx,
    addresses: &[String],
) -> Result<Vec<(String, String)>, ProviderError> {
    Ok(stack_resources_of_type(cx, "kms:key")
        .await?
        .into_iter()
        .filter_map(|(arn, tags)| {
            let address = crate::kit::tags::stack_address(cx, &tags)?;
            (addresses.is_empty() || addresses.contains(&address)).then_some((arn, address))
        })
        .collect())
}

impl KmsKey {
    /// The key this address had before it was scheduled for deletion (by
    /// destroy, a removal, or by hand), brought back: its deletion cancelled,
    /// enabled, and brought to `want`. Only a key whose material fits `want`
    /// (spec, usage, regions) qualifies, the newest of them; the copy a
    /// replacement replaces is never the new one.
    async fn restore(
        &self,
        cx: &Cx,
        want: &Desired<'_>,
    ) -> Result<Option<Observed>, ProviderError> {
        let a = want.address;
        let mut best: Option<KeyMetadata> = None;
        for (arn, _) in tagged_arns(cx, &[a.to_string()]).await? {
            let Some(m) = describe(cx, &arn).await? else {
                continue;
            };
            let fits = [
                ("key_spec", m.key_spec().map(|x| x.as_str())),
                ("key_usage", m.key_usage().map(|x| x.as_str())),
            ]
            .iter()
            .all(|(k, v)| {
                let default = SCHEMA.field(k).and_then(|f| f.default).map(|d| d.value());
                want.fields
                    .get(*k)
                    .or(default.as_ref())
                    .and_then(Value::as_str)
                    == *v
            }) && bool_of(want.fields, "multi_region").unwrap_or(false)
                == m.multi_region().unwrap_or(false);
            if !pending(&m) || !fits || want.replacing == Some(m.key_id()) {
                continue;
            }
            if best
                .as_ref()
                .is_none_or(|b| b.creation_date() < m.creation_date())
            {
                best = Some(m);
            }
        }
        let Some(m) = best else {
            return Ok(None);
        };
        let id = m.key_id().to_string();
        cx.kms
            .cancel_key_deletion()
            .key_id(&id)
            .send()
            .await
            .map_err(|e| at(a, "CancelKeyDeletion", e.into()))?;
        // Cancelled, a key is disabled; the sync below enables it.
        tracing::info!(address = a, key = %id, "restoring the key scheduled for deletion");
        let live = read(cx, &id).await?.ok_or_else(|| {
            ProviderError::Other(format!("{a}: the restored key {id} is not described"))
        })?;
        let changes = changes_to(self, want, &live);
        self.sync(cx, &live, want, &changes).await?;
        Ok(Some(Observed {
            id,
            fields: want.fields.clone(),
            attributes: live.attributes,
            tags: want.tags.clone(),
        }))
    }

    /// Makes the key match `want` for the changed fields.
    async fn sync(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<(), ProviderError> {
        let f = want.fields;
        let a = want.address;
        let key = live.id.as_str();
        if changes_field(changes, "enabled") {
            if bool_of(f, "enabled").unwrap_or(true) {
                cx.kms
                    .enable_key()
                    .key_id(key)
                    .send()
                    .await
                    .map_err(|e| at(a, "EnableKey", e.into()))?;
            } else {
                cx.kms
                    .disable_key()
                    .key_id(key)
                    .send()
                    .await
                    .map_err(|e| at(a, "DisableKey", e.into()))?;
            }
        }
        if changes_field(changes, "description") {
            cx.kms
                .update_key_description()
                .key_id(key)
                .description(str_of(f, "description").unwrap_or_default())
                .send()
                .await
                .map_err(|e| at(a, "UpdateKeyDescription", e.into()))?;
        }
        if changes_field(changes, "policy") {
            if let Some(p) = str_of(f, "policy") {
                cx.kms
                    .put_key_policy()
                    .key_id(key)
                    .policy_name(POLICY_NAME)
                    .policy(p)
                    .send()
                    .await
                    .map_err(|e| at(a, "PutKeyPolicy", e.into()))?;
            }
        }
        if changes_field(changes, "enable_key_rotation")
            || changes_field(changes, "rotation_period_in_days")
        {
            if bool_of(f, "enable_key_rotation").unwrap_or(false) {
                cx.kms
                    .enable_key_rotation()
                    .key_id(key)
                    .set_rotation_period_in_days(i32_of(f, "rotation_period_in_days"))
                    .send()
                    .await
                    .map_err(|e| at(a, "EnableKeyRotation", e.into()))?;
            } else {
                cx.kms
                    .disable_key_rotation()
                    .key_id(key)
                    .send()
                    .await
                    .map_err(|e| at(a, "DisableKeyRotation", e.into()))?;
            }
        }
        if changes_field(changes, "tags") {
            crate::sync_tags_by!(
                &live.tags,
                want.tags,
                a,
                untag: cx.kms.untag_resource().key_id(key),
                tag: cx.kms.tag_resource().key_id(key),
                tags: aws_tags,
            )
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for KmsKey {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        crate::kit::fields::diagnostics(r, problems(&r.fields))
    }

    fn in_use_guard(&self) -> Option<&'static str> {
        Some(
            "what it encrypts could no longer be decrypted once the key's scheduled deletion \
             takes effect",
        )
    }

    fn delete_note(&self, applied: Option<&Fields>) -> Option<String> {
        let days = applied
            .and_then(|f| f.get("deletion_window_in_days"))
            .and_then(Value::as_int)
            .unwrap_or(DEFAULT_WINDOW);
        Some(format!(
            "KMS schedules the key's deletion in {days} days (deletion_window_in_days) and \
             deletes nothing now; `aws kms cancel-key-deletion` restores it until then"
        ))
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let reads = ids.iter().map(|id| read(cx, id)).collect();
        Ok(by_id(each(reads).await?))
    }

    /// The policy is read only for keys that declare one (and can answer:
    /// a disabled key cannot): left out, it is not compared, and a no-op plan
    /// should not pay for it.
    async fn observe_against_desired(
        &self,
        cx: &Cx,
        items: &mut [(&Resource, &mut Observed)],
    ) -> Result<(), ProviderError> {
        let enabled = |o: &Observed| o.fields.get("enabled") == Some(&Value::Bool(true));
        observe_declared(items, "policy", enabled, |key| async move {
            Ok(policy_of(cx, &key).await?.map(Value::str))
        })
        .await
    }

    async fn read_tags(
        &self,
        cx: &Cx,
        arns: &[String],
    ) -> Result<Option<crate::kit::tags::TagsByArn>, ProviderError> {
        read_each(arns, |arn| async move { list_tags(cx, &arn).await }).await
    }

    /// One Tagging API listing of the stack's keys, then a read of each copy
    /// for the addresses asked, policy included (it is compared when declared,
    /// and an adoption is compared before any other observation): KMS itself
    /// lists keys without tags.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let reads = tagged_arns(cx, addresses)
            .await?
            .into_iter()
            .map(|(arn, address)| async move {
                let Some(mut o) = read(cx, &arn).await? else {
                    return Ok(None);
                };
                if let Some(p) = policy_of(cx, &o.id).await? {
                    o.fields.insert("policy".into(), Value::str(p));
                }
                Ok(Some((address, o)))
            })
            .collect();
        each(reads).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        crate::kit::fields::refuse(a, problems(f))?;
        if let Some(restored) = self.restore(cx, want).await? {
            return Ok(restored);
        }
        let out = cx
            .kms
            .create_key()
            .description(str_of(f, "description").unwrap_or_default())
            .key_usage(KeyUsageType::from(
                str_of(f, "key_usage").unwrap_or("ENCRYPT_DECRYPT"),
            ))
            .key_spec(KeySpec::from(
                str_of(f, "key_spec").unwrap_or("SYMMETRIC_DEFAULT"),
            ))
            .set_policy(str_of(f, "policy").map(str::to_string))
            .multi_region(bool_of(f, "multi_region").unwrap_or(false))
            // Tagged in the same call, so an interrupted create is found again by its tags.
            .set_tags(Some(aws_tags(want.tags)?))
            .send()
            .await
            .map_err(|e| at(a, "CreateKey", e.into()))?;
        let id = out
            .key_metadata()
            .map(|m| m.key_id().to_string())
            .ok_or_else(|| ProviderError::Other(format!("{a}: CreateKey answered no key id")))?;
        let made = Observed {
            id: id.clone(),
            fields: Fields::new(),
            attributes: Fields::new(),
            tags: want.tags.clone(),
        };
        // Rotation and a disabled start need calls of their own.
        let changes: Vec<FieldChange> = changes_to(self, want, &made)
            .into_iter()
            .filter(|c| {
                (c.field == "enable_key_rotation"
                    && bool_of(f, "enable_key_rotation") == Some(true))
                    || (c.field == "enabled" && bool_of(f, "enabled") == Some(false))
            })
            .collect();
        self.sync(cx, &made, want, &changes).await?;
        let live = read(cx, &id).await?.ok_or_else(|| {
            ProviderError::Other(format!(
                "{a}: the key {id} is not described right after its creation; run plan again"
            ))
        })?;
        Ok(Observed {
            id,
            fields: f.clone(),
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
    ) -> Result<Observed, ProviderError> {
        self.sync(cx, live, want, changes).await?;
        let mut fields = live.fields.clone();
        fields.extend(want.fields.clone());
        Ok(Observed {
            id: live.id.clone(),
            fields,
            attributes: live.attributes.clone(),
            tags: want.tags.clone(),
        })
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        self.delete_applied(cx, id, None).await
    }

    /// Schedules the deletion after the applied waiting period; a key already
    /// scheduled, or gone, is done.
    async fn delete_applied(
        &self,
        cx: &Cx,
        id: &str,
        applied: Option<&Fields>,
    ) -> Result<(), ProviderError> {
        let days = applied
            .and_then(|f| f.get("deletion_window_in_days"))
            .and_then(Value::as_int)
            .unwrap_or(DEFAULT_WINDOW)
            .clamp(7, 30);
        if describe(cx, id).await?.is_none_or(|m| pending(&m)) {
            return Ok(());
        }
        gone_is_done(
            cx.kms
                .schedule_key_deletion()
                .key_id(id)
                .pending_window_in_days(days as i32)
                .send()
                .await,
        )
        .map_err(|e| {
            at(
                &format!("kms_key {id} (stack {})", cx.stack),
                "ScheduleKeyDeletion",
                e,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    fn f(pairs: &[(&str, Value)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn usage_and_spec_must_fit_and_rotation_needs_a_symmetric_key() {
        assert!(problems(&f(&[])).is_empty());
        let p = problems(&f(&[
            ("key_spec", Value::str("HMAC_256")),
            ("key_usage", Value::str("ENCRYPT_DECRYPT")),
        ]));
        assert_eq!(p[0].0, "key_spec", "{p:?}");
        let p = problems(&f(&[
            ("key_spec", Value::str("RSA_2048")),
            ("key_usage", Value::str("SIGN_VERIFY")),
            ("enable_key_rotation", Value::Bool(true)),
        ]));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "enable_key_rotation");
        let p = problems(&f(&[("rotation_period_in_days", Value::Int(180))]));
        assert_eq!(p[0].0, "rotation_period_in_days");
        let p = problems(&f(&[("policy", Value::str("{not json"))]));
        assert_eq!(p[0].0, "policy");
    }

    #[test]
    fn policies_compare_by_meaning_and_a_left_out_policy_is_not_compared() {
        let want = f(&[(
            "policy",
            Value::str(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"kms:*","Resource":"*"}]}"#,
            ),
        )]);
        let live = f(&[(
            "policy",
            Value::str(
                r#"{"Statement":{"Resource":["*"],"Action":["kms:*"],"Principal":{"AWS":["arn:aws:iam::1:root"]},"Effect":"Allow"},"Version":"2012-10-17"}"#,
            ),
        )]);
        assert!(KmsKey.diff(&want, &live).is_empty());
        assert!(KmsKey.diff(&f(&[]), &live).is_empty());
    }

    #[test]
    fn the_plan_tells_the_applied_waiting_period() {
        let note = KmsKey
            .delete_note(Some(&f(&[("deletion_window_in_days", Value::Int(7))])))
            .unwrap();
        assert!(note.contains("in 7 days"), "{note}");
        assert!(KmsKey.delete_note(None).unwrap().contains("in 30 days"));
    }
}
