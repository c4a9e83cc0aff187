//! `route53_zone` and `route53_record` through the real binary against moto:
//! a zone with an alias to a load balancer, a CNAME and TXT records applies
//! and plans clean for one ListResourceRecordSets per zone page; a value
//! changed and a record deleted behind reconcile's back are repaired; bad
//! records are refused by `validate` without an AWS call; in a zone made
//! outside the stack, destroy removes only the stack's records; a private
//! zone moves between VPCs in place and `protect` keeps destroy off it; a
//! record made by hand is adopted with `import`; a certificate with
//! `wait_for_validation` is applied once ACM issues it. What exists is
//! checked with an independent Route 53 client.

mod common;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use common::{Moto, Project, Sentinel, REGION};

const STACK: &str = "dns";

const LB: &str = r#"[vpc.main]
cidr_block = "10.0.0.0/16"

[subnet.a]
vpc_id            = "${vpc.main.id}"
cidr_block        = "10.0.1.0/24"
availability_zone = "us-east-1a"

[subnet.b]
vpc_id            = "${vpc.main.id}"
cidr_block        = "10.0.2.0/24"
availability_zone = "us-east-1b"

[load_balancer.web]
name            = "dns-web"
subnets         = ["${subnet.a.id}", "${subnet.b.id}"]
security_groups = []
"#;

const ZONE: &str = r#"
[route53_zone.main]
name    = "dnstest.example.com"
comment = "records of the dns test"

[route53_record.www]
zone_id = "${route53_zone.main.id}"
name    = "www"
type    = "A"
alias   = { name = "${load_balancer.web.dns_name}", zone_id = "${load_balancer.web.zone_id}" }

[route53_record.docs]
zone_id = "${route53_zone.main.id}"
name    = "docs.dnstest.example.com"
type    = "CNAME"
ttl     = 300
records = ["www.dnstest.example.com"]

[route53_record.spf]
zone_id = "${route53_zone.main.id}"
name    = "dnstest.example.com."
type    = "TXT"
ttl     = 600
records = ["v=spf1 -all", "site-verification=abc123"]
"#;

fn write(p: &Project, body: &str) {
    p.write(
        "dns.toml",
        &format!("[stack]\nname = \"{STACK}\"\nregion = \"{REGION}\"\n\n{body}"),
    );
}

fn id_of(p: &Project, address: &str) -> String {
    p.state_json(STACK)["resources"][address]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{address} not in state"))
        .to_string()
}

async fn route53(moto: &Moto) -> aws_sdk_route53::Client {
    aws_sdk_route53::Client::new(&moto.sdk().await)
}

/// Every record set of a zone as (name without the dot, type) -> record set.
async fn records(
    r53: &aws_sdk_route53::Client,
    zone: &str,
) -> Vec<(String, String, ResourceRecordSet)> {
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    out.resource_record_sets()
        .iter()
        .map(|r| {
            (
                r.name().trim_end_matches('.').to_string(),
                r.r#type().as_str().to_string(),
                r.clone(),
            )
        })
        .collect()
}

async fn record(
    r53: &aws_sdk_route53::Client,
    zone: &str,
    name: &str,
    ty: &str,
) -> Option<ResourceRecordSet> {
    records(r53, zone)
        .await
        .into_iter()
        .find(|(n, t, _)| n == name && t == ty)
        .map(|(_, _, r)| r)
}

fn values(r: &ResourceRecordSet) -> Vec<String> {
    let mut v: Vec<String> = r
        .resource_records()
        .iter()
        .map(|x| x.value().to_string())
        .collect();
    v.sort();
    v
}

