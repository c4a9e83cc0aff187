//! `cloudfront_distribution`, `cloudfront_origin_access_control` and
//! `s3_bucket_policy` through the real binary against moto, checked with
//! independent SDK clients: a private bucket served HTTPS-only through an
//! origin access control, with the policy that lets only that distribution
//! read, applies and plans clean; an origin changed out of band is reported by
//! field and repaired; destroy leaves nothing; a bucket policy with two owners
//! is refused by `validate` without an AWS call.
//!
//! The emulator keeps no origin access control id on an origin and deploys at
//! once: the waiting is tested with staged answers in the kind's own tests.

mod common;
use common::{apply, plan_clean, s3, Moto, Project, Sentinel};

const HEADER: &str = "[stack]\nname = \"edge\"\nregion = \"us-east-1\"\n\n";

const BUCKET: &str = "edge-videos";
const OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";

const STACK: &str = r#"[s3_bucket.videos]
name = "edge-videos"

[cloudfront_origin_access_control.videos]
name        = "edge-videos"
description = "reads edge-videos"

[cloudfront_distribution.videos]
comment     = "videos"
price_class = "PriceClass_100"
origins = [
  { id = "videos", domain_name = "${s3_bucket.videos.bucket_regional_domain_name}", origin_access_control_id = "${cloudfront_origin_access_control.videos.id}" },
]
default_cache_behavior = { target_origin_id = "videos", viewer_protocol_policy = "https-only", cache_policy_id = "658327ea-f89d-4fab-a63d-7e88639e58f6", compress = true }

[s3_bucket_policy.videos]
bucket = "${s3_bucket.videos.id}"
policy = '''
{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": { "Service": "cloudfront.amazonaws.com" },
    "Action": "s3:GetObject",
    "Resource": "${s3_bucket.videos.arn}/*",
    "Condition": { "StringEquals": { "AWS:SourceArn": "${cloudfront_distribution.videos.arn}" } }
  }]
}
'''
"#;

fn write(p: &Project, body: &str) {
    p.write("edge.toml", &format!("{HEADER}{body}"));
}

fn state_id(p: &Project, address: &str) -> String {
    p.state_json("edge")["resources"][address]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{address} in state"))
        .to_string()
}

