//! `api_gateway_rest_api`: an API Gateway REST API with its whole tree inline:
//! resources, methods and their integrations, Cognito authorizers, the CORS
//! preflight on every resource, and the stage that serves it.
//!
//! One kind holds it all because its pieces only mean something together: a
//! method names an authorizer by its id, and a stage serves a deployment, a
//! snapshot of the tree. Any change to the tree is followed, in the same
//! update, by a new deployment the stage is pointed at, so the stage never
//! serves a stale tree (what Terraform users must force by hand).
//!
//! A resource, method or integration that changed is deleted and put again:
//! that is what PutMethod and PutIntegration mean, and it needs no Update call.

use crate::kit::error::{at, gone_is_done, unless_gone};
use crate::kit::fields::{diagnostics, fields_of, refuse, str_of, Problem};
use crate::kit::tags::own_tags;
use crate::kit::{adopt, by_id, each, Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_apigateway::types::{
    Authorizer, AuthorizerType, EndpointConfiguration, EndpointType, IntegrationType, Method, Op,
    PatchOperation, Stage,
};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub struct RestApi;

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
];
const INTEGRATIONS: &[&str] = &["HTTP_PROXY", "AWS_PROXY", "MOCK"];
const ENDPOINTS: &[&str] = &["EDGE", "REGIONAL", "PRIVATE"];
const LOG_LEVELS: &[&str] = &["OFF", "ERROR", "INFO"];
/// What CDK's `Cors.ALL_METHODS` allows.
const ALL_METHODS: &[&str] = &["OPTIONS", "GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"];
/// What CDK's `Cors.DEFAULT_HEADERS` allows.
const DEFAULT_HEADERS: &[&str] = &[
    "Content-Type",
    "X-Amz-Date",
    "Authorization",
    "X-Api-Key",
    "X-Amz-Security-Token",
    "X-Amz-User-Agent",
];
const IDENTITY_SOURCE: &str = "method.request.header.Authorization";
/// The request template that makes a MOCK integration answer 200.
const MOCK_TEMPLATE: &str = "{\"statusCode\": 200}";
const ALLOW_ORIGIN: &str = "method.response.header.Access-Control-Allow-Origin";
const ALLOW_METHODS: &str = "method.response.header.Access-Control-Allow-Methods";
const ALLOW_HEADERS: &str = "method.response.header.Access-Control-Allow-Headers";
/// GetResources and GetRestApis answer at most 500 items a page.
const PAGE: i32 = 500;

const INTEGRATION_FIELDS: &[Field] = &[
    Field::new(
        "type",
        Ty::Enum(INTEGRATIONS),
        "HTTP_PROXY (pass the request to `uri`), AWS_PROXY (a Lambda function, \
         `function_arn`) or MOCK (API Gateway answers 200 itself).",
    )
    .required(),
    Field::new(
        "uri",
        Ty::Str,
        "For HTTP_PROXY: the backend URL, path parameters in braces \
         (`https://backend.example.com/patients/{id}`).",
    ),
    Field::new(
        "http_method",
        Ty::Str,
        "For HTTP_PROXY: the method used towards the backend; ANY (the default) passes \
         the caller's own.",
    ),
    Field::new(
        "function_arn",
        Ty::Str,
        "For AWS_PROXY: the function's ARN, like `${lambda_function.api.arn}`. API Gateway \
         also needs a `lambda_permission` for apigateway.amazonaws.com to invoke it.",
    ),
];

const ROUTE_FIELDS: &[Field] = &[
    Field::new(
        "path",
        Ty::Pattern(check_path),
        "The resource path, like `/patients/{id}`; its resources (and their parents) are \
         created as needed.",
    )
    .required(),
    Field::new("method", Ty::Enum(METHODS), "The HTTP method, or ANY.").required(),
    Field::new(
        "authorizer",
        Ty::Str,
        "The name of one of `authorizers` that must accept the caller; left out, the \
         method is open.",
    ),
    Field::new(
        "integration",
        Ty::Object(INTEGRATION_FIELDS),
        "Where the request goes.",
    )
    .required(),
];

const AUTHORIZER_FIELDS: &[Field] = &[
    Field::new(
        "name",
        Ty::Str,
        "The authorizer's name, which routes' `authorizer` names.",
    )
    .required(),
    Field::new(
        "type",
        Ty::Enum(&["COGNITO_USER_POOLS"]),
        "COGNITO_USER_POOLS: the caller presents a user pool's token.",
    )
    .default(Default::Str("COGNITO_USER_POOLS")),
    Field::new(
        "provider_arns",
        Ty::List(&Ty::Str),
        "The user pools whose tokens are accepted, like `[\"${cognito_user_pool.users.arn}\"]`.",
    )
    .required()
    .set(),
    Field::new(
        "identity_source",
        Ty::Str,
        "Where the token is, `method.request.header.Authorization` by default.",
    )
    .default(Default::Str(IDENTITY_SOURCE)),
];

const CORS_FIELDS: &[Field] = &[
    Field::new(
        "allow_origins",
        Ty::List(&Ty::Str),
        "The origins allowed, `[\"*\"]` for all. With several, the preflight answers the \
         caller's origin when it is one of them (as CDK does).",
    )
    .required(),
    Field::new(
        "allow_methods",
        Ty::List(&Ty::Str),
        "The methods allowed; every method by default (CDK's `Cors.ALL_METHODS`).",
    )
    .default(Default::Strs(ALL_METHODS)),
    Field::new(
        "allow_headers",
        Ty::List(&Ty::Str),
        "The request headers allowed; by default CDK's `Cors.DEFAULT_HEADERS` \
         (Content-Type, X-Amz-Date, Authorization, X-Api-Key, X-Amz-Security-Token, \
         X-Amz-User-Agent).",
    )
    .default(Default::Strs(DEFAULT_HEADERS)),
];

const STAGE_FIELDS: &[Field] = &[
    Field::new(
        "name",
        Ty::Pattern(check_stage_name),
        "The stage name, the first segment of the invoke URL (`prod`). Changing it \
         deletes the old stage and creates the new one.",
    )
    .required(),
    Field::new(
        "throttling_rate_limit",
        Ty::Float,
        "Steady-state requests per second for every method (`*/*` method settings).",
    )
    .norm(Norm::With(as_float)),
    Field::new(
        "throttling_burst_limit",
        Ty::Int,
        "Requests allowed in a burst for every method; not below the rate.",
    )
    .range(0, 1_000_000),
    Field::new(
        "logging_level",
        Ty::Enum(LOG_LEVELS),
        "Execution logging to CloudWatch: OFF, ERROR or INFO. Needs the account's \
         CloudWatch role (`api_gateway_account`).",
    )
    .default(Default::Str("OFF")),
    Field::new(
        "metrics_enabled",
        Ty::Bool,
        "Detailed CloudWatch metrics for every method.",
    )
    .default(Default::Bool(false)),
    Field::new(
        "data_trace_enabled",
        Ty::Bool,
        "Logs full requests and responses: keep it off where requests carry PHI.",
    )
    .default(Default::Bool(false)),
    Field::new(
        "access_log_destination_arn",
        Ty::Str,
        "The log group access logs go to, like `${log_group.api.arn}`.",
    ),
    Field::new(
        "access_log_format",
        Ty::Str,
        "The access log line, with `$context` variables; needed with a destination.",
    ),
];

