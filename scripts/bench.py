"""Benchmark of reconcile against the local emulator: apply, no-op plan and
destroy of generated stacks of growing size, with wall time, AWS calls and peak
RSS of each command. Run through scripts/bench.sh, which starts and stops moto.

    .venv/bin/python scripts/bench.py [N ...]
    .venv/bin/python scripts/bench.py team [applies] [watch]

N is the number of subnets (default 10 50 200); each stack also has one VPC
and N//5 security groups with one ingress rule each. Standard library only.

After the size table, a second table checks the targets that concern AWS
itself, through a proxy (scripts/bench_proxy.py) that adds latency and answers
with AWS's throttling errors: a wide stack's default apply against
`--parallelism 1`, the whole Proxy Smart system under random and token-bucket
throttling against its unthrottled time, and the AWS calls of its no-op plan.
RECONCILE_BENCH_TARGETS=0 skips that table.

A last table measures how state scales: applies of generated stacks of log
groups (RECONCILE_BENCH_SCALE resources each, default "500 2000 8000"; "0"
skips), with reconcile's own CPU time and the bytes it wrote to disk, per
resource, and whether both stay flat (within 30%) from the smallest to the
largest.

Two tables then measure team work on the S3 state backend (RECONCILE_BENCH_TEAM=0
skips them; `bench.py team` runs only them, `bench.py team applies` or
`bench.py team watch` only one):

- Two applies: two `apply` of one stack of 200 log groups with
  `state = "s3://..."`, started at the same moment: which ran, how fast the
  other was refused and whether its message names the holder. Then an apply
  SIGKILLed mid-run and the next apply (both with RECONCILE_LEASE_SECONDS=5):
  how long it waited before taking the dead run's lease over, and whether it
  finished without `state unlock`, with as many log groups in AWS as the stack
  declares.
- Three watch replicas (`watch --remediate --interval 3s`) of one stack on S3
  state: the lease holder is SIGKILLed, a log group's retention is changed out
  of band, and the table says when a survivor took the lease over, when and by
  whom the drift was repaired, and how many `remediated` events it caused.

These use boto3 from the emulator's virtualenv; the rest is standard library.

Environment: RECONCILE_BENCH_PORT (default 5070): where moto listens;
CARGO_TARGET_DIR is honoured by cargo; RECONCILE_BENCH_BINARY=PATH measures
that binary and builds nothing.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_proxy import Proxy  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = int(os.environ.get("RECONCILE_BENCH_PORT", "5070"))
ENDPOINT = f"http://127.0.0.1:{PORT}"
TIME = "/usr/bin/time"
DEFAULT_SIZES = (10, 50, 200)


def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(1)


# What users run is the release build; RECONCILE_BENCH_PROFILE=debug measures
# the test build instead (no extra compile when only that one is warm).
PROFILE = os.environ.get("RECONCILE_BENCH_PROFILE", "release")


def build():
    """Builds the binary (release unless told otherwise) and finds it through cargo metadata,
    or takes RECONCILE_BENCH_BINARY as it is."""
    given = os.environ.get("RECONCILE_BENCH_BINARY")
    if given:
        if not os.access(given, os.X_OK):
            die(f"RECONCILE_BENCH_BINARY={given} is not an executable")
        return os.path.abspath(given)
    flags = ["--release"] if PROFILE == "release" else []
    subprocess.run(["cargo", "build", "--quiet", "--bin", "reconcile", *flags], cwd=ROOT, check=True)
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    target = json.loads(meta.stdout)["target_directory"]
    binary = os.path.join(target, "release" if PROFILE == "release" else "debug", "reconcile")
    if not os.access(binary, os.X_OK):
        die(f"no binary at {binary}")
    return binary


def reset_moto():
    req = urllib.request.Request(f"{ENDPOINT}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status != 200:
            die(f"moto reset answered {r.status}")


def stack_toml(name, n):
    """One VPC, n /24 subnets alternating us-east-1a/b, n//5 security groups."""
    if not 1 <= n <= 256:
        die(f"{n} subnets do not fit a /16 in /24s (1..256)")
    out = [
        "[stack]",
        f'name = "{name}"',
        'region = "us-east-1"',
        'tags = { Project = "bench" }',
        "",
        "[vpc.main]",
        'cidr_block = "10.0.0.0/16"',
        "",
    ]
    for i in range(n):
        az = "us-east-1a" if i % 2 == 0 else "us-east-1b"
        out += [
            f"[subnet.s{i}]",
            'vpc_id = "${vpc.main.id}"',
            f'cidr_block = "10.0.{i}.0/24"',
            f'availability_zone = "{az}"',
            "",
        ]
    for i in range(n // 5):
        out += [
            f"[security_group.g{i}]",
            f'name = "{name}-g{i}"',
            'vpc_id = "${vpc.main.id}"',
            f'ingress = [{{ protocol = "tcp", from_port = {1000 + i}, to_port = {1000 + i}, '
            f'cidr_block = "10.0.{i}.0/24" }}]',
            "",
        ]
    return "\n".join(out), 1 + n + n // 5


TOTAL = re.compile(r"^\s*total\s+(\d+)\s*$")


def aws_calls(stdout):
    """The `total` line of the "AWS calls by service and operation" table."""
    lines = stdout.splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.startswith("AWS calls by service and operation"))
    except StopIteration:
        return None
    for l in lines[start + 1 :]:
        m = TOTAL.match(l)
        if m:
            return int(m.group(1))
    return None


