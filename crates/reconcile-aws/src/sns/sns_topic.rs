//! `sns_topic`: an SNS standard topic, its display name, KMS key, tags and its
//! subscriptions inline.
//!
//! Subscriptions are compared as a set of (protocol, endpoint): an email or
//! https subscription waits for its owner to confirm it, and until then AWS
//! lists it under the ARN "PendingConfirmation". That is the subscription as
//! declared, not drift. A pending subscription has no ARN to unsubscribe by,
//! so one removed from the stack stays until AWS lets it expire.
//! Subscriptions are read only for topics that declare `subscriptions`: left
//! out, they are not managed, and a no-op plan does not pay for them.

use crate::kit::adopt::{changes_to, take_over};
use crate::kit::error::{at, gone_is_done, unless_gone};
use crate::kit::fields::{changes_field, fields_of, str_of};
use crate::kit::tags::{own_tags, read_each, stack_resources_of_type};
use crate::kit::{by_id, each, observe_declared, Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_sns::types::Tag;
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeSet, HashMap};

pub struct SnsTopic;

/// What ListSubscriptionsByTopic answers for a subscription's ARN until the
/// endpoint's owner confirms it.
pub const PENDING: &str = "PendingConfirmation";

pub const PROTOCOLS: &[&str] = &[
    "email",
    "email-json",
    "http",
    "https",
    "sqs",
    "lambda",
    "sms",
];

const SUBSCRIPTION_FIELDS: &[Field] = &[
    Field::new(
        "protocol",
        Ty::Enum(PROTOCOLS),
        "email, email-json, http, https, sqs, lambda or sms.",
    )
    .required()
    .norm(Norm::Case),
    Field::new(
        "endpoint",
        Ty::Str,
        "Where messages go: an address for email, a URL for http(s), the queue's or \
         function's ARN for sqs and lambda, a phone number for sms.",
    )
    .required(),
];

pub static SCHEMA: Schema = Schema {
    kind: "sns_topic",
    doc: "An SNS standard topic, such as the one CloudWatch alarms notify, with its \
          subscriptions inline. `subscriptions` is compared as a set of (protocol, endpoint): \
          an email or https subscription AWS lists as pending confirmation until its owner \
          confirms it is the declared subscription, not drift; left out, subscriptions are not \
          managed. A removed subscription is unsubscribed, except one still pending \
          confirmation, which has no ARN to unsubscribe by: AWS lets it expire. Observing costs \
          one GetTopicAttributes per topic, one ListSubscriptionsByTopic per topic that declares \
          `subscriptions` (concurrently), and tags from the plan's one Resource Groups Tagging \
          API read of the whole stack (else one ListTagsForResource per topic). A create first \
          looks for the name with ListTopics: CreateTopic answers an existing topic's ARN \
          instead of refusing, and another's topic is never taken over. The emulator confirms \
          every subscription at once (none is ever pending there), answers CreateTopic for an \
          existing name with different tags without complaint, and lets a subscription be \
          unsubscribed whatever its state.",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(check_name),
            "The topic name: 1 to 256 letters, digits, hyphens and underscores. Changing it \
             replaces the topic (and its subscriptions).",
        )
        .required()
        .force_new(),
        Field::new(
            "display_name",
            Ty::Str,
            "The sender name of email and SMS notifications, up to 100 characters. Updated in place.",
        )
        .default(Default::Str("")),
        Field::new(
            "kms_master_key_id",
            Ty::Str,
            "The KMS key that encrypts messages at rest: its ARN (`${kms_key.NAME.arn}`), id or \
             alias; left out, messages are not encrypted with a customer key. Its key policy \
             must let the publishers (cloudwatch.amazonaws.com for alarms) use it. Updated in place.",
        )
        .absent_clears(),
        Field::new(
            "subscriptions",
            Ty::List(&Ty::Object(SUBSCRIPTION_FIELDS)),
            "Subscriptions, as `[{ protocol = \"email\", endpoint = \"ops@example.com\" }]`, \
             compared as a set. Added with Subscribe, removed with Unsubscribe; left out, the \
             topic's subscriptions are not managed.",
        )
        .set(),
    ],
    attributes: &[
        ("id", "The topic's ARN, which is its id."),
        (
            "arn",
            "The topic's ARN: what alarms' `alarm_actions` and `ok_actions` take.",
        ),
        ("name", "The topic name."),
    ],
    taggable: true,
};