pub static SCHEMA: Schema = Schema {
    kind: "api_gateway_rest_api",
    doc: "An API Gateway REST API with its tree inline: `resources` (bare paths), `routes` \
          (a method on a path and its integration: HTTP_PROXY, AWS_PROXY to a Lambda function, \
          or MOCK), Cognito user pool `authorizers` that routes name, `cors` (an OPTIONS \
          preflight on every resource, as CDK's `defaultCorsPreflightOptions` adds), and the \
          `stage` that serves it with its throttling, execution logging and access logs. \
          Routes, resources and authorizers are compared as sets, by meaning; a resource \
          that is neither declared nor on a route's path is deleted. Any change to the tree, \
          an integration, an authorizer or CORS creates a new deployment and points the \
          stage at it in the same apply. Observing costs GetRestApi, GetResources (methods \
          and integrations embedded), GetAuthorizers and GetStages per API; the stack's APIs \
          are found by their tags with GetRestApis. The emulator does not implement \
          UpdateResource, UpdateMethod or UpdateIntegration (reconcile never calls them: a \
          changed method is deleted and put again), nor TagResource/UntagResource on an API \
          (tags are set at create; a tag change fails there), nor updating an authorizer's \
          provider ARNs; it deletes a resource without its children (reconcile deletes the \
          deepest first anyway), and it never invokes anything.",
    fields: &[
        Field::new(
            "name",
            Ty::Str,
            "The API's name (not unique in AWS: the stack's own copy is known by its tags).",
        )
        .required(),
        Field::new("description", Ty::Str, "What the API is for.").default(Default::Str("")),
        Field::new(
            "endpoint_type",
            Ty::Enum(ENDPOINTS),
            "EDGE (through CloudFront, the default), REGIONAL or PRIVATE. Changing it \
             replaces the API.",
        )
        .default(Default::Str("EDGE"))
        .force_new(),
        Field::new(
            "resources",
            Ty::List(&Ty::Pattern(check_path)),
            "Paths that exist without methods of their own, like `[\"/patients\"]`; the \
             routes' paths and every parent are added. A resource neither here nor on a route \
             is deleted.",
        )
        .default(Default::Strs(&[]))
        .norm(Norm::With(all_paths))
        .set(),
        Field::new(
            "routes",
            Ty::List(&Ty::Object(ROUTE_FIELDS)),
            "Methods, as `{ path = \"/patients/{id}\", method = \"GET\", authorizer = \
             \"cognito\", integration = { type = \"HTTP_PROXY\", uri = \"https://...\" } }`. \
             A changed route is deleted and put again; a method on the API that is not \
             declared (but for CORS preflights) is deleted.",
        )
        .default(Default::Strs(&[]))
        .norm(Norm::With(routes_norm))
        .set(),
        Field::new(
            "authorizers",
            Ty::List(&Ty::Object(AUTHORIZER_FIELDS)),
            "Cognito user pool authorizers, as `{ name = \"cognito\", provider_arns = \
             [\"${cognito_user_pool.users.arn}\"] }`. One no route names is still created.",
        )
        .default(Default::Strs(&[]))
        .set(),
        Field::new(
            "cors",
            Ty::Object(CORS_FIELDS),
            "The CORS preflight: an OPTIONS method with a MOCK integration on every resource, \
             root included, answering the allowed origins, methods and headers. Left out, \
             preflights are removed.",
        )
        .absent_clears(),
        Field::new(
            "stage",
            Ty::Object(STAGE_FIELDS),
            "The stage serving the API's latest deployment: `{ name = \"prod\", \
             throttling_rate_limit = 2000, throttling_burst_limit = 5000, logging_level = \
             \"INFO\" }`. Settings are updated in place. Left out, stages are not managed.",
        ),
    ],
    attributes: &[
        ("id", "The API's id."),
        (
            "arn",
            "The API's ARN (arn:aws:apigateway:REGION::/restapis/ID).",
        ),
        ("root_resource_id", "The id of the `/` resource."),
        (
            "invoke_url",
            "https://ID.execute-api.REGION.amazonaws.com/STAGE, with the declared stage.",
        ),
        ("stage_name", "The stage's name."),
        ("deployment_id", "The deployment the stage serves."),
    ],
    taggable: true,
};

/// Resource paths: `/`-separated segments of letters, digits, `.`, `_`, `-`,
/// or a whole segment `{name}` / `{name+}`.
pub fn check_path(s: &str) -> Result<(), String> {
    let Some(rest) = s.strip_prefix('/') else {
        return Err(format!("\"{s}\": a path begins with /"));
    };
    if rest.is_empty() {
        return Ok(());
    }
    for seg in rest.split('/') {
        if seg.is_empty() {
            return Err(format!(
                "\"{s}\" has an empty segment (a doubled or trailing /)"
            ));
        }
        let plain = |t: &str| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        let ok = match seg.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            Some(inner) => plain(inner.strip_suffix('+').unwrap_or(inner)),
            None => plain(seg),
        };
        if !ok {
            return Err(format!(
                "\"{s}\": the segment \"{seg}\" is neither a name (letters, digits, . _ -) \
                 nor a whole-segment parameter like {{id}} or {{proxy+}}"
            ));
        }
    }
    Ok(())
}

/// Stage names: letters, digits, hyphens and underscores, up to 128.
pub fn check_stage_name(s: &str) -> Result<(), String> {
    if s.is_empty()
        || s.len() > 128
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "\"{s}\": a stage name has 1 to 128 letters, digits, hyphens and underscores"
        ));
    }
    Ok(())
}

fn as_float(v: &Value, _: &IndexMap<String, Value>) -> Value {
    v.as_float().map(Value::Float).unwrap_or_else(|| v.clone())
}

/// `path` and every parent of it, `/` excluded.
fn with_parents(path: &str, out: &mut BTreeSet<String>) {
    let mut p = path.trim_end_matches('/').to_string();
    while !p.is_empty() {
        out.insert(p.clone());
        match p.rfind('/') {
            Some(i) => p.truncate(i),
            None => break,
        }
    }
}

/// The paths of the routes declared in `fields`.
fn route_paths(fields: &IndexMap<String, Value>) -> Vec<String> {
    fields
        .get("routes")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.as_map()?.get("path")?.as_str().map(str::to_string))
        .collect()
}

/// Every resource the tree has: the declared paths, the routes' paths, and
/// their parents, `/` excluded (every API has it).
fn all_paths(v: &Value, parent: &IndexMap<String, Value>) -> Value {
    let Some(list) = v.as_list() else {
        return v.clone();
    };
    let mut out = BTreeSet::new();
    for p in list.iter().filter_map(Value::as_str).map(str::to_string) {
        with_parents(&p, &mut out);
    }
    for p in route_paths(parent) {
        with_parents(&p, &mut out);
    }
    Value::List(out.into_iter().map(Value::Str).collect())
}

/// A route in normal form: the method in capitals, ANY towards an HTTP
/// backend when left out.
fn route_norm(v: &Value) -> Value {
    let Some(m) = v.as_map() else {
        return v.clone();
    };
    let mut m = m.clone();
    if let Some(Value::Str(s)) = m.get("method") {
        m.insert("method".into(), Value::str(s.to_ascii_uppercase()));
    }
    if let Some(Value::Map(i)) = m.get("integration") {
        let mut i = i.clone();
        if i.get("type").and_then(Value::as_str) == Some("HTTP_PROXY")
            && !i.contains_key("http_method")
        {
            i.insert("http_method".into(), Value::str("ANY"));
        }
        m.insert("integration".into(), Value::Map(i));
    }
    Value::Map(m)
}

