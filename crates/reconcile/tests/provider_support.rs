//! The kinds a Fargate service needs besides ECS itself — `iam_role`,
//! `log_group`, `ecr_repository` — called through the library against a
//! private moto server: create, observe, a clean diff, in-place updates,
//! out-of-band changes caught and repaired, deletes, and what a batched observe
//! costs. What exists is checked with independent SDK clients.

mod common;

use indexmap::IndexMap;
use reconcile_aws::ecr::ecr_repository::EcrRepository;
use reconcile_aws::iam::iam_role::IamRole;
use reconcile_aws::kit::policy::canonical_policy;
use reconcile_aws::kit::SchemaDiff;
use reconcile_aws::logs::log_group::LogGroup;
use reconcile_aws::{AwsOptions, CallCounter, Cx, Desired, Provider, ProviderError};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed};

const STACK: &str = "support-test";

async fn connect(moto: &common::Moto) -> Cx {
    let opts = AwsOptions {
        region: common::REGION.into(),
        endpoint_url: Some(moto.url.clone()),
    };
    Cx::connect(&opts, STACK, CallCounter::default()).await
}

async fn conf(moto: &common::Moto) -> aws_types::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(common::REGION))
        .endpoint_url(&moto.url)
        .load()
        .await
}

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn strs(v: &[&str]) -> Value {
    Value::List(v.iter().map(|s| Value::str(*s)).collect())
}

fn tags(address: &str, extra: &[(&str, &str)]) -> IndexMap<String, String> {
    let mut t: IndexMap<String, String> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    t.insert("reconcile:stack".into(), STACK.into());
    t.insert("reconcile:address".into(), address.into());
    t
}

fn tags_value(t: &IndexMap<String, String>) -> Value {
    Value::Map(
        t.iter()
            .map(|(k, v)| (k.clone(), Value::str(v.clone())))
            .collect(),
    )
}

/// What the planner compares: declared fields (local settings compared with
/// the last apply instead, so left out here) and the tags.
fn changes(
    p: &dyn Provider,
    want: &Fields,
    t: &IndexMap<String, String>,
    live: &Observed,
) -> Vec<FieldChange> {
    let mut want: Fields = want
        .iter()
        .filter(|(k, _)| !p.schema().field(k).is_some_and(|f| f.local))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    want.insert("tags".into(), tags_value(t));
    let mut have = live.fields.clone();
    have.insert("tags".into(), tags_value(&live.tags));
    p.diff(&want, &have)
}

fn names(ch: &[FieldChange]) -> Vec<&str> {
    ch.iter().map(|c| c.field.as_str()).collect()
}

async fn create(
    p: &dyn Provider,
    cx: &Cx,
    address: &str,
    f: &Fields,
    t: &IndexMap<String, String>,
) -> Result<Observed, ProviderError> {
    p.create(
        cx,
        &Desired {
            address,
            fields: f,
            tags: t,
            token: "unused",
            replacing: None,
        },
    )
    .await
}

async fn update(
    p: &dyn Provider,
    cx: &Cx,
    address: &str,
    live: &Observed,
    f: &Fields,
    t: &IndexMap<String, String>,
    ch: &[FieldChange],
) -> Observed {
    p.update(
        cx,
        live,
        &Desired {
            address,
            fields: f,
            tags: t,
            token: "unused",
            replacing: None,
        },
        ch,
    )
    .await
    .unwrap_or_else(|e| panic!("update {address}: {e}"))
}

async fn observe_one(p: &dyn Provider, cx: &Cx, id: &str) -> Option<Observed> {
    p.observe(cx, &[id.to_string()])
        .await
        .expect("observe")
        .remove(id)
}

/// Observes, diffs, and applies the diff; asserts the next diff is clean.
/// Returns the field names that changed.
async fn converge(
    p: &dyn Provider,
    cx: &Cx,
    address: &str,
    id: &str,
    want: &Fields,
    t: &IndexMap<String, String>,
) -> Vec<String> {
    let live = observe_one(p, cx, id).await.expect("exists");
    let ch = changes(p, want, t, &live);
    assert!(
        ch.iter().all(|c| !c.forces_replace),
        "{address}: unexpected replacement {ch:?}"
    );
    if !ch.is_empty() {
        update(p, cx, address, &live, want, t, &ch).await;
    }
    let again = observe_one(p, cx, id).await.expect("exists");
    let left = changes(p, want, t, &again);
    assert!(
        left.is_empty(),
        "{address}: still differs after update: {left:?}"
    );
    ch.into_iter().map(|c| c.field).collect()
}