async fn change(
    r53: &aws_sdk_route53::Client,
    zone: &str,
    action: ChangeAction,
    rr: ResourceRecordSet,
) {
    r53.change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(action)
                        .resource_record_set(rr)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

fn rrset(name: &str, ty: RrType, ttl: i64, values: &[&str]) -> ResourceRecordSet {
    let mut b = ResourceRecordSet::builder().name(name).r#type(ty).ttl(ttl);
    for v in values {
        b = b.resource_records(ResourceRecord::builder().value(*v).build().unwrap());
    }
    b.build().unwrap()
}

/// The change lines of `address` in a text plan, with its header.
fn block(out: &str, address: &str) -> (String, Vec<String>) {
    let mut lines = out.lines();
    let header = lines
        .find(|l| !l.starts_with("      ") && l.split_whitespace().nth(1) == Some(address))
        .unwrap_or_else(|| panic!("{address} not in the plan:\n{out}"))
        .to_string();
    let body = lines
        .take_while(|l| l.starts_with("      "))
        .map(str::to_string)
        .collect();
    (header, body)
}

/// Calls of one Route 53 operation, as `--timings` prints them.
fn route53_calls(out: &str, op: &str) -> u64 {
    out.lines()
        .filter(|l| l.trim_start().starts_with("Route 53") && l.contains(op))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zone_and_its_records_apply_plan_clean_and_are_repaired() {
    let moto = Moto::start();
    let p = Project::new();
    write(&p, &format!("{LB}{ZONE}"));
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let r53 = route53(&moto).await;
    let zone = id_of(&p, "route53_zone.main");

    // An independent client sees the zone and the records as declared.
    let z = r53.get_hosted_zone().id(&zone).send().await.unwrap();
    let hz = z.hosted_zone().unwrap();
    assert_eq!(hz.name(), "dnstest.example.com.");
    assert_eq!(
        hz.config().and_then(|c| c.comment()),
        Some("records of the dns test")
    );
    let lb_dns = p.state_json(STACK)["resources"]["load_balancer.web"]["attributes"]["dns_name"]
        .as_str()
        .unwrap()
        .to_string();
    let www = record(&r53, &zone, "www.dnstest.example.com", "A")
        .await
        .expect("www A record");
    let target = www.alias_target().expect("an alias");
    assert_eq!(
        target.dns_name().trim_end_matches('.').to_lowercase(),
        lb_dns.to_lowercase()
    );
    assert!(www.ttl().is_none());
    let docs = record(&r53, &zone, "docs.dnstest.example.com", "CNAME")
        .await
        .expect("docs CNAME");
    assert_eq!(docs.ttl(), Some(300));
    assert_eq!(values(&docs), ["www.dnstest.example.com"]);
    let spf = record(&r53, &zone, "dnstest.example.com", "TXT")
        .await
        .expect("apex TXT");
    assert_eq!(spf.ttl(), Some(600));
    // TXT values go to Route 53 quoted, as DNS wants them.
    assert_eq!(
        values(&spf),
        ["\"site-verification=abc123\"", "\"v=spf1 -all\""]
    );
    assert_eq!(
        id_of(&p, "route53_record.docs"),
        format!("{zone}_docs.dnstest.example.com_CNAME")
    );

    // A no-op plan: the records of the zone in one page, not one call each.
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode", "--timings"]);
    run.expect_code(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    assert_eq!(
        route53_calls(&run.stdout, "ListResourceRecordSets"),
        1,
        "{}",
        run.stdout
    );
    assert_eq!(
        route53_calls(&run.stdout, "GetHostedZone"),
        1,
        "{}",
        run.stdout
    );

    // A value changed out of band: reported by field as drift, and repaired.
    change(
        &r53,
        &zone,
        ChangeAction::Upsert,
        rrset(
            "docs.dnstest.example.com",
            RrType::Cname,
            300,
            &["elsewhere.example.net"],
        ),
    )
    .await;
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    run.expect_code(2);
    let (h, body) = block(&run.stdout, "route53_record.docs");
    assert!(
        h.contains("update in place") && h.contains("drift"),
        "{h}\n{}",
        run.stdout
    );
    assert!(
        body.iter().any(|l| l.trim_start().starts_with("records")),
        "{}",
        run.stdout
    );
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let docs = record(&r53, &zone, "docs.dnstest.example.com", "CNAME")
        .await
        .unwrap();
    assert_eq!(values(&docs), ["www.dnstest.example.com"]);

    // A record deleted out of band is created again.
    let spf = record(&r53, &zone, "dnstest.example.com", "TXT")
        .await
        .unwrap();
    change(&r53, &zone, ChangeAction::Delete, spf).await;
    assert!(record(&r53, &zone, "dnstest.example.com", "TXT")
        .await
        .is_none());
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    run.expect_code(2);
    let (h, _) = block(&run.stdout, "route53_record.spf");
    assert!(h.contains("create"), "{h}\n{}", run.stdout);
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    assert!(record(&r53, &zone, "dnstest.example.com", "TXT")
        .await
        .is_some());
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "not clean after repairs:\n{}", run.all());

    // Destroy: records first, then the zone.
    p.run(Some(&moto), &["destroy", "--auto-approve"])
        .expect_code(0);
    let zones = r53.list_hosted_zones().send().await.unwrap();
    assert!(zones.hosted_zones().is_empty(), "{zones:?}");
}

#[test]
fn bad_records_are_refused_by_validate_without_an_aws_call() {
    let p = Project::new();
    // Line numbers count from the [stack] header, at line 1.
    write(
        &p,
        r#"[route53_zone.main]
name = "maxhealth.tech"

[route53_record.outside]
zone_id = "${route53_zone.main.id}"
name    = "auth.example.com."
type    = "A"
ttl     = 60
records = ["192.0.2.1"]

[route53_record.both]
zone_id = "${route53_zone.main.id}"
name    = "auth"
type    = "A"
ttl     = 60
alias   = { name = "lb.example.com", zone_id = "Z35SXDOTRQ7X7K" }

[route53_record.apex]
zone_id = "${route53_zone.main.id}"
name    = "maxhealth.tech"
type    = "CNAME"
ttl     = 60
records = ["other.example.com"]

[route53_record.long]
zone_id = "${route53_zone.main.id}"
name    = "long"
type    = "TXT"
ttl     = 60
records = ["LONGVALUE"]

[route53_record.ttl]
zone_id   = "Z0123456789ABC"
zone_name = "example.org"
name      = "api"
type      = "A"
ttl       = -1
records   = ["192.0.2.2"]

[route53_record.imported_outside]
zone_id   = "Z0123456789ABC"
zone_name = "example.org"
name      = "api.example.com."
type      = "A"
ttl       = 60
records   = ["192.0.2.3"]
"#
        .replace("LONGVALUE", &"x".repeat(256))
        .as_str(),
    );
    let sentinel = Sentinel::new();
    let r = p.run_at(&sentinel.url, &["validate"]);
    r.expect_code(1);
    sentinel.assert_no_call();
    for needle in [
        "desired-state/dns.toml:10:",
        "is outside the zone `maxhealth.tech`",
        "desired-state/dns.toml:19:",
        "an alias record takes no `ttl`",
        "desired-state/dns.toml:25:",
        "a CNAME record cannot be at the zone apex",
        "desired-state/dns.toml:34:",
        "a TXT string of 256 characters",
        "desired-state/dns.toml:41:",
        "is -1; AWS takes 0 to 2147483647",
        "desired-state/dns.toml:47:",
        "is outside the zone `example.org`",
    ] {
        assert!(r.stderr.contains(needle), "no `{needle}` in:\n{}", r.stderr);
    }
    // One problem each, the out-of-range TTL not reported twice.
    assert!(r.stderr.contains("6 problems found"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_zone_made_outside_the_stack_destroy_removes_only_its_records() {
    let moto = Moto::start();
    let p = Project::new();
    let r53 = route53(&moto).await;
    let made = r53
        .create_hosted_zone()
        .name("imported.example.com")
        .caller_reference("made-by-hand")
        .send()
        .await
        .unwrap();
    let zone = made
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    // Someone else's record, with the name and type the stack will declare too.
    change(
        &r53,
        &zone,
        ChangeAction::Create,
        rrset(
            "legacy.imported.example.com",
            RrType::A,
            300,
            &["192.0.2.9"],
        ),
    )
    .await;
    let before: Vec<(String, String)> = records(&r53, &zone)
        .await
        .into_iter()
        .map(|(n, t, _)| (n, t))
        .collect();
    assert_eq!(before.len(), 3, "{before:?}");

    let base = r#"[input.zone_id]
description = "The zone, made outside the stack"

[route53_record.app]
zone_id   = "${input.zone_id}"
zone_name = "imported.example.com"
name      = "app"
type      = "A"
ttl       = 60
records   = ["192.0.2.10", "192.0.2.11"]

[route53_record.mail]
zone_id   = "${input.zone_id}"
zone_name = "imported.example.com"
name      = "imported.example.com"
type      = "MX"
ttl       = 3600
records   = ["10 mail.imported.example.com."]
"#;
    write(&p, base);
    let input = format!("zone_id={zone}");
    let args = |cmd: &'static [&'static str]| {
        let mut v: Vec<&str> = cmd.to_vec();
        v.extend(["--input", input.as_str()]);
        v
    };
    p.run(Some(&moto), &args(&["apply", "--auto-approve"]))
        .expect_code(0);
    let app = record(&r53, &zone, "app.imported.example.com", "A")
        .await
        .expect("app record");
    assert_eq!(values(&app), ["192.0.2.10", "192.0.2.11"]);
    assert!(record(&r53, &zone, "imported.example.com", "MX")
        .await
        .is_some());
    let run = p.run(Some(&moto), &args(&["plan", "--detailed-exitcode"]));
    assert_eq!(run.code, 0, "not clean:\n{}", run.all());

    // A declared record whose name someone else holds with other values is
    // refused, not overwritten.
    let legacy = r#"
[route53_record.legacy]
zone_id   = "${input.zone_id}"
zone_name = "imported.example.com"
name      = "legacy"
type      = "A"
ttl       = 300
records   = ["192.0.2.99"]
"#;
    write(&p, &format!("{base}{legacy}"));
    let run = p.run(Some(&moto), &args(&["apply", "--auto-approve"]));
    run.expect_code(1);
    assert!(
        run.all().contains("does not manage it") && run.all().contains("reconcile import"),
        "{}",
        run.all()
    );
    let legacy = record(&r53, &zone, "legacy.imported.example.com", "A")
        .await
        .unwrap();
    assert_eq!(values(&legacy), ["192.0.2.9"]);
    write(&p, base);

    // Destroy: the stack's two records go; the zone, its NS and SOA and the
    // other record stay.
    p.run(Some(&moto), &args(&["destroy", "--auto-approve"]))
        .expect_code(0);
    let after: Vec<(String, String)> = records(&r53, &zone)
        .await
        .into_iter()
        .map(|(n, t, _)| (n, t))
        .collect();
    assert_eq!(after, before);
}

#[test]
fn waiting_for_a_certificate_validated_by_the_stack_s_own_records_is_refused() {
    let p = Project::new();
    write(
        &p,
        r#"[certificate.auth]
domain_name         = "auth.maxhealth.tech"
wait_for_validation = true

[route53_record.auth_validation]
zone_id   = "Z0123456789ABC"
zone_name = "maxhealth.tech"
name      = "${certificate.auth.validation_record_name}"
type      = "CNAME"
ttl       = 300
records   = ["${certificate.auth.validation_record_value}"]
"#,
    );
    let sentinel = Sentinel::new();
    let r = p.run_at(&sentinel.url, &["validate"]);
    r.expect_code(1);
    sentinel.assert_no_call();
    for needle in [
        "desired-state/dns.toml:7:",
        "`route53_record.auth_validation` takes its validation record from this certificate",
    ] {
        assert!(r.stderr.contains(needle), "no `{needle}` in:\n{}", r.stderr);
    }
    // Without the wait, the same stack is valid.
    let text = std::fs::read_to_string(p.path().join("desired-state/dns.toml")).unwrap();
    p.write(
        "dns.toml",
        &text.replace("wait_for_validation = true", "wait_for_validation = false"),
    );
    p.run_at(&sentinel.url, &["validate"]).expect_code(0);
    sentinel.assert_no_call();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_zone_follows_its_vpcs_in_place_and_protect_guards_it() {
    let moto = Moto::start();
    let p = Project::new();
    let vpcs = r#"[vpc.a]
cidr_block = "10.1.0.0/16"

[vpc.b]
cidr_block = "10.2.0.0/16"
"#;
    let zone = |ids: &str| {
        format!(
            r#"
[route53_zone.internal]
name    = "internal.example"
vpc_ids = [{ids}]
protect = true
"#
        )
    };
    write(&p, &format!("{vpcs}{}", zone("\"${vpc.a.id}\"")));
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let r53 = route53(&moto).await;
    let id = id_of(&p, "route53_zone.internal");
    let state = p.state_json(STACK);
    let vpc = |a: &str| state["resources"][a]["id"].as_str().unwrap().to_string();
    let (a, b) = (vpc("vpc.a"), vpc("vpc.b"));
    let associated = |out: aws_sdk_route53::operation::get_hosted_zone::GetHostedZoneOutput| {
        let mut v: Vec<String> = out
            .vpcs()
            .iter()
            .filter_map(|v| v.vpc_id().map(str::to_string))
            .collect();
        v.sort();
        v
    };
    let got = r53.get_hosted_zone().id(&id).send().await.unwrap();
    assert!(got.hosted_zone().unwrap().config().unwrap().private_zone());
    assert_eq!(associated(got), [a]);
    assert_eq!(
        state["resources"]["route53_zone.internal"]["attributes"]["private_zone"],
        true
    );

    // The other VPC instead: associated and disassociated in place.
    write(&p, &format!("{vpcs}{}", zone("\"${vpc.b.id}\"")));
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    run.expect_code(2);
    let (h, body) = block(&run.stdout, "route53_zone.internal");
    assert!(h.contains("update in place"), "{h}\n{}", run.stdout);
    assert!(
        body.iter().any(|l| l.trim_start().starts_with("vpc_ids")),
        "{}",
        run.stdout
    );
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let got = r53.get_hosted_zone().id(&id).send().await.unwrap();
    assert_eq!(associated(got), [b]);
    assert_eq!(id_of(&p, "route53_zone.internal"), id, "not replaced");
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "not clean:\n{}", run.all());

    // Protected: destroy refuses and deletes nothing.
    let run = p.run(Some(&moto), &["destroy", "--auto-approve"]);
    run.expect_code(1);
    assert!(run.all().contains("is protected"), "{}", run.all());
    assert!(r53.get_hosted_zone().id(&id).send().await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_made_by_hand_is_adopted_with_import_then_managed() {
    let moto = Moto::start();
    let p = Project::new();
    let r53 = route53(&moto).await;
    let made = r53
        .create_hosted_zone()
        .name("adopt.example.com")
        .caller_reference("made-by-hand")
        .send()
        .await
        .unwrap();
    let zone = made
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    change(
        &r53,
        &zone,
        ChangeAction::Create,
        rrset("legacy.adopt.example.com", RrType::A, 300, &["192.0.2.9"]),
    )
    .await;
    write(
        &p,
        &format!(
            r#"[route53_record.legacy]
zone_id = "{zone}"
name    = "legacy"
type    = "A"
ttl     = 300
records = ["192.0.2.99"]
"#
        ),
    );
    let id = format!("{zone}_legacy.adopt.example.com_A");
    p.run(Some(&moto), &["import", "route53_record.legacy", &id])
        .expect_code(0);
    assert_eq!(id_of(&p, "route53_record.legacy"), id);
    // Adopted as it is: the declared value is a change to it.
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    run.expect_code(2);
    let (h, body) = block(&run.stdout, "route53_record.legacy");
    assert!(h.contains("update in place"), "{h}\n{}", run.stdout);
    assert!(
        body.iter().any(|l| l.trim_start().starts_with("records")),
        "{}",
        run.stdout
    );
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let legacy = record(&r53, &zone, "legacy.adopt.example.com", "A")
        .await
        .unwrap();
    assert_eq!(values(&legacy), ["192.0.2.99"]);
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "not clean:\n{}", run.all());
    // Now the stack's: destroy deletes it, and only it.
    p.run(Some(&moto), &["destroy", "--auto-approve"])
        .expect_code(0);
    let left: Vec<String> = records(&r53, &zone)
        .await
        .into_iter()
        .map(|(_, t, _)| t)
        .collect();
    assert_eq!(left, ["NS", "SOA"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_with_wait_for_validation_is_applied_once_acm_issues_it() {
    // The emulator issues a requested certificate once this many seconds have
    // passed, whatever DNS holds: long enough to be seen pending first.
    std::env::set_var("MOTO_ACM_VALIDATION_WAIT", "3");
    let moto = Moto::start();
    let p = Project::new();
    write(
        &p,
        r#"[certificate.auth]
domain_name         = "auth.maxhealth.tech"
wait_for_validation = true
"#,
    );
    let run = p.run(Some(&moto), &["apply", "--auto-approve"]);
    run.expect_code(0);
    assert!(run.all().contains("PENDING_VALIDATION"), "{}", run.all());
    let cert = &p.state_json(STACK)["resources"]["certificate.auth"];
    assert_eq!(cert["attributes"]["status"], "ISSUED", "{cert}");
    assert!(
        cert["attributes"]["validation_record_name"]
            .as_str()
            .unwrap()
            .ends_with(".auth.maxhealth.tech."),
        "{cert}"
    );
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "not clean:\n{}", run.all());
}