def run(binary, work, args, want_code=0):
    """Runs reconcile under /usr/bin/time; returns (seconds, calls, max RSS KiB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time", dir=work) as tf:
        p = subprocess.run(
            [TIME, "-f", "%M %e", "-o", tf.name, binary, *args],
            cwd=work,
            capture_output=True,
            text=True,
        )
        measured = tf.read().strip().splitlines()
    if p.returncode != want_code:
        sys.stderr.write(p.stdout + p.stderr)
        die(f"`reconcile {' '.join(args)}` exited {p.returncode}, expected {want_code}")
    # The last line is ours (earlier lines would be "Command exited with ...").
    rss_kib, secs = measured[-1].split()
    calls = aws_calls(p.stdout)
    if calls is None:
        sys.stderr.write(p.stdout)
        die(f"no AWS call table in the output of `reconcile {' '.join(args)}`")
    return float(secs), calls, int(rss_kib)


def bench(binary, n, label="bench"):
    name = f"bench-{n}"
    text, resources = stack_toml(name, n)
    work = tempfile.mkdtemp(prefix=f"reconcile-bench-{n}.")
    try:
        os.makedirs(os.path.join(work, "desired-state"))
        path = os.path.join("desired-state", f"{name}.toml")
        with open(os.path.join(work, path), "w") as f:
            f.write(text)
        reset_moto()
        print(f"{label}: {resources} resources ({n} subnets, {n // 5} security groups) ...", file=sys.stderr)
        apply = run(binary, work, ["apply", path, "--auto-approve", "--timings"])
        plan = run(binary, work, ["plan", path, "--detailed-exitcode", "--timings"], want_code=0)
        destroy = run(binary, work, ["destroy", path, "--auto-approve", "--timings"])
        peak = max(apply[2], plan[2], destroy[2])
        return resources, apply, plan, destroy, peak
    finally:
        shutil.rmtree(work, ignore_errors=True)


def wide_toml(n):
    """One VPC and n subnets that all depend on it and on nothing else."""
    text, _ = stack_toml("wide", n)
    return text.split("[security_group.")[0], 1 + n


def timed_apply(binary, work, path, endpoint, extra=()):
    args = ["--endpoint-url", endpoint, "apply", path, "--auto-approve", "--timings", *extra]
    secs, calls, _ = run(binary, work, args)
    return secs, calls


def scratch(prefix, files):
    """A work directory with `files` ({relative path: text or source dir}) under it."""
    work = tempfile.mkdtemp(prefix=f"reconcile-bench-{prefix}.")
    for rel, src in files.items():
        dest = os.path.join(work, rel)
        if os.path.isdir(src):
            shutil.copytree(src, dest)
        else:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "w") as f:
                f.write(src)
    return work


def targets(binary):
    """Rows of (what, measured, target, met)."""
    rows = []
    # 1. Width: 1 VPC and 48 subnets, 100 ms added to every AWS call.
    text, _ = wide_toml(48)
    times = {}
    for label, extra in (("default", ()), ("parallelism 1", ("--parallelism", "1"))):
        reset_moto()
        work = scratch("wide", {"desired-state/wide.toml": text})
        proxy = Proxy(PORT, latency_ms=100)
        try:
            print(f"targets: wide stack, 100 ms a call, {label} ...", file=sys.stderr)
            times[label] = timed_apply(binary, work, "desired-state/wide.toml", proxy.url, extra)[0]
        finally:
            proxy.stop()
            shutil.rmtree(work, ignore_errors=True)
    ratio = times["parallelism 1"] / times["default"]
    rows.append(
        (
            f"wide stack (49 resources, +100 ms a call): default {times['default']:.1f} s, "
            f"--parallelism 1 {times['parallelism 1']:.1f} s",
            f"{ratio:.1f}x faster",
            ">= 20x",
            ratio >= 20,
        )
    )

    # 2. Proxy Smart, whole system, 20 ms added to every call.
    seed = os.path.join(ROOT, "desired-state", "proxy-smart")
    results = {}
    noop_calls = None
    for label, kw in (
        ("unthrottled", {}),
        ("30% of calls throttled", {"throttle_fraction": 0.3}),
        ("token bucket per service (10/s, burst 10)", {"bucket": (10.0, 10)}),
    ):
        reset_moto()
        work = scratch("proxy-smart", {"desired-state/proxy-smart": seed})
        proxy = Proxy(PORT, latency_ms=20, **kw)
        try:
            print(f"targets: Proxy Smart, {label} ...", file=sys.stderr)
            secs, calls = timed_apply(binary, work, "desired-state/proxy-smart", proxy.url)
            results[label] = (secs, calls, proxy.throttled)
            if noop_calls is None:
                noop_calls = run(
                    binary,
                    work,
                    ["plan", "desired-state/proxy-smart", "--detailed-exitcode", "--timings"],
                )[1]
        finally:
            proxy.stop()
            shutil.rmtree(work, ignore_errors=True)
    base = results["unthrottled"][0]
    for label, limit in (("30% of calls throttled", 4), ("token bucket per service (10/s, burst 10)", 2)):
        secs, calls, throttled = results[label]
        rows.append(
            (
                f"Proxy Smart apply, {label}: {secs:.1f} s against {base:.1f} s unthrottled "
                f"({throttled} throttled answers, {calls} calls)",
                f"{secs / base:.1f}x",
                f"<= {limit}x",
                secs / base <= limit,
            )
        )
    rows.append(("Proxy Smart no-op plan: AWS calls", str(noop_calls), "<= 30", noop_calls <= 30))
    return rows


# What a no-op plan costs per resource, by kind, against Terraform's refresh of
# the same resource (its AWS provider's read functions, counted by hand): a
# stack of N copies is applied, then planned, at two sizes; the difference
# divided by the difference in copies is the marginal cost of one more copy,
# whatever the plan spends once (the stack tag index, say).
PER_KIND = {
    "kms_key": (
        lambda i: (
            f'[kms_key.k{i}]\ndescription = "bench key {i}"\nenable_key_rotation = true\n'
            f"deletion_window_in_days = 7\n"
            "policy = '{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
            "\"Principal\":{\"AWS\":\"arn:aws:iam::123456789012:root\"},\"Action\":\"kms:*\","
            "\"Resource\":\"*\"}]}'\n"
        ),
        "4 (DescribeKey, GetKeyPolicy, GetKeyRotationStatus, ListResourceTags)",
    ),
    "s3_bucket": (
        lambda i: (
            f'[s3_bucket.b{i}]\nname = "per-kind-bucket-{i}"\nversioning = "Enabled"\n'
            'lifecycle_rules = [{ id = "expire", expiration_days = 90 }]\n'
        ),
        "about 15 (HeadBucket, GetBucketLocation, policy, ACL, CORS, website, versioning, "
        "accelerate, request payment, logging, lifecycle, replication, encryption, "
        "object lock, tagging)",
    ),
    "dynamodb_table": (
        lambda i: (
            f'[dynamodb_table.t{i}]\nname = "per-kind-table-{i}"\nhash_key = "id"\n'
            'attributes = [{ name = "id", type = "S" }]\npoint_in_time_recovery = true\n'
        ),
        "4 (DescribeTable, DescribeContinuousBackups, DescribeTimeToLive, ListTagsOfResource)",
    ),
    # Targets of DynamoDB tables: the emulator refuses an ECS target whose
    # service does not exist but does not check tables, so the stack holds
    # nothing else to observe.
    "appautoscaling_target": (
        lambda i: (
            f'[appautoscaling_target.t{i}]\nservice_namespace = "dynamodb"\n'
            f'resource_id = "table/per-kind-{i}"\n'
            'scalable_dimension = "dynamodb:table:ReadCapacityUnits"\nmin_capacity = 1\nmax_capacity = 10\n'
        ),
        "2 (DescribeScalableTargets, ListTagsForResource)",
    ),
    # Each policy with its target: the marginal cost is both kinds'.
    "appautoscaling_policy": (
        lambda i: (
            f'[appautoscaling_target.t{i}]\nservice_namespace = "dynamodb"\n'
            f'resource_id = "table/per-kind-{i}"\n'
            'scalable_dimension = "dynamodb:table:ReadCapacityUnits"\nmin_capacity = 1\nmax_capacity = 10\n\n'
            f'[appautoscaling_policy.p{i}]\nname = "per-kind-{i}"\nservice_namespace = "dynamodb"\n'
            f'resource_id = "${{appautoscaling_target.t{i}.resource_id}}"\n'
            f'scalable_dimension = "${{appautoscaling_target.t{i}.scalable_dimension}}"\n'
            'target_tracking = { target_value = 70, predefined_metric_type = "DynamoDBReadCapacityUtilization" }\n'
        ),
        "1 (DescribeScalingPolicies), plus its target's 2",
    ),
    "sns_topic": (
        lambda i: (
            f'[sns_topic.t{i}]\nname = "per-kind-topic-{i}"\ndisplay_name = "bench {i}"\n'
            f'subscriptions = [{{ protocol = "email", endpoint = "ops{i}@example.com" }}]\n'
        ),
        "3 (GetTopicAttributes, ListTagsForResource, GetSubscriptionAttributes per subscription: one here)",
    ),
    # Each attachment with its secret: the marginal cost is both kinds'.
    "secret_target_attachment": (
        lambda i: (
            f'[secret.s{i}]\nname = "per-kind-att-{i}"\nrecovery_window_in_days = 0\n'
            'generate = { template = { username = "app" }, key = "password" }\n\n'
            f'[secret_target_attachment.a{i}]\nsecret_id = "${{secret.s{i}.arn}}"\n'
            f'host = "db{i}.internal"\nport = 5432\nengine = "postgres"\ndb_instance_identifier = "db{i}"\n'
        ),
        "no Terraform resource (CloudFormation's SecretTargetAttachment); the nearest, "
        "aws_secretsmanager_secret_version, reads 1 GetSecretValue per resource",
    ),
    "cloudwatch_alarm": (
        lambda i: (
            f'[cloudwatch_alarm.a{i}]\nalarm_name = "per-kind-alarm-{i}"\nnamespace = "AWS/RDS"\n'
            f'metric_name = "CPUUtilization"\ndimensions = {{ DBInstanceIdentifier = "db{i}" }}\n'
            'statistic = "Average"\nperiod = 300\nevaluation_periods = 3\nthreshold = 80\n'
            'comparison_operator = "GreaterThanThreshold"\n'
        ),
        "2 (DescribeAlarms, ListTagsForResource)",
    ),
    # Each function with its own role: the marginal cost is both kinds'
    # (the role's is IAM's, the same for Terraform's aws_iam_role).
    "lambda_function": (
        lambda i: (
            f'[iam_role.r{i}]\nname = "per-kind-fn-{i}"\ntrusted_services = ["lambda.amazonaws.com"]\n\n'
            f'[lambda_function.f{i}]\nfunction_name = "per-kind-fn-{i}"\nruntime = "nodejs22.x"\n'
            f'handler = "index.handler"\nrole = "${{iam_role.r{i}.arn}}"\nmemory_size = 256\n'
            f'code = "{os.path.join(ROOT, "crates/reconcile/tests/conformance/function")}"\n'
            'environment = { MODE = "bench" }\n'
        ),
        "3 (GetFunction, ListVersionsByFunction, GetFunctionCodeSigningConfig), plus its role's",
    ),
    # Permissions of one function: reconcile reads its policy once for all.
    "lambda_permission": (
        lambda i: (
            (
                '[iam_role.r]\nname = "per-kind-perm"\ntrusted_services = ["lambda.amazonaws.com"]\n\n'
                '[lambda_function.f]\nfunction_name = "per-kind-perm"\nruntime = "nodejs22.x"\n'
                'handler = "index.handler"\nrole = "${iam_role.r.arn}"\n'
                f'code = "{os.path.join(ROOT, "crates/reconcile/tests/conformance/function")}"\n\n'
                if i == 0
                else ""
            )
            + f'[lambda_permission.p{i}]\nfunction = "${{lambda_function.f.function_name}}"\n'
            f'statement_id = "bench-{i}"\nprincipal = "events.amazonaws.com"\n'
            f'source_arn = "arn:aws:events:us-east-1:123456789012:rule/bench-{i}"\n'
        ),
        "1 (GetPolicy per permission)",
    ),
    "eventbridge_rule": (
        lambda i: (
            f'[eventbridge_rule.r{i}]\nname = "per-kind-rule-{i}"\nschedule_expression = "rate(1 day)"\n'
            f'targets = [{{ id = "t", arn = "arn:aws:sns:us-east-1:123456789012:bench-{i}" }}]\n'
        ),
        "3 (DescribeRule, ListTagsForResource, and ListTargetsByRule for its aws_cloudwatch_event_target)",
    ),
    "route53_zone": (
        lambda i: f'[route53_zone.z{i}]\nname = "per-kind-{i}.example.com"\ncomment = "bench {i}"\n',
        "2 (GetHostedZone, ListTagsForResource; plus ListResourceRecordSets for a private zone's name servers)",
    ),
    # Every record in one zone (declared with the first): the marginal cost of
    # a record is the share of one ListResourceRecordSets page of 300.
    "route53_record": (
        lambda i: (
            ('[route53_zone.z]\nname = "per-kind-records.example.com"\n\n' if i == 0 else "")
            + f'[route53_record.r{i}]\nzone_id = "${{route53_zone.z.id}}"\nname = "r{i}"\n'
            f'type = "A"\nttl = 300\nrecords = ["192.0.2.{i + 1}"]\n'
        ),
        "2 (GetHostedZone for the zone's name, then ListResourceRecordSets from the record's name, per record)",
    ),
    "cognito_user_pool": (
        lambda i: (
            f'[cognito_user_pool.p{i}]\nname = "per-kind-pool-{i}"\nusername_attributes = ["email"]\n'
            'mfa_configuration = "OPTIONAL"\nsoftware_token_mfa = true\n'
            'password_policy = { minimum_length = 12 }\n'
        ),
        "2 (DescribeUserPool, GetUserPoolMfaConfig)",
    ),
    # Each client with its own pool: the marginal cost is both kinds'.
    "cognito_user_pool_client": (
        lambda i: (
            f'[cognito_user_pool.p{i}]\nname = "per-kind-client-pool-{i}"\n\n'
            f'[cognito_user_pool_client.c{i}]\nuser_pool_id = "${{cognito_user_pool.p{i}.id}}"\n'
            f'name = "web-{i}"\nexplicit_auth_flows = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]\n'
        ),
        "1 (DescribeUserPoolClient), plus its pool's 2",
    ),
    "cognito_identity_pool": (
        lambda i: (
            f'[cognito_identity_pool.i{i}]\nname = "per kind identities {i}"\n'
            f"allow_unauthenticated_identities = true\n"
        ),
        "1 (DescribeIdentityPool)",
    ),
    # Each pool's roles with their own pool: the marginal cost is both kinds'.
    "cognito_identity_pool_roles": (
        lambda i: (
            f'[cognito_identity_pool.r{i}]\nname = "per kind roles {i}"\n\n'
            f'[cognito_identity_pool_roles.r{i}]\nidentity_pool_id = "${{cognito_identity_pool.r{i}.id}}"\n'
            f'authenticated_role = "arn:aws:iam::123456789012:role/per-kind-signed-in"\n'
        ),
        "1 (GetIdentityPoolRoles), plus its pool's 1",
    ),
    # A custom origin, so that the marginal cost is the distribution's alone.
    "cloudfront_distribution": (
        lambda i: (
            f'[cloudfront_distribution.d{i}]\ncomment = "bench {i}"\nprice_class = "PriceClass_100"\n'
            f'origins = [{{ id = "o", domain_name = "origin-{i}.example.com" }}]\n'
            'default_cache_behavior = { target_origin_id = "o", viewer_protocol_policy = "https-only", '
            'cache_policy_id = "658327ea-f89d-4fab-a63d-7e88639e58f6" }\n'
        ),
        "2 (GetDistribution, ListTagsForResource)",
    ),
    # Reconcile lists every control in one call a page of 100.
    "cloudfront_origin_access_control": (
        lambda i: f'[cloudfront_origin_access_control.o{i}]\nname = "per-kind-oac-{i}"\n',
        "1 (GetOriginAccessControl)",
    ),
    # Each policy with its own bucket: the marginal cost is both kinds'.
    "s3_bucket_policy": (
        lambda i: (
            f'[s3_bucket.b{i}]\nname = "per-kind-policy-{i}"\n\n'
            f'[s3_bucket_policy.p{i}]\nbucket = "${{s3_bucket.b{i}.id}}"\n'
            'policy = \'{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "s3:GetObject", '
            f'"Resource": "arn:aws:s3:::per-kind-policy-{i}/*"}}]}}\'\n'
        ),
        "1 (GetBucketPolicy), plus its bucket's",
    ),
    # One API with /health (GET, MOCK) and its `prod` stage. Terraform declares
    # each piece as a resource and refreshes each with its own call.
    "api_gateway_rest_api": (
        lambda i: (
            f'[api_gateway_rest_api.a{i}]\nname = "per-kind-api-{i}"\n'
            'routes = [{ path = "/health", method = "GET", integration = { type = "MOCK" } }]\n'
            'stage = { name = "prod", throttling_rate_limit = 100, throttling_burst_limit = 200 }\n'
        ),
        "9 (GetRestApi; GetResource, GetMethod, GetIntegration, GetMethodResponse and "
        "GetIntegrationResponse for /health GET; GetDeployment; GetStage for the stage and "
        "again for its method settings)",
    ),
}


def per_kind(binary, kinds=None, sizes=(5, 15)):
    """Rows of (kind, calls per resource, Terraform's)."""
    rows = []
    for kind, (one, terraform) in PER_KIND.items():
        if kinds and kind not in kinds:
            continue
        calls = []
        for n in sizes:
            reset_moto()
            text = f'[stack]\nname = "per-{kind.replace("_", "-")}"\nregion = "us-east-1"\n\n'
            text += "\n".join(one(i) for i in range(n))
            work = scratch(kind, {"desired-state/s.toml": text})
            try:
                print(f"per kind: {n} x {kind} ...", file=sys.stderr)
                run(binary, work, ["apply", "desired-state/s.toml", "--auto-approve", "--timings"])
                calls.append(
                    run(binary, work, ["plan", "desired-state/s.toml", "--detailed-exitcode", "--timings"])[1]
                )
            finally:
                shutil.rmtree(work, ignore_errors=True)
        per = (calls[1] - calls[0]) / (sizes[1] - sizes[0])
        rows.append((kind, f"{per:.1f}", f"{calls[0]} for {sizes[0]}, {calls[1]} for {sizes[1]}", terraform))
    return rows


def log_groups_toml(name, n, state=None, retention=None):
    """A stack of n log groups named /bench/<name>/gNNNNN, its state where `state` says."""
    text = f'[stack]\nname = "{name}"\nregion = "us-east-1"\n'
    if state:
        text += f'state = "{state}"\n'
    text += "\n"
    keep = f"retention_in_days = {retention}\n" if retention else ""
    # Names of one length: none is a prefix of another, so a log group's
    # read (DescribeLogGroups by name prefix) answers one group, not many.
    text += "".join(f'[log_group.g{i}]\nname = "/bench/{name}/g{i:05d}"\n{keep}\n' for i in range(n))
    return text


def run_rusage(binary, work, args):
    """Runs reconcile under /usr/bin/time; returns (CPU seconds, KiB written to disk, wall s)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time", dir=work) as tf:
        p = subprocess.run(
            [TIME, "-f", "%U %S %O %e", "-o", tf.name, binary, *args],
            cwd=work,
            capture_output=True,
            text=True,
        )
        measured = tf.read().strip().splitlines()
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        die(f"`reconcile {' '.join(args)}` exited {p.returncode}")
    user, system, blocks, wall = measured[-1].split()
    # GNU time's %O counts 512-byte blocks.
    return float(user) + float(system), int(blocks) / 2, float(wall)


def state_scale(binary, sizes):
    """Rows of (resources, CPU s, CPU ms per resource, KiB written per resource, wall s)."""
    rows = []
    for n in sizes:
        reset_moto()
        text = log_groups_toml("scale", n)
        work = scratch(f"scale-{n}", {"desired-state/s.toml": text})
        try:
            print(f"state scale: apply of {n} log groups ...", file=sys.stderr)
            cpu, kib, wall = run_rusage(binary, work, ["apply", "desired-state/s.toml", "--auto-approve"])
            rows.append((n, cpu, 1000 * cpu / n, kib / n, wall))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return rows


# Team work on the S3 state backend: leases between applies, and between
# watch replicas. Every process started here is killed before the function
# that started it returns, whatever happens.
STATE_BUCKET = "reconcile-bench-state"
STATE_PREFIX = "bench"


def boto3_clients():
    try:
        import boto3
    except ImportError:
        die("the team tables need boto3: run through scripts/bench.sh (or .venv/bin/python)")
    return boto3.client("s3"), boto3.client("logs")


def state_bucket(s3):
    """Resets the emulator and makes a versioned bucket for state, as a team would set it up."""
    reset_moto()
    s3.create_bucket(Bucket=STATE_BUCKET)
    s3.put_bucket_versioning(Bucket=STATE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return f"s3://{STATE_BUCKET}/{STATE_PREFIX}"


def lease_holder(s3, stack):
    """The holder written in the stack's lease object, or None when there is none."""
    try:
        got = s3.get_object(Bucket=STATE_BUCKET, Key=f"{STATE_PREFIX}/leases/{stack}.lease")
    except s3.exceptions.NoSuchKey:
        return None
    try:
        return json.loads(got["Body"].read())
    except ValueError:
        return {}


def count_log_groups(logs, name):
    n = 0
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=f"/bench/{name}/"):
        n += len(page["logGroups"])
    return n