/// Topic names: 1 to 256 of letters, digits, `-` and `_` (standard topics).
pub fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 256 {
        return Err(format!("\"{s}\": a topic name has 1 to 256 characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "\"{s}\" contains {c:?}; use letters, digits, hyphens and underscores only \
             (FIFO topics are not supported)"
        ));
    }
    Ok(())
}

/// Problems with a topic's fields, as (field, what, what to do).
pub fn problems(f: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    if str_of(f, "display_name").is_some_and(|d| d.chars().count() > 100) {
        out.push((
            "display_name",
            "the display name is longer than 100 characters".into(),
            "shorten it".into(),
        ));
    }
    for (protocol, endpoint) in subscriptions(f).unwrap_or_default() {
        if endpoint.contains("${") {
            continue;
        }
        let fits = match protocol.as_str() {
            "email" | "email-json" => endpoint.contains('@'),
            "https" => endpoint.starts_with("https://"),
            "http" => endpoint.starts_with("http://"),
            "sqs" => endpoint.starts_with("arn:") && endpoint.contains(":sqs:"),
            "lambda" => endpoint.starts_with("arn:") && endpoint.contains(":lambda:"),
            _ => true,
        };
        if !fits {
            let want = match protocol.as_str() {
                "email" | "email-json" => "an email address",
                "https" => "a URL beginning with https://",
                "http" => "a URL beginning with http://",
                "sqs" => "a queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME)",
                _ => "a function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)",
            };
            out.push((
                "subscriptions",
                format!("the {protocol} subscription's endpoint \"{endpoint}\" is not {want}"),
                format!("write {want} as its endpoint"),
            ));
        }
    }
    out
}

/// The declared (protocol, endpoint) pairs, protocols in lower case; `None`
/// when `subscriptions` is left out.
pub fn subscriptions(f: &Fields) -> Option<BTreeSet<(String, String)>> {
    let list = f.get("subscriptions")?.as_list()?;
    Some(
        list.iter()
            .filter_map(|s| {
                let m = s.as_map()?;
                let p = m.get("protocol")?.as_str()?.to_ascii_lowercase();
                Some((p, m.get("endpoint")?.as_str()?.to_string()))
            })
            .collect(),
    )
}

/// Subscriptions as the field holds them.
fn subscriptions_value(pairs: impl IntoIterator<Item = (String, String)>) -> Value {
    Value::List(
        pairs
            .into_iter()
            .map(|(p, e)| {
                Value::Map(fields_of([
                    ("endpoint", Value::str(e)),
                    ("protocol", Value::str(p)),
                ]))
            })
            .collect(),
    )
}

/// A topic's live subscriptions as (protocol, endpoint) -> ARN, pending ones
/// included under [`PENDING`]; `None` when the topic is gone.
async fn list_subscriptions(
    cx: &Cx,
    arn: &str,
) -> Result<Option<Vec<((String, String), String)>>, ProviderError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let Some(page) = unless_gone(
            cx.sns
                .list_subscriptions_by_topic()
                .topic_arn(arn)
                .set_next_token(token)
                .send()
                .await,
        )?
        else {
            return Ok(None);
        };
        for s in page.subscriptions() {
            let sub = s.subscription_arn().unwrap_or(PENDING);
            // Unsubscribed a moment ago: AWS may still list it so.
            if sub == "Deleted" {
                continue;
            }
            let (Some(p), Some(e)) = (s.protocol(), s.endpoint()) else {
                continue;
            };
            out.push(((p.to_ascii_lowercase(), e.to_string()), sub.to_string()));
        }
        match page.next_token().filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(Some(out)),
        }
    }
}

