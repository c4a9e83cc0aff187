//! `cloudfront_origin_access_control`: how a CloudFront distribution signs its
//! requests to an S3 origin, so that the bucket can stay private and let only
//! that distribution read (through an `s3_bucket_policy`).
//!
//! An origin access control has no tags and a name unique in the account: a
//! create that meets its name takes that control over, as the one an
//! interrupted apply left. Updates
//! and deletes carry the ETag CloudFront answered last (`If-Match`), read just
//! before, so a change made meanwhile by someone else is refused, not undone.

use crate::kit::error::{at, gone_is_done, unless_gone};
use crate::kit::fields::{fields_of, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError, SchemaDiff};
use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    OriginAccessControlConfig, OriginAccessControlOriginTypes, OriginAccessControlSigningBehaviors,
    OriginAccessControlSigningProtocols, OriginAccessControlSummary,
};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct CloudfrontOriginAccessControl;

pub const ORIGIN_TYPES: &[&str] = &["s3", "mediastore", "mediapackagev2", "lambda"];
pub const SIGNING_BEHAVIORS: &[&str] = &["always", "never", "no-override"];
pub const SIGNING_PROTOCOLS: &[&str] = &["sigv4"];

pub static SCHEMA: Schema = Schema {
    kind: "cloudfront_origin_access_control",
    doc: "A CloudFront origin access control: a distribution's origin that names it \
          (`origin_access_control_id = \"${cloudfront_origin_access_control.NAME.id}\"`) signs \
          its requests, so its S3 bucket stays private and grants `s3:GetObject` to \
          `cloudfront.amazonaws.com` on the condition `AWS:SourceArn` = the distribution's ARN \
          (an `s3_bucket_policy`). Every field is updated in place. Origin access controls have \
          no tags and names unique in the account: a create that finds a control of the \
          declared name takes it over and makes it as declared (so an apply interrupted after \
          its create, or a lost state, makes no second one). Observing costs one ListOriginAccessControls a page of 100 for all of them; \
          an update or delete first reads the control's ETag with GetOriginAccessControl and \
          sends it as If-Match. The emulator accepts any ETag, so a change made between that \
          read and the write is not refused there as AWS refuses it.",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(check_name),
            "The name, unique in the account: 1 to 64 characters. Updated in place.",
        )
        .required(),
        Field::new(
            "description",
            Ty::Str,
            "What it is for, up to 256 characters. Updated in place.",
        )
        .default(Default::Str("")),
        Field::new(
            "origin_access_control_origin_type",
            Ty::Enum(ORIGIN_TYPES),
            "The kind of origin: s3 (a bucket), mediastore, mediapackagev2 or lambda. Updated \
             in place.",
        )
        .default(Default::Str("s3")),
        Field::new(
            "signing_behavior",
            Ty::Enum(SIGNING_BEHAVIORS),
            "always (sign every request: what a private bucket needs), never, or no-override \
             (sign unless the viewer sent an Authorization header). Updated in place.",
        )
        .default(Default::Str("always")),
        Field::new(
            "signing_protocol",
            Ty::Enum(SIGNING_PROTOCOLS),
            "sigv4, the only protocol. Updated in place.",
        )
        .default(Default::Str("sigv4")),
    ],
    attributes: &[(
        "id",
        "The control's id: what an origin's `origin_access_control_id` takes.",
    )],
    taggable: false,
};

/// Names: 1 to 64 characters.
pub fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().count() > 64 {
        return Err(format!(
            "\"{s}\": an origin access control's name has 1 to 64 characters"
        ));
    }
    Ok(())
}

fn problems(f: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    if str_of(f, "description").is_some_and(|d| d.chars().count() > 256) {
        out.push((
            "description",
            "the description is longer than 256 characters".into(),
            "shorten it".into(),
        ));
    }
    out
}

fn observed(s: &OriginAccessControlSummary) -> Observed {
    Observed {
        id: s.id.clone(),
        fields: fields_of([
            ("name", Value::str(&s.name)),
            ("description", Value::str(&s.description)),
            (
                "origin_access_control_origin_type",
                Value::str(s.origin_access_control_origin_type.as_str()),
            ),
            ("signing_behavior", Value::str(s.signing_behavior.as_str())),
            ("signing_protocol", Value::str(s.signing_protocol.as_str())),
        ]),
        attributes: fields_of([("id", Value::str(&s.id))]),
        tags: IndexMap::new(),
    }
}

/// Every origin access control of the account, all pages.
async fn list_all(cx: &Cx) -> Result<Vec<OriginAccessControlSummary>, ProviderError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = cx
            .cloudfront
            .list_origin_access_controls()
            .set_marker(marker.clone())
            .max_items(100)
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        let Some(list) = page.origin_access_control_list else {
            return Ok(out);
        };
        out.extend(list.items.unwrap_or_default());
        match list
            .next_marker
            .filter(|m| list.is_truncated && !m.is_empty())
        {
            Some(m) if Some(&m) != marker.as_ref() => marker = Some(m),
            _ => return Ok(out),
        }
    }
}

