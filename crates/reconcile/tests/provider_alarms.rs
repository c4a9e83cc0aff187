//! `sns_topic` and `cloudwatch_alarm` through the real binary against moto:
//! an alarm notifying a topic is created, plans clean, has a threshold
//! changed behind reconcile's back reported and repaired; a subscription
//! removed from the stack is unsubscribed; bad alarms are refused by
//! `validate` without an AWS call; target tracking's own alarms are left alone.

mod common;
use common::{apply, block, plan_clean, Moto, Project, Sentinel, REGION};
use reconcile_aws::{AwsOptions, CallCounter, Cx, Registry};

const STACK: &str = "alarms";

const TOPIC: &str = r#"[sns_topic.alerts]
name         = "alarms-alerts"
display_name = "Alerts"
subscriptions = [
  { protocol = "email", endpoint = "ops@example.com" },
  { protocol = "sqs", endpoint = "arn:aws:sqs:us-east-1:123456789012:ops" },
]
"#;

const ALARM: &str = r#"
[cloudwatch_alarm.latency]
alarm_name          = "alarms-latency"
alarm_description   = "p99 response time above 2 s"
namespace           = "AWS/ApplicationELB"
metric_name         = "TargetResponseTime"
dimensions          = { LoadBalancer = "app/web/0123456789abcdef" }
extended_statistic  = "p99"
period              = 60
evaluation_periods  = 3
datapoints_to_alarm = 2
threshold           = 2
comparison_operator = "GreaterThanThreshold"
treat_missing_data  = "notBreaching"
alarm_actions       = ["${sns_topic.alerts.arn}"]
ok_actions          = ["${sns_topic.alerts.arn}"]
"#;

fn write(p: &Project, body: &str) {
    p.write(
        "alarms.toml",
        &format!("[stack]\nname = \"{STACK}\"\nregion = \"{REGION}\"\n\n{body}"),
    );
}

fn topic_arn(p: &Project) -> String {
    p.state_json(STACK)["resources"]["sns_topic.alerts"]["id"]
        .as_str()
        .expect("topic in state")
        .to_string()
}

async fn clients(moto: &Moto) -> (aws_sdk_sns::Client, aws_sdk_cloudwatch::Client) {
    let conf = moto.sdk().await;
    (
        aws_sdk_sns::Client::new(&conf),
        aws_sdk_cloudwatch::Client::new(&conf),
    )
}

async fn alarm(
    cw: &aws_sdk_cloudwatch::Client,
    name: &str,
) -> aws_sdk_cloudwatch::types::MetricAlarm {
    let out = cw.describe_alarms().alarm_names(name).send().await.unwrap();
    out.metric_alarms().first().cloned().expect("alarm exists")
}

