//! `api_gateway_rest_api` and `api_gateway_account` through the real binary
//! against moto: an API with its tree, Cognito authorizer, CORS preflights and
//! throttled stage is created and plans clean; a route added, an integration
//! changed and a resource dropped redeploy the stage; throttling raised behind
//! reconcile's back is reported and repaired; destroy leaves nothing; the
//! account's CloudWatch role is set and left set on destroy.

mod common;
use aws_sdk_apigateway::types::{Method, Op, PatchOperation};
use common::{apply, block, plan_clean, Moto, Project, REGION};
use std::collections::{BTreeSet, HashMap};

const STACK: &str = "apigw";

const API: &str = r#"[log_group.access]
name = "/apigw/access"

[cognito_user_pool.users]
name = "apigw-users"

[api_gateway_rest_api.api]
name          = "apigw-test"
description   = "Test API"
endpoint_type = "REGIONAL"
resources     = ["/providers"]
authorizers   = [{ name = "cognito", provider_arns = ["${cognito_user_pool.users.arn}"] }]
cors          = { allow_origins = ["*"], allow_headers = ["Content-Type", "Authorization"] }
routes = [
  { path = "/health", method = "GET", integration = { type = "MOCK" } },
  { path = "/patients/{id}", method = "GET", authorizer = "cognito", integration = { type = "HTTP_PROXY", uri = "https://backend.example.com/patients/{id}" } },
  { path = "/patients", method = "POST", authorizer = "cognito", integration = { type = "AWS_PROXY", function_arn = "arn:aws:lambda:us-east-1:123456789012:function:patients" } },
]
stage = { name = "prod", throttling_rate_limit = 100, throttling_burst_limit = 200, logging_level = "INFO", access_log_destination_arn = "${log_group.access.arn}", access_log_format = "$context.requestId" }
"#;

fn write(p: &Project, body: &str) {
    p.write(
        "api.toml",
        &format!("[stack]\nname = \"{STACK}\"\nregion = \"{REGION}\"\n\n{body}"),
    );
}

async fn client(moto: &Moto) -> aws_sdk_apigateway::Client {
    aws_sdk_apigateway::Client::new(&moto.sdk().await)
}

/// The id of the one API named `name`.
async fn api_id(gw: &aws_sdk_apigateway::Client, name: &str) -> String {
    let apis = gw.get_rest_apis().send().await.unwrap();
    let ids: Vec<&str> = apis
        .items()
        .iter()
        .filter(|a| a.name() == Some(name))
        .filter_map(|a| a.id())
        .collect();
    assert_eq!(ids.len(), 1, "one API named {name}: {ids:?}");
    ids[0].to_string()
}

/// Every resource's methods, by path.
async fn tree(
    gw: &aws_sdk_apigateway::Client,
    id: &str,
) -> HashMap<String, HashMap<String, Method>> {
    let out = gw
        .get_resources()
        .rest_api_id(id)
        .embed("methods")
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .map(|r| {
            (
                r.path().unwrap().to_string(),
                r.resource_methods().cloned().unwrap_or_default(),
            )
        })
        .collect()
}

async fn stage(
    gw: &aws_sdk_apigateway::Client,
    id: &str,
) -> aws_sdk_apigateway::operation::get_stage::GetStageOutput {
    gw.get_stage()
        .rest_api_id(id)
        .stage_name("prod")
        .send()
        .await
        .unwrap()
}

