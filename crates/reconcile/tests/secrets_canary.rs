//! The canary test: secret values never leave Secrets Manager. The real binary
//! plans, applies, detects and repairs drift of, and destroys a stack holding a
//! generated secret, an environment-fed one and an unmanaged one, while known
//! canary strings sit in the environment and in moto, beside a Lambda function
//! that is given the secrets' ARNs (and refused by `validate` when its
//! environment would hold a secret's value). Every stdout and stderr,
//! every plan file and every file ever written under `state/` is then searched
//! for the canaries and for the generated value read back from moto.

mod common;

use common::{Moto, Project, Run};
use std::path::Path;

const STACK: &str = "canary";

async fn sm(moto: &Moto) -> aws_sdk_secretsmanager::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(common::REGION))
        .endpoint_url(&moto.url)
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&conf)
}

async fn stored(sm: &aws_sdk_secretsmanager::Client, name: &str) -> Option<String> {
    sm.get_secret_value()
        .secret_id(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.secret_string().map(str::to_string))
}

/// Everything the binary ever showed or wrote, to be searched at the end.
#[derive(Default)]
struct Seen {
    /// (what, text)
    texts: Vec<(String, String)>,
}

impl Seen {
    fn run(&mut self, label: &str, r: &Run) {
        self.texts
            .push((format!("{label}: stdout"), r.stdout.clone()));
        self.texts
            .push((format!("{label}: stderr"), r.stderr.clone()));
    }

    /// Every file under `dir`, recursively (state, its previous copy, locks, journals).
    fn files(&mut self, label: &str, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                self.files(label, &p);
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                self.texts.push((
                    format!("{label}: {}", p.display()),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
    }

    #[track_caller]
    fn assert_absent(&self, what: &str, secret: &str) {
        assert!(
            secret.len() >= 8,
            "a canary must be long enough to mean something"
        );
        for (label, text) in &self.texts {
            assert!(
                !text.contains(secret),
                "{what} leaked into {label}:\n{text}"
            );
        }
    }
}

fn stack_toml(var: &str) -> String {
    format!(
        r#"
[stack]
name   = "{STACK}"
region = "us-east-1"
tags   = {{ Project = "canary" }}

[secret.db]
name        = "canary/keycloak-db"
description = "Keycloak database credentials"
generate    = {{ length = 40, exclude_punctuation = true, template = {{ username = "keycloak" }}, key = "password" }}
recovery_window_in_days = 0

[secret.stripe]
name           = "canary/stripe"
value_from_env = "{var}"
recovery_window_in_days = 7

[secret.manual]
name        = "canary/partner-key"
description = "Set by a person"

# Connection details merged into the generated JSON beside its password.
[secret_target_attachment.db]
secret_id              = "${{secret.db.arn}}"
host                   = "canary-db.internal"
port                   = 5432
engine                 = "postgres"
db_instance_identifier = "canary-db"

[iam_role.worker]
name             = "canary-worker"
trusted_services = ["lambda.amazonaws.com"]

[lambda_function.worker]
function_name = "canary-worker"
runtime       = "nodejs22.x"
handler       = "index.handler"
role          = "${{iam_role.worker.arn}}"
code          = "worker"
environment   = {{ STRIPE_SECRET_ARN = "${{secret.stripe.arn}}", DB_SECRET_ARN = "${{secret.db.arn}}" }}

# A confidential app client: Cognito makes its secret, reconcile writes it here.
[cognito_user_pool.users]
name = "canary-users"

[secret.web_client]
name = "canary/web-client"
recovery_window_in_days = 0

[cognito_user_pool_client.web]
user_pool_id     = "${{cognito_user_pool.users.id}}"
name             = "canary-web"
generate_secret  = true
client_secret_to = "${{secret.web_client.arn}}"
"#
    )
}

struct Bin<'a> {
    p: &'a Project,
    moto: &'a Moto,
    var: String,
}

impl Bin<'_> {
    /// Runs the binary with the variable set to `value` (unset when `None`).
    fn run(&self, value: Option<&str>, args: &[&str]) -> Run {
        self.run_logged(value, None, args)
    }

    /// The same with `RECONCILE_LOG` set: every crate's log, the AWS SDK's included.
    fn run_logged(&self, value: Option<&str>, log: Option<&str>, args: &[&str]) -> Run {
        let mut c = self.p.cmd(Some(self.moto), args);
        match value {
            Some(v) => c.env(&self.var, v),
            None => c.env_remove(&self.var),
        };
        if let Some(filter) = log {
            c.env("RECONCILE_LOG", filter);
        }
        Run::from(c.output().expect("run reconcile"))
    }
}

