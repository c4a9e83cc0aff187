#!/usr/bin/env bash
# The end-to-end demo: the Proxy Smart seed (network, database and secrets, Keycloak
# and the backend on Fargate behind HTTPS load balancers with WAF, their names in a
# Route 53 zone made outside the stack), planned and applied against a
# local AWS emulator (moto), then changed behind reconcile's back with boto3, the
# drift caught by `watch --once` and `plan`, and repaired by `apply`.
#
#   bash scripts/demo.sh
#
# Works on a fresh machine with Rust and Python 3: installs moto into ./.venv if
# needed (scripts/emulator.sh), builds the binary, and works in a scratch copy of
# desired-state/proxy-smart with its own state directory, so the repository's
# state/ is never touched. Exits non-zero if any expectation fails.
#
# Environment: RECONCILE_DEMO_PORT (default 5050), CARGO_TARGET_DIR (honoured by
# cargo), RECONCILE_VENV (the virtualenv holding moto and boto3; default ./.venv).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PORT="${RECONCILE_DEMO_PORT:-5050}"
VENV="${RECONCILE_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
ENDPOINT="http://127.0.0.1:$PORT"

export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL="$ENDPOINT"
# No stray profile or IMDS lookups on a developer's machine.
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true

if [ -t 1 ]; then
  BOLD=$'\e[1m'; GREEN=$'\e[32m'; RED=$'\e[31m'; RESET=$'\e[0m'
else
  BOLD=''; GREEN=''; RED=''; RESET=''
fi
STEP=0
section() {
  STEP=$((STEP + 1))
  printf '\n%s==> %d. %s%s\n\n' "$BOLD" "$STEP" "$*" "$RESET"
}
ok() { printf '%s✔ %s%s\n' "$GREEN" "$*" "$RESET"; }
FAILURES=0
fail() {
  printf '%s✘ %s%s\n' "$RED" "$*" "$RESET" >&2
  FAILURES=$((FAILURES + 1))
}
die() {
  fail "$*"
  exit 1
}

# --- emulator -----------------------------------------------------------------
STARTED_MOTO=0
WORK=""
cleanup() {
  local rc=$?
  if [ "$STARTED_MOTO" = 1 ]; then
    scripts/emulator.sh stop "$PORT" >/dev/null || echo "warning: could not stop the moto started on port $PORT" >&2
  fi
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section "Emulator: moto on $ENDPOINT"
if curl -fsS "$ENDPOINT/moto-api/" >/dev/null 2>&1; then
  echo "moto already answering on $ENDPOINT; using it (it is left running at exit)"
  # scripts/emulator.sh install is a no-op when the venv is complete.
  RECONCILE_VENV="$VENV" scripts/emulator.sh install
else
  RECONCILE_VENV="$VENV" scripts/emulator.sh start "$PORT"
  STARTED_MOTO=1
fi
"$PY" -c 'import boto3' || die "boto3 is missing from $VENV"

section "Build: cargo build"
cargo build --quiet --bin reconcile
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/reconcile"
[ -x "$BIN" ] || die "no binary at $BIN"
echo "binary: $BIN"

# --- scratch copy ---------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/reconcile-demo.XXXXXX")"
mkdir -p "$WORK/desired-state"
cp -R desired-state/proxy-smart "$WORK/desired-state/proxy-smart"
STACK="$WORK/desired-state/proxy-smart"
STATE="$WORK/state"
echo "working in $WORK (stack $STACK, state $STATE)"

section "Reset the emulator: POST /moto-api/reset"
curl -fsS -X POST "$ENDPOINT/moto-api/reset" >/dev/null
ok "moto is empty"

section "The zone maxhealth.tech, which exists outside the stack (made with boto3)"
# The seed imports it as CDK's fromHostedZoneAttributes does: its id is an input.
ZONE_ID="$("$PY" - <<'PY'
import boto3
z = boto3.client("route53").create_hosted_zone(Name="maxhealth.tech", CallerReference="demo-maxhealth")
print(z["HostedZone"]["Id"].split("/")[-1])
PY
)" || die "could not make the hosted zone"
[ -n "$ZONE_ID" ] || die "no hosted zone id"
export RECONCILE_INPUT_HOSTED_ZONE_ID="$ZONE_ID"
ok "zone $ZONE_ID, passed as the input hosted_zone_id (RECONCILE_INPUT_HOSTED_ZONE_ID)"

