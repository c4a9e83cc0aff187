//! The secret provider, called directly through the library against a private
//! moto server: generated, environment-fed and unmanaged values; batched
//! observe and value comparison; updates; deletion with a recovery window and
//! a re-create that restores; find by tags. What is stored is checked with an
//! independent Secrets Manager client.

mod common;

use indexmap::IndexMap;
use reconcile_aws::kit::SchemaDiff;
use reconcile_aws::secretsmanager::secret::{Secret, SCHEMA};
use reconcile_aws::{AwsOptions, CallCounter, Cx, Desired, Provider, ProviderError};
use reconcile_core::model::{Fields, Resource, Value};
use reconcile_core::plan::{FieldChange, Observed};

const STACK: &str = "test-stack";
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

async fn connect(moto: &common::Moto, stack: &str) -> Cx {
    let opts = AwsOptions {
        region: "us-east-1".into(),
        endpoint_url: Some(moto.url.clone()),
    };
    Cx::connect(&opts, stack, CallCounter::default()).await
}

/// An independent client: not reconcile's, not counted.
async fn sm(moto: &common::Moto) -> aws_sdk_secretsmanager::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(common::REGION))
        .endpoint_url(&moto.url)
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&conf)
}

async fn stored(sm: &aws_sdk_secretsmanager::Client, id: &str) -> Option<String> {
    sm.get_secret_value()
        .secret_id(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.secret_string().map(str::to_string))
}

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(fields(pairs))
}