def wait_for(what, ok, timeout, every=0.05):
    """Polls ok() until it answers something true; dies after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = ok()
        if got:
            return got
        if time.monotonic() > deadline:
            die(f"{what}: not within {timeout} s")
        time.sleep(every)


class Child:
    """A reconcile process whose output goes to files in `work`, its exit time noted."""

    def __init__(self, binary, work, args, label, env=None):
        self.label = label
        self.out_path = os.path.join(work, f"{label}.out")
        self.err_path = os.path.join(work, f"{label}.err")
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                [binary, *args], cwd=work, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
            )
        self.ended = None
        self._waiter = threading.Thread(target=self._wait, daemon=True)
        self._waiter.start()

    def _wait(self):
        self.proc.wait()
        self.ended = time.monotonic()

    @property
    def pid(self):
        return self.proc.pid

    def join(self, timeout):
        self._waiter.join(timeout)
        if self.ended is None:
            die(f"{self.label} (`reconcile` pid {self.pid}) still runs after {timeout} s")
        return self.proc.returncode

    def out(self):
        with open(self.out_path) as f:
            return f.read()

    def err(self):
        with open(self.err_path) as f:
            return f.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def completed(stdout):
    """What an apply's "Apply complete: ..." line says, or None."""
    for line in stdout.splitlines():
        if line.startswith("Apply complete: "):
            return line[len("Apply complete: ") :].rstrip(".")
    return None