fn routes_norm(v: &Value, _: &IndexMap<String, Value>) -> Value {
    match v {
        Value::List(l) => Value::List(l.iter().map(route_norm).collect()),
        other => other.clone(),
    }
}

fn items<'a>(f: &'a Fields, k: &str) -> Vec<&'a IndexMap<String, Value>> {
    f.get(k)
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_map)
        .collect()
}

fn s<'a>(m: &'a IndexMap<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

/// Problems with an API's declaration, each at the field it concerns.
pub fn problems(f: &Fields) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    let authorizers: Vec<&str> = items(f, "authorizers")
        .iter()
        .filter_map(|a| s(a, "name"))
        .collect();
    let mut seen_auth = BTreeSet::new();
    for a in &authorizers {
        if !seen_auth.insert(*a) {
            out.push((
                Some("authorizers"),
                format!("two authorizers are named \"{a}\""),
                "give each authorizer its own name".into(),
            ));
        }
    }
    let cors = f.get("cors").and_then(Value::as_map);
    let mut seen = BTreeSet::new();
    for r in items(f, "routes") {
        let path = s(r, "path").unwrap_or("?");
        let method = s(r, "method").unwrap_or("?").to_ascii_uppercase();
        if !seen.insert((path.to_string(), method.clone())) {
            out.push((
                Some("routes"),
                format!("{method} {path} is declared twice"),
                "declare each method of a path once".into(),
            ));
        }
        if method == "OPTIONS" && cors.is_some() {
            out.push((
                Some("routes"),
                format!("OPTIONS {path} is also the CORS preflight `cors` adds"),
                "remove the OPTIONS route or `cors`".into(),
            ));
        }
        if let Some(name) = s(r, "authorizer") {
            if !authorizers.contains(&name) {
                out.push((
                    Some("routes"),
                    format!(
                        "{method} {path} names the authorizer \"{name}\", which is not declared"
                    ),
                    format!(
                        "declare it in `authorizers` or name one of: {}",
                        if authorizers.is_empty() {
                            "(none declared)".to_string()
                        } else {
                            authorizers.join(", ")
                        }
                    ),
                ));
            }
        }
        let Some(i) = r.get("integration").and_then(Value::as_map) else {
            continue;
        };
        let has = |k: &str| i.contains_key(k);
        let wrong = match s(i, "type") {
            Some("HTTP_PROXY") => match s(i, "uri") {
                None if !has("uri") => Some("an HTTP_PROXY integration needs `uri`".to_string()),
                Some(u)
                    if !(u.contains("${")
                        || u.starts_with("http://")
                        || u.starts_with("https://")) =>
                {
                    Some(format!("the uri \"{u}\" is not an http:// or https:// URL"))
                }
                _ => has("function_arn")
                    .then(|| "`function_arn` is for AWS_PROXY integrations".to_string()),
            },
            Some("AWS_PROXY") => {
                if !has("function_arn") {
                    Some("an AWS_PROXY integration needs `function_arn`".into())
                } else if has("uri") || has("http_method") {
                    Some("an AWS_PROXY integration takes `function_arn` only".into())
                } else {
                    None
                }
            }
            Some("MOCK") => (has("uri") || has("http_method") || has("function_arn")).then(|| {
                "a MOCK integration takes no `uri`, `http_method` or `function_arn`".into()
            }),
            _ => None,
        };
        if let Some(w) = wrong {
            out.push((
                Some("routes"),
                format!("{method} {path}: {w}"),
                "see the integration fields in docs/resources.md".into(),
            ));
        }
    }
    if let Some(c) = cors {
        if c.get("allow_origins")
            .and_then(Value::as_list)
            .is_some_and(|l| l.is_empty())
        {
            out.push((
                Some("cors"),
                "`allow_origins` is empty".into(),
                "name the allowed origins, or [\"*\"] for all".into(),
            ));
        }
    }
    if let Some(st) = f.get("stage").and_then(Value::as_map) {
        let rate = st.get("throttling_rate_limit").and_then(Value::as_float);
        let burst = st.get("throttling_burst_limit").and_then(Value::as_int);
        if let (Some(rate), Some(burst)) = (rate, burst) {
            if (burst as f64) < rate {
                out.push((
                    Some("stage"),
                    format!(
                        "the stage's throttling burst ({burst}) is below its rate ({rate}): \
                         the bucket could never hold one second of traffic"
                    ),
                    "raise `throttling_burst_limit` to at least `throttling_rate_limit`".into(),
                ));
            }
        }
        if st.contains_key("access_log_destination_arn") != st.contains_key("access_log_format") {
            out.push((
                Some("stage"),
                "access logs need both `access_log_destination_arn` and `access_log_format`".into(),
                "give both, or neither".into(),
            ));
        }
        if items(f, "routes").is_empty() && cors.is_none() {
            out.push((
                Some("stage"),
                "a stage serves a deployment, and AWS deploys no API without a method".into(),
                "declare `routes` or `cors`, or leave the stage out".into(),
            ));
        }
    }
    out
}

// ---------------------------------------------------------------- reading

/// A method as a route, `None` for a CORS preflight.
fn route_of(path: &str, m: &Method, auth_names: &HashMap<String, String>) -> Option<Value> {
    let verb = m.http_method()?.to_string();
    let integ = m.method_integration();
    if verb == "OPTIONS" && integ.is_some_and(|i| preflight_of(i).is_some()) {
        return None;
    }
    let mut route = fields_of([("path", Value::str(path)), ("method", Value::str(&verb))]);
    if let Some(name) = m.authorizer_id().and_then(|id| auth_names.get(id)) {
        route.insert("authorizer".into(), Value::str(name));
    }
    let mut i = Fields::new();
    if let Some(integ) = integ {
        let ty = integ
            .r#type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default();
        i.insert("type".into(), Value::str(&ty));
        match ty.as_str() {
            "AWS_PROXY" => {
                let uri = integ.uri().unwrap_or_default();
                match function_of(uri) {
                    Some(f) => i.insert("function_arn".into(), Value::str(f)),
                    None => i.insert("uri".into(), Value::str(uri)),
                };
            }
            "MOCK" => {}
            _ => {
                if let Some(u) = integ.uri() {
                    i.insert("uri".into(), Value::str(u));
                }
                if let Some(h) = integ.http_method() {
                    i.insert("http_method".into(), Value::str(h));
                }
            }
        }
    }
    route.insert("integration".into(), Value::Map(i));
    Some(route_norm(&Value::Map(route)))
}

/// The function ARN inside a Lambda invocation URI.
fn function_of(uri: &str) -> Option<&str> {
    uri.split_once("/functions/")?
        .1
        .strip_suffix("/invocations")
}

fn invocation_uri(region: &str, function_arn: &str) -> String {
    format!(
        "arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
    )
}

fn unquote(v: &str) -> &str {
    v.trim_matches('\'')
}

fn comma_list(v: &str) -> Vec<Value> {
    unquote(v)
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(Value::str)
        .collect()
}

