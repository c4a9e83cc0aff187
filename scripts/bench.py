"""Benchmark of reconcile against the local emulator: apply, no-op plan and
destroy of generated stacks of growing size, with wall time, AWS calls and peak
RSS of each command. Run through scripts/bench.sh, which starts and stops moto.

    .venv/bin/python scripts/bench.py [N ...]

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

Environment: RECONCILE_BENCH_PORT (default 5070): where moto listens;
CARGO_TARGET_DIR is honoured by cargo.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
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
    """Builds the binary (release unless told otherwise) and finds it through cargo metadata."""
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
        text = '[stack]\nname = "scale"\nregion = "us-east-1"\n\n'
        # Names of one length: none is a prefix of another, so a log group's
        # read (DescribeLogGroups by name prefix) answers one group, not many.
        text += "".join(f'[log_group.g{i}]\nname = "/bench/scale/g{i:05d}"\n\n' for i in range(n))
        work = scratch(f"scale-{n}", {"desired-state/s.toml": text})
        try:
            print(f"state scale: apply of {n} log groups ...", file=sys.stderr)
            cpu, kib, wall = run_rusage(binary, work, ["apply", "desired-state/s.toml", "--auto-approve"])
            rows.append((n, cpu, 1000 * cpu / n, kib / n, wall))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def main(argv):
    try:
        sizes = [int(a) for a in argv] or list(DEFAULT_SIZES)
    except ValueError:
        die("usage: bench.py [N ...]  (N = number of subnets)")
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
        rows = targets(binary)
        print()
        print("| target | measured | wanted | met |")
        print("|---|---:|---:|:---:|")
        for what, measured, wanted, met in rows:
            print(f"| {what} | {measured} | {wanted} | {'yes' if met else 'NO'} |")
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


if __name__ == "__main__":
    main(sys.argv[1:])