fn count(cx: &Cx, op: &str) -> u64 {
    cx.calls
        .snapshot()
        .iter()
        .filter(|((_, o), _)| o == op)
        .map(|(_, n)| *n)
        .sum()
}

fn policy(action: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}]}}"#
    )
}

async fn managed_policy(iam: &aws_sdk_iam::Client, name: &str) -> String {
    iam.create_policy()
        .policy_name(name)
        .policy_document(policy("s3:ListBucket", "*"))
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}

async fn attached(iam: &aws_sdk_iam::Client, role: &str) -> Vec<String> {
    let mut v: Vec<String> = iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap()
        .attached_policies()
        .iter()
        .map(|p| p.policy_arn().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn iam_role_lifecycle() {
    let moto = common::Moto::start();
    let cx = connect(&moto).await;
    let iam = aws_sdk_iam::Client::new(&conf(&moto).await);
    let p1 = managed_policy(&iam, "support-one").await;
    let p2 = managed_policy(&iam, "support-two").await;
    let addr = "iam_role.exec";
    let t = tags(addr, &[("Project", "proxy-smart")]);
    let secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
    let mut want = fields(&[
        ("name", Value::str("support-exec")),
        ("path", Value::str("/ecs/")),
        ("description", Value::str("task execution role")),
        ("trusted_services", strs(&["ecs-tasks.amazonaws.com"])),
        ("managed_policy_arns", Value::List(vec![Value::str(&p1)])),
        (
            "inline_policies",
            Value::Map(fields(&[(
                "read-secret",
                // Written the way a person would: indented, one statement as an object.
                Value::str(format!(
                    "{{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": {{\n    \"Effect\": \"Allow\",\n    \"Action\": [\"secretsmanager:GetSecretValue\"],\n    \"Resource\": \"{secret_arn}\"\n  }}\n}}\n"
                )),
            )])),
        ),
        ("max_session_duration", Value::Int(3600)),
    ]);

    let made = create(&IamRole, &cx, addr, &want, &t)
        .await
        .expect("create");
    assert_eq!(made.id, "support-exec");
    assert_eq!(
        made.attributes["arn"],
        Value::str("arn:aws:iam::123456789012:role/ecs/support-exec")
    );
    assert!(made.attributes["unique_id"]
        .as_str()
        .unwrap()
        .starts_with("AROA"));

    // What IAM holds, read independently.
    let role = iam
        .get_role()
        .role_name("support-exec")
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    assert_eq!(role.path(), "/ecs/");
    let trust = canonical_policy(role.assume_role_policy_document().unwrap()).unwrap();
    assert!(trust.contains("ecs-tasks.amazonaws.com"), "{trust}");
    assert!(role
        .tags()
        .iter()
        .any(|t| t.key() == "reconcile:address" && t.value() == addr));
    assert_eq!(attached(&iam, "support-exec").await, vec![p1.clone()]);

    // Observed: the same attributes, and nothing to change.
    let live = observe_one(&IamRole, &cx, "support-exec").await.unwrap();
    assert_eq!(live.attributes, made.attributes);
    let ch = changes(&IamRole, &want, &t, &live);
    assert!(ch.is_empty(), "{ch:?}");

    // In place: another managed policy, another inline document, another description.
    want.insert(
        "managed_policy_arns".into(),
        Value::List(vec![Value::str(&p2)]),
    );
    want.insert(
        "inline_policies".into(),
        Value::Map(fields(&[(
            "read-secret",
            Value::str(policy("secretsmanager:DescribeSecret", secret_arn)),
        )])),
    );
    want.insert("description".into(), Value::str("reads one secret"));
    let changed = converge(&IamRole, &cx, addr, "support-exec", &want, &t).await;
    assert_eq!(
        changed,
        ["description", "managed_policy_arns", "inline_policies"]
    );
    assert_eq!(attached(&iam, "support-exec").await, vec![p2.clone()]);
    let doc = iam
        .get_role_policy()
        .role_name("support-exec")
        .policy_name("read-secret")
        .send()
        .await
        .unwrap();
    assert!(
        canonical_policy(doc.policy_document())
            .unwrap()
            .contains("secretsmanager:DescribeSecret"),
        "{}",
        doc.policy_document()
    );

    // The trust policy written as a document instead of trusted_services: the same meaning, no diff.
    let mut as_json = want.clone();
    as_json.shift_remove("trusted_services");
    as_json.insert(
        "assume_role_policy".into(),
        Value::str(
            r#"{
              "Statement": [{
                "Action": ["sts:AssumeRole"],
                "Principal": { "Service": ["ecs-tasks.amazonaws.com"] },
                "Effect": "Allow"
              }],
              "Version": "2012-10-17"
            }"#,
        ),
    );
    let live = observe_one(&IamRole, &cx, "support-exec").await.unwrap();
    let ch = changes(&IamRole, &as_json, &t, &live);
    assert!(ch.is_empty(), "{ch:?}");
    // A different trust policy is a change, repaired in place.
    let mut lambda = want.clone();
    lambda.insert(
        "trusted_services".into(),
        strs(&["ecs-tasks.amazonaws.com", "lambda.amazonaws.com"]),
    );
    let changed = converge(&IamRole, &cx, addr, "support-exec", &lambda, &t).await;
    assert_eq!(changed, ["trusted_services"]);
    // And back through the JSON form: the diff names assume_role_policy.
    let changed = converge(&IamRole, &cx, addr, "support-exec", &as_json, &t).await;
    assert_eq!(changed, ["assume_role_policy"]);

    // Out of band: the inline policy widened and a second one added, by someone else.
    iam.put_role_policy()
        .role_name("support-exec")
        .policy_name("read-secret")
        .policy_document(policy("secretsmanager:*", "*"))
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("support-exec")
        .policy_name("extra")
        .policy_document(policy("s3:*", "*"))
        .send()
        .await
        .unwrap();
    let live = observe_one(&IamRole, &cx, "support-exec").await.unwrap();
    let ch = changes(&IamRole, &as_json, &t, &live);
    assert_eq!(names(&ch), ["inline_policies"], "{ch:?}");
    let changed = converge(&IamRole, &cx, addr, "support-exec", &as_json, &t).await;
    assert_eq!(changed, ["inline_policies"]);
    let left = iam
        .list_role_policies()
        .role_name("support-exec")
        .send()
        .await
        .unwrap();
    assert_eq!(left.policy_names(), ["read-secret"]);
    let doc = iam
        .get_role_policy()
        .role_name("support-exec")
        .policy_name("read-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(
        canonical_policy(doc.policy_document()).unwrap(),
        canonical_policy(&policy("secretsmanager:DescribeSecret", secret_arn)).unwrap()
    );

    // Tags changed in place.
    let t2 = tags(addr, &[("Project", "carebow")]);
    let changed = converge(&IamRole, &cx, addr, "support-exec", &as_json, &t2).await;
    assert_eq!(changed, ["tags"]);

    // Look before you leap: the name is taken by this very address (an
    // interrupted create) -> adopted; by another address -> refused.
    let again = create(&IamRole, &cx, addr, &as_json, &t2)
        .await
        .expect("adopts its own role");
    assert_eq!(again.attributes["arn"], made.attributes["arn"]);
    let other = create(
        &IamRole,
        &cx,
        "iam_role.other",
        &as_json,
        &tags("iam_role.other", &[]),
    )
    .await
    .expect_err("someone else's role is not taken over");
    let msg = other.to_string();
    assert!(
        msg.contains("iam_role.other")
            && msg.contains("support-exec")
            && msg.contains("reconcile import"),
        "{msg}"
    );

    // Found by its tags.
    let found = IamRole.find_tagged(&cx, &[addr.to_string()]).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1.id, "support-exec");

    // Delete detaches and deletes policies first; a second delete is success.
    IamRole.delete(&cx, "support-exec").await.expect("delete");
    assert!(iam
        .get_role()
        .role_name("support-exec")
        .send()
        .await
        .is_err());
    assert!(observe_one(&IamRole, &cx, "support-exec").await.is_none());
    IamRole
        .delete(&cx, "support-exec")
        .await
        .expect("delete again");
}

async fn retention(logs: &aws_sdk_cloudwatchlogs::Client, name: &str) -> Option<i32> {
    logs.describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .unwrap()
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))
        .and_then(|g| g.retention_in_days())
}