/// The subscriptions field of a topic; `None` when it is gone.
async fn subscriptions_of(cx: &Cx, arn: &str) -> Result<Option<Value>, ProviderError> {
    Ok(list_subscriptions(cx, arn)
        .await?
        .map(|subs| subscriptions_value(subs.into_iter().map(|(k, _)| k))))
}

fn tags_of(list: &[Tag]) -> IndexMap<String, String> {
    own_tags(list.iter().map(|t| (t.key(), t.value())))
}

fn aws_tags(tags: &IndexMap<String, String>) -> Result<Vec<Tag>, ProviderError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| ProviderError::InvalidInput(e.to_string()))
        })
        .collect()
}

/// A topic's tags with SNS's own call; `None` when it is gone.
async fn list_tags(cx: &Cx, arn: &str) -> Result<Option<IndexMap<String, String>>, ProviderError> {
    let out = unless_gone(
        cx.sns
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await,
    )?;
    Ok(out.map(|o| tags_of(o.tags())))
}

/// The name at the end of a topic ARN.
pub fn name_of(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// What GetTopicAttributes answers, as fields.
pub fn fields_from(attrs: &HashMap<String, String>, arn: &str) -> Fields {
    let mut f = fields_of([
        ("name", Value::str(name_of(arn))),
        (
            "display_name",
            Value::str(attrs.get("DisplayName").cloned().unwrap_or_default()),
        ),
    ]);
    if let Some(k) = attrs.get("KmsMasterKeyId").filter(|k| !k.is_empty()) {
        f.insert("kms_master_key_id".into(), Value::str(k));
    }
    f
}

/// One topic by ARN, tags included (from the stack index where it lists the
/// topic); subscriptions are read apart, only where declared.
async fn read(cx: &Cx, arn: &str) -> Result<Option<Observed>, ProviderError> {
    let Some(out) = unless_gone(cx.sns.get_topic_attributes().topic_arn(arn).send().await)? else {
        return Ok(None);
    };
    let fields = fields_from(out.attributes().unwrap_or(&HashMap::new()), arn);
    let tags = match crate::kit::tags::indexed(cx, SCHEMA.kind, arn, arn).await {
        Some(t) => t,
        None => match list_tags(cx, arn).await? {
            Some(t) => t,
            None => return Ok(None),
        },
    };
    Ok(Some(Observed {
        id: arn.to_string(),
        fields,
        attributes: fields_of([
            ("id", Value::str(arn)),
            ("arn", Value::str(arn)),
            ("name", Value::str(name_of(arn))),
        ]),
        tags,
    }))
}

/// The ARN of the topic named `name`, if one exists: ListTopics, 100 a page.
async fn find_by_name(cx: &Cx, name: &str) -> Result<Option<String>, ProviderError> {
    let mut pages = cx.sns.list_topics().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProviderError::from_sdk)?;
        if let Some(arn) = page
            .topics()
            .iter()
            .filter_map(|t| t.topic_arn())
            .find(|a| name_of(a) == name)
        {
            return Ok(Some(arn.to_string()));
        }
    }
    Ok(None)
}

impl SnsTopic {
    async fn set_attribute(
        &self,
        cx: &Cx,
        a: &str,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), ProviderError> {
        cx.sns
            .set_topic_attributes()
            .topic_arn(arn)
            .attribute_name(name)
            .attribute_value(value)
            .send()
            .await
            .map(drop)
            .map_err(|e| at(a, "SetTopicAttributes", e.into()))
    }