async fn cloudfront(moto: &Moto) -> aws_sdk_cloudfront::Client {
    aws_sdk_cloudfront::Client::new(&moto.sdk().await)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_bucket_is_served_through_a_distribution_kept_and_repaired() {
    let moto = Moto::start();
    let p = Project::new();
    write(&p, STACK);
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let cf = cloudfront(&moto).await;
    let s3 = s3(&moto).await;

    // The origin access control as declared.
    let oac_id = state_id(&p, "cloudfront_origin_access_control.videos");
    let oac = cf
        .get_origin_access_control()
        .id(&oac_id)
        .send()
        .await
        .unwrap()
        .origin_access_control
        .unwrap()
        .origin_access_control_config
        .unwrap();
    assert_eq!(oac.name, "edge-videos");
    assert_eq!(oac.description.as_deref(), Some("reads edge-videos"));
    assert_eq!(oac.signing_behavior.as_str(), "always");
    assert_eq!(oac.signing_protocol.as_str(), "sigv4");
    assert_eq!(oac.origin_access_control_origin_type.as_str(), "s3");

    // The distribution: its S3 origin, HTTPS only, the cache policy, the price class, deployed.
    let id = state_id(&p, "cloudfront_distribution.videos");
    let d = cf
        .get_distribution()
        .id(&id)
        .send()
        .await
        .unwrap()
        .distribution
        .unwrap();
    assert_eq!(d.status, "Deployed");
    let c = d.distribution_config.as_ref().unwrap();
    assert!(c.enabled);
    assert_eq!(c.comment, "videos");
    assert_eq!(c.price_class.as_ref().unwrap().as_str(), "PriceClass_100");
    let origins = &c.origins.as_ref().unwrap().items;
    assert_eq!(origins.len(), 1);
    assert_eq!(origins[0].id, "videos");
    assert_eq!(
        origins[0].domain_name,
        format!("{BUCKET}.s3.us-east-1.amazonaws.com")
    );
    let b = c.default_cache_behavior.as_ref().unwrap();
    assert_eq!(b.target_origin_id, "videos");
    assert_eq!(b.viewer_protocol_policy.as_str(), "https-only");
    assert_eq!(b.cache_policy_id.as_deref(), Some(OPTIMIZED));
    assert_eq!(b.compress, Some(true));
    let tags = cf
        .list_tags_for_resource()
        .resource(&d.arn)
        .send()
        .await
        .unwrap();
    let tags = tags.tags.unwrap().items.unwrap_or_default();
    assert!(
        tags.iter().any(|t| t.key == "reconcile:address"
            && t.value.as_deref() == Some("cloudfront_distribution.videos")),
        "{tags:?}"
    );

    // The bucket policy names the distribution's ARN.
    let policy = s3
        .get_bucket_policy()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    assert!(policy.contains(&d.arn), "{policy}");
    assert!(policy.contains("cloudfront.amazonaws.com"), "{policy}");

    // An origin pointed elsewhere behind reconcile's back.
    let got = cf.get_distribution_config().id(&id).send().await.unwrap();
    let mut config = got.distribution_config.unwrap();
    let o = &mut config.origins.as_mut().unwrap().items[0];
    o.domain_name = "elsewhere.s3.us-east-1.amazonaws.com".into();
    o.origin_path = Some("/stolen".into());
    cf.update_distribution()
        .id(&id)
        .set_if_match(got.e_tag)
        .distribution_config(config)
        .send()
        .await
        .unwrap();
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "expected drift:\n{}", r.all());
    assert!(
        r.stdout.contains("cloudfront_distribution.videos") && r.stdout.contains("drift"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some("origins")),
        "the field is not named:\n{}",
        r.stdout
    );
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let c = cf
        .get_distribution_config()
        .id(&id)
        .send()
        .await
        .unwrap()
        .distribution_config
        .unwrap();
    let o = &c.origins.as_ref().unwrap().items[0];
    assert_eq!(
        o.domain_name,
        format!("{BUCKET}.s3.us-east-1.amazonaws.com")
    );
    assert_eq!(o.origin_path.as_deref().unwrap_or_default(), "");
    assert_eq!(
        state_id(&p, "cloudfront_distribution.videos"),
        id,
        "updated in place"
    );

    // The policy deleted by hand is put back.
    s3.delete_bucket_policy()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.contains("s3_bucket_policy.videos"), "{}", r.stdout);
    apply(&p, &moto);
    plan_clean(&p, &moto);

    // Destroy leaves nothing.
    p.run(Some(&moto), &["destroy", "--auto-approve"])
        .expect_code(0);
    let left = cf.list_distributions().send().await.unwrap();
    let left = left
        .distribution_list
        .and_then(|l| l.items)
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let oacs = cf.list_origin_access_controls().send().await.unwrap();
    let oacs = oacs
        .origin_access_control_list
        .and_then(|l| l.items)
        .unwrap_or_default();
    assert!(oacs.is_empty(), "{oacs:?}");
    let buckets = s3.list_buckets().send().await.unwrap();
    assert!(buckets.buckets().is_empty(), "{:?}", buckets.buckets());
}

#[test]
fn a_bucket_policy_with_two_owners_is_refused_before_any_call() {
    let p = Project::new();
    write(
        &p,
        r#"[s3_bucket.videos]
name   = "edge-videos"
policy = '{"Version": "2012-10-17", "Statement": []}'

[s3_bucket_policy.videos]
bucket = "${s3_bucket.videos.id}"
policy = '{"Version": "2012-10-17", "Statement": []}'
"#,
    );
    let sentinel = Sentinel::new();
    for cmd in ["validate", "plan"] {
        let r = p.run_at(&sentinel.url, &[cmd]);
        r.expect_code(1);
        sentinel.assert_no_call();
        for needle in [
            "desired-state/edge.toml:10:1",
            "`s3_bucket.videos` also declares `policy` (",
            "edge.toml:7:1",
            "two owners",
        ] {
            assert!(
                r.stderr.contains(needle),
                "{cmd}: no `{needle}` in:\n{}",
                r.stderr
            );
        }
    }
    assert!(!p.state_dir().exists());
}