#[tokio::test]
async fn log_group_lifecycle() {
    let moto = common::Moto::start();
    let cx = connect(&moto).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf(&moto).await);
    let addr = "log_group.keycloak";
    let name = "/ecs/support/keycloak";
    let t = tags(addr, &[("Project", "proxy-smart")]);
    let mut want = fields(&[
        ("name", Value::str(name)),
        ("retention_in_days", Value::Int(30)),
    ]);
    let made = create(&LogGroup, &cx, addr, &want, &t)
        .await
        .expect("create");
    assert_eq!(made.id, name);
    assert_eq!(
        made.attributes["arn"],
        Value::str(format!(
            "arn:aws:logs:us-east-1:123456789012:log-group:{name}"
        )),
        "the ARN carries no \":*\""
    );
    assert_eq!(retention(&logs, name).await, Some(30));
    let arn = made.attributes["arn"].as_str().unwrap().to_string();
    let live_tags = logs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        live_tags
            .tags()
            .unwrap()
            .get("reconcile:address")
            .map(String::as_str),
        Some(addr)
    );

    let live = observe_one(&LogGroup, &cx, name).await.unwrap();
    assert_eq!(live.attributes, made.attributes);
    assert!(changes(&LogGroup, &want, &t, &live).is_empty());

    // Retention changed in place.
    want.insert("retention_in_days".into(), Value::Int(90));
    assert_eq!(
        converge(&LogGroup, &cx, addr, name, &want, &t).await,
        ["retention_in_days"]
    );
    assert_eq!(retention(&logs, name).await, Some(90));

    // Out of band: someone shortens retention; drift, repaired.
    logs.put_retention_policy()
        .log_group_name(name)
        .retention_in_days(1)
        .send()
        .await
        .unwrap();
    let live = observe_one(&LogGroup, &cx, name).await.unwrap();
    let ch = changes(&LogGroup, &want, &t, &live);
    assert_eq!(names(&ch), ["retention_in_days"]);
    assert_eq!(ch[0].old, Some(Value::Int(1)));
    converge(&LogGroup, &cx, addr, name, &want, &t).await;
    assert_eq!(retention(&logs, name).await, Some(90));

    // Retention left out means never expire: the policy is deleted.
    want.shift_remove("retention_in_days");
    assert_eq!(
        converge(&LogGroup, &cx, addr, name, &want, &t).await,
        ["retention_in_days"]
    );
    assert_eq!(retention(&logs, name).await, None);

    // Tags in place.
    let t2 = tags(addr, &[("Environment", "production")]);
    assert_eq!(
        converge(&LogGroup, &cx, addr, name, &want, &t2).await,
        ["tags"]
    );
    let live_tags = logs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    let live_tags = live_tags.tags().unwrap();
    assert!(!live_tags.contains_key("Project"));
    assert_eq!(live_tags["Environment"], "production");

    // A name taken by another address is refused, naming both.
    let err = create(
        &LogGroup,
        &cx,
        "log_group.other",
        &want,
        &tags("log_group.other", &[]),
    )
    .await
    .expect_err("taken");
    assert!(err.to_string().contains("reconcile import"), "{err}");
    // The same address adopts its own.
    create(&LogGroup, &cx, addr, &want, &t2)
        .await
        .expect("adopts");

    LogGroup.delete(&cx, name).await.expect("delete");
    assert!(observe_one(&LogGroup, &cx, name).await.is_none());
    LogGroup.delete(&cx, name).await.expect("delete again");
}