# Runs reconcile with the demo's state dir, showing the command line.
rc_of() {
  local rc=0
  printf '%s$ reconcile %s%s\n' "$BOLD" "$*" "$RESET"
  (cd "$WORK" && "$BIN" --state-dir "$STATE" "$@") || rc=$?
  return "$rc"
}
# Runs reconcile and checks its exit code.
expect() {
  local want=$1
  shift
  local rc=0
  rc_of "$@" || rc=$?
  if [ "$rc" = "$want" ]; then
    ok "exit code $rc, as expected"
  else
    fail "\`reconcile $*\` exited $rc, expected $want"
  fi
  return 0
}

section "Validate: parse, type-check and build the graph (no AWS call)"
expect 0 validate "$STACK"
[ "$FAILURES" = 0 ] || die "the stack does not validate; stopping"

section "Plan: everything is to be created"
expect 0 plan "$STACK"

section "Apply: create the whole Proxy Smart system"
expect 0 apply "$STACK" --auto-approve --timings
[ "$FAILURES" = 0 ] || die "apply failed; stopping"

section "Plan again: AWS matches the TOML, so no changes (exit 0)"
expect 0 plan "$STACK" --detailed-exitcode

section "What really exists, seen by boto3 (an independent client)"
if "$PY" - <<'PY'; then ok "1 VPC, 6 subnets, 1 IGW, 1 EIP, 1 NAT, 3 route tables, 4 security groups"; else fail "the resources boto3 sees are not what the stack declares"; fi
import boto3
ec2 = boto3.client("ec2")
flt = [{"Name": "tag:reconcile:stack", "Values": ["proxy-smart"]}]
vpcs = ec2.describe_vpcs(Filters=flt)["Vpcs"]
subnets = ec2.describe_subnets(Filters=flt)["Subnets"]
igws = ec2.describe_internet_gateways(Filters=flt)["InternetGateways"]
eips = ec2.describe_addresses(Filters=flt)["Addresses"]
nats = [n for n in ec2.describe_nat_gateways(Filter=flt)["NatGateways"] if n["State"] != "deleted"]
rts = ec2.describe_route_tables(Filters=flt)["RouteTables"]
sgs = ec2.describe_security_groups(Filters=flt)["SecurityGroups"]
print(f"  vpcs {len(vpcs)}, subnets {len(subnets)}, internet gateways {len(igws)}, "
      f"elastic ips {len(eips)}, nat gateways {len(nats)}, route tables {len(rts)}, "
      f"security groups {len(sgs)}")
for s in sorted(subnets, key=lambda s: s["CidrBlock"]):
    name = next(t["Value"] for t in s["Tags"] if t["Key"] == "reconcile:address")
    print(f"  {name:<20} {s['CidrBlock']:<14} {s['AvailabilityZone']}  public ip on launch: {s['MapPublicIpOnLaunch']}")
want = (1, 6, 1, 1, 1, 3, 4)
got = (len(vpcs), len(subnets), len(igws), len(eips), len(nats), len(rts), len(sgs))
assert got == want, f"expected {want}, found {got}"
PY

section "The Route 53 records, seen by boto3: two aliases and two validation records"
if "$PY" - <<'PY'; then ok "auth and api aliases to the load balancers, and both certificates' validation records"; else fail "the records boto3 sees are not what the stack declares"; fi
import boto3, os
r53 = boto3.client("route53")
sets = r53.list_resource_record_sets(HostedZoneId=os.environ["RECONCILE_INPUT_HOSTED_ZONE_ID"])["ResourceRecordSets"]
for r in sets:
    target = r.get("AliasTarget", {}).get("DNSName") or ", ".join(v["Value"] for v in r.get("ResourceRecords", []))
    print(f"  {r['Name']:<45} {r['Type']:<5} {target[:70]}")