fn integration_uri(t: &HashMap<String, HashMap<String, Method>>, path: &str, verb: &str) -> String {
    t[path][verb]
        .method_integration()
        .and_then(|i| i.uri())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rest_api_is_built_redeployed_on_change_and_repaired() {
    let moto = Moto::start();
    let p = Project::new();
    write(&p, API);
    apply(&p, &moto);
    let gw = client(&moto).await;
    let id = api_id(&gw, "apigw-test").await;

    let api = gw.get_rest_api().rest_api_id(&id).send().await.unwrap();
    assert_eq!(api.description(), Some("Test API"));
    assert_eq!(
        api.tags()
            .unwrap()
            .get("reconcile:address")
            .map(String::as_str),
        Some("api_gateway_rest_api.api")
    );

    // The authorizer, on the stack's own user pool.
    let auths = gw.get_authorizers().rest_api_id(&id).send().await.unwrap();
    assert_eq!(auths.items().len(), 1);
    let auth = &auths.items()[0];
    assert_eq!(auth.name(), Some("cognito"));
    assert_eq!(
        auth.identity_source(),
        Some("method.request.header.Authorization")
    );
    let pool_arn = p.state_json(STACK)["resources"]["cognito_user_pool.users"]["attributes"]["arn"]
        .as_str()
        .expect("pool arn in state")
        .to_string();
    assert_eq!(auth.provider_arns(), [pool_arn]);

    // The tree, its methods and integrations.
    let t = tree(&gw, &id).await;
    let paths: BTreeSet<&str> = t.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        ["/", "/health", "/patients", "/patients/{id}", "/providers"]
            .into_iter()
            .collect()
    );
    let health = &t["/health"]["GET"];
    assert_eq!(health.authorization_type(), Some("NONE"));
    assert_eq!(
        health
            .method_integration()
            .unwrap()
            .r#type()
            .unwrap()
            .as_str(),
        "MOCK"
    );
    let get = &t["/patients/{id}"]["GET"];
    assert_eq!(get.authorization_type(), Some("COGNITO_USER_POOLS"));
    assert_eq!(get.authorizer_id(), auth.id());
    assert_eq!(
        integration_uri(&t, "/patients/{id}", "GET"),
        "https://backend.example.com/patients/{id}"
    );
    let post = &t["/patients"]["POST"];
    assert_eq!(post.authorizer_id(), auth.id());
    assert_eq!(
        post.method_integration()
            .unwrap()
            .r#type()
            .unwrap()
            .as_str(),
        "AWS_PROXY"
    );
    assert!(integration_uri(&t, "/patients", "POST").ends_with(
        "/functions/arn:aws:lambda:us-east-1:123456789012:function:patients/invocations"
    ));
    // A CORS preflight on every resource, root included.
    for (path, methods) in &t {
        let options = methods
            .get("OPTIONS")
            .unwrap_or_else(|| panic!("no preflight on {path}"));
        let i = options.method_integration().unwrap();
        assert_eq!(i.r#type().unwrap().as_str(), "MOCK");
        let params = i.integration_responses().unwrap()["200"]
            .response_parameters()
            .unwrap();
        assert_eq!(
            params["method.response.header.Access-Control-Allow-Origin"],
            "'*'"
        );
        assert_eq!(
            params["method.response.header.Access-Control-Allow-Headers"],
            "'Content-Type,Authorization'"
        );
    }

    // The stage and its settings.
    let st = stage(&gw, &id).await;
    let all = &st.method_settings().unwrap()["*/*"];
    assert_eq!(all.throttling_rate_limit(), 100.0);
    assert_eq!(all.throttling_burst_limit(), 200);
    assert_eq!(all.logging_level(), Some("INFO"));
    let logs = st.access_log_settings().unwrap();
    assert!(logs
        .destination_arn()
        .unwrap()
        .contains("log-group:/apigw/access"));
    assert_eq!(logs.format(), Some("$context.requestId"));
    let first_deployment = st.deployment_id().unwrap().to_string();
    plan_clean(&p, &moto);

    // A route added, an integration changed and a resource dropped: the tree
    // changes and the stage serves a new deployment.
    let changed = API
        .replace("resources     = [\"/providers\"]\n", "")
        .replace(
            "https://backend.example.com/patients/{id}",
            "https://backend-v2.example.com/patients/{id}",
        )
        .replace(
            "routes = [\n",
            "routes = [\n  { path = \"/appointments\", method = \"GET\", authorizer = \"cognito\", integration = { type = \"MOCK\" } },\n",
        );
    write(&p, &changed);
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let body = block(&r.stdout, "api_gateway_rest_api.api");
    for field in ["routes", "resources"] {
        assert!(
            body.iter()
                .any(|l| l.split_whitespace().next() == Some(field)),
            "{field} not named:\n{}",
            r.stdout
        );
    }
    apply(&p, &moto);
    let t = tree(&gw, &id).await;
    assert!(
        !t.contains_key("/providers"),
        "the dropped resource is gone"
    );
    assert_eq!(
        t["/appointments"]["GET"].authorizer_id(),
        auth.id(),
        "the new route is protected"
    );
    assert!(
        t["/appointments"].contains_key("OPTIONS"),
        "and has its preflight"
    );
    assert_eq!(
        integration_uri(&t, "/patients/{id}", "GET"),
        "https://backend-v2.example.com/patients/{id}"
    );
    let st = stage(&gw, &id).await;
    let second_deployment = st.deployment_id().unwrap().to_string();
    assert_ne!(
        second_deployment, first_deployment,
        "the stage was redeployed"
    );
    assert_eq!(
        st.method_settings().unwrap()["*/*"].throttling_rate_limit(),
        100.0
    );
    plan_clean(&p, &moto);

    // Throttling raised by hand: reported as the stage's drift and repaired.
    let raise = |path: &str, value: &str| {
        PatchOperation::builder()
            .op(Op::Replace)
            .path(path)
            .value(value)
            .build()
    };
    gw.update_stage()
        .rest_api_id(&id)
        .stage_name("prod")
        .patch_operations(raise("/*/*/throttling/rateLimit", "5000"))
        .patch_operations(raise("/*/*/throttling/burstLimit", "9000"))
        .send()
        .await
        .unwrap();
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let body = block(&r.stdout, "api_gateway_rest_api.api");
    assert!(
        body.iter()
            .any(|l| l.split_whitespace().next() == Some("stage")),
        "stage not named:\n{}",
        r.stdout
    );
    assert!(r.stdout.contains("throttling_rate_limit"), "{}", r.stdout);
    assert!(
        !body
            .iter()
            .any(|l| l.split_whitespace().next() == Some("routes")),
        "the tree did not change:\n{}",
        r.stdout
    );
    apply(&p, &moto);
    let st = stage(&gw, &id).await;
    let all = &st.method_settings().unwrap()["*/*"];
    assert_eq!(all.throttling_rate_limit(), 100.0);
    assert_eq!(all.throttling_burst_limit(), 200);
    assert_eq!(
        st.deployment_id(),
        Some(second_deployment.as_str()),
        "a settings repair does not redeploy"
    );
    plan_clean(&p, &moto);

    p.run(Some(&moto), &["destroy", "--auto-approve"])
        .expect_code(0);
    assert!(gw.get_rest_apis().send().await.unwrap().items().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_role_is_set_kept_and_left_on_destroy() {
    let moto = Moto::start();
    let p = Project::new();
    write(
        &p,
        r#"[iam_role.logs]
name             = "apigw-logs"
trusted_services = ["apigateway.amazonaws.com"]

[api_gateway_account.main]
cloudwatch_role_arn = "${iam_role.logs.arn}"
"#,
    );
    apply(&p, &moto);
    let gw = client(&moto).await;
    let role = gw
        .get_account()
        .send()
        .await
        .unwrap()
        .cloudwatch_role_arn()
        .unwrap()
        .to_string();
    assert!(role.ends_with(":role/apigw-logs"), "{role}");
    plan_clean(&p, &moto);

    // Another role set by hand is drift, repaired.
    gw.update_account()
        .patch_operations(
            PatchOperation::builder()
                .op(Op::Replace)
                .path("/cloudwatchRoleArn")
                .value("arn:aws:iam::123456789012:role/other")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(block(&r.stdout, "api_gateway_account.main")
        .iter()
        .any(|l| l.split_whitespace().next() == Some("cloudwatch_role_arn")));
    apply(&p, &moto);
    let now = gw.get_account().send().await.unwrap();
    assert_eq!(now.cloudwatch_role_arn(), Some(role.as_str()));
    plan_clean(&p, &moto);

    // Destroy leaves the account's setting as it is, as Terraform does.
    p.run(Some(&moto), &["destroy", "--auto-approve"])
        .expect_code(0);
    let after = gw.get_account().send().await.unwrap();
    assert_eq!(after.cloudwatch_role_arn(), Some(role.as_str()));
}
