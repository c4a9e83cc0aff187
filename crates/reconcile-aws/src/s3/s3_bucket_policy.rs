//! `s3_bucket_policy`: a bucket's policy as a resource of its own, for
//! policies that name what refers to the bucket (a CloudFront distribution
//! reading it through an origin access control): as the bucket's `policy`
//! field, that would be a cycle.
//!
//! A bucket has one policy: declaring it both here and as the bucket's
//! `policy` would make two owners undo each other, so `validate` refuses it.

use super::s3_bucket::{got, Got};
use crate::kit::error::at;
use crate::kit::fields::{diagnostic, fields_of, referenced, str_of};
use crate::kit::policy::{document_problem, policy_norm};
use crate::kit::{by_id, each, Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use indexmap::IndexMap;
use reconcile_core::model::schema::{Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct S3BucketPolicy;

pub static SCHEMA: Schema = Schema {
    kind: "s3_bucket_policy",
    doc: "The policy of an S3 bucket, apart from the bucket (as Terraform's \
          aws_s3_bucket_policy): for a policy that names what itself refers to the bucket, such \
          as the CloudFront distribution it lets read (`\"AWS:SourceArn\": \
          \"${cloudfront_distribution.NAME.arn}\"`). The bucket must not also declare `policy`: \
          two owners would undo each other, and validation refuses it. Compared by meaning (key \
          order, spacing and one-item lists do not count). A policy deleted by hand is created \
          again. Observing costs one GetBucketPolicy per policy (concurrently). The emulator \
          does not judge a policy public or not, so `block_public_policy` on the bucket never \
          refuses one there.",
    fields: &[
        Field::new(
            "bucket",
            Ty::Str,
            "The bucket's name (`${s3_bucket.NAME.id}`). Changing it moves the policy: the old \
             bucket's is deleted.",
        )
        .required()
        .force_new(),
        Field::new(
            "policy",
            Ty::Str,
            "The policy as a JSON document; references such as \
             `${cloudfront_distribution.cdn.arn}` may appear inside. Updated in place.",
        )
        .required()
        .norm(Norm::With(policy_norm)),
    ],
    attributes: &[("id", "The bucket's name.")],
    taggable: false,
};

fn problems(f: &Fields) -> Vec<(&'static str, String, String)> {
    str_of(f, "policy")
        .and_then(|p| document_problem(p, "the bucket policy"))
        .map(|(msg, help)| ("policy", msg, help))
        .into_iter()
        .collect()
}

/// The `s3_bucket` of the stack this policy is for: the one its `bucket`
/// refers to, or the one declaring that literal name.
fn bucket_of<'s>(stack: &'s Stack, r: &Resource) -> Option<&'s Resource> {
    referenced(stack, r.fields.get("bucket"), "s3_bucket").or_else(|| {
        let name = str_of(&r.fields, "bucket")?;
        stack
            .resources
            .values()
            .find(|b| b.kind == "s3_bucket" && str_of(&b.fields, "name") == Some(name))
    })
}

fn observed(bucket: &str, policy: &str) -> Observed {
    Observed {
        id: bucket.to_string(),
        fields: fields_of([
            ("bucket", Value::str(bucket)),
            ("policy", Value::str(policy)),
        ]),
        attributes: fields_of([("id", Value::str(bucket))]),
        tags: IndexMap::new(),
    }
}

/// The bucket's policy; `None` when the bucket or its policy is gone.
async fn read(cx: &Cx, bucket: &str) -> Result<Option<Observed>, ProviderError> {
    match got(
        cx.s3.get_bucket_policy().bucket(bucket).send().await,
        &["NoSuchBucketPolicy"],
    )? {
        Got::Set(out) => Ok(out.policy().map(|p| observed(bucket, p))),
        Got::Unset | Got::Gone => Ok(None),
    }
}

async fn put(cx: &Cx, want: &Desired<'_>) -> Result<String, ProviderError> {
    let a = want.address;
    crate::kit::fields::refuse(a, problems(want.fields))?;
    let bucket = str_of(want.fields, "bucket").ok_or_else(|| {
        ProviderError::InvalidInput(format!("{a}: `bucket` must be a known string"))
    })?;
    let policy = str_of(want.fields, "policy").unwrap_or_default();
    cx.s3
        .put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .map_err(|e| at(a, "PutBucketPolicy", e.into()))?;
    Ok(bucket.to_string())
}