async fn endpoints(sns: &aws_sdk_sns::Client, arn: &str) -> Vec<String> {
    let out = sns
        .list_subscriptions_by_topic()
        .topic_arn(arn)
        .send()
        .await
        .unwrap();
    let mut e: Vec<String> = out
        .subscriptions()
        .iter()
        .map(|s| format!("{}:{}", s.protocol().unwrap(), s.endpoint().unwrap()))
        .collect();
    e.sort();
    e
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_notifying_a_topic_is_created_kept_and_repaired() {
    let moto = Moto::start();
    let p = Project::new();
    write(&p, &format!("{TOPIC}{ALARM}"));
    apply(&p, &moto);
    let (sns, cw) = clients(&moto).await;

    let arn = topic_arn(&p);
    let attrs = sns
        .get_topic_attributes()
        .topic_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs
            .attributes()
            .unwrap()
            .get("DisplayName")
            .map(String::as_str),
        Some("Alerts")
    );
    let tags = sns
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert!(tags
        .tags()
        .iter()
        .any(|t| t.key() == "reconcile:address" && t.value() == "sns_topic.alerts"));
    assert_eq!(
        endpoints(&sns, &arn).await,
        [
            "email:ops@example.com",
            "sqs:arn:aws:sqs:us-east-1:123456789012:ops"
        ]
    );
    let a = alarm(&cw, "alarms-latency").await;
    assert_eq!(a.extended_statistic(), Some("p99"));
    assert_eq!(a.statistic(), None);
    assert_eq!(a.datapoints_to_alarm(), Some(2));
    assert_eq!(a.threshold(), Some(2.0));
    assert_eq!(a.alarm_actions(), std::slice::from_ref(&arn));
    assert_eq!(a.ok_actions(), std::slice::from_ref(&arn));
    assert_eq!(a.dimensions()[0].value(), Some("app/web/0123456789abcdef"));
    plan_clean(&p, &moto);

    // Raised by hand: PutMetricAlarm replaces the alarm whole, so resend the rest.
    cw.put_metric_alarm()
        .alarm_name("alarms-latency")
        .alarm_description(a.alarm_description().unwrap())
        .namespace(a.namespace().unwrap())
        .metric_name(a.metric_name().unwrap())
        .set_dimensions(Some(a.dimensions().to_vec()))
        .extended_statistic("p99")
        .period(60)
        .evaluation_periods(3)
        .datapoints_to_alarm(2)
        .threshold(5.0)
        .comparison_operator(a.comparison_operator().unwrap().clone())
        .treat_missing_data("notBreaching")
        .set_alarm_actions(Some(a.alarm_actions().to_vec()))
        .set_ok_actions(Some(a.ok_actions().to_vec()))
        .send()
        .await
        .unwrap();
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let body = block(&r.stdout, "cloudwatch_alarm.latency");
    assert!(
        body.iter()
            .any(|l| l.split_whitespace().next() == Some("threshold")),
        "threshold not named:\n{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("sns_topic.alerts "),
        "the topic did not change:\n{}",
        r.stdout
    );
    apply(&p, &moto);
    assert_eq!(alarm(&cw, "alarms-latency").await.threshold(), Some(2.0));
    plan_clean(&p, &moto);

    p.run(Some(&moto), &["destroy", "--auto-approve"])
        .expect_code(0);
    let left = cw.describe_alarms().send().await.unwrap();
    assert!(left.metric_alarms().is_empty());
    assert!(sns.list_topics().send().await.unwrap().topics().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_removed_from_the_stack_is_unsubscribed() {
    let moto = Moto::start();
    let p = Project::new();
    write(&p, TOPIC);
    apply(&p, &moto);
    // The emulator confirms the email subscription at once; AWS would list
    // it as pending, which the kind's unit tests stage: either way, clean.
    plan_clean(&p, &moto);
    let (sns, _) = clients(&moto).await;
    let arn = topic_arn(&p);

    write(
        &p,
        &TOPIC.replace(
            "  { protocol = \"sqs\", endpoint = \"arn:aws:sqs:us-east-1:123456789012:ops\" },\n",
            "",
        ),
    );
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let body = block(&r.stdout, "sns_topic.alerts");
    assert!(
        body.iter()
            .any(|l| l.split_whitespace().next() == Some("subscriptions")),
        "{}",
        r.stdout
    );
    apply(&p, &moto);
    assert_eq!(endpoints(&sns, &arn).await, ["email:ops@example.com"]);
    assert_eq!(topic_arn(&p), arn, "updated in place");
    plan_clean(&p, &moto);

    // Subscribed by hand: drift of a declared set.
    sns.subscribe()
        .topic_arn(&arn)
        .protocol("https")
        .endpoint("https://hooks.example.com/x")
        .send()
        .await
        .unwrap();
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.contains("drift"), "{}", r.stdout);
    apply(&p, &moto);
    assert_eq!(endpoints(&sns, &arn).await, ["email:ops@example.com"]);
    plan_clean(&p, &moto);
}

#[test]
fn bad_alarms_are_refused_by_validate_without_an_aws_call() {
    let p = Project::new();
    // Line numbers below count from the [stack] header, at line 1.
    write(
        &p,
        r#"[cloudwatch_alarm.bad]
alarm_name          = "bad"
namespace           = "AWS/RDS"
metric_name         = "CPUUtilization"
statistic           = "Average"
extended_statistic  = "p99"
period              = 45
evaluation_periods  = 2
datapoints_to_alarm = 3
threshold           = 80
comparison_operator = "GreaterThanOrEqualToThreshold"
"#,
    );
    let sentinel = Sentinel::new();
    let r = p.run_at(&sentinel.url, &["validate"]);
    r.expect_code(1);
    sentinel.assert_no_call();
    for needle in [
        "desired-state/alarms.toml:10:1",
        "both `statistic` and `extended_statistic` are set",
        "desired-state/alarms.toml:11:1",
        "`period` is 45",
        "10, 30 or a multiple of 60",
        "desired-state/alarms.toml:13:1",
        "`datapoints_to_alarm` is 3, more than `evaluation_periods` (2)",
    ] {
        assert!(r.stderr.contains(needle), "no `{needle}` in:\n{}", r.stderr);
    }

    // Values AWS does not know, by the schema's allowed values.
    write(
        &p,
        r#"[cloudwatch_alarm.bad]
alarm_name          = "bad"
namespace           = "AWS/RDS"
metric_name         = "CPUUtilization"
statistic           = "Median"
period              = 60
evaluation_periods  = 2
threshold           = 80
comparison_operator = "GreaterThan"
"#,
    );
    let r = p.run_at(&sentinel.url, &["validate"]);
    r.expect_code(1);
    sentinel.assert_no_call();
    for needle in ["alarms.toml:9:", "Median", "alarms.toml:13:", "GreaterThan"] {
        assert!(r.stderr.contains(needle), "no `{needle}` in:\n{}", r.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn target_tracking_alarms_are_never_the_stack_s() {
    let moto = Moto::start();
    let p = Project::new();
    write(&p, &format!("{TOPIC}{ALARM}"));
    apply(&p, &moto);
    let (_, cw) = clients(&moto).await;
    // What a target tracking policy makes, here even carrying the stack's tags.
    let name = "TargetTracking-service/main/keycloak-AlarmHigh-1234";
    cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/ECS")
        .metric_name("CPUUtilization")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
        .period(60)
        .evaluation_periods(3)
        .threshold(70.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .tags(
            aws_sdk_cloudwatch::types::Tag::builder()
                .key("reconcile:stack")
                .value(STACK)
                .build(),
        )
        .tags(
            aws_sdk_cloudwatch::types::Tag::builder()
                .key("reconcile:address")
                .value("cloudwatch_alarm.scaling")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let opts = AwsOptions {
        region: REGION.into(),
        endpoint_url: Some(moto.url.clone()),
    };
    let cx = Cx::connect(&opts, STACK, CallCounter::default()).await;
    let kind = Registry::default().get("cloudwatch_alarm").unwrap().clone();
    let found = kind.find_tagged(&cx, &[]).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|(_, o)| o.id.as_str()).collect();
    assert_eq!(ids, ["alarms-latency"]);
    assert!(kind
        .observe(&cx, &[name.to_string()])
        .await
        .unwrap()
        .is_empty());

    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains("TargetTracking-"), "{}", r.all());
    p.run(Some(&moto), &["destroy", "--auto-approve"])
        .expect_code(0);
    let left = cw.describe_alarms().send().await.unwrap();
    let names: Vec<_> = left
        .metric_alarms()
        .iter()
        .filter_map(|a| a.alarm_name())
        .collect();
    assert_eq!(names, [name], "destroy left target tracking's alarm alone");
}
