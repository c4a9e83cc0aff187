//! `lambda_function`, `lambda_permission` and `eventbridge_rule` through the
//! real binary against moto: a function on a schedule with the permission
//! that lets the schedule invoke it is created and plans clean; memory
//! changed and the rule disabled behind reconcile's back are reported by
//! field and repaired; the same code built twice is no change and one changed
//! byte is an update of the code alone; bad schedules, memory sizes and
//! secrets in the environment are refused by `validate` without an AWS call.

mod common;
use common::{apply, plan_clean, Moto, Project, Sentinel, REGION};

const STACK: &str = "functions";

const STACK_BODY: &str = r#"[iam_role.fn]
name             = "functions-fn"
trusted_services = ["lambda.amazonaws.com"]

[lambda_function.job]
function_name = "functions-job"
runtime       = "nodejs22.x"
handler       = "index.handler"
role          = "${iam_role.fn.arn}"
code          = "job"
memory_size   = 256
timeout       = 30
environment   = { MODE = "nightly" }

[eventbridge_rule.nightly]
name                = "functions-nightly"
description         = "Runs the job at 03:00 UTC"
schedule_expression = "cron(0 3 * * ? *)"
targets             = [{ id = "job", arn = "${lambda_function.job.arn}", input = "{\"full\": true}" }]

[lambda_permission.nightly]
function     = "${lambda_function.job.function_name}"
statement_id = "AllowNightly"
principal    = "events.amazonaws.com"
source_arn   = "${eventbridge_rule.nightly.arn}"
"#;

const HANDLER: &str = "export const handler = async (event) => ({ ok: true, event });\n";

fn write(p: &Project, body: &str) {
    p.write(
        "functions.toml",
        &format!("[stack]\nname = \"{STACK}\"\nregion = \"{REGION}\"\n\n{body}"),
    );
}

fn write_code(p: &Project, handler: &str) {
    p.write("job/index.mjs", handler);
    p.write("job/lib/util.mjs", "export const answer = 42;\n");
}

/// The header and change lines of `address` in a text plan.
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