/// The CORS settings a preflight integration answers, `None` when the
/// integration is no preflight.
fn preflight_of(i: &aws_sdk_apigateway::types::Integration) -> Option<Value> {
    if i.r#type() != Some(&IntegrationType::Mock) {
        return None;
    }
    let resp = i.integration_responses()?.get("200")?;
    let params = resp.response_parameters()?;
    let origin = params.get(ALLOW_ORIGIN)?;
    let template = resp
        .response_templates()
        .and_then(|t| t.get("application/json"))
        .map(String::as_str)
        .unwrap_or_default();
    let matched: Vec<Value> = template
        .split("$origin.matches(\"")
        .skip(1)
        .filter_map(|t| t.split_once("\")").map(|(o, _)| Value::str(o)))
        .collect();
    let origins = if matched.is_empty() {
        vec![Value::str(unquote(origin))]
    } else {
        matched
    };
    let mut c = fields_of([("allow_origins", Value::List(origins))]);
    if let Some(m) = params.get(ALLOW_METHODS) {
        c.insert("allow_methods".into(), Value::List(comma_list(m)));
    }
    if let Some(h) = params.get(ALLOW_HEADERS) {
        c.insert("allow_headers".into(), Value::List(comma_list(h)));
    }
    Some(Value::Map(c))
}

/// One resource of the tree as read.
struct Node {
    id: String,
    path: String,
    methods: HashMap<String, Method>,
}

/// The whole tree of an API: its resources with methods and integrations
/// embedded, and its authorizers. `None` when the API is gone.
struct Tree {
    nodes: Vec<Node>,
    authorizers: Vec<Authorizer>,
}

impl Tree {
    fn auth_names(&self) -> HashMap<String, String> {
        self.authorizers
            .iter()
            .filter_map(|a| Some((a.id()?.to_string(), a.name()?.to_string())))
            .collect()
    }

    fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.path == path)
    }
}

async fn read_tree(cx: &Cx, api: &str) -> Result<Option<Tree>, ProviderError> {
    let mut nodes = Vec::new();
    let mut position = None;
    loop {
        let Some(page) = unless_gone(
            cx.apigateway
                .get_resources()
                .rest_api_id(api)
                .embed("methods")
                .limit(PAGE)
                .set_position(position)
                .send()
                .await,
        )?
        else {
            return Ok(None);
        };
        for r in page.items() {
            nodes.push(Node {
                id: r.id().unwrap_or_default().to_string(),
                path: r.path().unwrap_or_default().to_string(),
                methods: r.resource_methods().cloned().unwrap_or_default(),
            });
        }
        match page.position().filter(|p| !p.is_empty()) {
            Some(p) => position = Some(p.to_string()),
            None => break,
        }
    }
    let Some(auth) = unless_gone(
        cx.apigateway
            .get_authorizers()
            .rest_api_id(api)
            .limit(PAGE)
            .send()
            .await,
    )?
    else {
        return Ok(None);
    };
    Ok(Some(Tree {
        nodes,
        authorizers: auth.items().to_vec(),
    }))
}

fn authorizer_value(a: &Authorizer) -> Value {
    let mut m = fields_of([
        ("name", Value::str(a.name().unwrap_or_default())),
        (
            "type",
            Value::str(a.r#type().map(|t| t.as_str()).unwrap_or_default()),
        ),
        (
            "provider_arns",
            Value::List(a.provider_arns().iter().map(Value::str).collect()),
        ),
    ]);
    if let Some(i) = a.identity_source() {
        m.insert("identity_source".into(), Value::str(i));
    }
    Value::Map(m)
}

/// The tree's fields: resources, routes, authorizers and CORS.
fn tree_fields(tree: &Tree, out: &mut Fields) {
    let names = tree.auth_names();
    let mut paths = Vec::new();
    let mut routes = Vec::new();
    let mut preflights: Vec<Option<Value>> = Vec::new();
    for n in &tree.nodes {
        if n.path != "/" {
            paths.push(Value::str(&n.path));
        }
        let mut verbs: Vec<&String> = n.methods.keys().collect();
        verbs.sort();
        for v in verbs {
            routes.extend(route_of(&n.path, &n.methods[v], &names));
        }
        preflights.push(
            n.methods
                .get("OPTIONS")
                .and_then(Method::method_integration)
                .and_then(preflight_of),
        );
    }
    out.insert("resources".into(), Value::List(paths));
    out.insert("routes".into(), Value::List(routes));
    out.insert(
        "authorizers".into(),
        Value::List(tree.authorizers.iter().map(authorizer_value).collect()),
    );
    if preflights.iter().any(Option::is_some) {
        let first = preflights.iter().flatten().next().cloned();
        // Preflights missing or different somewhere: not the declared CORS,
        // whatever it is.
        let cors = if preflights.iter().all(|p| p == &preflights[0]) {
            first.unwrap_or(Value::Map(Fields::new()))
        } else {
            Value::Map(fields_of([(
                "allow_origins",
                Value::List(vec![Value::str("(not on every resource)")]),
            )]))
        };
        out.insert("cors".into(), cors);
    }
}

/// The stage reconcile manages: the one tagged with the API's address, else
/// the only one.
fn our_stage<'a>(stages: &'a [Stage], api_tags: &IndexMap<String, String>) -> Option<&'a Stage> {
    let address = api_tags.get(reconcile_core::plan::TAG_ADDRESS);
    stages
        .iter()
        .find(|s| {
            address.is_some()
                && s.tags()
                    .and_then(|t| t.get(reconcile_core::plan::TAG_ADDRESS))
                    == address
        })
        .or(if stages.len() == 1 {
            stages.first()
        } else {
            None
        })
}

fn stage_value(s: &Stage) -> Value {
    let mut m = fields_of([("name", Value::str(s.stage_name().unwrap_or_default()))]);
    let all = s.method_settings().and_then(|m| m.get("*/*"));
    m.insert(
        "logging_level".into(),
        Value::str(all.and_then(|x| x.logging_level()).unwrap_or("OFF")),
    );
    m.insert(
        "metrics_enabled".into(),
        Value::Bool(all.is_some_and(|x| x.metrics_enabled())),
    );
    m.insert(
        "data_trace_enabled".into(),
        Value::Bool(all.is_some_and(|x| x.data_trace_enabled())),
    );
    if let Some(x) = all {
        m.insert(
            "throttling_rate_limit".into(),
            Value::Float(x.throttling_rate_limit()),
        );
        m.insert(
            "throttling_burst_limit".into(),
            Value::Int(x.throttling_burst_limit().into()),
        );
    }
    if let Some(l) = s.access_log_settings() {
        if let Some(d) = l.destination_arn().filter(|d| !d.is_empty()) {
            m.insert("access_log_destination_arn".into(), Value::str(d));
        }
        if let Some(f) = l.format().filter(|f| !f.is_empty()) {
            m.insert("access_log_format".into(), Value::str(f));
        }
    }
    Value::Map(m)
}

async fn stages(cx: &Cx, api: &str) -> Result<Option<Vec<Stage>>, ProviderError> {
    Ok(
        unless_gone(cx.apigateway.get_stages().rest_api_id(api).send().await)?
            .map(|o| o.item().to_vec()),
    )
}

fn api_arn(cx: &Cx, id: &str) -> String {
    format!("arn:aws:apigateway:{}::/restapis/{id}", cx.region)
}

