//! The load_balancer, target_group, listener and listener_rule providers,
//! called directly through the library against a private moto server: create,
//! observe with a clean diff, in-place updates, deletion protection, the
//! duplicate-name refusal, an HTTPS listener with a TLS 1.3 policy and an ACM
//! certificate, an HTTP-to-HTTPS redirect, a certificate swapped out of band and
//! repaired, a listener rule, and what observing costs in AWS calls. What
//! exists is checked with an independent ELBv2 client.

mod common;

use indexmap::IndexMap;
use reconcile_aws::elbv2::listener::Listener;
use reconcile_aws::elbv2::listener_rule::ListenerRule;
use reconcile_aws::elbv2::load_balancer::LoadBalancer;
use reconcile_aws::elbv2::target_group::TargetGroup;
use reconcile_aws::kit::SchemaDiff;
use reconcile_aws::{AwsOptions, CallCounter, Cx, Desired, Provider};
use reconcile_core::model::schema::{Schema, Ty};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed};

const STACK: &str = "elb-test";
const TLS13: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

async fn connect(moto: &common::Moto) -> Cx {
    let opts = AwsOptions {
        region: common::REGION.into(),
        endpoint_url: Some(moto.url.clone()),
    };
    Cx::connect(&opts, STACK, CallCounter::default()).await
}

/// An ELBv2 client independent of reconcile's own.
async fn elb_client(moto: &common::Moto) -> aws_sdk_elasticloadbalancingv2::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(common::REGION))
        .endpoint_url(&moto.url)
        .load()
        .await;
    aws_sdk_elasticloadbalancingv2::Client::new(&conf)
}

fn s(v: &str) -> Value {
    Value::str(v)
}

fn strs(v: &[&str]) -> Value {
    Value::List(v.iter().map(|x| Value::str(*x)).collect())
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(fields(pairs))
}

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Fills schema defaults the way the model does for a declaration, nested
/// tables included.
fn declared(schema: &Schema, pairs: &[(&str, Value)]) -> Fields {
    fn fill(fs: &[reconcile_core::model::schema::Field], m: &mut Fields) {
        for f in fs {
            match (m.get_mut(f.name), &f.ty) {
                (Some(Value::Map(inner)), Ty::Object(sub)) => fill(sub, inner),
                (None, _) => {
                    if let Some(d) = f.default {
                        m.insert(f.name.to_string(), d.value());
                    }
                }
                _ => {}
            }
        }
    }
    let mut m = fields(pairs);
    fill(schema.fields, &mut m);
    m
}

fn tags(address: &str) -> IndexMap<String, String> {
    let mut t = IndexMap::new();
    t.insert("Project".to_string(), "proxy-smart".to_string());
    t.insert("reconcile:stack".to_string(), STACK.to_string());
    t.insert("reconcile:address".to_string(), address.to_string());
    t
}

fn tags_value(t: &IndexMap<String, String>) -> Value {
    Value::Map(
        t.iter()
            .map(|(k, v)| (k.clone(), Value::str(v.clone())))
            .collect(),
    )
}

fn changes(p: &dyn Provider, want: &Fields, address: &str, live: &Observed) -> Vec<FieldChange> {
    let mut want = want.clone();
    want.insert("tags".into(), tags_value(&tags(address)));
    let mut have = live.fields.clone();
    have.insert("tags".into(), tags_value(&live.tags));
    p.diff(&want, &have)
}

async fn create(p: &dyn Provider, cx: &Cx, address: &str, f: &Fields) -> Result<Observed, String> {
    let t = tags(address);
    p.create(
        cx,
        &Desired {
            address,
            fields: f,
            tags: &t,
            token: "t",
            replacing: None,
        },
    )
    .await
    .map_err(|e| e.to_string())
}