have = {(r["Name"].rstrip("."), r["Type"]) for r in sets}
assert ("auth.maxhealth.tech", "A") in have and ("api.auth.maxhealth.tech", "A") in have, have
assert sum(1 for r in sets if r["Type"] == "CNAME") == 2, "expected two validation records"
PY

section "Out-of-band change with boto3: SSH open to the world on the db group, DNS hostnames off"
"$PY" - <<'PY' || die "could not make the out-of-band change"
import boto3
ec2 = boto3.client("ec2")
def by_address(addr):
    return [{"Name": "tag:reconcile:stack", "Values": ["proxy-smart"]},
            {"Name": "tag:reconcile:address", "Values": [addr]}]
(sg,) = ec2.describe_security_groups(Filters=by_address("security_group.db"))["SecurityGroups"]
ec2.authorize_security_group_ingress(
    GroupId=sg["GroupId"],
    IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "debugging, remove me"}]}],
)
print(f"  {sg['GroupId']} (security_group.db): + ingress tcp 22 from 0.0.0.0/0")
(vpc,) = ec2.describe_vpcs(Filters=by_address("vpc.main"))["Vpcs"]
ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], EnableDnsHostnames={"Value": False})
print(f"  {vpc['VpcId']} (vpc.main): enable_dns_hostnames -> false")
PY

section "The drift daemon, one cycle: reconcile watch --once reports it (exit 2)"
expect 2 watch "$STACK" --once

section "Plan: the drift is caught (exit 2)"
PLAN_OUT="$WORK/drift-plan.txt"
rc=0
rc_of plan "$STACK" --detailed-exitcode >"$PLAN_OUT" || rc=$?
cat "$PLAN_OUT"
if [ "$rc" = 2 ]; then
  ok "exit code 2: changes present"
else
  fail "plan --detailed-exitcode exited $rc, expected 2"
fi
grep -q "security_group.db" "$PLAN_OUT" || fail "the plan does not mention security_group.db"
grep -q "vpc.main" "$PLAN_OUT" || fail "the plan does not mention vpc.main"
grep -q "enable_dns_hostnames" "$PLAN_OUT" || fail "the plan does not show enable_dns_hostnames"
grep -Eq "\b22\b" "$PLAN_OUT" || fail "the plan does not show the port 22 rule"

section "Apply: repair the drift"
expect 0 apply "$STACK" --auto-approve

section "Check with boto3: port 22 is gone, DNS hostnames are back on"
if "$PY" - <<'PY'; then ok "the drift is repaired in AWS"; else fail "the drift was not repaired in AWS"; fi
import boto3
ec2 = boto3.client("ec2")
def by_address(addr):
    return [{"Name": "tag:reconcile:stack", "Values": ["proxy-smart"]},
            {"Name": "tag:reconcile:address", "Values": [addr]}]
(sg,) = ec2.describe_security_groups(Filters=by_address("security_group.db"))["SecurityGroups"]
rules = [(p["IpProtocol"], p.get("FromPort"), p.get("ToPort"),
          [r["CidrIp"] for r in p.get("IpRanges", [])],
          [g["GroupId"] for g in p.get("UserIdGroupPairs", [])]) for p in sg["IpPermissions"]]
for r in rules:
    print(f"  security_group.db ingress: {r}")
assert not any(r[1] == 22 for r in rules), "port 22 is still open"
assert sum(len(r[4]) for r in rules if r[1] == 5432) == 2, "the two 5432 rules are not both there"
(vpc,) = ec2.describe_vpcs(Filters=by_address("vpc.main"))["Vpcs"]
on = ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
print(f"  vpc.main enable_dns_hostnames: {on}")
assert on, "DNS hostnames are still off"
PY

section "Plan once more: nothing left to do (exit 0)"
expect 0 plan "$STACK" --detailed-exitcode

echo
if [ "$FAILURES" = 0 ]; then
  printf '%sDemo complete: created the Proxy Smart system, caught the drift, repaired it.%s\n' "$BOLD$GREEN" "$RESET"
else
  printf '%sDemo FAILED: %d expectation(s) not met (see ✘ above).%s\n' "$BOLD$RED" "$FAILURES" "$RESET" >&2
  exit 1
fi