/// One API, whole; `None` when it is gone.
async fn read(cx: &Cx, id: &str) -> Result<Option<Observed>, ProviderError> {
    let Some(api) = unless_gone(cx.apigateway.get_rest_api().rest_api_id(id).send().await)? else {
        return Ok(None);
    };
    let Some(tree) = read_tree(cx, id).await? else {
        return Ok(None);
    };
    let Some(stages) = stages(cx, id).await? else {
        return Ok(None);
    };
    let tags = own_tags(api.tags().cloned().unwrap_or_default());
    let endpoint = api
        .endpoint_configuration()
        .and_then(|e| e.types().first())
        .map(|t| t.as_str().to_string())
        .unwrap_or_else(|| "EDGE".into());
    let mut fields = fields_of([
        ("name", Value::str(api.name().unwrap_or_default())),
        (
            "description",
            Value::str(api.description().unwrap_or_default()),
        ),
        ("endpoint_type", Value::str(endpoint)),
    ]);
    tree_fields(&tree, &mut fields);
    let mut attributes = fields_of([
        ("id", Value::str(id)),
        ("arn", Value::str(api_arn(cx, id))),
        (
            "root_resource_id",
            Value::str(tree.node("/").map(|n| n.id.as_str()).unwrap_or_default()),
        ),
    ]);
    if let Some(st) = our_stage(&stages, &tags) {
        fields.insert("stage".into(), stage_value(st));
        let name = st.stage_name().unwrap_or_default();
        attributes.insert("stage_name".into(), Value::str(name));
        attributes.insert(
            "deployment_id".into(),
            Value::str(st.deployment_id().unwrap_or_default()),
        );
        attributes.insert(
            "invoke_url".into(),
            Value::str(format!(
                "https://{id}.execute-api.{}.amazonaws.com/{name}",
                cx.region
            )),
        );
    }
    Ok(Some(Observed {
        id: id.to_string(),
        fields,
        attributes,
        tags,
    }))
}

/// Every API in the region with its tags: GetRestApis, 500 a page.
async fn list_apis(cx: &Cx) -> Result<Vec<aws_sdk_apigateway::types::RestApi>, ProviderError> {
    let mut out = Vec::new();
    let mut position = None;
    loop {
        let page = cx
            .apigateway
            .get_rest_apis()
            .limit(PAGE)
            .set_position(position)
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        out.extend(page.items().iter().cloned());
        match page.position().filter(|p| !p.is_empty()) {
            Some(p) => position = Some(p.to_string()),
            None => return Ok(out),
        }
    }
}

// ---------------------------------------------------------------- writing

fn patch(op: Op, path: &str, value: Option<String>) -> PatchOperation {
    PatchOperation::builder()
        .op(op)
        .path(path)
        .set_value(value)
        .build()
}

fn replace(path: &str, value: impl Into<String>) -> PatchOperation {
    patch(Op::Replace, path, Some(value.into()))
}

/// Makes the live tree of `api` what `f` declares. Answers whether anything
/// changed, and so whether the stage needs a new deployment.
async fn sync_tree(cx: &Cx, a: &str, api: &str, f: &Fields) -> Result<bool, ProviderError> {
    let tree = read_tree(cx, api)
        .await?
        .ok_or_else(|| ProviderError::NotFound(format!("{a}: the REST API {api} is gone")))?;
    let mut changed = false;
    let gw = &cx.apigateway;

    // Authorizers first: methods refer to them by id.
    let wanted_auth = items(f, "authorizers");
    let mut auth_ids: HashMap<String, String> = HashMap::new();
    for w in &wanted_auth {
        let name = s(w, "name").unwrap_or_default();
        let arns: BTreeSet<String> = w
            .get("provider_arns")
            .map(Value::str_list)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let source = s(w, "identity_source").unwrap_or(IDENTITY_SOURCE);
        match tree.authorizers.iter().find(|x| x.name() == Some(name)) {
            Some(live) => {
                let id = live.id().unwrap_or_default().to_string();
                let have: BTreeSet<String> = live.provider_arns().iter().cloned().collect();
                let mut ops: Vec<PatchOperation> = Vec::new();
                for arn in arns.difference(&have) {
                    ops.push(patch(Op::Add, &format!("/providerARNs/{arn}"), None));
                }
                for arn in have.difference(&arns) {
                    ops.push(patch(Op::Remove, &format!("/providerARNs/{arn}"), None));
                }
                if live.identity_source() != Some(source) {
                    ops.push(replace("/identitySource", source));
                }
                if !ops.is_empty() {
                    gw.update_authorizer()
                        .rest_api_id(api)
                        .authorizer_id(&id)
                        .set_patch_operations(Some(ops))
                        .send()
                        .await
                        .map_err(|e| at(a, "UpdateAuthorizer", e.into()))?;
                    changed = true;
                }
                auth_ids.insert(name.to_string(), id);
            }
            None => {
                let out = gw
                    .create_authorizer()
                    .rest_api_id(api)
                    .name(name)
                    .r#type(AuthorizerType::CognitoUserPools)
                    .set_provider_arns(Some(arns.into_iter().collect()))
                    .identity_source(source)
                    .send()
                    .await
                    .map_err(|e| at(a, "CreateAuthorizer", e.into()))?;
                auth_ids.insert(name.to_string(), out.id().unwrap_or_default().to_string());
                changed = true;
            }
        }
    }

    // Resources, parents before children.
    let mut wanted_paths: BTreeSet<String> = BTreeSet::new();
    if let Value::List(l) = all_paths(f.get("resources").unwrap_or(&Value::List(vec![])), f) {
        wanted_paths.extend(l.iter().filter_map(Value::as_str).map(str::to_string));
    }
    let mut ids: HashMap<String, String> = tree
        .nodes
        .iter()
        .map(|n| (n.path.clone(), n.id.clone()))
        .collect();
    let mut missing: Vec<&String> = wanted_paths
        .iter()
        .filter(|p| !ids.contains_key(*p))
        .collect();
    missing.sort_by_key(|p| p.matches('/').count());
    for path in missing {
        let (parent, part) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        let parent = if parent.is_empty() { "/" } else { parent };
        let parent_id = ids.get(parent).cloned().ok_or_else(|| {
            ProviderError::Other(format!("{a}: the parent of {path} was not created"))
        })?;
        let out = gw
            .create_resource()
            .rest_api_id(api)
            .parent_id(parent_id)
            .path_part(part)
            .send()
            .await
            .map_err(|e| at(a, &format!("CreateResource {path}"), e.into()))?;
        ids.insert(path.clone(), out.id().unwrap_or_default().to_string());
        changed = true;
    }

    // Methods: each route that differs is deleted and put again.
    let names = tree.auth_names();
    let mut live_routes: BTreeMap<(String, String), Value> = BTreeMap::new();
    for n in &tree.nodes {
        for (verb, m) in &n.methods {
            if let Some(r) = route_of(&n.path, m, &names) {
                live_routes.insert((n.path.clone(), verb.clone()), r);
            }
        }
    }
    let mut wanted_routes: BTreeMap<(String, String), Value> = BTreeMap::new();
    for r in items(f, "routes") {
        let v = route_norm(&Value::Map(r.clone()));
        let m = v.as_map().cloned().unwrap_or_default();
        wanted_routes.insert(
            (
                s(&m, "path").unwrap_or_default().to_string(),
                s(&m, "method").unwrap_or_default().to_string(),
            ),
            v,
        );
    }
    let same = |w: &Value, h: &Value| {
        reconcile_core::plan::diff_fields(
            &ROUTE_SCHEMA,
            &fields_of([("r", Value::List(vec![w.clone()]))]),
            &fields_of([("r", Value::List(vec![h.clone()]))]),
        )
        .is_empty()
    };
    for ((path, verb), have) in &live_routes {
        let keep = wanted_routes.get(&(path.clone(), verb.clone()));
        if keep.is_some_and(|w| same(w, have)) {
            continue;
        }
        if let Some(id) = ids.get(path) {
            gone_is_done(
                gw.delete_method()
                    .rest_api_id(api)
                    .resource_id(id)
                    .http_method(verb)
                    .send()
                    .await,
            )
            .map_err(|e| at(a, &format!("DeleteMethod {verb} {path}"), e))?;
            changed = true;
        }
    }
    for ((path, verb), want) in &wanted_routes {
        if live_routes
            .get(&(path.clone(), verb.clone()))
            .is_some_and(|h| same(want, h))
        {
            continue;
        }
        let id = ids.get(path).cloned().unwrap_or_default();
        put_route(cx, a, api, &id, verb, want, &auth_ids).await?;
        changed = true;
    }

    // CORS preflights on every resource, root included.
    let wanted_cors = f.get("cors").and_then(Value::as_map);
    let cors_norm = wanted_cors.map(|c| {
        reconcile_core::diff::normal_form(&CORS_SCHEMA, &fields_of([("c", Value::Map(c.clone()))]))
            ["c"]
            .clone()
    });
    let mut all: Vec<String> = wanted_paths.iter().cloned().collect();
    all.push("/".into());
    for path in &all {
        let id = ids.get(path).cloned().unwrap_or_default();
        let live = tree.node(path).and_then(|n| n.methods.get("OPTIONS"));
        let live_cors = live
            .and_then(Method::method_integration)
            .and_then(preflight_of)
            .map(|c| {
                reconcile_core::diff::normal_form(&CORS_SCHEMA, &fields_of([("c", c)]))["c"].clone()
            });
        if live_cors == cors_norm {
            continue;
        }
        // Only a preflight reconcile recognises is replaced; an OPTIONS
        // route was dealt with above.
        if live_cors.is_some() {
            gone_is_done(
                gw.delete_method()
                    .rest_api_id(api)
                    .resource_id(&id)
                    .http_method("OPTIONS")
                    .send()
                    .await,
            )
            .map_err(|e| at(a, &format!("DeleteMethod OPTIONS {path}"), e))?;
            changed = true;
        }
        if let Some(c) = wanted_cors {
            put_preflight(cx, a, api, &id, c).await?;
            changed = true;
        }
    }

    // Resources no longer wanted, deepest first (the emulator does not
    // delete a resource's children with it).
    let mut gone: Vec<&Node> = tree
        .nodes
        .iter()
        .filter(|n| n.path != "/" && !wanted_paths.contains(&n.path))
        .collect();
    gone.sort_by_key(|n| std::cmp::Reverse(n.path.matches('/').count()));
    for n in gone {
        gone_is_done(
            gw.delete_resource()
                .rest_api_id(api)
                .resource_id(&n.id)
                .send()
                .await,
        )
        .map_err(|e| at(a, &format!("DeleteResource {}", n.path), e))?;
        changed = true;
    }

    // Authorizers last: no method uses them any more.
    for live in &tree.authorizers {
        let name = live.name().unwrap_or_default();
        if wanted_auth.iter().any(|w| s(w, "name") == Some(name)) {
            continue;
        }
        gone_is_done(
            gw.delete_authorizer()
                .rest_api_id(api)
                .authorizer_id(live.id().unwrap_or_default())
                .send()
                .await,
        )
        .map_err(|e| at(a, &format!("DeleteAuthorizer {name}"), e))?;
        changed = true;
    }
    Ok(changed)
}

