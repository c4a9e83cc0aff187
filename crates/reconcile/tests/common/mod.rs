//! Test support: a private moto server per test, an independent AWS SDK client to
//! check what really exists, and a runner for the real `reconcile` binary.
#![allow(dead_code)]

pub mod proxy;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";

/// A moto server on a free loopback port, killed when dropped.
pub struct Moto {
    pub url: String,
    pub port: u16,
    child: Child,
}

fn venv() -> PathBuf {
    std::env::var_os("RECONCILE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(".venv"))
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// Whether the server `child` says, within 30 s, that it listens on `port`
/// (werkzeug's "Running on" line); `false` when it exits first. Its log is
/// read to the end by a thread of its own, so that the pipe never fills.
fn bound(child: &mut Child, port: u16) -> bool {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let running = format!("Running on http://127.0.0.1:{port}");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains(&running) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).is_ok()
}

impl Moto {
    pub fn start() -> Moto {
        set_fake_credentials();
        let bin = venv().join("bin/moto_server");
        assert!(
            bin.exists(),
            "{} is missing: run `scripts/emulator.sh install` first",
            bin.display()
        );
        // moto_server with the identity pool role calls moto lacks, as scripts/emulator.sh runs it.
        let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/moto_server.py");
        // A free port may be taken by another test's server before ours binds
        // it; then ours exits and the other would answer our health check. So
        // the server counts as ours only once it says it bound the port, and a
        // server that exits first is started again on another port.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new(venv().join("bin/python"))
                .arg(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                // AWS-managed IAM policies exist in every real account; moto loads them on request.
                .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start moto_server");
            if !bound(&mut child, port) {
                let _ = child.kill();
                let _ = child.wait();
                continue;
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if http_get(port, "/moto-api/")
                    .is_some_and(|b| b.starts_with("HTTP/1.0 200") || b.starts_with("HTTP/1.1 200"))
                {
                    return Moto {
                        url: format!("http://127.0.0.1:{port}"),
                        port,
                        child,
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("moto_server did not answer on port {port} within 30 s");
        }
        panic!("moto_server could not bind a free port in 5 tries");
    }

    /// SDK configuration independent of reconcile's own, for clients that
    /// check what exists and make out-of-band changes.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&self.url)
            .load()
            .await
    }

    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk().await)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn set_fake_credentials() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", REGION);
    std::env::remove_var("AWS_PROFILE");
}

/// A scratch project directory: `desired-state/` and `state/` inside it.
pub struct Project {
    pub dir: tempfile::TempDir,
    /// Environment every run of the binary gets on top (inputs, say).
    env: std::cell::RefCell<Vec<(String, String)>>,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("desired-state")).unwrap();
        Project {
            dir,
            env: Default::default(),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// Writes `desired-state/<rel>`.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join("desired-state").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
    /// Sets an environment variable for every later run of the binary.
    pub fn set_env(&self, key: &str, value: &str) {
        self.env
            .borrow_mut()
            .push((key.to_string(), value.to_string()));
    }
    /// Makes the hosted zone maxhealth.tech that the Proxy Smart seed imports
    /// (it exists outside the stack) with an independent client, and passes
    /// its id to every later run as the seed's `hosted_zone_id` input.
    pub async fn maxhealth_zone(&self, moto: &Moto) -> String {
        let r53 = aws_sdk_route53::Client::new(&moto.sdk().await);
        let out = r53
            .create_hosted_zone()
            .name("maxhealth.tech")
            .caller_reference(format!("seed-{}", moto.port))
            .send()
            .await
            .expect("create the zone maxhealth.tech");
        let id = out
            .hosted_zone()
            .unwrap()
            .id()
            .trim_start_matches("/hostedzone/")
            .to_string();
        self.set_env("RECONCILE_INPUT_HOSTED_ZONE_ID", &id);
        id
    }
    /// Copies the repository's `desired-state/<name>` seed stack into the project.
    pub fn copy_seed(&self, name: &str) {
        let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .join("desired-state")
            .join(name);
        self.copy_tree(&src, name);
    }
    /// Copies the files under `src` to `desired-state/<rel>`, sub-directories
    /// (a function's code, say) included.
    fn copy_tree(&self, src: &Path, rel: &str) {
        for entry in std::fs::read_dir(src).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                self.copy_tree(&path, &format!("{rel}/{file}"));
            } else {
                self.write(
                    &format!("{rel}/{file}"),
                    &std::fs::read_to_string(&path).unwrap(),
                );
            }
        }
    }
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    pub fn state_json(&self, stack: &str) -> serde_json::Value {
        self.state_now(stack).expect("state of the stack")
    }
    /// The stack's state as its backend reads it (snapshot and journal), while
    /// a run may be writing it; `None` where there is none or it cannot be read.
    pub fn state_now(&self, stack: &str) -> Option<serde_json::Value> {
        use reconcile_core::state::StateStore;
        let store = reconcile::state::LocalStore::new(&self.state_dir(), stack);
        if !store.path().exists() {
            return None;
        }
        let st = store.load("us-east-1").ok()?;
        Some(serde_json::to_value(st).unwrap())
    }
    /// A command running the real binary in this project against `moto`.
    pub fn cmd(&self, moto: Option<&Moto>, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_reconcile"));
        c.current_dir(self.dir.path())
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env_remove("AWS_PROFILE")
            .env("NO_COLOR", "1")
            // A killed run's lease is waited out before the next run goes on.
            .env("RECONCILE_LEASE_SECONDS", "2")
            .stdin(Stdio::null());
        for (k, v) in self.env.borrow().iter() {
            c.env(k, v);
        }
        match moto {
            Some(m) => c.env("AWS_ENDPOINT_URL", &m.url),
            // Nothing listens here: a test that must make no AWS call fails loudly if it does.
            None => c.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        };
        c
    }
    pub fn run(&self, moto: Option<&Moto>, args: &[&str]) -> Run {
        let out = self.cmd(moto, args).output().expect("run reconcile");
        Run::from(out)
    }
}