/// The configuration CloudFront takes, from declared fields.
fn config(a: &str, f: &Fields) -> Result<OriginAccessControlConfig, ProviderError> {
    let s = |k: &str, d: &str| str_of(f, k).unwrap_or(d).to_string();
    OriginAccessControlConfig::builder()
        .name(s("name", ""))
        .description(s("description", ""))
        .origin_access_control_origin_type(OriginAccessControlOriginTypes::from(
            s("origin_access_control_origin_type", "s3").as_str(),
        ))
        .signing_behavior(OriginAccessControlSigningBehaviors::from(
            s("signing_behavior", "always").as_str(),
        ))
        .signing_protocol(OriginAccessControlSigningProtocols::from(
            s("signing_protocol", "sigv4").as_str(),
        ))
        .build()
        .map_err(|e| ProviderError::InvalidInput(format!("{a}: {e}")))
}

/// The control's current ETag; `None` when it is gone.
async fn etag(cx: &Cx, a: &str, id: &str) -> Result<Option<String>, ProviderError> {
    let out = unless_gone(
        cx.cloudfront
            .get_origin_access_control()
            .id(id)
            .send()
            .await,
    )
    .map_err(|e| at(a, "GetOriginAccessControl", e))?;
    Ok(out.map(|o| o.e_tag.unwrap_or_default()))
}

#[async_trait]
impl Provider for CloudfrontOriginAccessControl {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        crate::kit::fields::diagnostics(r, problems(&r.fields))
    }

    /// One listing for every control asked about.
    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(list_all(cx)
            .await?
            .iter()
            .filter(|s| ids.contains(&s.id))
            .map(|s| (s.id.clone(), observed(s)))
            .collect())
    }

    /// Untaggable: nothing can say a control is this stack's.
    async fn find_tagged(
        &self,
        _cx: &Cx,
        _addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(vec![])
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let a = want.address;
        crate::kit::fields::refuse(a, problems(want.fields))?;
        let name = str_of(want.fields, "name").unwrap_or_default();
        // No tags to tell whose it is: the control of the declared name is
        // taken as the one an interrupted apply (or a lost state) left, and
        // made as declared.
        if let Some(found) = list_all(cx).await?.iter().find(|s| s.name == name) {
            let live = observed(found);
            tracing::info!(address = a, id = %live.id, "taking over the origin access control of the declared name");
            let changes = self.diff(want.fields, &live.fields);
            if changes.is_empty() {
                return Ok(live);
            }
            return self.update(cx, &live, want, &changes).await;
        }
        let out = cx
            .cloudfront
            .create_origin_access_control()
            .origin_access_control_config(config(a, want.fields)?)
            .send()
            .await
            .map_err(|e| at(a, "CreateOriginAccessControl", e.into()))?;
        let id = out
            .origin_access_control
            .map(|o| o.id)
            .ok_or_else(|| ProviderError::Other(format!("{a}: CloudFront answered no id")))?;
        Ok(Observed {
            id: id.clone(),
            fields: want.fields.clone(),
            attributes: fields_of([("id", Value::str(&id))]),
            tags: IndexMap::new(),
        })
    }

    /// The whole configuration is sent again, with the ETag just read.
    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        _changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        let a = want.address;
        crate::kit::fields::refuse(a, problems(want.fields))?;
        let tag = etag(cx, a, &live.id).await?.ok_or_else(|| {
            ProviderError::NotFound(format!("{a}: origin access control {} is gone", live.id))
        })?;
        cx.cloudfront
            .update_origin_access_control()
            .id(&live.id)
            .if_match(tag)
            .origin_access_control_config(config(a, want.fields)?)
            .send()
            .await
            .map_err(|e| at(a, "UpdateOriginAccessControl", e.into()))?;
        Ok(crate::kit::updated(&SCHEMA, live, want))
    }

    /// Refused by CloudFront while a distribution's origin still names it; the
    /// graph deletes distributions first.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let a = format!("cloudfront_origin_access_control {id} (stack {})", cx.stack);
        let Some(tag) = etag(cx, &a, id).await? else {
            return Ok(());
        };
        gone_is_done(
            cx.cloudfront
                .delete_origin_access_control()
                .id(id)
                .if_match(tag)
                .send()
                .await,
        )
        .map_err(|e| at(&a, "DeleteOriginAccessControl", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_reads_as_the_declared_fields_with_their_defaults() {
        let s = OriginAccessControlSummary::builder()
            .id("E2QWRUHAPOMQZL")
            .name("videos")
            .description("")
            .signing_protocol(OriginAccessControlSigningProtocols::Sigv4)
            .signing_behavior(OriginAccessControlSigningBehaviors::Always)
            .origin_access_control_origin_type(OriginAccessControlOriginTypes::S3)
            .build()
            .unwrap();
        let o = observed(&s);
        let want = fields_of([("name", Value::str("videos"))]);
        assert!(CloudfrontOriginAccessControl
            .diff(&want, &o.fields)
            .is_empty());
        let never = fields_of([
            ("name", Value::str("videos")),
            ("signing_behavior", Value::str("never")),
        ]);
        let c = CloudfrontOriginAccessControl.diff(&never, &o.fields);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "signing_behavior");
        assert!(!c[0].forces_replace);
    }

    #[test]
    fn names_and_descriptions_are_bounded() {
        assert!(check_name("videos").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        let long = fields_of([("description", Value::str("d".repeat(257)))]);
        assert_eq!(problems(&long)[0].0, "description");
    }
}
