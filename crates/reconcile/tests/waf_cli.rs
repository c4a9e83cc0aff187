//! WAF and ACM end to end with the real binary against moto: a stack of a web
//! ACL (AWS managed rule groups and a rate limit), its association with an
//! application load balancer (made here with the SDK and passed in as an input,
//! since the stack cannot make load balancers yet) and an ACM certificate is
//! applied from nothing; a second plan is clean; a managed rule group removed by
//! an independent client is drift on `rules` that apply repairs; and destroy
//! disassociates the load balancer before deleting the web ACL, in that order as
//! a recording proxy in front of moto saw the requests.

mod common;
use common::proxy::Proxy;
use common::{Moto, Project};

const STACK: &str = r#"
[stack]
name = "proxy-smart-edge"
region = "us-east-1"
tags = { Project = "proxy-smart" }

[input.alb_arn]
description = "The Keycloak load balancer"

[web_acl.edge]
name = "proxy-smart-edge"
description = "Keycloak edge protection"
rules = [
  { name = "common", priority = 1, managed_rule_group = { vendor = "AWS", name = "AWSManagedRulesCommonRuleSet", excluded_rules = ["SizeRestrictions_BODY"] } },
  { name = "bad-inputs", priority = 2, managed_rule_group = { name = "AWSManagedRulesKnownBadInputsRuleSet" }, override_action = "count" },
  { name = "sqli", priority = 3, managed_rule_group = { name = "AWSManagedRulesSQLiRuleSet" } },
  { name = "per-ip", priority = 10, rate_limit = { limit = 2000, aggregate_key_type = "IP" }, action = "block", visibility = { metric_name = "per-ip-rate" } },
]

[web_acl_association.keycloak]
web_acl_arn = "${web_acl.edge.arn}"
resource_arn = "${input.alb_arn}"

[certificate.auth]
domain_name = "auth.maxhealth.tech"
subject_alternative_names = ["login.maxhealth.tech"]

[output.validation_records]
value = "${certificate.auth.domain_validation_options}"
"#;

async fn config(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(common::REGION))
        .endpoint_url(&moto.url)
        .load()
        .await
}

/// An application load balancer in a new VPC, made the way its owner would.
async fn load_balancer(conf: &aws_config::SdkConfig) -> String {
    let ec2 = aws_sdk_ec2::Client::new(conf);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(conf);
    let vpc = ec2
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
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.0.{}.0/24", i + 1))
            .availability_zone(*az)
            .send()
            .await
            .unwrap();
        subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let sg = ec2
        .create_security_group()
        .group_name("keycloak-alb")
        .description("Keycloak load balancer")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    elb.create_load_balancer()
        .name("keycloak")
        .set_subnets(Some(subnets))
        .security_groups(sg)
        .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Application)
        .send()
        .await
        .unwrap()
        .load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string()
}