/// A finished run of the binary, with its output as text.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A loopback port that records whether anything connected: pointed at as the
/// AWS endpoint, it proves a command made no AWS call at all.
pub struct Sentinel {
    listener: TcpListener,
    pub url: String,
}

impl Sentinel {
    pub fn new() -> Sentinel {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        Sentinel { listener, url }
    }
    #[track_caller]
    pub fn assert_no_call(&self) {
        match self.listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok(_) => panic!("the command connected to the AWS endpoint"),
            Err(e) => panic!("sentinel: {e}"),
        }
    }
}

impl Project {
    /// Runs the binary with the AWS endpoint at `url`.
    pub fn run_at(&self, url: &str, args: &[&str]) -> Run {
        let mut c = self.cmd(None, args);
        c.env("AWS_ENDPOINT_URL", url);
        Run::from(c.output().expect("run reconcile"))
    }
}

/// Ids of everything in AWS tagged with the stack (NAT gateways: not deleted).
pub async fn tagged_ids(ec2: &aws_sdk_ec2::Client, stack: &str) -> Vec<String> {
    let f = || {
        aws_sdk_ec2::types::Filter::builder()
            .name("tag:reconcile:stack")
            .values(stack)
            .build()
    };
    let mut ids = Vec::new();
    for v in ec2
        .describe_vpcs()
        .filters(f())
        .send()
        .await
        .unwrap()
        .vpcs()
    {
        ids.push(v.vpc_id().unwrap().to_string());
    }
    for s in ec2
        .describe_subnets()
        .filters(f())
        .send()
        .await
        .unwrap()
        .subnets()
    {
        ids.push(s.subnet_id().unwrap().to_string());
    }
    for g in ec2
        .describe_internet_gateways()
        .filters(f())
        .send()
        .await
        .unwrap()
        .internet_gateways()
    {
        ids.push(g.internet_gateway_id().unwrap().to_string());
    }
    for a in ec2
        .describe_addresses()
        .filters(f())
        .send()
        .await
        .unwrap()
        .addresses()
    {
        ids.push(a.allocation_id().unwrap().to_string());
    }
    // moto ignores tag filters on NAT gateways: check the tags here.
    for n in ec2
        .describe_nat_gateways()
        .send()
        .await
        .unwrap()
        .nat_gateways()
    {
        let ours = n
            .tags()
            .iter()
            .any(|t| t.key() == Some("reconcile:stack") && t.value() == Some(stack));
        if ours && n.state().map(|s| s.as_str()) != Some("deleted") {
            ids.push(n.nat_gateway_id().unwrap().to_string());
        }
    }
    for t in ec2
        .describe_route_tables()
        .filters(f())
        .send()
        .await
        .unwrap()
        .route_tables()
    {
        ids.push(t.route_table_id().unwrap().to_string());
    }
    for g in ec2
        .describe_security_groups()
        .filters(f())
        .send()
        .await
        .unwrap()
        .security_groups()
    {
        ids.push(g.group_id().unwrap().to_string());
    }
    ids.sort();
    ids
}

/// An independent S3 client for moto (path-style addressing).
pub async fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&moto.sdk().await)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A new versioned bucket (for state: its versions are the history), and
/// an independent client to look into it.
pub async fn versioned_bucket(moto: &Moto, bucket: &str) -> aws_sdk_s3::Client {
    set_fake_credentials();
    let client = s3(moto).await;
    client.create_bucket().bucket(bucket).send().await.unwrap();
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    client
}

/// A bucket's versioning status ("" when never set). moto names the answer's
/// root element in a way the SDK refuses, so its raw body is read then.
pub async fn versioning(s3: &aws_sdk_s3::Client, bucket: &str) -> String {
    match s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(v) => v
            .status()
            .map(|s| s.as_str())
            .unwrap_or_default()
            .to_string(),
        Err(e) => {
            let raw = e.raw_response().expect("an answer");
            let body = std::str::from_utf8(raw.body().bytes().unwrap()).unwrap();
            body.split("<Status>")
                .nth(1)
                .and_then(|rest| rest.split("</Status>").next())
                .unwrap_or_default()
                .to_string()
        }
    }
}

/// `apply --auto-approve` of the project's stacks, which must succeed.
#[track_caller]
pub fn apply(p: &Project, moto: &Moto) {
    let r = p.run(Some(moto), &["apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.all());
}

/// A plan of the project's stacks that finds nothing to do.
#[track_caller]
pub fn plan_clean(p: &Project, moto: &Moto) {
    let r = p.run(Some(moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "not clean:\n{}", r.all());
}

/// The change lines of `address` in a text plan.
pub fn block(out: &str, address: &str) -> Vec<String> {
    let mut lines = out.lines();
    let found =
        lines.any(|l| !l.starts_with("      ") && l.split_whitespace().nth(1) == Some(address));
    assert!(found, "{address} not in the plan:\n{out}");
    lines
        .take_while(|l| l.starts_with("      "))
        .map(str::to_string)
        .collect()
}