async fn lifecycle_policy(ecr: &aws_sdk_ecr::Client, name: &str) -> Option<String> {
    ecr.get_lifecycle_policy()
        .repository_name(name)
        .send()
        .await
        .ok()
        .and_then(|p| p.lifecycle_policy_text().map(str::to_string))
}

#[tokio::test]
async fn ecr_repository_lifecycle() {
    let moto = common::Moto::start();
    let cx = connect(&moto).await;
    let ecr = aws_sdk_ecr::Client::new(&conf(&moto).await);
    let addr = "ecr_repository.keycloak";
    let name = "support/keycloak";
    let t = tags(addr, &[("Project", "proxy-smart")]);
    let mut want = fields(&[
        ("name", Value::str(name)),
        ("image_tag_mutability", Value::str("IMMUTABLE")),
        ("scan_on_push", Value::Bool(false)),
        ("encryption_type", Value::str("AES256")),
        ("keep_last_images", Value::Int(10)),
        ("force_delete", Value::Bool(false)),
    ]);
    let made = create(&EcrRepository, &cx, addr, &want, &t)
        .await
        .expect("create");
    assert_eq!(
        made.attributes["repository_url"],
        Value::str(format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}"
        ))
    );
    assert_eq!(made.attributes["registry_id"], Value::str("123456789012"));
    let text = lifecycle_policy(&ecr, name)
        .await
        .expect("a lifecycle policy");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["rules"][0]["selection"]["countNumber"], 10);
    assert_eq!(v["rules"][0]["action"]["type"], "expire");

    let live = observe_one(&EcrRepository, &cx, name).await.unwrap();
    assert_eq!(live.attributes, made.attributes);
    let ch = changes(&EcrRepository, &want, &t, &live);
    assert!(ch.is_empty(), "{ch:?}");

    // In place: scan on push, a shorter history, mutable tags.
    want.insert("scan_on_push".into(), Value::Bool(true));
    want.insert("keep_last_images".into(), Value::Int(5));
    want.insert("image_tag_mutability".into(), Value::str("MUTABLE"));
    let changed = converge(&EcrRepository, &cx, addr, name, &want, &t).await;
    assert_eq!(
        changed,
        ["image_tag_mutability", "scan_on_push", "keep_last_images"]
    );
    let repo = ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .unwrap();
    let repo = &repo.repositories()[0];
    assert!(repo.image_scanning_configuration().unwrap().scan_on_push());
    let text = lifecycle_policy(&ecr, name).await.unwrap();
    assert!(text.contains("\"countNumber\":5"), "{text}");

    // Out of band: the same policy written by hand (other description, key
    // order, priority) is no change; a different count is.
    ecr.put_lifecycle_policy()
        .repository_name(name)
        .lifecycle_policy_text(
            r#"{"rules":[{"action":{"type":"expire"},"rulePriority":7,"description":"by hand",
               "selection":{"countNumber":5,"tagStatus":"any","countType":"imageCountMoreThan"}}]}"#,
        )
        .send()
        .await
        .unwrap();
    let live = observe_one(&EcrRepository, &cx, name).await.unwrap();
    assert!(changes(&EcrRepository, &want, &t, &live).is_empty());
    ecr.put_lifecycle_policy()
        .repository_name(name)
        .lifecycle_policy_text(
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":50},"action":{"type":"expire"}}]}"#,
        )
        .send()
        .await
        .unwrap();
    let live = observe_one(&EcrRepository, &cx, name).await.unwrap();
    let ch = changes(&EcrRepository, &want, &t, &live);
    assert_eq!(names(&ch), ["keep_last_images"]);
    assert_eq!(ch[0].old, Some(Value::Int(50)));
    converge(&EcrRepository, &cx, addr, name, &want, &t).await;

    // 0: no lifecycle policy at all.
    want.insert("keep_last_images".into(), Value::Int(0));
    converge(&EcrRepository, &cx, addr, name, &want, &t).await;
    assert_eq!(lifecycle_policy(&ecr, name).await, None);

    // An image in the repository: deleting without force_delete fails clearly.
    ecr.put_image()
        .repository_name(name)
        .image_tag("v1")
        .image_manifest(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,"digest":"sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"},"layers":[]}"#,
        )
        .send()
        .await
        .unwrap();
    let err = EcrRepository
        .delete_applied(&cx, name, Some(&want))
        .await
        .expect_err("a repository with images is kept");
    assert!(err.to_string().contains("force_delete = true"), "{err}");
    assert!(observe_one(&EcrRepository, &cx, name).await.is_some());

    let refused = create(
        &EcrRepository,
        &cx,
        "ecr_repository.other",
        &want,
        &tags("ecr_repository.other", &[]),
    )
    .await
    .expect_err("taken");
    assert!(
        refused.to_string().contains("reconcile import"),
        "{refused}"
    );

    want.insert("force_delete".into(), Value::Bool(true));
    EcrRepository
        .delete_applied(&cx, name, Some(&want))
        .await
        .expect("force delete");
    assert!(observe_one(&EcrRepository, &cx, name).await.is_none());
    EcrRepository
        .delete_applied(&cx, name, Some(&want))
        .await
        .expect("delete again");
}