async fn update(p: &dyn Provider, cx: &Cx, address: &str, live: &Observed, f: &Fields) -> Observed {
    let t = tags(address);
    let ch = changes(p, f, address, live);
    assert!(!ch.is_empty(), "{address}: the update test needs a change");
    assert!(
        ch.iter().all(|c| !c.forces_replace),
        "{address}: {ch:?} would force a replacement"
    );
    p.update(
        cx,
        live,
        &Desired {
            address,
            fields: f,
            tags: &t,
            token: "t",
            replacing: None,
        },
        &ch,
    )
    .await
    .unwrap_or_else(|e| panic!("update {address}: {e}"))
}

async fn observe_one(p: &dyn Provider, cx: &Cx, id: &str) -> Option<Observed> {
    let mut found = p.observe(cx, &[id.to_string()]).await.expect("observe");
    assert!(found.len() <= 1, "observe {id} answered {found:?}");
    found.remove(id)
}

/// Observes `id` and checks it is what was asked for, tags included.
async fn assert_live(
    p: &dyn Provider,
    cx: &Cx,
    address: &str,
    id: &str,
    want: &Fields,
) -> Observed {
    let live = observe_one(p, cx, id)
        .await
        .unwrap_or_else(|| panic!("{id} is not observed"));
    let diff = changes(p, want, address, &live);
    assert!(
        diff.is_empty(),
        "{address}: live differs from desired: {diff:?}"
    );
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

/// A VPC, two subnets in two zones and a security group, made with plain EC2 calls.
async fn network(cx: &Cx) -> (String, Vec<String>, String) {
    let vpc = cx
        .ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let mut subnets = Vec::new();
    for (i, az) in ["us-east-1a", "us-east-1b"].iter().enumerate() {
        let id = cx
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.0.{}.0/24", i + 1))
            .availability_zone(*az)
            .send()
            .await
            .unwrap()
            .subnet()
            .unwrap()
            .subnet_id()
            .unwrap()
            .to_string();
        subnets.push(id);
    }
    let sg = cx
        .ec2
        .create_security_group()
        .group_name("alb")
        .description("load balancer")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    (vpc, subnets, sg)
}

async fn certificate(cx: &Cx, domain: &str) -> String {
    cx.acm
        .request_certificate()
        .domain_name(domain)
        .send()
        .await
        .unwrap()
        .certificate_arn()
        .unwrap()
        .to_string()
}

async fn lb_names(elb: &aws_sdk_elasticloadbalancingv2::Client, name: &str) -> usize {
    elb.describe_load_balancers()
        .send()
        .await
        .unwrap()
        .load_balancers()
        .iter()
        .filter(|lb| lb.load_balancer_name() == Some(name))
        .count()
}

async fn lb_attribute(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    arn: &str,
    key: &str,
) -> Option<String> {
    elb.describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .unwrap()
        .attributes()
        .iter()
        .find(|a| a.key() == Some(key))
        .and_then(|a| a.value().map(str::to_string))
}

fn lb_fields(name: &str, subnets: &[String], sg: &str, extra: &[(&str, Value)]) -> Fields {
    let mut pairs = vec![
        ("name", s(name)),
        (
            "subnets",
            Value::List(subnets.iter().map(Value::str).collect()),
        ),
        ("security_groups", strs(&[sg])),
    ];
    pairs.extend(extra.iter().cloned());
    declared(&reconcile_aws::elbv2::load_balancer::SCHEMA, &pairs)
}

fn tg_fields(name: &str, vpc: &str, matcher: &str) -> Fields {
    declared(
        &reconcile_aws::elbv2::target_group::SCHEMA,
        &[
            ("name", s(name)),
            ("port", Value::Int(8080)),
            ("protocol", s("HTTP")),
            ("vpc_id", s(vpc)),
            (
                "health_check",
                map(&[("path", s("/health")), ("matcher", s(matcher))]),
            ),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn load_balancer_target_group_listeners_and_rules() {
    let moto = common::Moto::start();
    let cx = connect(&moto).await;
    let elb = elb_client(&moto).await;
    let (vpc, subnets, sg) = network(&cx).await;

    // --- load balancer: create, observe clean, find by tag.
    let lb_want = lb_fields("proxy-smart", &subnets, &sg, &[]);
    let lb = create(&LoadBalancer, &cx, "load_balancer.web", &lb_want)
        .await
        .unwrap();
    assert!(lb.id.starts_with("arn:aws:elasticloadbalancing:"));
    assert!(lb.attributes["dns_name"]
        .as_str()
        .unwrap()
        .contains("proxy-smart"));
    assert!(lb.attributes["arn_suffix"]
        .as_str()
        .unwrap()
        .starts_with("app/proxy-smart/"));
    assert_live(&LoadBalancer, &cx, "load_balancer.web", &lb.id, &lb_want).await;
    let found = LoadBalancer
        .find_tagged(&cx, &["load_balancer.web".to_string()])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1.id, lb.id);

    // --- update in place: idle timeout and deletion protection.
    let lb_want = lb_fields(
        "proxy-smart",
        &subnets,
        &sg,
        &[
            ("idle_timeout", Value::Int(120)),
            ("deletion_protection", Value::Bool(true)),
        ],
    );
    let live = observe_one(&LoadBalancer, &cx, &lb.id).await.unwrap();
    let after = update(&LoadBalancer, &cx, "load_balancer.web", &live, &lb_want).await;
    assert_eq!(after.fields["idle_timeout"], Value::Int(120));
    assert_live(&LoadBalancer, &cx, "load_balancer.web", &lb.id, &lb_want).await;
    assert_eq!(
        lb_attribute(&elb, &lb.id, "idle_timeout.timeout_seconds")
            .await
            .as_deref(),
        Some("120")
    );
    assert_eq!(
        lb_attribute(&elb, &lb.id, "deletion_protection.enabled")
            .await
            .as_deref(),
        Some("true")
    );
    // A protected load balancer is not deleted.
    let err = LoadBalancer
        .delete(&cx, &lb.id)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("deletion protection"), "{err}");
    assert_eq!(lb_names(&elb, "proxy-smart").await, 1);

    // --- the same name at another address is refused (moto would make a second one).
    let err = create(&LoadBalancer, &cx, "load_balancer.other", &lb_want)
        .await
        .unwrap_err();
    assert!(
        err.contains("load_balancer.other")
            && err.contains("\"proxy-smart\"")
            && err.contains("reconcile import"),
        "{err}"
    );
    // At its own address (an interrupted create), it is adopted instead.
    let again = create(&LoadBalancer, &cx, "load_balancer.web", &lb_want)
        .await
        .unwrap();
    assert_eq!(again.id, lb.id);
    assert_eq!(lb_names(&elb, "proxy-smart").await, 1);

    // --- target group with a health check; the matcher changes in place.
    let tg_want = tg_fields("keycloak", &vpc, "200-399");
    let tg = create(&TargetGroup, &cx, "target_group.app", &tg_want)
        .await
        .unwrap();
    assert_live(&TargetGroup, &cx, "target_group.app", &tg.id, &tg_want).await;
    let tg_want = tg_fields("keycloak", &vpc, "200,302");
    let live = observe_one(&TargetGroup, &cx, &tg.id).await.unwrap();
    let ch = changes(&TargetGroup, &tg_want, "target_group.app", &live);
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert_eq!(ch[0].field, "health_check");
    update(&TargetGroup, &cx, "target_group.app", &live, &tg_want).await;
    assert_live(&TargetGroup, &cx, "target_group.app", &tg.id, &tg_want).await;
    let described = elb
        .describe_target_groups()
        .target_group_arns(&tg.id)
        .send()
        .await
        .unwrap();
    let t = &described.target_groups()[0];
    assert_eq!(t.health_check_path(), Some("/health"));
    assert_eq!(t.matcher().and_then(|m| m.http_code()), Some("200,302"));
    let err = create(&TargetGroup, &cx, "target_group.copy", &tg_want)
        .await
        .unwrap_err();
    assert!(err.contains("reconcile import"), "{err}");

    // --- HTTPS listener forwarding to the target group, HTTP redirecting to HTTPS.
    let cert = certificate(&cx, "auth.maxhealth.tech").await;
    let other_cert = certificate(&cx, "auth2.maxhealth.tech").await;
    let https_want = declared(
        &reconcile_aws::elbv2::listener::SCHEMA,
        &[
            ("load_balancer_arn", s(&lb.id)),
            ("port", Value::Int(443)),
            ("protocol", s("HTTPS")),
            ("ssl_policy", s(TLS13)),
            ("certificate_arn", s(&cert)),
            (
                "default_action",
                map(&[("type", s("forward")), ("target_group_arn", s(&tg.id))]),
            ),
        ],
    );
    let https = create(&Listener, &cx, "listener.https", &https_want)
        .await
        .unwrap();
    assert_live(&Listener, &cx, "listener.https", &https.id, &https_want).await;
    let http_want = declared(
        &reconcile_aws::elbv2::listener::SCHEMA,
        &[
            ("load_balancer_arn", s(&lb.id)),
            ("port", Value::Int(80)),
            ("protocol", s("HTTP")),
            (
                "default_action",
                map(&[
                    ("type", s("redirect")),
                    ("protocol", s("HTTPS")),
                    ("port", s("443")),
                    ("status_code", s("HTTP_301")),
                ]),
            ),
        ],
    );
    let http = create(&Listener, &cx, "listener.http", &http_want)
        .await
        .unwrap();
    assert_live(&Listener, &cx, "listener.http", &http.id, &http_want).await;
    // A second listener on the same port is refused.
    let err = create(&Listener, &cx, "listener.again", &http_want)
        .await
        .unwrap_err();
    assert!(
        err.contains("port 80") && err.contains("reconcile import"),
        "{err}"
    );

    // --- a certificate swapped outside reconcile is drift, and update repairs it.
    elb.modify_listener()
        .listener_arn(&https.id)
        .certificates(
            aws_sdk_elasticloadbalancingv2::types::Certificate::builder()
                .certificate_arn(&other_cert)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let live = observe_one(&Listener, &cx, &https.id).await.unwrap();
    let ch = changes(&Listener, &https_want, "listener.https", &live);
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert_eq!(ch[0].field, "certificate_arn");
    assert_eq!(ch[0].old, Some(s(&other_cert)));
    update(&Listener, &cx, "listener.https", &live, &https_want).await;
    assert_live(&Listener, &cx, "listener.https", &https.id, &https_want).await;
    let l = elb
        .describe_listeners()
        .listener_arns(&https.id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        l.listeners()[0].certificates()[0].certificate_arn(),
        Some(cert.as_str())
    );
    assert_eq!(l.listeners()[0].ssl_policy(), Some(TLS13));

    // --- a listener rule on host and path.
    let rule_want = |priority: i64, path: &str| {
        declared(
            &reconcile_aws::elbv2::listener_rule::SCHEMA,
            &[
                ("listener_arn", s(&https.id)),
                ("priority", Value::Int(priority)),
                (
                    "conditions",
                    map(&[
                        ("host_header", strs(&["auth.maxhealth.tech"])),
                        ("path_pattern", strs(&[path])),
                    ]),
                ),
                (
                    "action",
                    map(&[
                        ("type", s("fixed-response")),
                        ("status_code", s("403")),
                        ("content_type", s("text/plain")),
                        ("message_body", s("admin is internal")),
                    ]),
                ),
            ],
        )
    };
    let want = rule_want(10, "/admin/*");
    let rule = create(&ListenerRule, &cx, "listener_rule.admin", &want)
        .await
        .unwrap();
    assert_live(&ListenerRule, &cx, "listener_rule.admin", &rule.id, &want).await;
    let want = rule_want(20, "/admin/*");
    let live = observe_one(&ListenerRule, &cx, &rule.id).await.unwrap();
    update(&ListenerRule, &cx, "listener_rule.admin", &live, &want).await;
    assert_live(&ListenerRule, &cx, "listener_rule.admin", &rule.id, &want).await;
    let want = rule_want(20, "/console/*");
    let live = observe_one(&ListenerRule, &cx, &rule.id).await.unwrap();
    update(&ListenerRule, &cx, "listener_rule.admin", &live, &want).await;
    assert_live(&ListenerRule, &cx, "listener_rule.admin", &rule.id, &want).await;
    let found = ListenerRule
        .find_tagged(&cx, &["listener_rule.admin".to_string()])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1.id, rule.id);

    // --- observing N target groups costs one DescribeTargetGroups and one DescribeTags
    // (one GetResources in an observe pass).
    let mut ids = vec![tg.id.clone()];
    for i in 0..4 {
        let address = format!("target_group.extra_{i}");
        let f = tg_fields(&format!("extra-{i}"), &vpc, "200");
        ids.push(create(&TargetGroup, &cx, &address, &f).await.unwrap().id);
    }
    let (tgs, tags_before, attrs) = (
        count(&cx, "DescribeTargetGroups"),
        count(&cx, "DescribeTags"),
        count(&cx, "DescribeTargetGroupAttributes"),
    );
    let seen = TargetGroup.observe(&cx, &ids).await.unwrap();
    assert_eq!(seen.len(), 5);
    assert_eq!(count(&cx, "DescribeTargetGroups") - tgs, 1);
    assert_eq!(count(&cx, "DescribeTags") - tags_before, 1);
    // Attributes are one call per target group in AWS's API.
    assert_eq!(count(&cx, "DescribeTargetGroupAttributes") - attrs, 5);
    // In an observe pass, the tags come from the stack's one Tagging API read instead.
    let pass = cx.for_observe_pass();
    let (tags_before, index_before) = (count(&cx, "DescribeTags"), count(&cx, "GetResources"));
    let in_pass = TargetGroup.observe(&pass, &ids).await.unwrap();
    assert_eq!(count(&cx, "GetResources") - index_before, 1);
    assert_eq!(count(&cx, "DescribeTags") - tags_before, 0);
    for (id, o) in &seen {
        assert_eq!(in_pass[id].tags, o.tags, "{id}");
    }
    // A deleted one drops out of the batch without failing it.
    TargetGroup.delete(&cx, &ids[4]).await.unwrap();
    let seen = TargetGroup.observe(&cx, &ids).await.unwrap();
    assert_eq!(seen.len(), 4);
    assert!(!seen.contains_key(&ids[4]));

    // --- deletes: the rule, the listeners, then (unprotected) the load balancer.
    ListenerRule.delete(&cx, &rule.id).await.unwrap();
    assert!(observe_one(&ListenerRule, &cx, &rule.id).await.is_none());
    // Observing a batch with a deleted listener still answers the other one.
    Listener.delete(&cx, &http.id).await.unwrap();
    let seen = Listener
        .observe(&cx, &[http.id.clone(), https.id.clone()])
        .await
        .unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen.contains_key(&https.id));
    Listener.delete(&cx, &https.id).await.unwrap();
    Listener.delete(&cx, &https.id).await.unwrap();
    let lb_want = lb_fields(
        "proxy-smart",
        &subnets,
        &sg,
        &[("idle_timeout", Value::Int(120))],
    );
    let live = observe_one(&LoadBalancer, &cx, &lb.id).await.unwrap();
    update(&LoadBalancer, &cx, "load_balancer.web", &live, &lb_want).await;
    LoadBalancer.delete(&cx, &lb.id).await.unwrap();
    assert_eq!(lb_names(&elb, "proxy-smart").await, 0);
    assert!(observe_one(&LoadBalancer, &cx, &lb.id).await.is_none());
    for id in &ids {
        TargetGroup.delete(&cx, id).await.unwrap();
    }
    let left = elb.describe_target_groups().send().await.unwrap();
    assert!(left.target_groups().is_empty(), "{left:?}");
}
