//! Every kind of bad input is reported with file:line:col and a hint, all at once,
//! before any AWS call and without touching state.

mod common;
use common::{Project, Run, Sentinel};

const HEADER: &str = "[stack]\nname = \"val\"\nregion = \"us-east-1\"\n\n";

/// Runs `plan` on the given files; asserts exit 1, no AWS call, no state written.
fn plan_fails(files: &[(&str, &str)]) -> Run {
    plan_fails_with(files, &[])
}

/// As [`plan_fails`], with global flags (`--region`, say) before `plan`.
fn plan_fails_with(files: &[(&str, &str)], flags: &[&str]) -> Run {
    let p = Project::new();
    for (name, text) in files {
        p.write(name, text);
    }
    let sentinel = Sentinel::new();
    let args: Vec<&str> = flags.iter().copied().chain(["plan"]).collect();
    let run = p.run_at(&sentinel.url, &args);
    run.expect_code(1);
    sentinel.assert_no_call();
    assert!(!p.state_dir().exists(), "bad input must not touch state");
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    run
}

#[track_caller]
fn has(run: &Run, needle: &str) {
    assert!(
        run.stderr.contains(needle),
        "expected `{needle}` in:\n{}",
        run.stderr
    );
}

#[test]
fn toml_syntax_error_points_at_the_place() {
    let run = plan_fails(&[(
        "s.toml",
        &format!("{HEADER}[vpc.main]\ncidr_block = \"10.0.0.0/16\n"),
    )]);
    has(&run, "error: desired-state/s.toml:6:");
    has(&run, "TOML syntax error");
}

#[test]
fn unknown_kind_suggests_the_closest() {
    let run = plan_fails(&[(
        "s.toml",
        &format!("{HEADER}[vpcc.main]\ncidr_block = \"10.0.0.0/16\"\n"),
    )]);
    has(
        &run,
        "desired-state/s.toml:5:2: unknown resource kind `vpcc`",
    );
    has(&run, "did you mean `vpc`?");
}

#[test]
fn unknown_field_suggests_the_closest() {
    let run = plan_fails(&[(
        "s.toml",
        &format!("{HEADER}[vpc.main]\ncidr_block = \"10.0.0.0/16\"\nenable_dns_hostname = true\n"),
    )]);
    has(
        &run,
        "desired-state/s.toml:7:1: `vpc.main`: unknown field `enable_dns_hostname`",
    );
    has(&run, "did you mean `enable_dns_hostnames`?");
}

#[test]
fn wrong_type() {
    let run = plan_fails(&[(
        "s.toml",
        &format!(
            "{HEADER}[vpc.main]\ncidr_block = \"10.0.0.0/16\"\nenable_dns_support = \"yes\"\n"
        ),
    )]);
    has(&run, "desired-state/s.toml:7:22: `vpc.main`.enable_dns_support must be true or false, found string");
}

#[test]
fn missing_required_field() {
    let run = plan_fails(&[(
        "s.toml",
        &format!("{HEADER}[vpc.main]\nenable_dns_support = true\n"),
    )]);
    has(
        &run,
        "desired-state/s.toml:5:6: `vpc.main`: missing required field `cidr_block`",
    );
    has(&run, "add `cidr_block = ...`");
}

#[test]
fn bad_values_cidr_az_and_names() {
    let text = format!(
        "{HEADER}[vpc.main]\ncidr_block = \"10.0.0.1/16\"\n\n\
         [subnet.a]\nvpc_id = \"${{vpc.main.id}}\"\ncidr_block = \"10.0.300.0/24\"\navailability_zone = \"us-east-1\"\n\n\
         [subnet.b]\nvpc_id = \"${{vpc.main.id}}\"\ncidr_block = \"10.0.1.0/24\"\navailability_zone = \"eu-west-1a\"\n\n\
         [security_group.bad]\nname = \"sg-web\"\nvpc_id = \"${{vpc.main.id}}\"\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(&run, "desired-state/s.toml:6:14: `vpc.main`.cidr_block: \"10.0.0.1/16\" has host bits set; the network address is \"10.0.0.0/16\"");
    has(&run, "desired-state/s.toml:10:14: `subnet.a`.cidr_block: \"10.0.300.0/24\" is not an IPv4 CIDR block");
    has(&run, "desired-state/s.toml:11:21: `subnet.a`.availability_zone: \"us-east-1\" is not an availability zone name");
    has(&run, "desired-state/s.toml:16:1: `subnet.b`: availability zone \"eu-west-1a\" is not in the stack's region us-east-1");
    has(&run, "desired-state/s.toml:19:8: `security_group.bad`.name: \"sg-web\": a security group name may not start with \"sg-\"");
}