/// A no-op observe of several resources of each kind: IAM costs two calls for
/// the account whatever the number of roles; log groups one describe plus one
/// tag read each; repositories one describe plus a lifecycle and a tag read each.
#[tokio::test]
async fn batched_observe_call_counts() {
    let moto = common::Moto::start();
    let setup = connect(&moto).await;
    let mut roles = Vec::new();
    let mut groups = Vec::new();
    let mut repos = Vec::new();
    for i in 0..3 {
        let role = format!("support-role-{i}");
        let f = fields(&[
            ("name", Value::str(&role)),
            ("trusted_services", strs(&["ecs-tasks.amazonaws.com"])),
            (
                "inline_policies",
                Value::Map(fields(&[("p", Value::str(policy("s3:GetObject", "*")))])),
            ),
        ]);
        let a = format!("iam_role.r{i}");
        create(&IamRole, &setup, &a, &f, &tags(&a, &[]))
            .await
            .unwrap();
        roles.push(role);

        let group = format!("/ecs/support/g{i}");
        let a = format!("log_group.g{i}");
        create(
            &LogGroup,
            &setup,
            &a,
            &fields(&[
                ("name", Value::str(&group)),
                ("retention_in_days", Value::Int(7)),
            ]),
            &tags(&a, &[]),
        )
        .await
        .unwrap();
        groups.push(group);

        let repo = format!("support/repo{i}");
        let a = format!("ecr_repository.r{i}");
        create(
            &EcrRepository,
            &setup,
            &a,
            &fields(&[
                ("name", Value::str(&repo)),
                ("keep_last_images", Value::Int(3)),
            ]),
            &tags(&a, &[]),
        )
        .await
        .unwrap();
        repos.push(repo);
    }

    let cx = connect(&moto).await;
    let found = IamRole.observe(&cx, &roles).await.unwrap();
    assert_eq!(found.len(), 3);
    assert!(found.values().all(|o| o.fields["inline_policies"]
        .as_map()
        .is_some_and(|m| m.contains_key("p"))));
    assert_eq!(count(&cx, "ListRoles"), 1, "{:?}", cx.calls.snapshot());
    assert_eq!(count(&cx, "GetAccountAuthorizationDetails"), 1);
    assert_eq!(cx.calls.total(), 2, "{:?}", cx.calls.snapshot());

    let cx = connect(&moto).await;
    let found = LogGroup.observe(&cx, &groups).await.unwrap();
    assert_eq!(found.len(), 3);
    assert_eq!(
        count(&cx, "DescribeLogGroups"),
        1,
        "{:?}",
        cx.calls.snapshot()
    );
    assert_eq!(count(&cx, "ListTagsForResource"), 3);
    assert_eq!(cx.calls.total(), 4);
    // In an observe pass, one Tagging API read answers the three groups' tags.
    let cx = connect(&moto).await.for_observe_pass();
    let in_pass = LogGroup.observe(&cx, &groups).await.unwrap();
    assert_eq!(count(&cx, "GetResources"), 1, "{:?}", cx.calls.snapshot());
    assert_eq!(count(&cx, "ListTagsForResource"), 0);
    assert_eq!(cx.calls.total(), 2);
    for (name, o) in &found {
        assert_eq!(in_pass[name].tags, o.tags, "{name}");
    }

    let cx = connect(&moto).await;
    let found = EcrRepository.observe(&cx, &repos).await.unwrap();
    assert_eq!(found.len(), 3);
    assert!(found
        .values()
        .all(|o| o.fields["keep_last_images"] == Value::Int(3)));
    assert_eq!(
        count(&cx, "DescribeRepositories"),
        1,
        "{:?}",
        cx.calls.snapshot()
    );
    assert_eq!(count(&cx, "GetLifecyclePolicy"), 3);
    assert_eq!(count(&cx, "ListTagsForResource"), 3);
    assert_eq!(cx.calls.total(), 7);
    // moto's Tagging API does not list repositories: in an observe pass the
    // index misses them, and ECR's own reads still answer.
    let cx = connect(&moto).await.for_observe_pass();
    let in_pass = EcrRepository.observe(&cx, &repos).await.unwrap();
    assert_eq!(count(&cx, "GetResources"), 1, "{:?}", cx.calls.snapshot());
    assert_eq!(count(&cx, "ListTagsForResource"), 3);
    for (name, o) in &found {
        assert_eq!(in_pass[name].tags, o.tags, "{name}");
    }

    // One repository gone: the describe by names fails whole, and one listing replaces it.
    EcrRepository.delete(&setup, &repos[0]).await.unwrap();
    let cx = connect(&moto).await;
    let found = EcrRepository.observe(&cx, &repos).await.unwrap();
    assert_eq!(found.len(), 2);
    assert!(!found.contains_key(&repos[0]));
    assert_eq!(
        count(&cx, "DescribeRepositories"),
        2,
        "{:?}",
        cx.calls.snapshot()
    );

    // A role gone is simply absent.
    IamRole.delete(&setup, &roles[0]).await.unwrap();
    let cx = connect(&moto).await;
    let found = IamRole.observe(&cx, &roles).await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(cx.calls.total(), 2);
}