def kill_all(children):
    for c in children:
        try:
            c.kill()
        except OSError:
            pass


def two_applies(binary, n=200):
    """Rows of (what, measured, wanted, met): two applies at once, then an
    apply SIGKILLed mid-run and the next one taking its lease over."""
    s3, logs = boto3_clients()
    stack = "bench-leases"
    path = "desired-state/leases.toml"
    rows = []
    children = []
    work = None
    try:
        # 1. Two applies started at the same moment.
        location = state_bucket(s3)
        work = scratch("leases", {path: log_groups_toml(stack, n, state=location)})
        print(f"team: two applies at once of {n} log groups, state in {location} ...", file=sys.stderr)
        env = dict(os.environ)
        env.pop("RECONCILE_LEASE_SECONDS", None)
        pair = [Child(binary, work, ["apply", path, "--auto-approve"], f"race{i}", env) for i in range(2)]
        children += pair
        codes = [c.join(600) for c in pair]
        ran = [c for c, rc in zip(pair, codes) if rc == 0]
        refused = [c for c, rc in zip(pair, codes) if rc != 0]
        if len(ran) != 1 or len(refused) != 1:
            for c in pair:
                sys.stderr.write(c.out()[-2000:] + c.err())
            rows.append(
                (
                    f"two applies at once: exit codes {codes[0]} and {codes[1]}",
                    "both ran" if not refused else "both refused",
                    "one runs, one is refused",
                    False,
                )
            )
            return rows
        winner, loser = ran[0], refused[0]
        message = next((l for l in loser.err().splitlines() if l.startswith("error:")), loser.err().strip())
        names = "is held by `reconcile apply`" in message and f"(pid {winner.pid} on " in message
        refused_after = loser.ended - loser.started
        done = completed(winner.out()) or "?"
        rows.append(
            (
                f"two applies started at once: the {'first' if winner is pair[0] else 'second'} "
                f"started ran ({done}), the other was refused after",
                f"{refused_after:.2f} s",
                "at once (<= 1 s)",
                refused_after <= 1.0,
            )
        )
        rows.append(
            (
                f"the refusal names the holder (pid {winner.pid}): {message.split(';')[0]}",
                "yes" if names else "no",
                "yes",
                names,
            )
        )

        # 2. An apply SIGKILLed mid-run; the next one waits its lease out.
        location = state_bucket(s3)
        lease = 5
        env = dict(os.environ, RECONCILE_LEASE_SECONDS=str(lease))
        print(f"team: apply SIGKILLed mid-run, then the next one (leases of {lease} s) ...", file=sys.stderr)
        killed = Child(binary, work, ["apply", path, "--auto-approve"], "killed", env)
        children.append(killed)
        wait_for("the first apply's lease object", lambda: lease_holder(s3, stack), 60)
        at_kill = wait_for(
            "a quarter of the log groups created",
            lambda: (lambda k: k if k >= n // 4 else 0)(count_log_groups(logs, stack)),
            120,
            every=0.2,
        )
        killed.kill()
        after = Child(binary, work, ["apply", path, "--auto-approve"], "after", env)
        children.append(after)
        wait_for(
            "the next apply taking the lease over",
            lambda: (lease_holder(s3, stack) or {}).get("pid") == after.pid or after.proc.poll() is not None,
            60,
        )
        waited = time.monotonic() - after.started
        rc = after.join(600)
        done = completed(after.out())
        if rc != 0 or done is None:
            sys.stderr.write(after.out()[-2000:] + after.err())
        in_aws = count_log_groups(logs, stack)
        listed = subprocess.run(
            [binary, "state", "list", "--stack", stack], cwd=work, capture_output=True, text=True
        )
        in_state = len(listed.stdout.splitlines()) if listed.returncode == 0 else None
        plan = subprocess.run(
            [binary, "plan", path, "--detailed-exitcode"], cwd=work, capture_output=True, text=True
        )
        rows.append(
            (
                f"apply SIGKILLed with {at_kill} of {n} log groups created; the next apply "
                f"waited before taking its {lease} s lease over",
                f"{waited:.1f} s",
                f"{lease} s to {lease + 1} s",
                lease <= waited <= lease + 1,
            )
        )
        rows.append(
            (
                f"the next apply finished without `state unlock` ({done or f'exit {rc}'})",
                "yes" if rc == 0 and done else "no",
                "yes",
                rc == 0 and done is not None,
            )
        )
        rows.append(
            (
                "log groups in AWS / declared / in state; then a no-op plan exits "
                f"{plan.returncode}",
                f"{in_aws} / {n} / {in_state}",
                "all equal, plan exits 0",
                in_aws == n == in_state and plan.returncode == 0,
            )
        )
        return rows
    finally:
        kill_all(children)
        if work:
            shutil.rmtree(work, ignore_errors=True)


def watch_replicas(binary, interval=3):
    """Rows of (what, measured, wanted, met): three `watch --remediate`
    replicas of one stack; the lease holder is SIGKILLed and a drift made."""
    s3, logs = boto3_clients()
    stack = "bench-watch"
    path = "desired-state/watch.toml"
    replicas = []
    work = None
    events = []  # (monotonic time, replica index, event)
    seen = threading.Condition()

    def read(i, child):
        with open(child.out_path) as f:
            while True:
                line = f.readline()
                if not line:
                    if child.proc.poll() is not None:
                        return
                    time.sleep(0.02)
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                with seen:
                    events.append((time.monotonic(), i, event))
                    seen.notify_all()

    def first(what, timeout, match):
        deadline = time.monotonic() + timeout
        with seen:
            while True:
                hit = next((e for e in events if match(*e)), None)
                if hit:
                    return hit
                left = deadline - time.monotonic()
                if left <= 0:
                    die(f"{what}: not within {timeout} s")
                seen.wait(left)

    try:
        location = state_bucket(s3)
        work = scratch("watch", {path: log_groups_toml(stack, 3, state=location, retention=7)})
        env = dict(os.environ)
        env.pop("RECONCILE_LEASE_SECONDS", None)
        subprocess.run(
            [binary, "apply", path, "--auto-approve"], cwd=work, check=True, capture_output=True, env=env
        )
        print(f"team: three watch replicas, --interval {interval}s, state in {location} ...", file=sys.stderr)
        args = [
            "watch", "desired-state", "--remediate", "--interval", f"{interval}s",
            "--log-format", "json", "--metrics-addr", "none",
        ]
        for i in range(3):
            child = Child(binary, work, args, f"replica{i + 1}", env)
            replicas.append(child)
            threading.Thread(target=read, args=(i, child), daemon=True).start()

        _, holder, _ = first("a replica taking the lease", 30, lambda t, i, e: e.get("event") == "lease_taken")
        # Let it renew once, as a holder in service would have.
        time.sleep(interval)
        replicas[holder].kill()
        killed_at = time.monotonic()
        group = f"/bench/{stack}/g00000"
        logs.put_retention_policy(logGroupName=group, retentionInDays=14)
        drift_at = time.monotonic()

        t_over, by, over = first(
            "a survivor taking the lease over",
            10 * interval,
            lambda t, i, e: t > killed_at and e.get("event") == "lease_taken",
        )
        t_fix, fixer, _ = first(
            "a survivor remediating",
            10 * interval,
            lambda t, i, e: t > drift_at and e.get("event") == "remediated",
        )
        # Any second repair of the same drift would come within two more cycles.
        time.sleep(2 * interval + 1)
        with seen:
            after = [(t, i, e) for t, i, e in events if t > drift_at]
        repairs = [(i, e) for t, i, e in after if e.get("event") == "remediated"]
        skipped = sum(1 for t, i, e in after if e.get("event") == "skipped")
        retention = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0].get("retentionInDays")
        lease_s = min(30, interval)
        takeover = t_over - killed_at
        repair = t_fix - drift_at
        # The lease is stale a lease duration after the kill at the latest;
        # a survivor should repair within two intervals of that.
        deadline = killed_at + lease_s + 2 * interval - drift_at
        return [
            (
                f"interval {interval} s, replica lease {lease_s} s; replica {holder + 1} took the "
                f"free lease first and was SIGKILLed {interval} s later; a survivor took it over after",
                f"{takeover:.1f} s (replica {by + 1})",
                f"<= {2 * interval} s (two intervals)",
                takeover <= 2 * interval and by != holder and over.get("took_over_from") is not None,
            ),
            (
                f"retention of {group} changed 7 -> 14 days out of band right after the kill: "
                f"repaired by replica {fixer + 1} (pid {replicas[fixer].pid}) after",
                f"{repair:.1f} s",
                f"<= {deadline:.1f} s (two intervals after the lease lapses)",
                repair <= deadline,
            ),
            (
                f"`remediated` events for that drift across the two survivors ({skipped} `skipped`: "
                f"a survivor leaving it to the lease holder); retention now {retention}",
                str(len(repairs)),
                "exactly 1, retention 7",
                len(repairs) == 1 and retention == 7,
            ),
        ]
    finally:
        kill_all(replicas)
        if work:
            shutil.rmtree(work, ignore_errors=True)