/// A one-field schema to compare or normalise a nested value with the
/// engine's own rules.
static CORS_SCHEMA: Schema = Schema {
    kind: "api_gateway_rest_api.cors",
    doc: "",
    fields: &[Field::new("c", Ty::Object(CORS_FIELDS), "").set()],
    attributes: &[],
    taggable: false,
};

static ROUTE_SCHEMA: Schema = Schema {
    kind: "api_gateway_rest_api.routes",
    doc: "",
    fields: &[Field::new("r", Ty::List(&Ty::Object(ROUTE_FIELDS)), "").set()],
    attributes: &[],
    taggable: false,
};

async fn put_route(
    cx: &Cx,
    a: &str,
    api: &str,
    resource: &str,
    verb: &str,
    route: &Value,
    auth_ids: &HashMap<String, String>,
) -> Result<(), ProviderError> {
    let gw = &cx.apigateway;
    let r = route.as_map().cloned().unwrap_or_default();
    let path = s(&r, "path").unwrap_or_default();
    let what = |op: &str| format!("{op} {verb} {path}");
    let mut req = gw
        .put_method()
        .rest_api_id(api)
        .resource_id(resource)
        .http_method(verb)
        .authorization_type("NONE");
    if let Some(name) = s(&r, "authorizer") {
        let id = auth_ids.get(name).ok_or_else(|| {
            ProviderError::InvalidInput(format!("{a}: the authorizer \"{name}\" is not declared"))
        })?;
        req = req
            .authorization_type("COGNITO_USER_POOLS")
            .authorizer_id(id);
    }
    req.send()
        .await
        .map_err(|e| at(a, &what("PutMethod"), e.into()))?;
    let i = r
        .get("integration")
        .and_then(Value::as_map)
        .cloned()
        .unwrap_or_default();
    let ty = s(&i, "type").unwrap_or("MOCK");
    let mut req = gw
        .put_integration()
        .rest_api_id(api)
        .resource_id(resource)
        .http_method(verb)
        .r#type(IntegrationType::from(ty));
    req = match ty {
        "AWS_PROXY" => req.integration_http_method("POST").uri(invocation_uri(
            &cx.region,
            s(&i, "function_arn").unwrap_or_default(),
        )),
        "HTTP_PROXY" => req
            .integration_http_method(s(&i, "http_method").unwrap_or("ANY"))
            .uri(s(&i, "uri").unwrap_or_default()),
        _ => req.request_templates("application/json", MOCK_TEMPLATE),
    };
    req.send()
        .await
        .map_err(|e| at(a, &what("PutIntegration"), e.into()))?;
    if ty == "MOCK" {
        // A mock answers only through an integration response.
        gw.put_method_response()
            .rest_api_id(api)
            .resource_id(resource)
            .http_method(verb)
            .status_code("200")
            .send()
            .await
            .map_err(|e| at(a, &what("PutMethodResponse"), e.into()))?;
        gw.put_integration_response()
            .rest_api_id(api)
            .resource_id(resource)
            .http_method(verb)
            .status_code("200")
            .send()
            .await
            .map_err(|e| at(a, &what("PutIntegrationResponse"), e.into()))?;
    }
    Ok(())
}

