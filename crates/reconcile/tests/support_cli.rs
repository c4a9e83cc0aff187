//! What a Fargate service needs, end to end with the real binary against moto:
//! a generated secret, a task execution role trusting ECS tasks with AWS's
//! managed execution policy and an inline policy that reads exactly that
//! secret, a log group with 30-day retention and an ECR repository that scans
//! on push and keeps the last 10 images. Applied from nothing, a clean second
//! plan, out-of-band drift (fields and tags) caught and repaired, destroy
//! leaving nothing.

mod common;
use common::{Moto, Project};

const STACK: &str = r#"
[stack]
name = "support"
region = "us-east-1"
tags = { Project = "proxy-smart" }

[secret.x]
name = "support/keycloak-db"
generate = { length = 32 }
recovery_window_in_days = 0

[iam_role.exec]
name = "support-keycloak-exec"
description = "Keycloak task execution role"
trusted_services = ["ecs-tasks.amazonaws.com"]
managed_policy_arns = ["arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"]

[iam_role.exec.inline_policies]
read-secret = '''
{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Action": "secretsmanager:GetSecretValue",
    "Resource": "${secret.x.arn}"
  }]
}
'''

[log_group.keycloak]
name = "/ecs/support/keycloak"
retention_in_days = 30

[ecr_repository.keycloak]
name = "support/keycloak"
scan_on_push = true
keep_last_images = 10
"#;

async fn conf(moto: &Moto) -> aws_types::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(common::REGION))
        .endpoint_url(&moto.url)
        .load()
        .await
}

async fn retention(logs: &aws_sdk_cloudwatchlogs::Client) -> Option<i32> {
    logs.describe_log_groups()
        .log_group_name_prefix("/ecs/support/keycloak")
        .send()
        .await
        .unwrap()
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some("/ecs/support/keycloak"))
        .and_then(|g| g.retention_in_days())
}