#[tokio::test]
async fn secret_values_never_leave_secrets_manager() {
    let moto = Moto::start();
    let sm = sm(&moto).await;
    let p = Project::new();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let var = format!("CANARY_STRIPE_KEY_{}", unique.to_uppercase());
    let canary_env = format!("sk_live_CANARY_ENV_{unique}");
    let canary_oob = format!("sk_live_CANARY_OUT_OF_BAND_{unique}");
    let canary_manual = format!("CANARY_SET_BY_A_PERSON_{unique}");
    p.write("canary.toml", &stack_toml(&var));
    p.write(
        "worker/index.mjs",
        "export const handler = async () => process.env.STRIPE_SECRET_ARN;\n",
    );
    let bin = Bin {
        p: &p,
        moto: &moto,
        var: var.clone(),
    };
    let env = Some(canary_env.as_str());
    let mut seen = Seen::default();
    let state_dir = p.state_dir();

    let r = bin.run(env, &["validate"]);
    seen.run("validate", r.expect_code(0));

    // A function environment holding the environment-fed secret's value is
    // refused by name, the value never shown.
    let leaky = stack_toml(&var).replace(
        "STRIPE_SECRET_ARN = \"${secret.stripe.arn}\"",
        &format!("STRIPE_KEY = \"{canary_env}\""),
    );
    assert!(leaky.contains(&canary_env));
    p.write("canary.toml", &leaky);
    let r = bin.run(env, &["validate"]);
    seen.run(
        "validate (secret in a function's environment)",
        r.expect_code(1),
    );
    assert!(
        r.stderr
            .contains("holds the value of the declared secret `secret.stripe`"),
        "{}",
        r.stderr
    );
    p.write("canary.toml", &stack_toml(&var));

    // The first plan names the variable and the generate settings, nothing else.
    let r = bin.run(env, &["plan", "--detailed-exitcode"]);
    seen.run("plan", r.expect_code(2));
    assert!(r.stdout.contains("secret.db"), "{}", r.stdout);
    assert!(r.stdout.contains("secret.stripe"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&var),
        "the plan names the variable:\n{}",
        r.stdout
    );
    assert!(r.stdout.contains("9 to create"), "{}", r.stdout);

    let r = bin.run(env, &["plan", "--json"]);
    seen.run("plan --json", r.expect_code(0));
    let plan: serde_json::Value = serde_json::from_str(&r.stdout).expect("plan JSON");
    assert_eq!(
        plan["plan"]["steps"].as_array().map(Vec::len),
        Some(9),
        "{plan}"
    );

    let plan_file = p.path().join("first.plan.json");
    let r = bin.run(env, &["plan", "--out", plan_file.to_str().unwrap()]);
    seen.run("plan --out", r.expect_code(0));

    let r = bin.run(env, &["apply", "--auto-approve", "-v"]);
    seen.run("apply -v", r.expect_code(0));
    seen.files("after apply", &state_dir);

    // What AWS holds now.
    let generated = stored(&sm, "canary/keycloak-db")
        .await
        .expect("the generated secret has a value");
    let json: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(json["username"], "keycloak");
    let password = json["password"].as_str().unwrap().to_string();
    assert_eq!(password.len(), 40);
    assert_eq!(json["host"], "canary-db.internal");
    assert_eq!(json["dbInstanceIdentifier"], "canary-db");
    assert_eq!(
        stored(&sm, "canary/stripe").await.as_deref(),
        Some(canary_env.as_str())
    );
    assert_eq!(stored(&sm, "canary/partner-key").await, None);
    // The function has the secrets' ARNs, not their values.
    let lambda = aws_sdk_lambda::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(common::REGION))
            .endpoint_url(&moto.url)
            .load()
            .await,
    );
    let f = lambda
        .get_function()
        .function_name("canary-worker")
        .send()
        .await
        .unwrap();
    let vars = f
        .configuration()
        .and_then(|c| c.environment())
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    assert!(vars["STRIPE_SECRET_ARN"].starts_with("arn:aws:secretsmanager:"));
    assert!(vars["DB_SECRET_ARN"].starts_with("arn:aws:secretsmanager:"));
    seen.texts
        .push(("the function's environment".into(), format!("{vars:?}")));
    let state = p.state_json(STACK);
    let arn = state["resources"]["secret.db"]["attributes"]["arn"]
        .as_str()
        .expect("arn attribute in state")
        .to_string();
    assert!(arn.starts_with("arn:aws:secretsmanager:"), "{arn}");
    assert_eq!(state["resources"]["secret.db"]["id"], arn.as_str());

    // Cognito's client secret went into its secret, from memory.
    let idp = aws_sdk_cognitoidentityprovider::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(common::REGION))
            .endpoint_url(&moto.url)
            .load()
            .await,
    );
    let client_id = state["resources"]["cognito_user_pool_client.web"]["id"]
        .as_str()
        .expect("the client in state")
        .to_string();
    let (pool_id, app_id) = client_id.split_once('/').unwrap();
    let client = idp
        .describe_user_pool_client()
        .user_pool_id(pool_id)
        .client_id(app_id)
        .send()
        .await
        .unwrap();
    let client_secret = client
        .user_pool_client()
        .and_then(|c| c.client_secret())
        .expect("a client secret")
        .to_string();
    assert_eq!(
        stored(&sm, "canary/web-client").await.as_deref(),
        Some(client_secret.as_str())
    );

    // No change: the generated value, the variable and the unset value all agree.
    let r = bin.run(env, &["plan", "--detailed-exitcode"]);
    seen.run("plan (clean)", r.expect_code(0));

    // A person fills the unmanaged secret and rotates the generated one: neither is drift.
    sm.put_secret_value()
        .secret_id("canary/partner-key")
        .secret_string(&canary_manual)
        .send()
        .await
        .unwrap();
    let r = bin.run(env, &["plan", "--detailed-exitcode", "-vv"]);
    seen.run("plan -vv (values set by people)", r.expect_code(0));

    // The environment-fed value changed outside reconcile: drift, shown by name only.
    sm.put_secret_value()
        .secret_id("canary/stripe")
        .secret_string(&canary_oob)
        .send()
        .await
        .unwrap();
    let r = bin.run(env, &["plan", "--detailed-exitcode"]);
    seen.run("plan (drift)", r.expect_code(2));
    assert!(r.stdout.contains("secret.stripe"), "{}", r.stdout);
    assert!(r.stdout.contains("drift"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains(&format!("live value differs from ${var}")),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("secret.db "),
        "only the drifted secret changes:\n{}",
        r.stdout
    );
    assert!(r.stdout.contains("1 to update"), "{}", r.stdout);
    let r = bin.run(env, &["plan", "--json", "--detailed-exitcode"]);
    seen.run("plan --json (drift)", r.expect_code(2));
    let plan: serde_json::Value = serde_json::from_str(&r.stdout).expect("plan JSON");
    let step = plan["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["address"] == "secret.stripe")
        .expect("a step for secret.stripe");
    assert_eq!(step["action"], "update", "{step}");
    assert_eq!(step["drift"], true, "{step}");
    // The drift daemon reports the same drift as an event, without the value.
    for format in ["json", "text"] {
        let r = bin.run(env, &["watch", "--once", "--log-format", format]);
        seen.run(&format!("watch --once ({format})"), r.expect_code(2));
        assert!(r.stdout.contains("secret.stripe"), "{}", r.stdout);
    }

    // Without the variable nothing can be compared or written: no false drift,
    // and an apply that must write it fails naming the variable.
    let r = bin.run(None, &["plan", "--detailed-exitcode"]);
    seen.run("plan (variable unset)", r.expect_code(0));
    assert!(
        r.stderr.contains(&var),
        "a warning names the variable:\n{}",
        r.stderr
    );

    let drift_file = p.path().join("drift.plan.json");
    let r = bin.run(env, &["plan", "--out", drift_file.to_str().unwrap()]);
    seen.run("plan --out (drift)", r.expect_code(0));
    let r = bin.run(
        None,
        &[
            "apply",
            "--plan",
            drift_file.to_str().unwrap(),
            "--auto-approve",
        ],
    );
    seen.run("apply (variable unset)", r.expect_code(1));
    assert!(
        r.all().contains(&var) && r.all().contains("secret.stripe"),
        "the error names the resource and the variable:\n{}",
        r.all()
    );
    assert_eq!(
        stored(&sm, "canary/stripe").await.as_deref(),
        Some(canary_oob.as_str()),
        "a failed apply wrote nothing"
    );
    seen.files("after failed apply", &state_dir);

    // The attachment's host moved by hand: repairing it rewrites the whole
    // JSON, password included, under the trace log below.
    let mut moved: serde_json::Value =
        serde_json::from_str(&stored(&sm, "canary/keycloak-db").await.unwrap()).unwrap();
    moved["host"] = "moved.internal".into();
    sm.put_secret_value()
        .secret_id("canary/keycloak-db")
        .secret_string(moved.to_string())
        .send()
        .await
        .unwrap();

    // The SDK's own trace log sees request and response bodies go by: the
    // values it carries (BatchGetSecretValue here) must still not show.
    let r = bin.run_logged(env, Some("trace"), &["plan", "--detailed-exitcode"]);
    seen.run("plan (drift, RECONCILE_LOG=trace)", r.expect_code(2));
    assert!(
        r.stderr.contains("BatchGetSecretValue"),
        "a trace log was captured"
    );

    // With it, apply repairs the drift (PutSecretValue under the trace log).
    let r = bin.run_logged(env, Some("trace"), &["apply", "--auto-approve", "-vv"]);
    seen.run("apply -vv (repair, RECONCILE_LOG=trace)", r.expect_code(0));
    assert!(r.stdout.contains("secret.stripe"), "{}", r.stdout);
    assert_eq!(
        stored(&sm, "canary/stripe").await.as_deref(),
        Some(canary_env.as_str())
    );
    assert!(
        r.stdout.contains("secret_target_attachment.db"),
        "{}",
        r.stdout
    );
    let repaired: serde_json::Value =
        serde_json::from_str(&stored(&sm, "canary/keycloak-db").await.unwrap()).unwrap();
    assert_eq!(repaired["host"], "canary-db.internal");
    assert_eq!(
        repaired["password"].as_str(),
        Some(password.as_str()),
        "the password is carried over untouched"
    );
    seen.files("after repair", &state_dir);
    let r = bin.run(env, &["plan", "--detailed-exitcode", "-v"]);
    seen.run("plan -v (repaired)", r.expect_code(0));
    let r = bin.run(env, &["plan", "--json", "-v", "--log-format", "json"]);
    seen.run("plan --json -v --log-format json", r.expect_code(0));
    let r = bin.run(env, &["state", "list"]);
    seen.run("state list", r.expect_code(0));
    for addr in [
        "secret.db",
        "secret.stripe",
        "secret.manual",
        "secret_target_attachment.db",
        "lambda_function.worker",
        "cognito_user_pool_client.web",
    ] {
        let r = bin.run(env, &["state", "show", addr]);
        seen.run(&format!("state show {addr}"), r.expect_code(0));
    }
    let r = bin.run(env, &["graph"]);
    seen.run("graph", r.expect_code(0));

    // Destroy honours each secret's recovery window.
    let r = bin.run(env, &["destroy", "--auto-approve", "-vv"]);
    seen.run("destroy -vv", r.expect_code(0));
    seen.files("after destroy", &state_dir);
    let gone = sm
        .describe_secret()
        .secret_id("canary/keycloak-db")
        .send()
        .await;
    assert!(gone.is_err(), "recovery_window_in_days = 0 deletes at once");
    for name in ["canary/stripe", "canary/partner-key"] {
        let d = sm.describe_secret().secret_id(name).send().await.unwrap();
        assert!(
            d.deleted_date().is_some(),
            "{name} is scheduled for deletion"
        );
    }
    let r = bin.run(env, &["plan", "--detailed-exitcode"]);
    seen.run("plan after destroy", r.expect_code(2));

    for f in [&plan_file, &drift_file] {
        seen.texts.push((
            format!("plan file {}", f.display()),
            std::fs::read_to_string(f).unwrap(),
        ));
    }
    seen.files("end", &state_dir);

    // The search must be able to find what it looks for: the variable's name is there.
    assert!(
        seen.texts.iter().any(|(_, t)| t.contains(&var)),
        "the outputs were not captured"
    );
    seen.assert_absent("the generated password", &password);
    seen.assert_absent("the generated secret string", &generated);
    seen.assert_absent("the environment canary", &canary_env);
    seen.assert_absent("the out-of-band canary", &canary_oob);
    seen.assert_absent("the value a person set", &canary_manual);
    seen.assert_absent("the Cognito client secret", &client_secret);
    // The distinctive middle of each canary too, should something shorten or escape them.
    seen.assert_absent(
        "a part of the environment canary",
        &format!("CANARY_ENV_{unique}"),
    );
    seen.assert_absent(
        "a part of the out-of-band canary",
        &format!("OUT_OF_BAND_{unique}"),
    );
}