/// The preflight CDK's `defaultCorsPreflightOptions` adds: OPTIONS, open,
/// answered by a MOCK integration with the CORS headers.
async fn put_preflight(
    cx: &Cx,
    a: &str,
    api: &str,
    resource: &str,
    c: &IndexMap<String, Value>,
) -> Result<(), ProviderError> {
    let gw = &cx.apigateway;
    let list = |k: &str, d: &[&str]| -> Vec<String> {
        c.get(k)
            .map(Value::str_list)
            .unwrap_or_else(|| d.iter().map(|x| x.to_string()).collect())
    };
    let origins = list("allow_origins", &["*"]);
    let methods = list("allow_methods", ALL_METHODS);
    let headers = list("allow_headers", DEFAULT_HEADERS);
    let what = |op: &str| format!("{op} OPTIONS (CORS preflight)");
    gw.put_method()
        .rest_api_id(api)
        .resource_id(resource)
        .http_method("OPTIONS")
        .authorization_type("NONE")
        .send()
        .await
        .map_err(|e| at(a, &what("PutMethod"), e.into()))?;
    gw.put_integration()
        .rest_api_id(api)
        .resource_id(resource)
        .http_method("OPTIONS")
        .r#type(IntegrationType::Mock)
        .request_templates("application/json", MOCK_TEMPLATE)
        .send()
        .await
        .map_err(|e| at(a, &what("PutIntegration"), e.into()))?;
    let mut req = gw
        .put_method_response()
        .rest_api_id(api)
        .resource_id(resource)
        .http_method("OPTIONS")
        .status_code("200");
    for h in [ALLOW_HEADERS, ALLOW_METHODS, ALLOW_ORIGIN] {
        req = req.response_parameters(h, false);
    }
    req.send()
        .await
        .map_err(|e| at(a, &what("PutMethodResponse"), e.into()))?;
    let mut req = gw
        .put_integration_response()
        .rest_api_id(api)
        .resource_id(resource)
        .http_method("OPTIONS")
        .status_code("200")
        .response_parameters(ALLOW_HEADERS, format!("'{}'", headers.join(",")))
        .response_parameters(ALLOW_METHODS, format!("'{}'", methods.join(",")))
        .response_parameters(
            ALLOW_ORIGIN,
            format!("'{}'", origins.first().map(String::as_str).unwrap_or("*")),
        );
    if origins.len() > 1 {
        // One header value only: answer the caller's origin when it is allowed.
        let tests: Vec<String> = origins
            .iter()
            .map(|o| format!("$origin.matches(\"{o}\")"))
            .collect();
        req = req.response_templates(
            "application/json",
            format!(
                "#set($origin = $input.params().header.get(\"Origin\"))\n\
                 #if($origin == \"\") #set($origin = $input.params().header.get(\"origin\")) #end\n\
                 #if({})\n  #set($context.responseOverride.header.Access-Control-Allow-Origin = $origin)\n#end",
                tests.join(" || ")
            ),
        );
    }
    req.send()
        .await
        .map_err(|e| at(a, &what("PutIntegrationResponse"), e.into()))?;
    Ok(())
}

/// Patch operations that set the declared stage settings.
fn stage_ops(st: &IndexMap<String, Value>, live: Option<&Value>) -> Vec<PatchOperation> {
    let mut ops = Vec::new();
    if let Some(r) = st.get("throttling_rate_limit").and_then(Value::as_float) {
        ops.push(replace("/*/*/throttling/rateLimit", r.to_string()));
    }
    if let Some(b) = st.get("throttling_burst_limit").and_then(Value::as_int) {
        ops.push(replace("/*/*/throttling/burstLimit", b.to_string()));
    }
    ops.push(replace(
        "/*/*/logging/loglevel",
        s(st, "logging_level").unwrap_or("OFF"),
    ));
    let flag = |k: &str| {
        st.get(k)
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string()
    };
    ops.push(replace("/*/*/metrics/enabled", flag("metrics_enabled")));
    ops.push(replace(
        "/*/*/logging/dataTrace",
        flag("data_trace_enabled"),
    ));
    match (
        s(st, "access_log_destination_arn"),
        s(st, "access_log_format"),
    ) {
        (Some(d), Some(f)) => {
            ops.push(replace("/accessLogSettings/destinationArn", d));
            ops.push(replace("/accessLogSettings/format", f));
        }
        _ => {
            let had = live
                .and_then(Value::as_map)
                .is_some_and(|m| m.contains_key("access_log_destination_arn"));
            if had {
                ops.push(patch(Op::Remove, "/accessLogSettings", None));
            }
        }
    }
    ops
}