#[test]
fn bad_stack_name() {
    let run = plan_fails(&[(
        "s.toml",
        "[stack]\nname = \"Proxy Smart\"\nregion = \"us-east-1\"\n",
    )]);
    has(
        &run,
        "desired-state/s.toml:2:8: stack name \"Proxy Smart\" is not valid",
    );
}

#[test]
fn references_to_unknown_resources_and_attributes() {
    let text = format!(
        "{HEADER}[vpc.main]\ncidr_block = \"10.0.0.0/16\"\n\n\
         [subnet.a]\nvpc_id = \"${{vpc.mian.id}}\"\ncidr_block = \"10.0.1.0/24\"\navailability_zone = \"us-east-1a\"\n\n\
         [subnet.b]\nvpc_id = \"${{vpc.main.vpc_idd}}\"\ncidr_block = \"10.0.2.0/24\"\navailability_zone = \"us-east-1a\"\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(
        &run,
        "desired-state/s.toml:9:10: reference to unknown resource `vpc.mian`",
    );
    has(&run, "did you mean `vpc.main`?");
    has(
        &run,
        "desired-state/s.toml:14:10: `vpc.main` has no attribute `vpc_idd`",
    );
}

#[test]
fn dependency_cycle_is_printed() {
    let text = format!(
        "{HEADER}[vpc.a]\ncidr_block = \"10.0.0.0/16\"\ndepends_on = [\"vpc.b\"]\n\n\
         [vpc.b]\ncidr_block = \"10.1.0.0/16\"\ndepends_on = [\"vpc.a\"]\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(
        &run,
        "desired-state/s.toml:5:6: dependency cycle: vpc.a -> vpc.b -> vpc.a",
    );
}

#[test]
fn same_address_in_two_files() {
    let run = plan_fails(&[
        (
            "s/a.toml",
            &format!("{HEADER}[vpc.main]\ncidr_block = \"10.0.0.0/16\"\n"),
        ),
        ("s/b.toml", "[vpc.main]\ncidr_block = \"10.1.0.0/16\"\n"),
    ]);
    has(
        &run,
        "desired-state/s/b.toml:1:6: `vpc.main` is declared twice",
    );
    has(&run, "also declared at desired-state/s/a.toml:5:6");
}