#[async_trait]
impl Provider for S3BucketPolicy {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        let mut out = crate::kit::fields::diagnostics(r, problems(&r.fields));
        if let Some(b) = bucket_of(stack, r).filter(|b| b.fields.contains_key("policy")) {
            let at = b
                .field_pos
                .get("policy")
                .map(|p| p.to_string())
                .unwrap_or_default();
            out.push(diagnostic(
                r,
                "bucket",
                format!(
                    "`{}` also declares `policy` ({at}): a bucket has one policy, and two owners \
                     would undo each other",
                    b.address
                ),
                format!(
                    "move the statements into this policy and remove `policy` from `{}`, or \
                     remove this resource",
                    b.address
                ),
            ));
        }
        out
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let reads = ids.iter().map(|id| read(cx, id)).collect();
        Ok(by_id(each(reads).await?))
    }

    /// Untaggable: a policy is found again by its bucket, which state knows.
    async fn find_tagged(
        &self,
        _cx: &Cx,
        _addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(vec![])
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let bucket = put(cx, want).await?;
        Ok(Observed {
            id: bucket.clone(),
            fields: want.fields.clone(),
            attributes: fields_of([("id", Value::str(&bucket))]),
            tags: IndexMap::new(),
        })
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        _changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        put(cx, want).await?;
        Ok(crate::kit::updated(&SCHEMA, live, want))
    }

    /// DeleteBucketPolicy; a bucket already gone has no policy left.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        match got(
            cx.s3.delete_bucket_policy().bucket(id).send().await,
            &["NoSuchBucketPolicy"],
        ) {
            Ok(_) => Ok(()),
            Err(e) => Err(at(
                &format!("s3_bucket_policy {id} (stack {})", cx.stack),
                "DeleteBucketPolicy",
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::testing::{resource, stack};
    use crate::kit::SchemaDiff;

    const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"cloudfront.amazonaws.com"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::v/*"}]}"#;

    #[test]
    fn two_owners_of_one_bucket_policy_are_refused_at_the_policy_resource() {
        let bucket = resource(
            "s3_bucket.videos",
            &[
                ("name", Value::str("videos-1")),
                ("policy", Value::str(POLICY)),
            ],
        );
        let by_ref = resource(
            "s3_bucket_policy.videos",
            &[
                ("bucket", Value::str("${s3_bucket.videos.id}")),
                ("policy", Value::str(POLICY)),
            ],
        );
        let by_name = resource(
            "s3_bucket_policy.named",
            &[
                ("bucket", Value::str("videos-1")),
                ("policy", Value::str(POLICY)),
            ],
        );
        let s = stack(vec![bucket, by_ref.clone(), by_name.clone()]);
        for r in [&by_ref, &by_name] {
            let d = S3BucketPolicy.validate(&s, r);
            assert_eq!(d.len(), 1, "{d:?}");
            assert!(d[0].message.contains("also declares `policy`"), "{d:?}");
            // At the `bucket` field, the first declared: line 2.
            assert_eq!(d[0].pos.as_ref().map(|p| p.line), Some(2));
        }
        let alone = stack(vec![
            resource("s3_bucket.videos", &[("name", Value::str("videos-1"))]),
            by_ref.clone(),
        ]);
        assert!(S3BucketPolicy.validate(&alone, &by_ref).is_empty());
    }

    #[test]
    fn policies_compare_by_meaning() {
        let want = fields_of([("bucket", Value::str("v")), ("policy", Value::str(POLICY))]);
        let spaced = POLICY
            .replace(',', ", ")
            .replace("\"s3:GetObject\"", "[\"s3:GetObject\"]");
        let live = observed("v", &spaced).fields;
        assert!(S3BucketPolicy.diff(&want, &live).is_empty());
        let bad = fields_of([("policy", Value::str("{nope"))]);
        assert_eq!(problems(&bad)[0].0, "policy");
    }
}