def print_targets(title, rows):
    print()
    print(f"| {title} | measured | wanted | met |")
    print("|---|---:|---:|:---:|")
    for what, measured, wanted, met in rows:
        print(f"| {what} | {measured} | {wanted} | {'yes' if met else 'NO'} |")


TEAM = {
    "applies": ("two applies on S3 state (200 log groups)", two_applies),
    "watch": ("three watch replicas on S3 state", watch_replicas),
}


def team(binary, parts):
    for part in parts:
        title, measure = TEAM[part]
        print_targets(title, measure(binary))


def main(argv):
    usage = "usage: bench.py [N ...]  (N = number of subnets) | bench.py team [applies] [watch]"
    if argv[:1] == ["team"]:
        # Only the team tables (all of them unless named).
        parts = argv[1:] or list(TEAM)
        if any(p not in TEAM for p in parts):
            die(usage)
        sizes = []
    else:
        try:
            sizes = [int(a) for a in argv] or list(DEFAULT_SIZES)
        except ValueError:
            die(usage)
        parts = list(TEAM) if os.environ.get("RECONCILE_BENCH_TEAM", "1") != "0" else []
    if not os.access(TIME, os.X_OK):
        die(f"{TIME} is missing (GNU time: apt-get install time)")
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=ENDPOINT,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
        NO_COLOR="1",
    )
    os.environ.pop("AWS_PROFILE", None)
    binary = build()
    if not sizes:
        team(binary, parts)
        return
    # moto initialises each service lazily on its first call (seconds for EC2):
    # a throwaway run keeps that out of the first measurement.
    bench(binary, 5, label="warm-up (not measured)")
    rows = [bench(binary, n) for n in sizes]
    print(
        "| resources | apply s | apply AWS calls | no-op plan s | no-op plan AWS calls "
        "| destroy s | destroy calls | peak RSS MiB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for resources, (a_s, a_c, _), (p_s, p_c, _), (d_s, d_c, _), peak in rows:
        print(
            f"| {resources} | {a_s:.2f} | {a_c} | {p_s:.2f} | {p_c} "
            f"| {d_s:.2f} | {d_c} | {peak / 1024:.1f} |"
        )
    print()
    print("| kind | no-op plan AWS calls per resource | measured | Terraform per resource |")
    print("|---|---:|---|---|")
    for kind, per, measured, terraform in per_kind(binary):
        print(f"| {kind} | {per} | {measured} | {terraform} |")
    if os.environ.get("RECONCILE_BENCH_TARGETS", "1") != "0":
        print_targets("target", targets(binary))
    scale = [int(x) for x in os.environ.get("RECONCILE_BENCH_SCALE", "500 2000 8000").split() if x != "0"]
    if scale:
        rows = state_scale(binary, scale)
        print()
        print("| apply of | reconcile CPU s | CPU ms per resource | KiB written per resource | wall s |")
        print("|---:|---:|---:|---:|---:|")
        for n, cpu, per, kib, wall in rows:
            print(f"| {n} log groups | {cpu:.1f} | {per:.2f} | {kib:.1f} | {wall:.1f} |")
        if len(rows) > 1:
            first, last = rows[0], rows[-1]
            for what, a, b in (("CPU", first[2], last[2]), ("bytes written", first[3], last[3])):
                growth = b / a - 1
                met = "yes" if abs(growth) <= 0.3 else "NO"
                print(
                    f"\n{what} per resource from {first[0]} to {last[0]}: {growth:+.0%} "
                    f"(target: flat within 30%; met: {met})"
                )
    team(binary, parts)


if __name__ == "__main__":
    main(sys.argv[1:])
