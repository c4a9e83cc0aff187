//! Create-or-adopt: what a create does when AWS answers that the name is taken,
//! and the "tagged as ours" test every kind shares.
//!
//! A create interrupted after AWS made the resource but before state recorded
//! it leaves a copy tagged with the stack and the address. The next apply's
//! create then meets that copy; it is this address's own and is taken over.
//! Anything else under the name belongs to someone else and is never touched.

use super::{Cx, Desired, ProviderError, SchemaDiff};
use crate::kit::Provider;
use indexmap::IndexMap;
use reconcile_core::model::Fields;
use reconcile_core::plan::{tags_value, FieldChange, Observed, TAG_ADDRESS, TAG_STACK};

/// Whether `tags` say the resource is this stack's copy for `address`.
pub fn is_ours(cx: &Cx, tags: &IndexMap<String, String>, address: &str) -> bool {
    tags.get(TAG_STACK) == Some(&cx.stack)
        && tags.get(TAG_ADDRESS).map(String::as_str) == Some(address)
}

/// After a create was refused because `name` is taken: `found`, the copy read
/// back by name, is taken over when an interrupted apply of this address made
/// it; otherwise the create fails, saying how to adopt it on purpose. The copy
/// a replacement replaces carries the same tags and is never taken for the new one.
/// `what` names the kind for people ("an IAM role"); `refused` is AWS's answer.
pub fn take_over(
    cx: &Cx,
    want: &Desired<'_>,
    what: &str,
    name: &str,
    found: Option<Observed>,
    refused: ProviderError,
) -> Result<Observed, ProviderError> {
    let a = want.address;
    let Some(live) = found else {
        // Gone again between the create and the read: let the next apply retry.
        return Err(refused);
    };
    if !is_ours(cx, &live.tags, a) || want.replacing == Some(live.id.as_str()) {
        return Err(ProviderError::InvalidInput(format!(
            "{a}: {what} named `{name}` already exists and is not managed by this stack; adopt \
             it with `reconcile import {a} {}`, or choose another name",
            live.id
        )));
    }
    tracing::info!(address = a, id = %live.id, "adopting the copy an interrupted apply created");
    Ok(live)
}

/// For kinds whose names are not unique (Cognito pools): among `ids`, the
/// resources under the declared name, the copy an interrupted create of this
/// address left, read with `read`: tagged as ours, and not the copy a
/// replacement replaces. Read one at a time, stopping at the first.
pub async fn interrupted_copy<F, Fut>(
    cx: &Cx,
    want: &Desired<'_>,
    ids: Vec<String>,
    read: F,
) -> Result<Option<Observed>, ProviderError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Observed>, ProviderError>>,
{
    for id in ids {
        if want.replacing == Some(id.as_str()) {
            continue;
        }
        if let Some(o) = read(id)
            .await?
            .filter(|o| is_ours(cx, &o.tags, want.address))
        {
            return Ok(Some(o));
        }
    }
    Ok(None)
}

/// Fields with the tags as one more field, so one diff covers both.
pub fn with_tags(fields: &Fields, tags: &IndexMap<String, String>) -> Fields {
    let mut f = fields.clone();
    f.insert("tags".into(), tags_value(tags));
    f
}

/// What still differs between `want` and a live copy, tags included: what an
/// adopted copy needs before it is the declared resource.
pub fn changes_to(
    kind: &(impl Provider + ?Sized),
    want: &Desired<'_>,
    live: &Observed,
) -> Vec<FieldChange> {
    kind.diff(
        &with_tags(want.fields, want.tags),
        &with_tags(&live.fields, &live.tags),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::client::{AwsOptions, CallCounter};
    use reconcile_core::model::Value;

    async fn cx() -> Cx {
        let opts = AwsOptions {
            region: "us-east-1".into(),
            endpoint_url: Some("http://127.0.0.1:9".into()),
        };
        Cx::connect(&opts, "shop", CallCounter::default()).await
    }

    fn copy(id: &str, stack: &str, address: &str) -> Observed {
        Observed {
            id: id.into(),
            fields: Fields::new(),
            attributes: Fields::new(),
            tags: [(TAG_STACK, stack), (TAG_ADDRESS, address)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[tokio::test]
    async fn only_this_address_own_copy_is_taken_over() {
        let cx = cx().await;
        let fields = Fields::new();
        let tags = IndexMap::new();
        let want = |replacing| Desired {
            address: "log_group.app",
            fields: &fields,
            tags: &tags,
            token: "t",
            replacing,
        };
        let refused = || ProviderError::Other("exists".into());
        let ours = copy("/app", "shop", "log_group.app");
        let got = take_over(
            &cx,
            &want(None),
            "a log group",
            "/app",
            Some(ours.clone()),
            refused(),
        );
        assert_eq!(got.unwrap().id, "/app");

        for other in [
            copy("/app", "other", "log_group.app"),
            copy("/app", "shop", "log_group.b"),
        ] {
            let err = take_over(
                &cx,
                &want(None),
                "a log group",
                "/app",
                Some(other),
                refused(),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("reconcile import log_group.app /app"), "{err}");
        }
        // The copy being replaced is not the new one, tags notwithstanding.
        assert!(take_over(
            &cx,
            &want(Some("/app")),
            "a log group",
            "/app",
            Some(ours),
            refused()
        )
        .is_err());
        // Vanished in between: AWS's own refusal stands, and the next apply retries.
        let err = take_over(&cx, &want(None), "a log group", "/app", None, refused()).unwrap_err();
        assert!(matches!(err, ProviderError::Other(_)));
    }

    #[test]
    fn tags_ride_along_as_a_field() {
        let mut f = Fields::new();
        f.insert("name".into(), Value::str("x"));
        let tags: IndexMap<String, String> = [("k".to_string(), "v".to_string())].into();
        let w = with_tags(&f, &tags);
        assert_eq!(w["tags"], tags_value(&tags));
        assert_eq!(w["name"], Value::str("x"));
    }
}