    /// Makes the topic match `want` for the changed fields.
    async fn sync(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<(), ProviderError> {
        let f = want.fields;
        let a = want.address;
        let arn = live.id.as_str();
        if changes_field(changes, "display_name") {
            let name = str_of(f, "display_name").unwrap_or_default();
            self.set_attribute(cx, a, arn, "DisplayName", name).await?;
        }
        if changes_field(changes, "kms_master_key_id") {
            // An empty value turns customer-key encryption off.
            let key = str_of(f, "kms_master_key_id").unwrap_or_default();
            self.set_attribute(cx, a, arn, "KmsMasterKeyId", key)
                .await?;
        }
        if changes_field(changes, "subscriptions") {
            if let Some(wanted) = subscriptions(f) {
                self.sync_subscriptions(cx, a, arn, &wanted).await?;
            }
        }
        if changes_field(changes, "tags") {
            crate::sync_tags_by!(
                &live.tags,
                want.tags,
                a,
                untag: cx.sns.untag_resource().resource_arn(arn),
                tag: cx.sns.tag_resource().resource_arn(arn),
                tags: aws_tags,
            )
            .await?;
        }
        Ok(())
    }

    /// Subscribes what is declared and missing, unsubscribes what is live and
    /// not declared (but for subscriptions still pending, which cannot be).
    async fn sync_subscriptions(
        &self,
        cx: &Cx,
        a: &str,
        arn: &str,
        wanted: &BTreeSet<(String, String)>,
    ) -> Result<(), ProviderError> {
        let live = list_subscriptions(cx, arn).await?.unwrap_or_default();
        let have: BTreeSet<&(String, String)> = live.iter().map(|(k, _)| k).collect();
        for (protocol, endpoint) in wanted.iter().filter(|k| !have.contains(k)) {
            cx.sns
                .subscribe()
                .topic_arn(arn)
                .protocol(protocol)
                .endpoint(endpoint)
                .return_subscription_arn(true)
                .send()
                .await
                .map_err(|e| at(a, "Subscribe", e.into()))?;
        }
        for ((protocol, endpoint), sub) in live.iter().filter(|(k, _)| !wanted.contains(k)) {
            if sub == PENDING {
                tracing::warn!(
                    address = a,
                    protocol = %protocol,
                    endpoint = %endpoint,
                    "a subscription pending confirmation cannot be unsubscribed; AWS removes it when it expires"
                );
                continue;
            }
            gone_is_done(cx.sns.unsubscribe().subscription_arn(sub).send().await)
                .map_err(|e| at(a, "Unsubscribe", e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for SnsTopic {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        crate::kit::fields::diagnostics(r, problems(&r.fields))
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let reads = ids.iter().map(|id| read(cx, id)).collect();
        Ok(by_id(each(reads).await?))
    }

    async fn observe_against_desired(
        &self,
        cx: &Cx,
        items: &mut [(&Resource, &mut Observed)],
    ) -> Result<(), ProviderError> {
        observe_declared(
            items,
            "subscriptions",
            |_| true,
            |arn| async move { subscriptions_of(cx, &arn).await },
        )
        .await
    }

    async fn read_tags(
        &self,
        cx: &Cx,
        arns: &[String],
    ) -> Result<Option<crate::kit::tags::TagsByArn>, ProviderError> {
        read_each(arns, |arn| async move { list_tags(cx, &arn).await }).await
    }

    /// One Tagging API listing of the stack's topics, then a read of each,
    /// subscriptions included (an adoption is compared before any other
    /// observation): ListTopics answers without tags.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let reads = stack_resources_of_type(cx, "sns:topic")
            .await?
            .into_iter()
            .filter_map(|(arn, tags)| {
                let address = crate::kit::tags::stack_address(cx, &tags)?;
                (addresses.is_empty() || addresses.contains(&address)).then_some((arn, address))
            })
            .map(|(arn, address)| async move {
                let Some(mut o) = read(cx, &arn).await? else {
                    return Ok(None);
                };
                if let Some(s) = subscriptions_of(cx, &arn).await? {
                    o.fields.insert("subscriptions".into(), s);
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
        let name = str_of(f, "name").ok_or_else(|| {
            ProviderError::InvalidInput(format!("{a}: `name` must be a known string"))
        })?;
        // CreateTopic answers an existing topic's ARN as if it had made it:
        // look first, so that nobody else's topic is taken for ours.
        let (live, changes) = match find_by_name(cx, name).await? {
            Some(arn) => {
                let mut found = read(cx, &arn).await?;
                if let Some(o) = found.as_mut() {
                    if let Some(s) = subscriptions_of(cx, &arn).await? {
                        o.fields.insert("subscriptions".into(), s);
                    }
                }
                let refused = ProviderError::InvalidInput(format!(
                    "{a}: a topic named `{name}` already exists"
                ));
                let live = take_over(cx, want, "an SNS topic", name, found, refused)?;
                let changes = changes_to(self, want, &live);
                (live, changes)
            }
            None => {
                let mut attrs = HashMap::new();
                if let Some(d) = str_of(f, "display_name").filter(|d| !d.is_empty()) {
                    attrs.insert("DisplayName".to_string(), d.to_string());
                }
                if let Some(k) = str_of(f, "kms_master_key_id").filter(|k| !k.is_empty()) {
                    attrs.insert("KmsMasterKeyId".to_string(), k.to_string());
                }
                let out = cx
                    .sns
                    .create_topic()
                    .name(name)
                    .set_attributes(Some(attrs))
                    // Tagged in the same call, so an interrupted create is found again by its tags.
                    .set_tags(Some(aws_tags(want.tags)?))
                    .send()
                    .await
                    .map_err(|e| at(a, "CreateTopic", e.into()))?;
                let arn = out.topic_arn().ok_or_else(|| {
                    ProviderError::Other(format!("{a}: CreateTopic answered no ARN"))
                })?;
                let made = Observed {
                    id: arn.to_string(),
                    fields: Fields::new(),
                    attributes: Fields::new(),
                    tags: want.tags.clone(),
                };
                let subs = f
                    .get("subscriptions")
                    .map(|s| FieldChange::new("subscriptions", None, Some(s.clone()), false));
                (made, subs.into_iter().collect())
            }
        };
        self.sync(cx, &live, want, &changes).await?;
        let read_back = read(cx, &live.id).await?.ok_or_else(|| {
            ProviderError::Other(format!(
                "{a}: the topic `{name}` is not described right after its creation; run plan again"
            ))
        })?;
        Ok(Observed {
            id: live.id,
            fields: f.clone(),
            attributes: read_back.attributes,
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
        Ok(crate::kit::updated(&SCHEMA, live, want))
    }

    /// DeleteTopic; AWS removes the topic's subscriptions with it.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        gone_is_done(cx.sns.delete_topic().topic_arn(id).send().await).map_err(|e| {
            at(
                &format!("sns_topic {id} (stack {})", cx.stack),
                "DeleteTopic",
                e,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    fn sub(p: &str, e: &str) -> Value {
        Value::Map(fields_of([
            ("protocol", Value::str(p)),
            ("endpoint", Value::str(e)),
        ]))
    }

    fn with_subs(subs: Vec<Value>) -> Fields {
        fields_of([
            ("name", Value::str("alerts")),
            ("subscriptions", Value::List(subs)),
        ])
    }

    #[test]
    fn subscriptions_compare_as_a_set_of_protocol_and_endpoint() {
        let want = with_subs(vec![
            sub("email", "ops@example.com"),
            sub("SQS", "arn:aws:sqs:us-east-1:1:q"),
        ]);
        let live = with_subs(vec![
            sub("sqs", "arn:aws:sqs:us-east-1:1:q"),
            sub("email", "ops@example.com"),
        ]);
        assert!(SnsTopic.diff(&want, &live).is_empty());
        let fewer = with_subs(vec![sub("email", "ops@example.com")]);
        let c = SnsTopic.diff(&fewer, &live);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "subscriptions");
        // Left out, subscriptions are not managed.
        let undeclared = fields_of([("name", Value::str("alerts"))]);
        assert!(SnsTopic.diff(&undeclared, &live).is_empty());
    }

    #[test]
    fn endpoints_must_fit_their_protocol() {
        assert!(problems(&with_subs(vec![
            sub("email", "ops@example.com"),
            sub("https", "https://hooks.example.com/x"),
            sub("lambda", "${lambda_function.f.arn}"),
        ]))
        .is_empty());
        let p = problems(&with_subs(vec![
            sub("email", "not-an-address"),
            sub("https", "http://plain.example.com"),
            sub("sqs", "queue-name"),
        ]));
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p.iter().all(|x| x.0 == "subscriptions"));
        assert!(check_name("proxy-smart_alarms").is_ok());
        assert!(check_name("orders.fifo").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn attributes_read_as_fields() {
        let arn = "arn:aws:sns:us-east-1:123456789012:alerts";
        let attrs: HashMap<String, String> = [
            ("DisplayName", "Ops"),
            ("KmsMasterKeyId", ""),
            ("Policy", "{}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let f = fields_from(&attrs, arn);
        assert_eq!(f["name"], Value::str("alerts"));
        assert_eq!(f["display_name"], Value::str("Ops"));
        assert!(!f.contains_key("kms_master_key_id"), "empty means none");
    }

    mod pending {
        use super::super::*;
        use crate::kit::client::{AwsOptions, CallCounter};
        use crate::kit::SchemaDiff;
        use aws_sdk_sns::operation::get_topic_attributes::GetTopicAttributesOutput;
        use aws_sdk_sns::operation::list_subscriptions_by_topic::ListSubscriptionsByTopicOutput;
        use aws_sdk_sns::operation::list_tags_for_resource::ListTagsForResourceOutput;
        use aws_sdk_sns::types::Subscription;
        use aws_sdk_sns::Client;
        use aws_smithy_mocks::{mock, mock_client, RuleMode};

        const ARN: &str = "arn:aws:sns:us-east-1:123456789012:alerts";

        fn subscription(arn: &str, protocol: &str, endpoint: &str) -> Subscription {
            Subscription::builder()
                .subscription_arn(arn)
                .protocol(protocol)
                .endpoint(endpoint)
                .topic_arn(ARN)
                .build()
        }

        /// The emulator confirms every subscription at once, so AWS's
        /// "PendingConfirmation" answer is staged here.
        #[tokio::test]
        async fn a_subscription_pending_confirmation_is_the_declared_one() {
            let attrs = mock!(Client::get_topic_attributes).then_output(|| {
                GetTopicAttributesOutput::builder()
                    .attributes("DisplayName", "Ops")
                    .attributes("SubscriptionsPending", "1")
                    .build()
            });
            let subs = mock!(Client::list_subscriptions_by_topic).then_output(|| {
                ListSubscriptionsByTopicOutput::builder()
                    .subscriptions(subscription(PENDING, "email", "ops@example.com"))
                    .subscriptions(subscription(
                        &format!("{ARN}:4b1c"),
                        "sqs",
                        "arn:aws:sqs:us-east-1:123456789012:q",
                    ))
                    .subscriptions(subscription("Deleted", "email", "old@example.com"))
                    .build()
            });
            let tags = mock!(Client::list_tags_for_resource)
                .then_output(|| ListTagsForResourceOutput::builder().build());
            let opts = AwsOptions {
                region: "us-east-1".into(),
                endpoint_url: Some("http://127.0.0.1:9".into()),
            };
            let mut cx = Cx::connect(&opts, "s", CallCounter::default()).await;
            cx.sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&attrs, &subs, &tags]);

            let want = fields_of([
                ("name", Value::str("alerts")),
                ("display_name", Value::str("Ops")),
                (
                    "subscriptions",
                    Value::List(vec![
                        super::sub("sqs", "arn:aws:sqs:us-east-1:123456789012:q"),
                        super::sub("email", "ops@example.com"),
                    ]),
                ),
            ]);
            let r = crate::kit::testing::resource(
                "sns_topic.alerts",
                &want
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect::<Vec<_>>(),
            );
            let mut seen = SnsTopic.observe(&cx, &[ARN.to_string()]).await.unwrap();
            let o = seen.get_mut(ARN).expect("observed");
            SnsTopic
                .observe_against_desired(&cx, &mut [(&r, o)])
                .await
                .unwrap();
            let changes = SnsTopic.diff(&want, &o.fields);
            assert!(changes.is_empty(), "{changes:?}");
            assert_eq!(subs.num_calls(), 1);
        }
    }
}