fn fields_named(body: &[String]) -> Vec<String> {
    body.iter()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

async fn clients(moto: &Moto) -> (aws_sdk_lambda::Client, aws_sdk_eventbridge::Client) {
    let conf = moto.sdk().await;
    (
        aws_sdk_lambda::Client::new(&conf),
        aws_sdk_eventbridge::Client::new(&conf),
    )
}

async fn function(lambda: &aws_sdk_lambda::Client) -> aws_sdk_lambda::types::FunctionConfiguration {
    let out = lambda
        .get_function()
        .function_name("functions-job")
        .send()
        .await
        .unwrap();
    out.configuration().cloned().expect("configuration")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_function_is_created_kept_and_repaired() {
    let moto = Moto::start();
    let p = Project::new();
    write_code(&p, HANDLER);
    write(&p, STACK_BODY);
    apply(&p, &moto);
    let (lambda, events) = clients(&moto).await;

    let f = function(&lambda).await;
    assert_eq!(f.memory_size(), Some(256));
    assert_eq!(f.timeout(), Some(30));
    assert_eq!(f.runtime().map(|r| r.as_str()), Some("nodejs22.x"));
    assert!(f.role().unwrap().ends_with(":role/functions-fn"));
    let env = f.environment().unwrap().variables().unwrap();
    assert_eq!(env["MODE"], "nightly");
    // The code Lambda holds is the package reconcile built from the directory.
    let built = reconcile_aws::lambda::package::package(
        p.path().join("desired-state/job").to_str().unwrap(),
    )
    .unwrap();
    assert_eq!(f.code_sha256(), Some(built.sha256.as_str()));
    let tags = lambda
        .list_tags()
        .resource(f.function_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tags()
            .unwrap()
            .get("reconcile:address")
            .map(String::as_str),
        Some("lambda_function.job")
    );

    let rule = events
        .describe_rule()
        .name("functions-nightly")
        .send()
        .await
        .unwrap();
    assert_eq!(rule.schedule_expression(), Some("cron(0 3 * * ? *)"));
    assert_eq!(rule.state().map(|s| s.as_str()), Some("ENABLED"));
    let targets = events
        .list_targets_by_rule()
        .rule("functions-nightly")
        .send()
        .await
        .unwrap();
    let t = &targets.targets()[0];
    assert_eq!(targets.targets().len(), 1);
    assert_eq!((t.id(), t.arn()), ("job", f.function_arn().unwrap()));
    assert_eq!(t.input(), Some("{\"full\": true}"));

    let policy = lambda
        .get_policy()
        .function_name("functions-job")
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let s = &doc["Statement"][0];
    assert_eq!(s["Sid"], "AllowNightly");
    assert_eq!(s["Principal"]["Service"], "events.amazonaws.com");
    assert_eq!(
        s["Condition"]["ArnLike"]["AWS:SourceArn"],
        rule.arn().unwrap()
    );
    plan_clean(&p, &moto);

    // Memory raised by hand, and the schedule switched off by hand.
    lambda
        .update_function_configuration()
        .function_name("functions-job")
        .memory_size(1024)
        .send()
        .await
        .unwrap();
    events
        .disable_rule()
        .name("functions-nightly")
        .send()
        .await
        .unwrap();
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let (h, body) = block(&r.stdout, "lambda_function.job");
    assert!(h.contains("drift"), "{h}\n{}", r.stdout);
    assert_eq!(fields_named(&body), ["memory_size"], "{}", r.stdout);
    let (h, body) = block(&r.stdout, "eventbridge_rule.nightly");
    assert!(h.contains("drift"), "{h}\n{}", r.stdout);
    assert_eq!(fields_named(&body), ["enabled"], "{}", r.stdout);
    assert!(
        !r.stdout.contains("lambda_permission.nightly "),
        "the permission did not change:\n{}",
        r.stdout
    );
    apply(&p, &moto);
    assert_eq!(function(&lambda).await.memory_size(), Some(256));
    let rule = events
        .describe_rule()
        .name("functions-nightly")
        .send()
        .await
        .unwrap();
    assert_eq!(rule.state().map(|s| s.as_str()), Some("ENABLED"));
    plan_clean(&p, &moto);

    // The permission removed by hand is put back.
    lambda
        .remove_permission()
        .function_name("functions-job")
        .statement_id("AllowNightly")
        .send()
        .await
        .unwrap();
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let (h, _) = block(&r.stdout, "lambda_permission.nightly");
    assert!(h.contains("deleted outside reconcile"), "{h}");
    apply(&p, &moto);
    assert!(lambda
        .get_policy()
        .function_name("functions-job")
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .contains("AllowNightly"));
    plan_clean(&p, &moto);

    p.run(Some(&moto), &["destroy", "--auto-approve"])
        .expect_code(0);
    assert!(events.list_rules().send().await.unwrap().rules().is_empty());
    assert!(lambda
        .list_functions()
        .send()
        .await
        .unwrap()
        .functions()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_code_built_twice_is_no_change_one_byte_is_a_code_update() {
    let moto = Moto::start();
    let p = Project::new();
    write_code(&p, HANDLER);
    write(&p, STACK_BODY);
    apply(&p, &moto);
    let (lambda, _) = clients(&moto).await;
    let before = function(&lambda).await;

    // Written again a moment later: new modification times, same bytes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write_code(&p, HANDLER);
    plan_clean(&p, &moto);

    // One byte changed.
    write_code(&p, &HANDLER.replace("ok: true", "ok: !0"));
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let (h, body) = block(&r.stdout, "lambda_function.job");
    assert!(h.contains("update in place"), "{h}");
    assert_eq!(fields_named(&body), ["code"], "{}", r.stdout);
    assert!(
        !r.stdout.contains("eventbridge_rule.nightly ")
            && !r.stdout.contains("lambda_permission.nightly "),
        "only the function changes:\n{}",
        r.stdout
    );
    apply(&p, &moto);
    let after = function(&lambda).await;
    let built = reconcile_aws::lambda::package::package(
        p.path().join("desired-state/job").to_str().unwrap(),
    )
    .unwrap();
    assert_eq!(after.code_sha256(), Some(built.sha256.as_str()));
    assert_ne!(after.code_sha256(), before.code_sha256());
    // The configuration is as it was: nothing but the code was sent.
    assert_eq!(after.memory_size(), before.memory_size());
    assert_eq!(after.environment(), before.environment());
    assert_eq!(after.role(), before.role());
    plan_clean(&p, &moto);
}

#[test]
fn validate_refuses_bad_schedules_memory_and_secrets_without_an_aws_call() {
    let p = Project::new();
    write_code(&p, HANDLER);
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "schedule_expression = \"cron(0 3 * * ? *)\"",
            "schedule_expression = \"rate(5 minute)\"",
            &["functions.toml:22:23", "write rate(5 minutes)"],
        ),
        (
            "schedule_expression = \"cron(0 3 * * ? *)\"",
            "schedule_expression = \"cron(0 3 * * *)\"",
            &["functions.toml:22:23", "five fields", "cron(0 3 * * ? *)"],
        ),
        (
            "schedule_expression = \"cron(0 3 * * ? *)\"",
            "schedule_expression = \"cron(0 0 3 * * ? *)\"",
            &["functions.toml:22:23", "seven fields", "cron(0 3 * * ? *)"],
        ),
        (
            "memory_size   = 256",
            "memory_size   = 64",
            &["functions.toml:15:17", "memory_size is 64; AWS takes 128 to 10240"],
        ),
        (
            "memory_size   = 256",
            "memory_size   = 20000",
            &["functions.toml:15:17", "memory_size is 20000; AWS takes 128 to 10240"],
        ),
        (
            "environment   = { MODE = \"nightly\" }",
            "environment   = { TOKEN = \"${secret.api.version_id}\" }\n\n[secret.api]\nname = \"functions/api\"\nvalue_from_env = \"FUNCTIONS_TEST_API_KEY\"",
            &[
                "functions.toml:17:1",
                "`${secret.api.version_id}` of the declared secret `secret.api`",
                "read the value at run time from Secrets Manager",
            ],
        ),
        (
            "environment   = { MODE = \"nightly\" }",
            "environment   = { TOKEN = \"sk_test_functions_0123456789\" }\n\n[secret.api]\nname = \"functions/api\"\nvalue_from_env = \"FUNCTIONS_TEST_API_KEY\"",
            &[
                "functions.toml:17:1",
                "holds the value of the declared secret `secret.api` (read from `FUNCTIONS_TEST_API_KEY`)",
                "pass the secret's ARN instead",
            ],
        ),
    ];
    for (from, to, needles) in cases {
        assert!(STACK_BODY.contains(from), "{from}");
        write(&p, &STACK_BODY.replacen(from, to, 1));
        let sentinel = Sentinel::new();
        let mut c = p.cmd(None, &["validate"]);
        c.env("AWS_ENDPOINT_URL", &sentinel.url)
            .env("FUNCTIONS_TEST_API_KEY", "sk_test_functions_0123456789");
        let out = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(1), "{to}:\n{stdout}{stderr}");
        sentinel.assert_no_call();
        for needle in *needles {
            assert!(stderr.contains(needle), "{to}: no `{needle}` in:\n{stderr}");
        }
        assert!(
            stderr.contains("1 problem found"),
            "{to}: one problem:\n{stderr}"
        );
        if to.contains("sk_test") {
            // Said by name and variable; the value itself appears nowhere but the TOML.
            assert!(!stderr.contains("sk_test_functions"), "{stderr}");
        }
    }
    // With the secret's ARN instead, the stack is valid.
    write(
        &p,
        &STACK_BODY.replacen(
            "environment   = { MODE = \"nightly\" }",
            "environment   = { TOKEN_ARN = \"${secret.api.arn}\" }\n\n[secret.api]\nname = \"functions/api\"\nvalue_from_env = \"FUNCTIONS_TEST_API_KEY\"",
            1,
        ),
    );
    let sentinel = Sentinel::new();
    let r = p.run_at(&sentinel.url, &["validate"]);
    r.expect_code(0);
    sentinel.assert_no_call();
}