fn tags(cx: &Cx, address: &str, extra: &[(&str, &str)]) -> IndexMap<String, String> {
    let mut t: IndexMap<String, String> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    t.insert("reconcile:stack".into(), cx.stack.clone());
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

/// A variable name no other test uses, set to `value`.
fn env_var(value: &str) -> String {
    let name = format!(
        "RECONCILE_TEST_SECRET_{}",
        uuid::Uuid::new_v4().simple().to_string().to_uppercase()
    );
    std::env::set_var(&name, value);
    name
}

/// What the planner compares with AWS: declared fields without the ones
/// compared with the last apply instead (`generate`, `recovery_window_in_days`).
fn managed(f: &Fields) -> Fields {
    f.iter()
        .filter(|(k, _)| !SCHEMA.field(k).is_some_and(|f| f.local))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn changes(
    want: &Fields,
    want_tags: &IndexMap<String, String>,
    live: &Observed,
) -> Vec<FieldChange> {
    let mut want = managed(want);
    want.insert("tags".into(), tags_value(want_tags));
    let mut have = live.fields.clone();
    have.insert("tags".into(), tags_value(&live.tags));
    Secret.diff(&want, &have)
}

async fn create(
    cx: &Cx,
    address: &str,
    f: &Fields,
    t: &IndexMap<String, String>,
) -> Result<Observed, ProviderError> {
    let token = uuid::Uuid::new_v4().to_string();
    Secret
        .create(
            cx,
            &Desired {
                address,
                fields: f,
                tags: t,
                token: &token,
                replacing: None,
            },
        )
        .await
}

async fn update(
    cx: &Cx,
    address: &str,
    live: &Observed,
    f: &Fields,
    t: &IndexMap<String, String>,
    ch: &[FieldChange],
) -> Result<Observed, ProviderError> {
    Secret
        .update(
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
}

async fn observe_one(cx: &Cx, id: &str) -> Option<Observed> {
    let mut found = Secret
        .observe(cx, &[id.to_string()])
        .await
        .expect("observe");
    found.remove(id)
}

/// A declared resource as the model would hand it to `observe_against_desired`.
fn resource(address: &str, f: &Fields) -> Resource {
    let pos = reconcile_core::model::diag::Pos {
        file: "test.toml".into(),
        line: 1,
        col: 1,
    };
    Resource {
        address: address.into(),
        kind: "secret".into(),
        name: address.split('.').nth(1).unwrap_or_default().into(),
        fields: f.clone(),
        depends_on: vec![],
        protect: false,
        ignore_changes: vec![],
        tags: IndexMap::new(),
        pos,
        field_pos: IndexMap::new(),
        refs: vec![],
    }
}

/// Observes `id` and runs the value comparison, as `plan` does.
async fn observe_judged(cx: &Cx, address: &str, id: &str, f: &Fields) -> Observed {
    let mut live = observe_one(cx, id)
        .await
        .unwrap_or_else(|| panic!("{id} is not observed"));
    let r = resource(address, f);
    let mut items = [(&r, &mut live)];
    Secret
        .observe_against_desired(cx, &mut items)
        .await
        .expect("observe_against_desired");
    live
}

fn count(cx: &Cx, op: &str) -> u64 {
    cx.calls
        .snapshot()
        .iter()
        .filter(|((_, o), _)| o == op)
        .map(|(_, n)| *n)
        .sum()
}

async fn assert_found_by_tag(cx: &Cx, address: &str, id: &str) {
    let found = Secret
        .find_tagged(cx, &[address.to_string()])
        .await
        .expect("find_tagged");
    let ids: Vec<&str> = found.iter().map(|(_, o)| o.id.as_str()).collect();
    assert_eq!(ids, vec![id], "find_tagged({address}): {found:?}");
    assert_eq!(found[0].0, address);
}

fn generated_fields(name: &str) -> Fields {
    fields(&[
        ("name", Value::str(name)),
        ("description", Value::str("Keycloak database credentials")),
        (
            "generate",
            map(&[
                ("length", Value::Int(24)),
                ("exclude_punctuation", Value::Bool(true)),
                ("exclude_characters", Value::str("abcXYZ")),
                ("template", map(&[("username", Value::str("keycloak"))])),
                ("key", Value::str("password")),
            ]),
        ),
        ("recovery_window_in_days", Value::Int(7)),
    ])
}

#[tokio::test]
async fn generated_secret_lifecycle() {
    let moto = common::Moto::start();
    let cx = connect(&moto, STACK).await;
    let sm = sm(&moto).await;
    let addr = "secret.keycloak_db";
    let want = generated_fields("proxy-smart/keycloak-db");
    let t = tags(&cx, addr, &[("Project", "proxy-smart")]);

    let made = create(&cx, addr, &want, &t).await.expect("create");
    assert!(
        made.id.starts_with(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:proxy-smart/keycloak-db-"
        ),
        "{made:?}"
    );
    assert_eq!(made.attributes["arn"], Value::str(&made.id));
    assert_eq!(
        made.attributes["name"],
        Value::str("proxy-smart/keycloak-db")
    );

    // What was stored: the template with a password of the asked shape.
    let text = stored(&sm, &made.id).await.expect("a value is stored");
    let json: serde_json::Value = serde_json::from_str(&text).expect("the value is JSON");
    let obj = json.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["username", "password"]);
    assert_eq!(obj["username"], "keycloak");
    let password = obj["password"].as_str().unwrap().to_string();
    assert_eq!(password.chars().count(), 24, "password length");
    assert!(
        !password.chars().any(|c| PUNCTUATION.contains(c)),
        "punctuation in the password"
    );
    assert!(
        !password.chars().any(|c| "abcXYZ".contains(c)),
        "an excluded character in the password"
    );
    // Tags were set by CreateSecret itself.
    let d = sm
        .describe_secret()
        .secret_id(&made.id)
        .send()
        .await
        .unwrap();
    let live_tags: IndexMap<String, String> = d
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    assert_eq!(
        live_tags.get("reconcile:address").map(String::as_str),
        Some(addr)
    );
    assert_eq!(
        live_tags.get("reconcile:stack").map(String::as_str),
        Some(STACK)
    );
    assert_eq!(
        live_tags.get("Project").map(String::as_str),
        Some("proxy-smart")
    );
    let current = d
        .version_ids_to_stages()
        .unwrap()
        .iter()
        .find(|(_, s)| s.iter().any(|x| x == "AWSCURRENT"))
        .map(|(v, _)| v.clone())
        .unwrap();
    assert_eq!(made.attributes["version_id"], Value::str(&current));

    // Observed: no difference, the same attributes, nothing about the value.
    let live = observe_judged(&cx, addr, &made.id, &want).await;
    assert_eq!(live.attributes, made.attributes);
    assert!(
        changes(&want, &t, &live).is_empty(),
        "{:?}",
        changes(&want, &t, &live)
    );
    assert!(!live.fields.contains_key("value_from_env"));
    let rendered = format!("{live:?}");
    assert!(
        !rendered.contains(&password),
        "the observation holds the password"
    );
    assert_found_by_tag(&cx, addr, &made.id).await;

    // A rotation outside reconcile is not drift.
    sm.put_secret_value()
        .secret_id(&made.id)
        .secret_string(r#"{"username":"keycloak","password":"rotated-elsewhere"}"#)
        .send()
        .await
        .unwrap();
    let live = observe_judged(&cx, addr, &made.id, &want).await;
    assert!(changes(&want, &t, &live).is_empty());
    assert_ne!(live.attributes["version_id"], made.attributes["version_id"]);

    // New description, new tags, new generate settings: metadata changes, the value does not.
    let mut want2 = want.clone();
    want2.insert(
        "description".into(),
        Value::str("Keycloak DB (rotated by hand)"),
    );
    want2.insert("generate".into(), map(&[("length", Value::Int(64))]));
    let t2 = tags(&cx, addr, &[("Owner", "platform")]);
    let mut ch = changes(&want2, &t2, &live);
    ch.push(FieldChange::new(
        "generate",
        want.get("generate").cloned(),
        want2.get("generate").cloned(),
        false,
    ));
    assert!(ch.iter().all(|c| !c.forces_replace), "{ch:?}");
    let after = update(&cx, addr, &live, &want2, &t2, &ch)
        .await
        .expect("update");
    assert_eq!(after.id, made.id);
    let live2 = observe_judged(&cx, addr, &made.id, &want2).await;
    assert!(
        changes(&want2, &t2, &live2).is_empty(),
        "{:?}",
        changes(&want2, &t2, &live2)
    );
    assert!(
        !live2.tags.contains_key("Project"),
        "stale tag kept: {:?}",
        live2.tags
    );
    assert_eq!(
        stored(&sm, &made.id).await.as_deref(),
        Some(r#"{"username":"keycloak","password":"rotated-elsewhere"}"#),
        "a change of `generate` must not regenerate"
    );

    // A new name replaces.
    let renamed = fields(&[("name", Value::str("proxy-smart/other"))]);
    let ch = Secret.diff(&renamed, &live2.fields);
    assert_eq!(ch.len(), 1);
    assert!(ch[0].forces_replace);

    // Delete with the applied 7-day window: pending deletion, no longer observed.
    Secret
        .delete_applied(&cx, &made.id, Some(&want2))
        .await
        .expect("delete");
    let d = sm
        .describe_secret()
        .secret_id(&made.id)
        .send()
        .await
        .unwrap();
    let deleted = d.deleted_date().expect("scheduled for deletion").secs();
    let days = (deleted - chrono::Utc::now().timestamp()) as f64 / 86400.0;
    assert!((6.9..7.1).contains(&days), "recovery window {days} days");
    assert!(observe_one(&cx, &made.id).await.is_none());
    assert!(Secret.find_tagged(&cx, &[]).await.unwrap().is_empty());
    // Already scheduled is success.
    Secret
        .delete_applied(&cx, &made.id, Some(&want2))
        .await
        .expect("second delete");
    Secret.delete(&cx, &made.id).await.expect("third delete");

    // Creating it again restores it: same ARN, the value kept, metadata made current.
    let want3 = generated_fields("proxy-smart/keycloak-db");
    let mut want3 = want3;
    want3.insert("description".into(), Value::str("restored"));
    let t3 = tags(&cx, addr, &[("Project", "proxy-smart")]);
    let back = create(&cx, addr, &want3, &t3).await.expect("re-create");
    assert_eq!(back.id, made.id, "a restore keeps the ARN");
    assert_eq!(
        stored(&sm, &made.id).await.as_deref(),
        Some(r#"{"username":"keycloak","password":"rotated-elsewhere"}"#),
        "a restored generated secret keeps its value"
    );
    let live3 = observe_judged(&cx, addr, &made.id, &want3).await;
    assert!(
        changes(&want3, &t3, &live3).is_empty(),
        "{:?}",
        changes(&want3, &t3, &live3)
    );
    assert_eq!(live3.attributes, back.attributes);

    // Recovery window 0: gone at once, and gone is success.
    let mut zero = want3.clone();
    zero.insert("recovery_window_in_days".into(), Value::Int(0));
    Secret
        .delete_applied(&cx, &made.id, Some(&zero))
        .await
        .expect("delete without recovery");
    let e = sm
        .describe_secret()
        .secret_id(&made.id)
        .send()
        .await
        .expect_err("deleted without recovery");
    assert!(format!("{e:?}").contains("ResourceNotFound"), "{e:?}");
    Secret
        .delete_applied(&cx, &made.id, Some(&zero))
        .await
        .expect("delete of a gone secret");
}

#[tokio::test]
async fn value_from_env_secret() {
    let moto = common::Moto::start();
    let cx = connect(&moto, STACK).await;
    let sm = sm(&moto).await;
    let addr = "secret.stripe";
    let canary = format!("sk_test_canary_{}", uuid::Uuid::new_v4().simple());
    let var = env_var(&canary);
    let want = fields(&[
        ("name", Value::str("vivale/stripe")),
        ("value_from_env", Value::str(&var)),
        ("recovery_window_in_days", Value::Int(30)),
    ]);
    let t = tags(&cx, addr, &[]);
    let made = create(&cx, addr, &want, &t).await.expect("create");
    assert_eq!(
        stored(&sm, &made.id).await.as_deref(),
        Some(canary.as_str())
    );

    // Equal: the verdict is the variable's name, so nothing differs.
    let live = observe_judged(&cx, addr, &made.id, &want).await;
    assert_eq!(live.fields["value_from_env"], Value::str(&var));
    assert!(changes(&want, &t, &live).is_empty());

    // Changed out of band: drift, named by the variable, never by a value.
    let other = format!("sk_test_elsewhere_{}", uuid::Uuid::new_v4().simple());
    sm.put_secret_value()
        .secret_id(&made.id)
        .secret_string(&other)
        .send()
        .await
        .unwrap();
    let live = observe_judged(&cx, addr, &made.id, &want).await;
    let ch = changes(&want, &t, &live);
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert_eq!(ch[0].field, "value_from_env");
    assert!(!ch[0].forces_replace);
    assert_eq!(
        ch[0].old,
        Some(Value::str(format!("(live value differs from ${var})")))
    );
    let text = format!("{ch:?} {live:?}");
    assert!(!text.contains(&canary) && !text.contains(&other), "{text}");

    // The update writes the variable's value back, with a new description.
    let mut want2 = want.clone();
    want2.insert("description".into(), Value::str("Stripe API key"));
    let ch = changes(&want2, &t, &live);
    assert_eq!(ch.len(), 2, "{ch:?}");
    let after = update(&cx, addr, &live, &want2, &t, &ch)
        .await
        .expect("update");
    assert_ne!(
        after.attributes["version_id"],
        live.attributes["version_id"]
    );
    assert_eq!(
        stored(&sm, &made.id).await.as_deref(),
        Some(canary.as_str())
    );
    let live = observe_judged(&cx, addr, &made.id, &want2).await;
    assert!(
        changes(&want2, &t, &live).is_empty(),
        "{:?}",
        changes(&want2, &t, &live)
    );
    assert_eq!(after.attributes, live.attributes);

    // A new value in the variable is a change too.
    let canary2 = format!("sk_test_second_{}", uuid::Uuid::new_v4().simple());
    std::env::set_var(&var, &canary2);
    let live = observe_judged(&cx, addr, &made.id, &want2).await;
    let ch = changes(&want2, &t, &live);
    assert_eq!(ch.len(), 1, "{ch:?}");
    update(&cx, addr, &live, &want2, &t, &ch)
        .await
        .expect("update");
    assert_eq!(
        stored(&sm, &made.id).await.as_deref(),
        Some(canary2.as_str())
    );

    // Unset at plan time: nothing can be compared, so nothing is claimed.
    sm.put_secret_value()
        .secret_id(&made.id)
        .secret_string("changed-again")
        .send()
        .await
        .unwrap();
    std::env::remove_var(&var);
    let live = observe_judged(&cx, addr, &made.id, &want2).await;
    assert_eq!(live.fields["value_from_env"], Value::str(&var));
    assert!(changes(&want2, &t, &live).is_empty());
    // ...but an update that must write it fails, naming the address and the variable.
    let ch = vec![FieldChange::new(
        "value_from_env",
        Some(Value::str("(live value differs)")),
        Some(Value::str(&var)),
        false,
    )];
    let e = update(&cx, addr, &live, &want2, &t, &ch)
        .await
        .expect_err("an update without the variable must fail");
    let msg = e.to_string();
    assert!(msg.contains(addr) && msg.contains(&var), "{msg}");
    assert_eq!(
        stored(&sm, &made.id).await.as_deref(),
        Some("changed-again")
    );

    // And so does a create, before anything exists.
    let addr2 = "secret.unset";
    let unset = format!("RECONCILE_TEST_UNSET_{}", uuid::Uuid::new_v4().simple());
    let f2 = fields(&[
        ("name", Value::str("vivale/unset")),
        ("value_from_env", Value::str(&unset)),
    ]);
    let before = cx.calls.total();
    let e = create(&cx, addr2, &f2, &tags(&cx, addr2, &[]))
        .await
        .expect_err("a create without the variable must fail");
    let msg = e.to_string();
    assert!(msg.contains(addr2) && msg.contains(&unset), "{msg}");
    assert!(msg.contains("export"), "the error says what to do: {msg}");
    assert_eq!(
        cx.calls.total(),
        before,
        "no AWS call for a create that cannot succeed"
    );

    // A secret restored by a create gets the variable's value, whatever it held.
    std::env::set_var(&var, &canary);
    Secret.delete(&cx, &made.id).await.expect("delete");
    assert!(observe_one(&cx, &made.id).await.is_none());
    let back = create(&cx, addr, &want2, &t).await.expect("restore");
    assert_eq!(back.id, made.id);
    assert_eq!(
        stored(&sm, &made.id).await.as_deref(),
        Some(canary.as_str())
    );
    std::env::remove_var(&var);
}

#[tokio::test]
async fn unmanaged_secret_keeps_what_a_person_sets() {
    let moto = common::Moto::start();
    let cx = connect(&moto, STACK).await;
    let sm = sm(&moto).await;
    let addr = "secret.manual";
    let want = fields(&[
        ("name", Value::str("carebow/partner-api-key")),
        ("description", Value::str("Set by the on-call engineer")),
        ("recovery_window_in_days", Value::Int(30)),
    ]);
    let t = tags(&cx, addr, &[]);
    let made = create(&cx, addr, &want, &t).await.expect("create");
    assert_eq!(made.attributes["version_id"], Value::str(""));
    assert_eq!(stored(&sm, &made.id).await, None, "no value is set");
    let live = observe_judged(&cx, addr, &made.id, &want).await;
    assert!(changes(&want, &t, &live).is_empty());
    assert_eq!(live.attributes["version_id"], Value::str(""));

    sm.put_secret_value()
        .secret_id(&made.id)
        .secret_string("set-by-a-person")
        .send()
        .await
        .unwrap();
    let live = observe_judged(&cx, addr, &made.id, &want).await;
    assert!(
        changes(&want, &t, &live).is_empty(),
        "a person's value is not drift"
    );
    assert_ne!(live.attributes["version_id"], Value::str(""));

    // A name someone else owns is not taken over.
    let f = fields(&[("name", Value::str("carebow/partner-api-key"))]);
    let e = create(&cx, "secret.twin", &f, &tags(&cx, "secret.twin", &[]))
        .await
        .expect_err("the name is taken");
    let msg = e.to_string();
    assert!(
        msg.contains("secret.twin") && msg.contains("reconcile import"),
        "{msg}"
    );
    // The same address of the same stack (an interrupted create) is adopted.
    let again = create(&cx, addr, &want, &t).await.expect("adopt");
    assert_eq!(again.id, made.id);
    assert_eq!(
        stored(&sm, &made.id).await.as_deref(),
        Some("set-by-a-person")
    );

    Secret.delete(&cx, &made.id).await.expect("delete");
    assert!(observe_one(&cx, &made.id).await.is_none());
}

#[tokio::test]
async fn observing_many_secrets_costs_a_fixed_number_of_calls() {
    let moto = common::Moto::start();
    let cx = connect(&moto, STACK).await;
    let sm = sm(&moto).await;

    // 105 secrets: two pages of ListSecrets; 22 of them fed from the
    // environment: two BatchGetSecretValue calls of at most 20 ids.
    let mut ids = Vec::new();
    let mut declared = Vec::new();
    for i in 0..105 {
        let addr = format!("secret.s{i}");
        let mut f = fields(&[("name", Value::str(format!("many/s{i}")))]);
        if i < 22 {
            let var = env_var(&format!("canary-value-{i}"));
            f.insert("value_from_env".into(), Value::str(&var));
        }
        let made = create(&cx, &addr, &f, &tags(&cx, &addr, &[]))
            .await
            .expect("create");
        ids.push(made.id.clone());
        declared.push((resource(&addr, &f), made.id));
    }

    let before = cx.calls.total();
    let found = Secret.observe(&cx, &ids).await.expect("observe");
    assert_eq!(found.len(), 105);
    assert_eq!(count(&cx, "ListSecrets"), 2, "{:?}", cx.calls.snapshot());
    assert_eq!(cx.calls.total() - before, 2, "{:?}", cx.calls.snapshot());

    // Three of the compared values changed outside reconcile.
    for i in [0, 7, 21] {
        sm.put_secret_value()
            .secret_id(&ids[i])
            .secret_string("changed outside")
            .send()
            .await
            .unwrap();
    }
    let mut live: Vec<Observed> = declared.iter().map(|(_, id)| found[id].clone()).collect();
    let before = cx.calls.total();
    {
        let mut items: Vec<(&Resource, &mut Observed)> = declared
            .iter()
            .map(|(r, _)| r)
            .zip(live.iter_mut())
            .collect();
        Secret
            .observe_against_desired(&cx, &mut items)
            .await
            .expect("observe_against_desired");
    }
    assert_eq!(
        count(&cx, "BatchGetSecretValue"),
        2,
        "{:?}",
        cx.calls.snapshot()
    );
    assert_eq!(cx.calls.total() - before, 2, "{:?}", cx.calls.snapshot());
    for (i, ((r, _), l)) in declared.iter().zip(&live).enumerate() {
        let var = r.fields.get("value_from_env").and_then(Value::as_str);
        match var {
            Some(var) if [0, 7, 21].contains(&i) => assert_eq!(
                l.fields["value_from_env"],
                Value::str(format!("(live value differs from ${var})")),
                "{}",
                r.address
            ),
            Some(var) => assert_eq!(l.fields["value_from_env"], Value::str(var), "{}", r.address),
            None => assert!(!l.fields.contains_key("value_from_env")),
        }
    }

    // An imported secret without our tags, and one deleted: looked up one by one.
    let imported = sm
        .create_secret()
        .name("imported/by-hand")
        .secret_string("x")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    Secret.delete(&cx, &ids[104]).await.unwrap();
    let before = cx.calls.total();
    let mut some = vec![ids[0].clone(), ids[104].clone(), imported.clone()];
    some.push("imported/by-hand".into());
    let found = Secret.observe(&cx, &some).await.expect("observe");
    assert!(found.contains_key(&ids[0]));
    assert!(
        !found.contains_key(&ids[104]),
        "a secret pending deletion is gone"
    );
    assert_eq!(found[&imported].id, imported);
    assert_eq!(
        found["imported/by-hand"].id, imported,
        "import by name answers the ARN"
    );
    assert!(found[&imported].tags.is_empty());
    assert_eq!(
        cx.calls.total() - before,
        2 + 3,
        "{:?}",
        cx.calls.snapshot()
    );

    // Finding the stack's secrets by tag: the same two pages.
    let before = count(&cx, "ListSecrets");
    let tagged = Secret.find_tagged(&cx, &[]).await.expect("find_tagged");
    assert_eq!(count(&cx, "ListSecrets") - before, 2);
    assert_eq!(tagged.len(), 104);
}

#[tokio::test]
async fn find_tagged_keeps_to_its_stack_and_addresses() {
    let moto = common::Moto::start();
    let cx = connect(&moto, STACK).await;
    // A stack whose name starts like ours: AWS's tag-value filter matches prefixes.
    let other = connect(&moto, "test-stack-two").await;
    let addr = "secret.shared_name";
    let f = |n: &str| fields(&[("name", Value::str(n))]);
    let ours = create(&cx, addr, &f("mine/a"), &tags(&cx, addr, &[]))
        .await
        .unwrap();
    let theirs = create(&other, addr, &f("theirs/a"), &tags(&other, addr, &[]))
        .await
        .unwrap();
    let b = create(&cx, "secret.b", &f("mine/b"), &tags(&cx, "secret.b", &[]))
        .await
        .unwrap();

    assert_found_by_tag(&cx, addr, &ours.id).await;
    assert_found_by_tag(&other, addr, &theirs.id).await;
    let all = Secret.find_tagged(&cx, &[]).await.unwrap();
    let mut got: Vec<(&str, &str)> = all
        .iter()
        .map(|(a, o)| (a.as_str(), o.id.as_str()))
        .collect();
    got.sort();
    let mut expect = vec![(addr, ours.id.as_str()), ("secret.b", b.id.as_str())];
    expect.sort();
    assert_eq!(got, expect);

    // Another stack's secret observed by id is still seen (imported), by DescribeSecret.
    let seen = Secret
        .observe(&cx, std::slice::from_ref(&theirs.id))
        .await
        .unwrap();
    assert_eq!(seen.len(), 1);
}

#[test]
fn schema_marks_generated_settings_as_local() {
    assert!(SCHEMA.field("generate").unwrap().local);
    assert!(SCHEMA.field("recovery_window_in_days").unwrap().local);
    assert!(!SCHEMA.field("value_from_env").unwrap().local);
    assert!(SCHEMA.field("name").unwrap().force_new);
    assert!(SCHEMA.has_attribute("arn"));
    assert!(SCHEMA.has_attribute("version_id"));
    assert!(SCHEMA.taggable);
}

/// An attachment merges connection keys around the password and, deleted,
/// takes them out again: the password is the same bytes throughout.
#[tokio::test]
async fn attachment_keys_come_and_go_around_the_password() {
    use reconcile_aws::secretsmanager::secret_target_attachment::SecretTargetAttachment;
    let moto = common::Moto::start();
    let cx = connect(&moto, STACK).await;
    let sm = sm(&moto).await;
    let t = tags(&cx, "secret.db", &[]);
    let secret = create(&cx, "secret.db", &generated_fields("att/db"), &t)
        .await
        .expect("create secret");
    let read = |v: Option<String>| -> serde_json::Value {
        serde_json::from_str(&v.expect("a value")).unwrap()
    };
    let before = read(stored(&sm, &secret.id).await);

    let want = fields(&[
        ("secret_id", Value::str(&secret.id)),
        ("host", Value::str("db.internal")),
        ("port", Value::Int(5432)),
        ("engine", Value::str("postgres")),
        ("db_cluster_identifier", Value::str("cluster-1")),
    ]);
    let none = IndexMap::new();
    let made = SecretTargetAttachment
        .create(
            &cx,
            &Desired {
                address: "secret_target_attachment.db",
                fields: &want,
                tags: &none,
                token: "t",
                replacing: None,
            },
        )
        .await
        .expect("attach");
    assert_eq!(made.id, secret.id);
    let attached = read(stored(&sm, &secret.id).await);
    assert_eq!(attached["password"], before["password"]);
    assert_eq!(attached["username"], "keycloak");
    assert_eq!(attached["host"], "db.internal");
    assert_eq!(attached["port"], 5432);
    assert_eq!(attached["dbClusterIdentifier"], "cluster-1");
    assert!(attached.get("dbInstanceIdentifier").is_none());

    // Observed: the keys, never the password.
    let seen = SecretTargetAttachment
        .observe(&cx, std::slice::from_ref(&secret.id))
        .await
        .unwrap();
    let o = &seen[&secret.id];
    assert_eq!(o.fields["host"], Value::str("db.internal"));
    assert!(!format!("{o:?}").contains(before["password"].as_str().unwrap()));

    SecretTargetAttachment
        .delete(&cx, &secret.id)
        .await
        .expect("detach");
    assert_eq!(read(stored(&sm, &secret.id).await), before);
    let seen = SecretTargetAttachment
        .observe(&cx, std::slice::from_ref(&secret.id))
        .await
        .unwrap();
    assert!(seen.is_empty(), "nothing attached any more: {seen:?}");
    // Detaching twice, or from a secret that is gone, is success.
    SecretTargetAttachment
        .delete(&cx, &secret.id)
        .await
        .unwrap();
}
