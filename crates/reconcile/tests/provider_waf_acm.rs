//! The web_acl, web_acl_association and certificate providers, called directly
//! through the library against a private moto server: a certificate requested
//! with its DNS validation records, tagged, found again and deleted; a web ACL
//! with AWS managed rule groups and a rate limit that observes equal to its
//! declaration, catches a rule removed by an independent client as drift on
//! `rules` and repairs it with a fresh lock token; and its association with an
//! application load balancer. What exists is checked with independent clients.

mod common;

use indexmap::IndexMap;
use reconcile_aws::acm::certificate::Certificate;
use reconcile_aws::kit::SchemaDiff;
use reconcile_aws::wafv2::web_acl::WebAcl;
use reconcile_aws::wafv2::web_acl_association::WebAclAssociation;
use reconcile_aws::{AwsOptions, CallCounter, Cx, Desired, Provider};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed};

const STACK: &str = "waf-test";

async fn connect(moto: &common::Moto) -> Cx {
    let opts = AwsOptions {
        region: common::REGION.into(),
        endpoint_url: Some(moto.url.clone()),
    };
    Cx::connect(&opts, STACK, CallCounter::default()).await
}

async fn sdk_config(moto: &common::Moto) -> aws_config::SdkConfig {
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

/// The changes the planner would find, tags included.
fn changes(
    p: &dyn Provider,
    want: &Fields,
    t: &IndexMap<String, String>,
    live: &Observed,
) -> Vec<FieldChange> {
    let mut want = want.clone();
    let mut have = live.fields.clone();
    if p.schema().taggable {
        want.insert("tags".into(), tags_value(t));
        have.insert("tags".into(), tags_value(&live.tags));
    }
    p.diff(&want, &have)
}

async fn observe_one(p: &dyn Provider, cx: &Cx, id: &str) -> Option<Observed> {
    let mut found = p.observe(cx, &[id.to_string()]).await.expect("observe");
    assert!(found.len() <= 1, "observe {id} answered {found:?}");
    found.remove(id)
}

fn count(cx: &Cx, op: &str) -> u64 {
    cx.calls
        .snapshot()
        .iter()
        .filter(|((_, o), _)| o == op)
        .map(|(_, n)| *n)
        .sum()
}

fn managed(name: &str, priority: i64) -> Value {
    Value::Map(fields(&[
        ("name", Value::str(name)),
        ("priority", Value::Int(priority)),
        (
            "managed_rule_group",
            Value::Map(fields(&[
                ("vendor", Value::str("AWS")),
                ("name", Value::str(name)),
                ("excluded_rules", Value::List(vec![])),
            ])),
        ),
    ]))
}

fn rate_limit(limit: i64) -> Value {
    Value::Map(fields(&[
        ("name", Value::str("per-ip-rate")),
        ("priority", Value::Int(10)),
        (
            "rate_limit",
            Value::Map(fields(&[
                ("limit", Value::Int(limit)),
                ("aggregate_key_type", Value::str("IP")),
            ])),
        ),
        ("action", Value::str("block")),
    ]))
}

/// The Proxy Smart edge ACL: three AWS managed rule groups and a rate limit.
fn acl_fields(name: &str) -> Fields {
    let mut common = managed("AWSManagedRulesCommonRuleSet", 1);
    // One group written the long way, with its own visibility and an exclusion.
    if let Value::Map(m) = &mut common {
        if let Some(Value::Map(g)) = m.get_mut("managed_rule_group") {
            g.insert(
                "excluded_rules".into(),
                Value::List(vec![Value::str("SizeRestrictions_BODY")]),
            );
        }
        m.insert("override_action".into(), Value::str("none"));
        m.insert(
            "visibility".into(),
            Value::Map(fields(&[
                ("cloudwatch_metrics_enabled", Value::Bool(true)),
                ("sampled_requests_enabled", Value::Bool(false)),
                ("metric_name", Value::str("common")),
            ])),
        );
    }
    fields(&[
        ("name", Value::str(name)),
        ("scope", Value::str("REGIONAL")),
        ("description", Value::str("Keycloak edge protection")),
        ("default_action", Value::str("allow")),
        (
            "rules",
            Value::List(vec![
                common,
                managed("AWSManagedRulesKnownBadInputsRuleSet", 2),
                managed("AWSManagedRulesSQLiRuleSet", 3),
                rate_limit(2000),
            ]),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_is_requested_with_its_validation_records() {
    let moto = common::Moto::start();
    let cx = connect(&moto).await;
    let acm = aws_sdk_acm::Client::new(&sdk_config(&moto).await);
    let address = "certificate.auth";
    let t = tags(address);
    let want = fields(&[
        ("domain_name", Value::str("auth.maxhealth.tech")),
        (
            "subject_alternative_names",
            Value::List(vec![
                Value::str("login.maxhealth.tech"),
                Value::str("auth.maxhealth.tech"),
            ]),
        ),
        ("validation_method", Value::str("DNS")),
        ("key_algorithm", Value::str("RSA_2048")),
    ]);
    let token = "3f2a1b9c-1d2e-4f5a-8b7c-0123456789ab";
    let d = Desired {
        address,
        fields: &want,
        tags: &t,
        token,
        replacing: None,
    };
    let made = Certificate.create(&cx, &d).await.expect("create");
    assert!(made.id.starts_with("arn:aws:acm:us-east-1:"), "{}", made.id);
    assert_eq!(made.attributes["arn"], Value::str(&made.id));
    assert_eq!(
        made.attributes["status"],
        Value::str("PENDING_VALIDATION"),
        "not waited for ISSUED"
    );
    // One validation record per name, ready to be put into DNS.
    let dvo = made.attributes["domain_validation_options"]
        .as_list()
        .expect("a list")
        .to_vec();
    let names: Vec<&str> = dvo
        .iter()
        .map(|o| o.as_map().unwrap()["domain_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["auth.maxhealth.tech", "login.maxhealth.tech"]);
    for o in &dvo {
        let o = o.as_map().unwrap();
        assert_eq!(o["resource_record_type"], Value::str("CNAME"));
        assert!(o["resource_record_name"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{}.", o["domain_name"].as_str().unwrap())));
        assert!(!o["resource_record_value"].as_str().unwrap().is_empty());
    }
    assert!(!made.attributes["not_after"].as_str().unwrap().is_empty());

    // Tagged in the request itself.
    let live_tags = acm
        .list_tags_for_certificate()
        .certificate_arn(&made.id)
        .send()
        .await
        .unwrap();
    assert!(live_tags
        .tags()
        .iter()
        .any(|t| t.key() == "reconcile:address" && t.value() == Some(address)));

    // A retried request (same apply token) returns the same certificate.
    let again = Certificate.create(&cx, &d).await.expect("retried create");
    assert_eq!(again.id, made.id);
    let listed = acm.list_certificates().send().await.unwrap();
    assert_eq!(listed.certificate_summary_list().len(), 1, "no duplicate");

    // Observed equal to the declaration (the domain repeated among the SANs is no change).
    let before = cx.calls.total();
    let live = observe_one(&Certificate, &cx, &made.id)
        .await
        .expect("observed");
    assert_eq!(cx.calls.total() - before, 3, "{:?}", cx.calls.snapshot());
    assert!(
        changes(&Certificate, &want, &t, &live).is_empty(),
        "{:?}",
        changes(&Certificate, &want, &t, &live)
    );
    assert_eq!(
        live.attributes["domain_validation_options"],
        made.attributes["domain_validation_options"]
    );
    let found = Certificate
        .find_tagged(&cx, &[address.to_string()])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].0.as_str(), found[0].1.id.as_str()),
        (address, made.id.as_str())
    );

    // A new key algorithm forces a replacement; tags are changed in place.
    let mut other = want.clone();
    other.insert("key_algorithm".into(), Value::str("EC_prime256v1"));
    let ch = changes(&Certificate, &other, &t, &live);
    assert!(ch.iter().all(|c| c.forces_replace), "{ch:?}");
    let mut t2 = t.clone();
    t2.insert("Environment".into(), "production".into());
    t2.shift_remove("Project");
    let ch = changes(&Certificate, &want, &t2, &live);
    assert_eq!(ch.len(), 1);
    assert!(!ch[0].forces_replace);
    let d2 = Desired {
        address,
        fields: &want,
        tags: &t2,
        token: "t",
        replacing: None,
    };
    Certificate.update(&cx, &live, &d2, &ch).await.unwrap();
    let live = observe_one(&Certificate, &cx, &made.id).await.unwrap();
    assert!(changes(&Certificate, &want, &t2, &live).is_empty());
    assert!(!live.tags.contains_key("Project"));

    // Deleted, and deleting again is success.
    Certificate.delete(&cx, &made.id).await.unwrap();
    assert!(acm
        .describe_certificate()
        .certificate_arn(&made.id)
        .send()
        .await
        .is_err());
    assert!(observe_one(&Certificate, &cx, &made.id).await.is_none());
    Certificate.delete(&cx, &made.id).await.unwrap();
}

/// A VPC, two subnets and an application load balancer, made with the SDK.
async fn load_balancer(cx: &Cx, name: &str) -> String {
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
        let s = cx
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.0.{}.0/24", i + 1))
            .availability_zone(*az)
            .send()
            .await
            .unwrap();
        subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    cx.elbv2
        .create_load_balancer()
        .name(name)
        .set_subnets(Some(subnets))
        .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Application)
        .send()
        .await
        .unwrap()
        .load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_web_acl_with_managed_rules_drifts_is_repaired_and_protects_a_load_balancer() {
    let moto = common::Moto::start();
    let cx = connect(&moto).await;
    let waf = aws_sdk_wafv2::Client::new(&sdk_config(&moto).await);
    let address = "web_acl.edge";
    let t = tags(address);
    let want = acl_fields("proxy-smart-edge");
    let d = Desired {
        address,
        fields: &want,
        tags: &t,
        token: "t",
        replacing: None,
    };
    let made = WebAcl.create(&cx, &d).await.expect("create web ACL");
    let arn = made.id.clone();
    assert!(arn.contains(":regional/webacl/proxy-smart-edge/"), "{arn}");
    assert_eq!(made.attributes["arn"], Value::str(&arn));
    assert_eq!(made.attributes["name"], Value::str("proxy-smart-edge"));
    assert!(arn.ends_with(made.attributes["id"].as_str().unwrap()));
    assert!(made.attributes["capacity"].as_int().is_some());
    assert!(changes(&WebAcl, &want, &t, &made).is_empty());

    // What WAF stores, as an independent client sees it.
    let (name, id) = {
        let parts: Vec<&str> = arn.rsplitn(3, '/').collect();
        (parts[1].to_string(), parts[0].to_string())
    };
    let got = waf
        .get_web_acl()
        .name(&name)
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .id(&id)
        .send()
        .await
        .unwrap();
    let acl = got.web_acl().unwrap();
    assert_eq!(acl.rules().len(), 4);
    let rate = acl
        .rules()
        .iter()
        .find(|r| r.name() == "per-ip-rate")
        .unwrap();
    assert_eq!(
        rate.statement()
            .unwrap()
            .rate_based_statement()
            .unwrap()
            .limit(),
        2000
    );
    assert!(rate.action().unwrap().block().is_some());
    assert_eq!(
        rate.visibility_config().unwrap().metric_name(),
        "per-ip-rate",
        "metric named after the rule by default"
    );
    assert_eq!(
        acl.visibility_config().unwrap().metric_name(),
        "proxy-smart-edge"
    );
    let tagged = waf
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert!(tagged
        .tag_info_for_resource()
        .unwrap()
        .tag_list()
        .iter()
        .any(|t| t.key() == "reconcile:address" && t.value() == address));

    // Observed equal to the declaration: WAF's echoed defaults are normalised.
    let before = cx.calls.snapshot();
    let live = observe_one(&WebAcl, &cx, &arn).await.expect("observed");
    let after = cx.calls.snapshot();
    let delta = |op: &str| {
        after
            .iter()
            .filter(|((_, o), _)| o == op)
            .map(|(_, n)| *n)
            .sum::<u64>()
            - before
                .iter()
                .filter(|((_, o), _)| o == op)
                .map(|(_, n)| *n)
                .sum::<u64>()
    };
    assert_eq!(
        (
            delta("ListWebACLs"),
            delta("GetWebACL"),
            delta("ListTagsForResource")
        ),
        (1, 1, 1)
    );
    let ch = changes(&WebAcl, &want, &t, &live);
    assert!(ch.is_empty(), "a second plan would not be clean: {ch:?}");

    // The same name again: this stack's own copy is adopted, anyone else's is refused.
    let adopted = WebAcl.create(&cx, &d).await.expect("adopt");
    assert_eq!(adopted.id, arn);
    let t_other = tags("web_acl.other");
    let refused = WebAcl
        .create(
            &cx,
            &Desired {
                address: "web_acl.other",
                fields: &want,
                tags: &t_other,
                token: "t",
                replacing: None,
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("web_acl.other") && refused.contains("reconcile import"),
        "{refused}"
    );
    let all = waf
        .list_web_acls()
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .send()
        .await
        .unwrap();
    assert_eq!(all.web_acls().len(), 1, "no duplicate ACL");

    // Out of band: an independent client removes the SQLi rule group, with its own lock token.
    let current = waf
        .get_web_acl()
        .name(&name)
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .id(&id)
        .send()
        .await
        .unwrap();
    let acl = current.web_acl().unwrap();
    let kept: Vec<_> = acl
        .rules()
        .iter()
        .filter(|r| r.name() != "AWSManagedRulesSQLiRuleSet")
        .cloned()
        .collect();
    assert_eq!(kept.len(), 3);
    waf.update_web_acl()
        .name(&name)
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .id(&id)
        .lock_token(current.lock_token().unwrap())
        .set_default_action(acl.default_action().cloned())
        .set_visibility_config(acl.visibility_config().cloned())
        .set_rules(Some(kept))
        .send()
        .await
        .unwrap();
    let drifted = observe_one(&WebAcl, &cx, &arn).await.unwrap();
    let ch = changes(&WebAcl, &want, &t, &drifted);
    assert_eq!(
        ch.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(),
        ["rules"],
        "{ch:?}"
    );
    assert!(!ch[0].forces_replace);

    // The repair reads a fresh lock token (the one observed before is stale now).
    let gets = count(&cx, "GetWebACL");
    let repaired = WebAcl.update(&cx, &drifted, &d, &ch).await.expect("repair");
    assert!(
        count(&cx, "GetWebACL") > gets,
        "lock token read right before the update"
    );
    assert!(changes(&WebAcl, &want, &t, &repaired).is_empty());
    let live = observe_one(&WebAcl, &cx, &arn).await.unwrap();
    assert!(
        changes(&WebAcl, &want, &t, &live).is_empty(),
        "{:?}",
        changes(&WebAcl, &want, &t, &live)
    );
    let fixed = waf
        .get_web_acl()
        .name(&name)
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(fixed.web_acl().unwrap().rules().len(), 4);

    // Out of band again: the rate limit raised by an independent client.
    let current = waf
        .get_web_acl()
        .name(&name)
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .id(&id)
        .send()
        .await
        .unwrap();
    let acl = current.web_acl().unwrap();
    let loosened: Vec<_> = acl
        .rules()
        .iter()
        .map(|r| {
            let Some(rate) = r.statement().and_then(|s| s.rate_based_statement()) else {
                return r.clone();
            };
            let mut rate = rate.clone();
            rate.limit = 100_000;
            let mut r = r.clone();
            r.statement = Some(
                aws_sdk_wafv2::types::Statement::builder()
                    .rate_based_statement(rate)
                    .build(),
            );
            r
        })
        .collect();
    waf.update_web_acl()
        .name(&name)
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .id(&id)
        .lock_token(current.lock_token().unwrap())
        .set_default_action(acl.default_action().cloned())
        .set_visibility_config(acl.visibility_config().cloned())
        .set_rules(Some(loosened))
        .send()
        .await
        .unwrap();
    let drifted = observe_one(&WebAcl, &cx, &arn).await.unwrap();
    let ch = changes(&WebAcl, &want, &t, &drifted);
    assert_eq!(
        ch.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(),
        ["rules"],
        "{ch:?}"
    );
    assert!(format!("{:?}", ch[0].old).contains("100000"), "{ch:?}");
    WebAcl.update(&cx, &drifted, &d, &ch).await.expect("repair");
    let live = observe_one(&WebAcl, &cx, &arn).await.unwrap();
    assert!(changes(&WebAcl, &want, &t, &live).is_empty());

    // A changed rate limit and a new default action are updates in place too.
    let mut stricter = want.clone();
    if let Some(Value::List(rules)) = stricter.get_mut("rules") {
        rules[3] = rate_limit(500);
    }
    stricter.insert("default_action".into(), Value::str("block"));
    let ch = changes(&WebAcl, &stricter, &t, &live);
    let mut fields_changed: Vec<&str> = ch.iter().map(|c| c.field.as_str()).collect();
    fields_changed.sort();
    assert_eq!(fields_changed, ["default_action", "rules"]);
    let d2 = Desired {
        address,
        fields: &stricter,
        tags: &t,
        token: "t",
        replacing: None,
    };
    let updated = WebAcl.update(&cx, &live, &d2, &ch).await.unwrap();
    assert!(changes(&WebAcl, &stricter, &t, &updated).is_empty());
    let live = observe_one(&WebAcl, &cx, &arn).await.unwrap();
    assert!(changes(&WebAcl, &stricter, &t, &live).is_empty());

    // The association with a load balancer.
    let alb = load_balancer(&cx, "keycloak").await;
    let assoc_addr = "web_acl_association.edge";
    let af = fields(&[
        ("web_acl_arn", Value::str(&arn)),
        ("resource_arn", Value::str(&alb)),
    ]);
    let no_tags = IndexMap::new();
    let ad = Desired {
        address: assoc_addr,
        fields: &af,
        tags: &no_tags,
        token: "t",
        replacing: None,
    };
    let assoc = WebAclAssociation.create(&cx, &ad).await.expect("associate");
    assert_eq!(assoc.id, format!("{arn}|{alb}"));
    let held = waf
        .get_web_acl_for_resource()
        .resource_arn(&alb)
        .send()
        .await
        .unwrap();
    assert_eq!(held.web_acl().map(|a| a.arn()), Some(arn.as_str()));
    let before = count(&cx, "GetWebACLForResource");
    let live_assoc = observe_one(&WebAclAssociation, &cx, &assoc.id)
        .await
        .expect("association observed");
    assert_eq!(count(&cx, "GetWebACLForResource") - before, 1);
    assert!(changes(&WebAclAssociation, &af, &no_tags, &live_assoc).is_empty());
    // Associating again (an interrupted create redone) is harmless.
    WebAclAssociation.create(&cx, &ad).await.unwrap();

    // A resource held by someone else's ACL is not taken over.
    let foreign = waf
        .create_web_acl()
        .name("someone-elses")
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .default_action(
            aws_sdk_wafv2::types::DefaultAction::builder()
                .allow(aws_sdk_wafv2::types::AllowAction::builder().build())
                .build(),
        )
        .visibility_config(
            aws_sdk_wafv2::types::VisibilityConfig::builder()
                .cloud_watch_metrics_enabled(false)
                .sampled_requests_enabled(false)
                .metric_name("x")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .summary()
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let other_alb = load_balancer(&cx, "billing").await;
    waf.associate_web_acl()
        .web_acl_arn(&foreign)
        .resource_arn(&other_alb)
        .send()
        .await
        .unwrap();
    let takeover = fields(&[
        ("web_acl_arn", Value::str(&arn)),
        ("resource_arn", Value::str(&other_alb)),
    ]);
    let err = WebAclAssociation
        .create(
            &cx,
            &Desired {
                address: "web_acl_association.billing",
                fields: &takeover,
                tags: &no_tags,
                token: "t",
                replacing: None,
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("web_acl_association.billing") && err.contains(&foreign),
        "{err}"
    );
    let held = waf
        .get_web_acl_for_resource()
        .resource_arn(&other_alb)
        .send()
        .await
        .unwrap();
    assert_eq!(held.web_acl().map(|a| a.arn()), Some(foreign.as_str()));

    // Deleting the association disassociates the load balancer.
    WebAclAssociation.delete(&cx, &assoc.id).await.unwrap();
    assert!(observe_one(&WebAclAssociation, &cx, &assoc.id)
        .await
        .is_none());
    assert_eq!(count(&cx, "DisassociateWebACL"), 1);
    // Gone already: success, and nothing else is torn off.
    WebAclAssociation.delete(&cx, &assoc.id).await.unwrap();

    // The ACL itself.
    WebAcl.delete(&cx, &arn).await.unwrap();
    assert!(observe_one(&WebAcl, &cx, &arn).await.is_none());
    WebAcl.delete(&cx, &arn).await.unwrap();
    let all = waf
        .list_web_acls()
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .send()
        .await
        .unwrap();
    assert_eq!(all.web_acls().len(), 1, "only someone else's ACL is left");
}

/// Someone writes the ACL between reconcile's GetWebACL and its UpdateWebACL
/// (a proxy holds the update back meanwhile): WAF answers
/// WAFOptimisticLockException, and reconcile re-reads the lock token and retries.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_lock_token_race_is_retried_with_a_fresh_token() {
    use std::time::Duration;
    let moto = common::Moto::start();
    let proxy = common::proxy::Proxy::start_with_delay(
        &moto,
        |_, _| None,
        |action, nth| {
            if action == "UpdateWebACL" && nth == 1 {
                Duration::from_secs(2)
            } else {
                Duration::ZERO
            }
        },
    );
    let opts = AwsOptions {
        region: common::REGION.into(),
        endpoint_url: Some(proxy.url.clone()),
    };
    let cx = Cx::connect(&opts, STACK, CallCounter::default()).await;
    let waf = aws_sdk_wafv2::Client::new(&sdk_config(&moto).await);
    let address = "web_acl.edge";
    let t = tags(address);
    let want = acl_fields("raced");
    let d = Desired {
        address,
        fields: &want,
        tags: &t,
        token: "t",
        replacing: None,
    };
    let made = WebAcl.create(&cx, &d).await.expect("create");
    let (name, id) = {
        let parts: Vec<&str> = made.id.rsplitn(3, '/').collect();
        (parts[1].to_string(), parts[0].to_string())
    };

    let mut stricter = want.clone();
    stricter.insert("default_action".into(), Value::str("block"));
    let ch = changes(&WebAcl, &stricter, &t, &made);
    assert_eq!(ch.len(), 1, "{ch:?}");
    let update = {
        let (cx, made, stricter, t, ch) = (
            cx.clone(),
            made.clone(),
            stricter.clone(),
            t.clone(),
            ch.clone(),
        );
        tokio::spawn(async move {
            let d = Desired {
                address: "web_acl.edge",
                fields: &stricter,
                tags: &t,
                token: "t",
                replacing: None,
            };
            WebAcl.update(&cx, &made, &d, &ch).await
        })
    };
    // Once reconcile's update is held at the proxy, an independent client writes first.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while proxy.count("UpdateWebACL") == 0 {
        assert!(std::time::Instant::now() < deadline, "no UpdateWebACL seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let current = waf
        .get_web_acl()
        .name(&name)
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .id(&id)
        .send()
        .await
        .unwrap();
    let acl = current.web_acl().unwrap();
    waf.update_web_acl()
        .name(&name)
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .id(&id)
        .lock_token(current.lock_token().unwrap())
        .description("edited in the console")
        .set_default_action(acl.default_action().cloned())
        .set_visibility_config(acl.visibility_config().cloned())
        .set_rules(Some(acl.rules().to_vec()))
        .send()
        .await
        .unwrap();

    let updated = update
        .await
        .unwrap()
        .expect("the update is retried and succeeds");
    assert_eq!(proxy.count("UpdateWebACL"), 2, "{:?}", proxy.actions());
    assert!(changes(&WebAcl, &stricter, &t, &updated).is_empty());
    let live = waf
        .get_web_acl()
        .name(&name)
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .id(&id)
        .send()
        .await
        .unwrap();
    let acl = live.web_acl().unwrap();
    assert!(acl.default_action().unwrap().block().is_some());
    assert_eq!(acl.description(), Some("Keycloak edge protection"));
    assert_eq!(acl.rules().len(), 4);
}