/// Makes the declared stage serve the latest tree: a new deployment when the
/// tree changed (or the stage is new), then the settings.
async fn sync_stage(
    cx: &Cx,
    a: &str,
    api: &str,
    want: &Desired<'_>,
    live: Option<&Value>,
    redeploy: bool,
) -> Result<(), ProviderError> {
    let Some(st) = want.fields.get("stage").and_then(Value::as_map) else {
        return Ok(());
    };
    let gw = &cx.apigateway;
    let name = s(st, "name").unwrap_or_default();
    let live_name = live.and_then(Value::as_map).and_then(|m| s(m, "name"));
    let deploy = || async {
        gw.create_deployment()
            .rest_api_id(api)
            .description(format!("reconcile {a}"))
            .send()
            .await
            .map_err(|e| at(a, "CreateDeployment", e.into()))
            .map(|d| d.id().unwrap_or_default().to_string())
    };
    if live_name == Some(name) {
        if redeploy {
            let id = deploy().await?;
            gw.update_stage()
                .rest_api_id(api)
                .stage_name(name)
                .patch_operations(replace("/deploymentId", id))
                .send()
                .await
                .map_err(|e| at(a, "UpdateStage", e.into()))?;
        }
    } else {
        if let Some(old) = live_name {
            gone_is_done(
                gw.delete_stage()
                    .rest_api_id(api)
                    .stage_name(old)
                    .send()
                    .await,
            )
            .map_err(|e| at(a, &format!("DeleteStage {old}"), e))?;
        }
        let id = deploy().await?;
        gw.create_stage()
            .rest_api_id(api)
            .stage_name(name)
            .deployment_id(id)
            .set_tags(Some(want.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| at(a, "CreateStage", e.into()))?;
    }
    let live_same = live.filter(|_| live_name == Some(name));
    gw.update_stage()
        .rest_api_id(api)
        .stage_name(name)
        .set_patch_operations(Some(stage_ops(st, live_same)))
        .send()
        .await
        .map_err(|e| at(a, "UpdateStage", e.into()))?;
    Ok(())
}

const TREE: &[&str] = &["resources", "routes", "authorizers", "cors"];

#[async_trait]
impl Provider for RestApi {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        diagnostics(r, problems(&r.fields))
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let reads = ids.iter().map(|id| read(cx, id)).collect();
        Ok(by_id(each(reads).await?))
    }

    /// The stage's settings a declaration leaves out, and that have no
    /// default, are not managed: throttling AWS reports is not drift when
    /// none is declared.
    async fn observe_against_desired(
        &self,
        _cx: &Cx,
        items: &mut [(&Resource, &mut Observed)],
    ) -> Result<(), ProviderError> {
        for (r, o) in items.iter_mut() {
            let Some(want) = r.fields.get("stage").and_then(Value::as_map) else {
                continue;
            };
            if let Some(Value::Map(live)) = o.fields.get_mut("stage") {
                live.retain(|k, _| {
                    want.contains_key(k)
                        || STAGE_FIELDS
                            .iter()
                            .any(|f| f.name == k.as_str() && f.default.is_some())
                });
            }
        }
        Ok(())
    }

    /// GetRestApis answers every API with its tags: the stack's are read whole.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let reads = list_apis(cx)
            .await?
            .into_iter()
            .filter_map(|api| {
                let tags = own_tags(api.tags().cloned().unwrap_or_default());
                let address = crate::kit::tags::stack_address(cx, &tags)?;
                (addresses.is_empty() || addresses.contains(&address))
                    .then(|| (api.id().unwrap_or_default().to_string(), address))
            })
            .map(|(id, address)| async move { Ok(read(cx, &id).await?.map(|o| (address, o))) })
            .collect();
        each(reads).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        refuse(a, problems(f))?;
        let name = str_of(f, "name").ok_or_else(|| {
            ProviderError::InvalidInput(format!("{a}: `name` must be a known string"))
        })?;
        // Names are not unique: a copy an interrupted apply left is found by its tags.
        for api in list_apis(cx).await? {
            let tags = own_tags(api.tags().cloned().unwrap_or_default());
            let id = api.id().unwrap_or_default();
            if api.name() == Some(name)
                && adopt::is_ours(cx, &tags, a)
                && want.replacing != Some(id)
            {
                if let Some(live) = read(cx, id).await? {
                    let changes = adopt::changes_to(self, want, &live);
                    return self.update(cx, &live, want, &changes).await;
                }
            }
        }
        let endpoint = str_of(f, "endpoint_type").unwrap_or("EDGE");
        let out = cx
            .apigateway
            .create_rest_api()
            .name(name)
            .set_description(
                str_of(f, "description")
                    .filter(|d| !d.is_empty())
                    .map(str::to_string),
            )
            .endpoint_configuration(
                EndpointConfiguration::builder()
                    .types(EndpointType::from(endpoint))
                    .build(),
            )
            // Tagged in the same call, so an interrupted create is found again by its tags.
            .set_tags(Some(want.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| at(a, "CreateRestApi", e.into()))?;
        let id = out.id().unwrap_or_default().to_string();
        sync_tree(cx, a, &id, f).await?;
        sync_stage(cx, a, &id, want, None, true).await?;
        read(cx, &id).await?.ok_or_else(|| {
            ProviderError::Other(format!(
                "{a}: the REST API {id} is not described right after its creation; run plan again"
            ))
        })
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        refuse(a, problems(f))?;
        let id = live.id.as_str();
        let touched = |k: &str| changes.iter().any(|c| c.field == k);
        let mut ops = Vec::new();
        if touched("name") {
            ops.push(replace("/name", str_of(f, "name").unwrap_or_default()));
        }
        if touched("description") {
            ops.push(replace(
                "/description",
                str_of(f, "description").unwrap_or_default(),
            ));
        }
        if !ops.is_empty() {
            cx.apigateway
                .update_rest_api()
                .rest_api_id(id)
                .set_patch_operations(Some(ops))
                .send()
                .await
                .map_err(|e| at(a, "UpdateRestApi", e.into()))?;
        }
        if touched("tags") {
            let arn = api_arn(cx, id);
            let arn = arn.as_str();
            crate::sync_tags_by!(
                &live.tags,
                want.tags,
                a,
                untag: cx.apigateway.untag_resource().resource_arn(arn),
                tag: cx.apigateway.tag_resource().resource_arn(arn),
                tags: |t: &IndexMap<String, String>| -> Result<HashMap<String, String>, ProviderError> {
                    Ok(t.clone().into_iter().collect())
                },
            )
            .await?;
        }
        let redeploy = if TREE.iter().any(|k| touched(k)) {
            sync_tree(cx, a, id, f).await?
        } else {
            false
        };
        if redeploy || touched("stage") {
            sync_stage(cx, a, id, want, live.fields.get("stage"), redeploy).await?;
        }
        read(cx, id)
            .await?
            .ok_or_else(|| ProviderError::NotFound(format!("{a}: the REST API {id} is gone")))
    }

    /// DeleteRestApi takes its tree, authorizers, deployments and stages with it.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        gone_is_done(cx.apigateway.delete_rest_api().rest_api_id(id).send().await).map_err(|e| {
            at(
                &format!("api_gateway_rest_api {id} (stack {})", cx.stack),
                "DeleteRestApi",
                e,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    fn route(path: &str, method: &str, integ: Value) -> Value {
        Value::Map(fields_of([
            ("path", Value::str(path)),
            ("method", Value::str(method)),
            ("integration", integ),
        ]))
    }

    fn http(uri: &str) -> Value {
        Value::Map(fields_of([
            ("type", Value::str("HTTP_PROXY")),
            ("uri", Value::str(uri)),
        ]))
    }

    #[test]
    fn paths_are_checked() {
        for ok in [
            "/",
            "/health",
            "/patients/{id}",
            "/files/{proxy+}",
            "/v1.2/a_b-c",
        ] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in ["health", "/a//b", "/a/", "/a{id}", "/{}", "/a b"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_tree_compares_by_meaning() {
        let want = fields_of([
            ("name", Value::str("api")),
            ("resources", Value::List(vec![Value::str("/providers")])),
            (
                "routes",
                Value::List(vec![route("/patients/{id}", "get", http("https://b/{id}"))]),
            ),
        ]);
        // What GetResources answers: every resource, the method in capitals,
        // the backend method AWS defaults to.
        let live_route = route(
            "/patients/{id}",
            "GET",
            Value::Map(fields_of([
                ("type", Value::str("HTTP_PROXY")),
                ("uri", Value::str("https://b/{id}")),
                ("http_method", Value::str("ANY")),
            ])),
        );
        let live = fields_of([
            ("name", Value::str("api")),
            (
                "resources",
                Value::List(vec![
                    Value::str("/patients/{id}"),
                    Value::str("/providers"),
                    Value::str("/patients"),
                ]),
            ),
            ("routes", Value::List(vec![live_route])),
        ]);
        assert!(
            RestApi.diff(&want, &live).is_empty(),
            "{:?}",
            RestApi.diff(&want, &live)
        );
        let mut extra = live.clone();
        extra.insert(
            "resources".into(),
            Value::List(vec![
                Value::str("/patients/{id}"),
                Value::str("/providers"),
                Value::str("/patients"),
                Value::str("/old"),
            ]),
        );
        let c = RestApi.diff(&want, &extra);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "resources");
    }

    #[test]
    fn burst_below_rate_and_unknown_authorizers_are_refused() {
        let mut f = fields_of([
            ("name", Value::str("api")),
            (
                "routes",
                Value::List(vec![Value::Map(fields_of([
                    ("path", Value::str("/patients")),
                    ("method", Value::str("GET")),
                    ("authorizer", Value::str("cognito")),
                    (
                        "integration",
                        Value::Map(fields_of([("type", Value::str("MOCK"))])),
                    ),
                ]))]),
            ),
            (
                "stage",
                Value::Map(fields_of([
                    ("name", Value::str("prod")),
                    ("throttling_rate_limit", Value::Int(2000)),
                    ("throttling_burst_limit", Value::Int(500)),
                ])),
            ),
        ]);
        let p = problems(&f);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p
            .iter()
            .any(|x| x.0 == Some("stage") && x.1.contains("burst")));
        assert!(p
            .iter()
            .any(|x| x.0 == Some("routes") && x.1.contains("cognito")));
        f.insert(
            "authorizers".into(),
            Value::List(vec![Value::Map(fields_of([
                ("name", Value::str("cognito")),
                ("provider_arns", Value::List(vec![Value::str("arn:x")])),
            ]))]),
        );
        assert_eq!(problems(&f).len(), 1);
    }

    #[test]
    fn a_lambda_uri_reads_back_as_its_function() {
        let f = "arn:aws:lambda:us-east-1:123456789012:function:api";
        assert_eq!(function_of(&invocation_uri("us-east-1", f)), Some(f));
    }
}