#[test]
fn an_invalid_policy_document_is_reported_at_its_place_without_any_call() {
    let p = Project::new();
    let broken = STACK.replace(
        "\"Resource\": \"${secret.x.arn}\"",
        "\"Resource\": ${secret.x.arn}",
    );
    let path = p.write("support.toml", &broken);
    let run = p.run(None, &["validate"]);
    run.expect_code(1);
    let all = run.all();
    assert!(all.contains("not valid JSON"), "{all}");
    assert!(all.contains("iam_role.exec"), "{all}");
    // Points at the inline_policies table in the file.
    let line = STACK
        .lines()
        .position(|l| l.starts_with("[iam_role.exec.inline_policies]"))
        .unwrap()
        + 1;
    let _ = path;
    assert!(all.contains(&format!("support.toml:{line}:")), "{all}");

    let both = STACK.replace(
        "trusted_services = [\"ecs-tasks.amazonaws.com\"]",
        "trusted_services = [\"ecs-tasks.amazonaws.com\"]\nassume_role_policy = '{\"Statement\": []}'",
    );
    p.write("support.toml", &both);
    let run = p.run(None, &["validate"]);
    run.expect_code(1);
    assert!(run.all().contains("both set"), "{}", run.all());

    let retention = STACK.replace("retention_in_days = 30", "retention_in_days = 31");
    p.write("support.toml", &retention);
    let run = p.run(None, &["validate"]);
    run.expect_code(1);
    assert!(run.all().contains("nearest: 30"), "{}", run.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fargate_services_support_resources_through_the_cli() {
    // AWS's managed policies (AmazonECSTaskExecutionRolePolicy) exist in moto only when asked for.
    std::env::set_var("MOTO_IAM_LOAD_MANAGED_POLICIES", "true");
    let moto = Moto::start();
    let conf = conf(&moto).await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let ecr = aws_sdk_ecr::Client::new(&conf);
    let sm = aws_sdk_secretsmanager::Client::new(&conf);
    let p = Project::new();
    p.write("support.toml", STACK);

    p.run(None, &["validate"]).expect_code(0);
    let run = p.run(Some(&moto), &["apply", "--auto-approve"]);
    run.expect_code(0);

    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    run.expect_code(0);
    assert!(run.stdout.contains("No changes"), "{}", run.stdout);

    // The inline policy allows reading exactly the secret's ARN.
    let secret_arn = sm
        .describe_secret()
        .secret_id("support/keycloak-db")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let doc = iam
        .get_role_policy()
        .role_name("support-keycloak-exec")
        .policy_name("read-secret")
        .send()
        .await
        .unwrap();
    let text = doc.policy_document();
    let json: serde_json::Value = serde_json::from_str(text)
        .or_else(|_| serde_json::from_str(&reconcile_aws::kit::policy::url_decode(text)))
        .unwrap();
    assert_eq!(
        json["Statement"][0]["Resource"],
        serde_json::json!(secret_arn)
    );
    assert_eq!(
        json["Statement"][0]["Action"],
        "secretsmanager:GetSecretValue"
    );
    let attached = iam
        .list_attached_role_policies()
        .role_name("support-keycloak-exec")
        .send()
        .await
        .unwrap();
    let arns: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|a| a.policy_arn())
        .collect();
    assert_eq!(
        arns,
        ["arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"]
    );
    let state = p.state_json("support");
    assert_eq!(
        state["resources"]["iam_role.exec"]["attributes"]["arn"],
        "arn:aws:iam::123456789012:role/support-keycloak-exec"
    );
    assert_eq!(
        state["resources"]["log_group.keycloak"]["attributes"]["arn"],
        "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/support/keycloak"
    );
    assert_eq!(retention(&logs).await, Some(30));
    let repo = ecr
        .describe_repositories()
        .repository_names("support/keycloak")
        .send()
        .await
        .unwrap();
    assert!(repo.repositories()[0]
        .image_scanning_configuration()
        .unwrap()
        .scan_on_push());
    let lifecycle = ecr
        .get_lifecycle_policy()
        .repository_name("support/keycloak")
        .send()
        .await
        .unwrap();
    assert!(lifecycle
        .lifecycle_policy_text()
        .unwrap()
        .contains("\"countNumber\":10"));

    // Out of band: retention shortened to a day.
    logs.put_retention_policy()
        .log_group_name("/ecs/support/keycloak")
        .retention_in_days(1)
        .send()
        .await
        .unwrap();
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    run.expect_code(2);
    assert!(run.stdout.contains("log_group.keycloak"), "{}", run.stdout);
    assert!(run.stdout.contains("retention_in_days"), "{}", run.stdout);
    assert!(run.stdout.contains("1 to update"), "{}", run.stdout);
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    assert_eq!(retention(&logs).await, Some(30));
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);

    // Out of band: tags. The log group's tags come from the stack's Tagging
    // API read, the repository's (which moto's Tagging API does not list)
    // from ECR itself; both changes are drift, and repaired.
    let group_arn = "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/support/keycloak";
    logs.tag_resource()
        .resource_arn(group_arn)
        .tags("Project", "someone-else")
        .send()
        .await
        .unwrap();
    let repo_arn = repo.repositories()[0].repository_arn().unwrap().to_string();
    ecr.untag_resource()
        .resource_arn(&repo_arn)
        .tag_keys("Project")
        .send()
        .await
        .unwrap();
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    run.expect_code(2);
    for address in ["log_group.keycloak", "ecr_repository.keycloak"] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(address))
            .unwrap_or_else(|| panic!("{address} not planned:\n{}", run.stdout));
        assert!(line.contains("drift"), "{line}\n{}", run.stdout);
    }
    assert!(run.stdout.contains("2 to update"), "{}", run.stdout);
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let group_tags = logs
        .list_tags_for_resource()
        .resource_arn(group_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        group_tags
            .tags()
            .and_then(|t| t.get("Project"))
            .map(String::as_str),
        Some("proxy-smart")
    );
    let repo_tags = ecr
        .list_tags_for_resource()
        .resource_arn(&repo_arn)
        .send()
        .await
        .unwrap();
    assert!(repo_tags
        .tags()
        .iter()
        .any(|t| t.key() == "Project" && t.value() == "proxy-smart"));
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);

    p.run(Some(&moto), &["destroy", "--auto-approve"])
        .expect_code(0);
    assert!(iam
        .get_role()
        .role_name("support-keycloak-exec")
        .send()
        .await
        .is_err());
    assert_eq!(
        iam.list_roles().send().await.unwrap().roles().len(),
        0,
        "a role is left"
    );
    assert!(logs
        .describe_log_groups()
        .send()
        .await
        .unwrap()
        .log_groups()
        .is_empty());
    assert!(ecr
        .describe_repositories()
        .send()
        .await
        .unwrap()
        .repositories()
        .is_empty());
    assert!(sm
        .list_secrets()
        .include_planned_deletion(true)
        .send()
        .await
        .unwrap()
        .secret_list()
        .is_empty());
    let state = p.state_json("support");
    assert!(
        state["resources"].as_object().is_none_or(|m| m.is_empty()),
        "{state}"
    );
}