#[test]
fn input_without_a_value() {
    let text = format!(
        "{HEADER}[input.cidr]\ndescription = \"The VPC range\"\n\n[vpc.main]\ncidr_block = \"${{input.cidr}}\"\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(&run, "desired-state/s.toml:5:8: input `cidr` has no value");
    has(
        &run,
        "pass --input cidr=VALUE, set RECONCILE_INPUT_CIDR, or give it a `default`",
    );

    // Given a value, the same stack validates.
    let p = Project::new();
    p.write("s.toml", &text);
    p.run(None, &["validate", "--input", "cidr=10.0.0.0/16"])
        .expect_code(0);
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = format!(
        "{HEADER}[vpc.main]\ncidr_block = \"10.0.0.1/16\"\nbogus = 1\n\n[vpcc.x]\n\n\
         [vpc.b]\ncidr_block = \"10.1.0.0/16\"\ndepends_on = [\"vpc.c\"]\n\n\
         [vpc.c]\ncidr_block = \"10.2.0.0/16\"\ndepends_on = [\"vpc.b\"]\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(&run, "host bits set");
    has(&run, "unknown field `bogus`");
    has(&run, "unknown resource kind `vpcc`");
    has(&run, "dependency cycle: vpc.b -> vpc.c -> vpc.b");
    has(&run, "4 problems found; nothing was changed.");
}

#[test]
fn validate_makes_no_call_and_accepts_a_good_stack() {
    let p = Project::new();
    p.write(
        "s.toml",
        &format!("{HEADER}[vpc.main]\ncidr_block = \"10.0.0.0/16\"\n"),
    );
    let sentinel = Sentinel::new();
    let run = p.run_at(&sentinel.url, &["validate"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("stack `val` is valid (1 resources)"),
        "{}",
        run.stdout
    );
    sentinel.assert_no_call();
}

#[test]
fn graph_prints_dot_with_reference_and_depends_on_edges() {
    let p = Project::new();
    p.write(
        "s.toml",
        &format!(
            "{HEADER}[vpc.main]\ncidr_block = \"10.0.0.0/16\"\n\n\
             [subnet.a]\nvpc_id = \"${{vpc.main.id}}\"\ncidr_block = \"10.0.1.0/24\"\navailability_zone = \"us-east-1a\"\n\n\
             [internet_gateway.gw]\ndepends_on = [\"subnet.a\"]\n"
        ),
    );
    let sentinel = Sentinel::new();
    let run = p.run_at(&sentinel.url, &["graph"]);
    run.expect_code(0);
    sentinel.assert_no_call();
    assert!(
        run.stdout.starts_with("digraph \"val\" {"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\"vpc.main\" -> \"subnet.a\";"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("\"subnet.a\" -> \"internet_gateway.gw\";"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout
            .contains("\"vpc.main\" -> \"internet_gateway.gw\""),
        "{}",
        run.stdout
    );
}

#[test]
fn a_rule_resource_on_a_group_with_inline_rules_is_refused() {
    let text = format!(
        "{HEADER}[vpc.main]\ncidr_block = \"10.0.0.0/16\"\n\n\
         [security_group.db]\nname = \"db\"\nvpc_id = \"${{vpc.main.id}}\"\n\
         ingress = [{{ protocol = \"tcp\", from_port = 5432, to_port = 5432, cidr_block = \"10.0.0.0/16\" }}]\n\n\
         [security_group_rule.extra]\nsecurity_group_id = \"${{security_group.db.id}}\"\ntype = \"ingress\"\n\
         protocol = \"tcp\"\nfrom_port = 22\nto_port = 22\ncidr_block = \"10.0.0.0/16\"\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(&run, "desired-state/s.toml:14:1: `security_group_rule.extra` adds an ingress rule to `security_group.db`, which lists its own `ingress` rules");
}

#[test]
fn subnet_ranges_outside_their_vpc_or_overlapping_and_sizes_aws_refuses() {
    let text = format!(
        "{HEADER}[vpc.main]\ncidr_block = \"10.0.0.0/16\"\n\n\
         [subnet.a]\nvpc_id = \"${{vpc.main.id}}\"\ncidr_block = \"10.0.0.0/23\"\navailability_zone = \"us-east-1a\"\n\n\
         [subnet.b]\nvpc_id = \"${{vpc.main.id}}\"\ncidr_block = \"10.0.1.0/24\"\navailability_zone = \"us-east-1a\"\n\n\
         [subnet.c]\nvpc_id = \"${{vpc.main.id}}\"\ncidr_block = \"10.1.0.0/24\"\navailability_zone = \"us-east-1b\"\n\n\
         [vpc.big]\ncidr_block = \"10.0.0.0/8\"\n\n\
         [subnet.tiny]\nvpc_id = \"${{vpc.main.id}}\"\ncidr_block = \"10.0.9.0/29\"\navailability_zone = \"us-east-1a\"\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(&run, "desired-state/s.toml:15:1: `subnet.b`: \"10.0.1.0/24\" overlaps subnet.a's range 10.0.0.0/23 in the same VPC");
    has(
        &run,
        "desired-state/s.toml:20:1: `subnet.c`: \"10.1.0.0/24\" is outside vpc.main's range 10.0.0.0/16",
    );
    has(&run, "help: choose a range inside 10.0.0.0/16");
    has(
        &run,
        "desired-state/s.toml:24:1: `vpc.big`: \"10.0.0.0/8\" is a /8; AWS accepts /16 to /28",
    );
    has(
        &run,
        "desired-state/s.toml:28:1: `subnet.tiny`: \"10.0.9.0/29\" is a /29; AWS accepts /16 to /28",
    );
    has(&run, "4 problems found; nothing was changed.");
}

#[test]
fn security_group_rule_ports_aws_refuses() {
    let text = format!(
        "{HEADER}[vpc.main]\ncidr_block = \"10.0.0.0/16\"\n\n\
         [security_group.web]\nname = \"web\"\nvpc_id = \"${{vpc.main.id}}\"\n\
         ingress = [{{ protocol = \"tcp\", from_port = 443, to_port = 70000, cidr_block = \"0.0.0.0/0\" }}]\n\
         egress = [{{ protocol = \"-1\", from_port = 22, to_port = 22, cidr_block = \"0.0.0.0/0\" }}]\n\n\
         [security_group_rule.ping]\nsecurity_group_id = \"sg-0123\"\ntype = \"ingress\"\nprotocol = \"icmp\"\n\
         from_port = 8\nto_port = 300\ncidr_block = \"10.0.0.0/16\"\n\n\
         [security_group_rule.range]\nsecurity_group_id = \"sg-0123\"\ntype = \"ingress\"\nprotocol = \"tcp\"\n\
         from_port = 8080\nto_port = 80\ncidr_block = \"10.0.0.0/16\"\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(&run, "desired-state/s.toml:11:1: `security_group.web`: ingress rule 1: to_port 70000 is outside 0-65535");
    has(&run, "desired-state/s.toml:12:1: `security_group.web`: egress rule 1: protocol \"-1\" allows every port, yet the rule says 22-22");
    has(&run, "help: write from_port = 0 and to_port = 0");
    has(&run, "desired-state/s.toml:19:1: `security_group_rule.ping`: to_port 300 (the ICMP code) is outside -1-255");
    has(
        &run,
        "desired-state/s.toml:26:1: `security_group_rule.range`: from_port 8080 is above to_port 80",
    );
    has(&run, "4 problems found; nothing was changed.");
}

#[test]
fn db_instance_storage_and_class_aws_refuses() {
    let text = format!(
        "{HEADER}[db_instance.main]\nidentifier = \"main\"\nengine = \"postgres\"\n\
         instance_class = \"t4g.micro\"\nallocated_storage = 10\nmaster_username = \"app\"\n\
         manage_master_user_password = true\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(&run, "desired-state/s.toml:8:1: `db_instance.main`: instance_class \"t4g.micro\" is not an RDS instance class");
    has(&run, "help: write it like \"db.t4g.micro\"");
    has(&run, "desired-state/s.toml:9:1: `db_instance.main`: allocated_storage 10 GiB is outside 20-65536 GiB for postgres on gp2 storage");
    has(&run, "help: use 20 to 65536 GiB");
}

#[test]
fn target_group_health_check_aws_refuses() {
    let text = format!(
        "{HEADER}[target_group.app]\nname = \"app\"\nport = 8080\nprotocol = \"HTTP\"\nvpc_id = \"vpc-0123\"\n\
         health_check = {{ path = \"health\", interval_seconds = 400 }}\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(&run, "desired-state/s.toml:10:1: `target_group.app`: health_check.path \"health\" must start with `/` and be at most 1024 characters");
    has(&run, "help: write it like \"/health\"");
    has(
        &run,
        "desired-state/s.toml:10:1: `target_group.app`: health_check.interval_seconds = 400 is outside 5-300",
    );
}

#[test]
fn tags_aws_refuses_point_at_the_tag() {
    let own: String = (0..49).map(|i| format!("own{i} = \"v\"\n")).collect();
    let text = format!(
        "[stack]\nname = \"val\"\nregion = \"us-east-1\"\n\n\
         [stack.tags]\n\"aws:owner\" = \"x\"\nTeam = \"{}\"\n\n\
         [vpc.main]\ncidr_block = \"10.0.0.0/16\"\n\n[vpc.main.tags]\n{own}",
        "t".repeat(257)
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(
        &run,
        "desired-state/s.toml:6:1: tag key `aws:owner` is reserved",
    );
    has(
        &run,
        "desired-state/s.toml:7:8: the value of tag `Team` is 257 characters long; AWS allows at most 256",
    );
    // own48, the 49th user tag, is the one over AWS's 50 with reconcile's two.
    has(&run, "desired-state/s.toml:61:1: `vpc.main` would carry 51 tags (0 from [stack], 49 of its own, and reconcile:stack and reconcile:address); AWS allows 50");
    has(&run, "3 problems found; nothing was changed.");
}

#[test]
fn region_names_aws_does_not_have() {
    let run = plan_fails(&[("s.toml", "[stack]\nname = \"val\"\nregion = \"useast1\"\n")]);
    has(
        &run,
        "desired-state/s.toml:3:10: \"useast1\" is not an AWS region name",
    );
    has(&run, "1 problem");

    let run = plan_fails_with(&[("s.toml", HEADER)], &["--region", "US-EAST-1"]);
    has(
        &run,
        "error: --region \"US-EAST-1\" is not an AWS region name",
    );
    has(&run, "help: write it like --region us-east-1");
}

#[test]
fn numbers_outside_the_range_aws_takes_point_at_the_value() {
    let text = format!(
        "{HEADER}[iam_role.app]\nname = \"app\"\ntrusted_services = [\"ecs-tasks.amazonaws.com\"]\n\
         max_session_duration = 60\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(
        &run,
        "desired-state/s.toml:8:24: `iam_role.app`.max_session_duration is 60; AWS takes 3600 to 43200",
    );
    has(
        &run,
        "help: set `max_session_duration` between 3600 and 43200",
    );
}

#[test]
fn a_refused_nested_value_is_reported_once_not_again_as_missing() {
    let text = format!(
        "{HEADER}[ecs_task_definition.app]\nfamily = \"app\"\ncpu = \"256\"\nmemory = \"512\"\n\
         containers = [{{ name = \"app\", image = \"nginx\", port_mappings = [{{ container_port = 70000 }}] }}]\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(&run, "container_port is 70000; AWS takes 1 to 65535");
    for symptom in ["missing required", "at least one container"] {
        assert!(!run.stderr.contains(symptom), "{}", run.stderr);
    }
}

#[test]
fn secret_attachments_aws_would_undo_or_cannot_hold() {
    let att = |name: &str, secret: &str, extra: &str| {
        format!(
            "[secret_target_attachment.{name}]\nsecret_id = \"${{secret.{secret}.arn}}\"\n\
             host = \"db.internal\"\nport = 5432\nengine = \"postgres\"\n{extra}"
        )
    };
    let text = format!(
        "{HEADER}[secret.env]\nname = \"v/env\"\nvalue_from_env = \"DB_JSON\"\n\n\
         [secret.bare]\nname = \"v/bare\"\ngenerate = {{ length = 20 }}\n\n\
         [secret.ok]\nname = \"v/ok\"\ngenerate = {{ template = {{ username = \"app\" }}, key = \"password\" }}\n\n\
         {}\n{}\n{}\n{}",
        att("env", "env", "db_instance_identifier = \"db\"\n"),
        att("bare", "bare", "db_instance_identifier = \"db\"\n"),
        att("both", "ok", "db_instance_identifier = \"db\"\ndb_cluster_identifier = \"c\"\n"),
        att("again", "ok", "db_instance_identifier = \"db\"\n"),
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(&run, "`secret_target_attachment.env`: secret.env takes its whole value from an environment variable");
    has(
        &run,
        "`secret_target_attachment.bare`: secret.bare generates a bare password",
    );
    has(&run, "`secret_target_attachment.both`: `db_instance_identifier` and `db_cluster_identifier` are both set");
    has(&run, "`secret_target_attachment.again`: secret_target_attachment.both already writes connection details into this secret");
    // Each at its `secret_id` line.
    for needle in [
        "s.toml:18:1: `secret_target_attachment.env`",
        "s.toml:25:1: `secret_target_attachment.bare`",
    ] {
        has(&run, needle);
    }
}

#[test]
fn sign_in_settings_cognito_would_refuse() {
    let text = format!(
        "{HEADER}[cognito_user_pool.p]\nname = \"v\"\npassword_policy = {{ minimum_length = 5 }}\n\
         mfa_configuration = \"ON\"\n\n\
         [cognito_user_pool_client.c]\nuser_pool_id = \"${{cognito_user_pool.p.id}}\"\nname = \"web\"\n\
         allowed_oauth_flows = [\"code\"]\nallowed_oauth_scopes = [\"openid\"]\n\
         callback_urls = [\"http://app.example.com/cb\", \"http://localhost:3000/cb\"]\n\
         refresh_token_validity = \"20m\"\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(&run, "s.toml:7:");
    has(&run, "password_policy.minimum_length is 5");
    has(
        &run,
        "s.toml:8:1: `cognito_user_pool.p`: MFA is ON but no second factor is on",
    );
    has(
        &run,
        "s.toml:15:1: `cognito_user_pool_client.c`: \"http://app.example.com/cb\" is not https",
    );
    has(
        &run,
        "`refresh_token_validity` is outside what Cognito takes (1h to 3650d)",
    );
    assert!(!run.stderr.contains("localhost:3000"), "{}", run.stderr);
}

#[test]
fn identity_pools_cognito_would_refuse_or_never_use() {
    let text = format!(
        "{HEADER}[cognito_identity_pool.p]\nname = \"files/uploads\"\n\
         cognito_identity_providers = [{{ provider_name = \"accounts.example.com\", client_id = \"abc\" }}]\n\n\
         [cognito_identity_pool_roles.a]\nidentity_pool_id = \"${{cognito_identity_pool.p.id}}\"\n\
         authenticated_role = \"arn:aws:iam::123456789012:user/someone\"\n\
         unauthenticated_role = \"arn:aws:iam::123456789012:role/guest\"\n\n\
         [cognito_identity_pool_roles.b]\nidentity_pool_id = \"${{cognito_identity_pool.p.id}}\"\n\
         authenticated_role = \"arn:aws:iam::123456789012:role/signed-in\"\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(
        &run,
        "s.toml:6:1: `cognito_identity_pool.p`: `files/uploads` is not a name Cognito takes",
    );
    has(
        &run,
        "s.toml:7:1: `cognito_identity_pool.p`: `accounts.example.com` is not a user pool issuer",
    );
    has(
        &run,
        "s.toml:11:1: `cognito_identity_pool_roles.a`: `arn:aws:iam::123456789012:user/someone` is not an IAM role ARN",
    );
    has(
        &run,
        "s.toml:12:1: `cognito_identity_pool_roles.a`: cognito_identity_pool.p gives guests no credentials",
    );
    has(
        &run,
        "s.toml:15:1: `cognito_identity_pool_roles.b`: cognito_identity_pool_roles.a already sets this pool's roles",
    );
}

#[test]
fn rest_apis_api_gateway_would_refuse() {
    let text = format!(
        "{HEADER}[api_gateway_rest_api.api]\nname = \"v\"\n\
         routes = [\n  {{ path = \"/patients\", method = \"GET\", authorizer = \"cognito\", integration = {{ type = \"MOCK\" }} }},\n\
         {{ path = \"/health\", method = \"GET\", integration = {{ type = \"HTTP_PROXY\" }} }},\n]\n\
         stage = {{ name = \"prod\", throttling_rate_limit = 2000, throttling_burst_limit = 500 }}\n\n\
         [api_gateway_account.a]\ncloudwatch_role_arn = \"arn:aws:iam::123456789012:role/a\"\n\n\
         [api_gateway_account.b]\ncloudwatch_role_arn = \"arn:aws:iam::123456789012:role/b\"\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    // Burst below rate, at the `stage` line.
    has(
        &run,
        "s.toml:11:1: `api_gateway_rest_api.api`: the stage's throttling burst (500) is below its rate (2000)",
    );
    // A route naming an authorizer nobody declared, at the `routes` line.
    has(
        &run,
        "s.toml:7:1: `api_gateway_rest_api.api`: GET /patients names the authorizer \"cognito\", which is not declared",
    );
    has(
        &run,
        "s.toml:7:1: `api_gateway_rest_api.api`: GET /health: an HTTP_PROXY integration needs `uri`",
    );
    has(&run, "s.toml:16:");
    has(
        &run,
        "`api_gateway_account.b`: the account settings are already declared by `api_gateway_account.a`",
    );
}

#[test]
fn rest_api_paths_and_log_levels_api_gateway_does_not_have() {
    let text = format!(
        "{HEADER}[api_gateway_rest_api.api]\nname = \"v\"\n\
         routes = [{{ path = \"/a//b\", method = \"GET\", integration = {{ type = \"MOCK\" }} }}]\n\
         stage = {{ name = \"prod\", logging_level = \"DEBUG\" }}\n"
    );
    let run = plan_fails(&[("s.toml", &text)]);
    has(&run, "s.toml:7:");
    has(&run, "\"/a//b\" has an empty segment");
    has(&run, "s.toml:8:");
    has(&run, "logging_level: \"DEBUG\" is not allowed");
}