/// The (name, id) of a web ACL ARN.
fn name_and_id(arn: &str) -> (String, String) {
    let mut parts = arn.rsplitn(3, '/');
    let id = parts.next().unwrap().to_string();
    let name = parts.next().unwrap().to_string();
    (name, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_web_acl_protects_a_load_balancer_through_the_cli() {
    let moto = Moto::start();
    let conf = config(&moto).await;
    let waf = aws_sdk_wafv2::Client::new(&conf);
    let acm = aws_sdk_acm::Client::new(&conf);
    let alb = load_balancer(&conf).await;
    let input = format!("alb_arn={alb}");
    let p = Project::new();
    p.write("edge.toml", STACK);

    p.run(None, &["validate", "--input", &input]).expect_code(0);
    let run = p.run(Some(&moto), &["apply", "--auto-approve", "--input", &input]);
    run.expect_code(0);

    let state = p.state_json("proxy-smart-edge");
    let acl_arn = state["resources"]["web_acl.edge"]["id"]
        .as_str()
        .expect("web ACL in state")
        .to_string();
    assert!(
        acl_arn.contains(":regional/webacl/proxy-smart-edge/"),
        "{acl_arn}"
    );
    assert_eq!(
        state["resources"]["web_acl_association.keycloak"]["id"],
        format!("{acl_arn}|{alb}")
    );
    let cert_arn = state["resources"]["certificate.auth"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let records =
        &state["resources"]["certificate.auth"]["attributes"]["domain_validation_options"];
    assert_eq!(records.as_array().map(Vec::len), Some(2), "{records}");
    assert_eq!(records[0]["resource_record_type"], "CNAME");

    // The load balancer holds the web ACL, as an independent client sees it.
    let held = waf
        .get_web_acl_for_resource()
        .resource_arn(&alb)
        .send()
        .await
        .unwrap();
    assert_eq!(held.web_acl().map(|a| a.arn()), Some(acl_arn.as_str()));
    let certs = acm.list_certificates().send().await.unwrap();
    assert_eq!(certs.certificate_summary_list().len(), 1);

    // A second plan is clean.
    let run = p.run(
        Some(&moto),
        &[
            "plan",
            "--detailed-exitcode",
            "--timings",
            "--input",
            &input,
        ],
    );
    run.expect_code(0);
    assert!(run.stdout.contains("No changes"), "{}", run.stdout);

    // Out of band: the SQLi rule group removed with the console's lock token.
    let (name, id) = name_and_id(&acl_arn);
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
        .filter(|r| r.name() != "sqli")
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

    let run = p.run(
        Some(&moto),
        &["plan", "--detailed-exitcode", "--input", &input],
    );
    run.expect_code(2);
    assert!(run.stdout.contains("web_acl.edge"), "{}", run.stdout);
    assert!(run.stdout.contains("rules"), "{}", run.stdout);
    assert!(run.stdout.contains("update in place"), "{}", run.stdout);
    assert!(run.stdout.contains("1 to update"), "{}", run.stdout);

    p.run(Some(&moto), &["apply", "--auto-approve", "--input", &input])
        .expect_code(0);
    let fixed = waf
        .get_web_acl()
        .name(&name)
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .id(&id)
        .send()
        .await
        .unwrap();
    let mut names: Vec<&str> = fixed
        .web_acl()
        .unwrap()
        .rules()
        .iter()
        .map(|r| r.name())
        .collect();
    names.sort();
    assert_eq!(names, ["bad-inputs", "common", "per-ip", "sqli"]);
    p.run(
        Some(&moto),
        &["plan", "--detailed-exitcode", "--input", &input],
    )
    .expect_code(0);

    // Destroy through a recording proxy: the association goes before the ACL.
    let proxy = Proxy::start(&moto, |_, _| None);
    let run = p.run_at(
        &proxy.url,
        &["destroy", "--auto-approve", "--input", &input],
    );
    run.expect_code(0);
    let actions = proxy.actions();
    let at = |op: &str| {
        actions
            .iter()
            .position(|a| a == op)
            .unwrap_or_else(|| panic!("no {op} in {actions:?}"))
    };
    assert!(
        at("DisassociateWebACL") < at("DeleteWebACL"),
        "the web ACL was deleted while still associated: {actions:?}"
    );
    assert_eq!(proxy.count("DeleteCertificate"), 1, "{actions:?}");

    let held = waf
        .get_web_acl_for_resource()
        .resource_arn(&alb)
        .send()
        .await
        .unwrap();
    assert!(held.web_acl().is_none());
    let left = waf
        .list_web_acls()
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .send()
        .await
        .unwrap();
    assert!(left.web_acls().is_empty());
    assert!(acm
        .describe_certificate()
        .certificate_arn(&cert_arn)
        .send()
        .await
        .is_err());
    // The load balancer itself is not the stack's: it is still there.
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    assert_eq!(lbs.load_balancers().len(), 1);
}
