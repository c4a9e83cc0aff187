//! Retries end to end: a small fault-injecting HTTP proxy sits between the real
//! binary and moto. It proves that throttling and EC2's eventual-consistency
//! errors are retried by the SDK, and that any other error fails its resource
//! at once while independent work still finishes.

mod common;
use common::{Moto, Project};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// No socket of the proxy waits longer than this, so no thread outlives a test by much.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// An EC2 error the proxy answers with instead of forwarding the request.
struct Fault {
    status: u16,
    code: &'static str,
    message: &'static str,
}

impl Fault {
    fn response(&self) -> Vec<u8> {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>x</RequestID></Response>",
            self.code, self.message
        );
        let reason = match self.status {
            503 => "Service Unavailable",
            _ => "Bad Request",
        };
        format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.status,
            body.len()
        )
        .into_bytes()
    }
}

/// Decides per request: `action` is the form's `Action`, `nth` counts that
/// action's requests so far (1 for the first). `Some` injects, `None` forwards.
type Rule = fn(action: &str, nth: u64) -> Option<Fault>;

/// A loopback HTTP proxy to moto, one request per connection, counting
/// requests per `Action`. Stops (and joins its threads) when dropped.
struct Proxy {
    url: String,
    addr: SocketAddr,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    fn start(moto: &Moto, rule: Rule) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream: SocketAddr = ([127, 0, 0, 1], moto.port).into();
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (counts, stop) = (counts.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut workers: Vec<JoinHandle<()>> = Vec::new();
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let counts = counts.clone();
                    workers.retain(|w| !w.is_finished());
                    workers.push(std::thread::spawn(move || {
                        let _ = serve(conn, upstream, &counts, rule);
                    }));
                }
                for w in workers {
                    let _ = w.join();
                }
            })
        };
        Proxy {
            url: format!("http://{addr}"),
            addr,
            counts,
            stop,
            accept: Some(accept),
        }
    }

    /// Requests seen for `action`, injected or forwarded.
    fn count(&self, action: &str) -> u64 {
        self.counts
            .lock()
            .unwrap()
            .get(action)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// One request: count it, then inject a fault or relay moto's answer.
fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    counts: &Mutex<BTreeMap<String, u64>>,
    rule: Rule,
) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let (head, body) = read_request(&mut client)?;
    let action = form_value(&body, "Action").unwrap_or_default();
    let nth = {
        let mut c = counts.lock().unwrap();
        let n = c.entry(action.clone()).or_default();
        *n += 1;
        *n
    };
    let reply = match rule(&action, nth) {
        Some(fault) => fault.response(),
        None => forward(upstream, &head, &body)?,
    };
    client.write_all(&reply)?;
    client.shutdown(Shutdown::Both)
}

/// The request head (through `\r\n\r\n`) and its body, by `Content-Length`.
fn read_request(s: &mut TcpStream) -> io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let len: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf.split_off(end);
    while body.len() < len {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Ok((head, body))
}

/// A value of a form-encoded body (`Action` values need no decoding).
fn form_value(body: &[u8], key: &str) -> Option<String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

/// Sends the request to moto with `Connection: close` and returns its full answer.
fn forward(upstream: SocketAddr, head: &str, body: &[u8]) -> io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(IO_TIMEOUT))?;
    up.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut req: String = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    req.push_str("Connection: close\r\n\r\n");
    up.write_all(req.as_bytes())?;
    up.write_all(body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    Ok(resp)
}

/// The count `--timings` printed for an EC2 operation (0 when absent).
fn timed_calls(stdout: &str, op: &str) -> u64 {
    stdout
        .lines()
        .map(str::split_whitespace)
        .filter_map(|mut w| match (w.next(), w.next(), w.next()) {
            (Some("EC2"), Some(o), Some(n)) if o == op => n.parse().ok(),
            _ => None,
        })
        .next()
        .unwrap_or(0)
}

fn header(stack: &str) -> String {
    format!(
        r#"
[stack]
name = "{stack}"
region = "us-east-1"

[vpc.main]
cidr_block = "10.0.0.0/16"
"#
    )
}

fn security_group(stack: &str) -> String {
    format!(
        r#"
[security_group.web]
name = "{stack}-web"
vpc_id = "${{vpc.main.id}}"
ingress = [{{ protocol = "tcp", from_port = 443, to_port = 443, cidr_block = "0.0.0.0/0" }}]
"#
    )
}

async fn groups_of(moto: &Moto, stack: &str) -> Vec<aws_sdk_ec2::types::SecurityGroup> {
    moto.ec2()
        .await
        .describe_security_groups()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:reconcile:stack")
                .values(stack)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .security_groups()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_retried_and_every_attempt_is_counted() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto, |action, nth| {
        (action == "DescribeVpcs" && nth <= 2).then_some(Fault {
            status: 503,
            code: "RequestLimitExceeded",
            message: "Request limit exceeded.",
        })
    });
    let p = Project::new();
    p.write("net.toml", &header("retry-throttle"));

    // Slow by design: after a throttle the SDK's adaptive rate limiter holds
    // each retry for the configured maximum backoff (20 s), so ~40 s here.
    let run = p.run_at(&proxy.url, &["apply", "--auto-approve", "--timings"]);
    run.expect_code(0);
    assert!(run.stdout.contains("Apply complete"), "{}", run.stdout);
    // Two throttled attempts and the one that went through: the SDK retried,
    // and each attempt is a call in the table, as the proxy saw them.
    assert_eq!(proxy.count("DescribeVpcs"), 3, "{}", run.stdout);
    assert_eq!(
        timed_calls(&run.stdout, "DescribeVpcs"),
        proxy.count("DescribeVpcs"),
        "{}",
        run.stdout
    );
    assert_eq!(timed_calls(&run.stdout, "CreateVpc"), 1, "{}", run.stdout);

    let vpcs = moto.ec2().await.describe_vpcs().send().await.unwrap();
    assert!(
        vpcs.vpcs()
            .iter()
            .any(|v| v.cidr_block() == Some("10.0.0.0/16") && !v.is_default().unwrap_or(false)),
        "the VPC exists in moto"
    );
    assert!(p.state_json("retry-throttle")["resources"]
        .get("vpc.main")
        .is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn eventual_consistency_on_a_mutation_is_retried() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto, |action, nth| {
        (action == "AuthorizeSecurityGroupIngress" && nth == 1).then_some(Fault {
            status: 400,
            code: "InvalidGroup.NotFound",
            message: "The security group does not exist",
        })
    });
    let p = Project::new();
    let stack = "retry-eventual";
    p.write(
        "net.toml",
        &format!("{}{}", header(stack), security_group(stack)),
    );

    let run = p.run_at(&proxy.url, &["apply", "--auto-approve", "--timings"]);
    run.expect_code(0);
    assert_eq!(proxy.count("AuthorizeSecurityGroupIngress"), 2);
    assert_eq!(
        timed_calls(&run.stdout, "AuthorizeSecurityGroupIngress"),
        2,
        "{}",
        run.stdout
    );

    let groups = groups_of(&moto, stack).await;
    assert_eq!(groups.len(), 1);
    let rules = groups[0].ip_permissions();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0].from_port(), Some(443));
    assert_eq!(rules[0].to_port(), Some(443));
    assert_eq!(rules[0].ip_ranges()[0].cidr_ip(), Some("0.0.0.0/0"));
}

#[tokio::test(flavor = "multi_thread")]
async fn other_errors_fail_at_once_and_independent_work_finishes() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto, |action, _| {
        (action == "CreateSubnet").then_some(Fault {
            status: 400,
            code: "InvalidParameterValue",
            message: "injected",
        })
    });
    let p = Project::new();
    let stack = "retry-fail";
    p.write(
        "net.toml",
        &format!(
            r#"{}{}
[subnet.a]
vpc_id = "${{vpc.main.id}}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"
"#,
            header(stack),
            security_group(stack)
        ),
    );

    let run = p.run_at(&proxy.url, &["apply", "--auto-approve"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("subnet.a") && run.stderr.contains("injected"),
        "{}",
        run.stderr
    );
    assert_eq!(proxy.count("CreateSubnet"), 1, "not retried");

    // The VPC and the group do not depend on the subnet: both were made.
    assert_eq!(groups_of(&moto, stack).await.len(), 1);
    let state = p.state_json(stack);
    let resources = state["resources"].as_object().unwrap();
    let mut tracked: Vec<&str> = resources.keys().map(String::as_str).collect();
    tracked.sort();
    assert_eq!(tracked, ["security_group.web", "vpc.main"], "{state}");
    let vpc_id = state["resources"]["vpc.main"]["id"].as_str().unwrap();
    let vpcs = moto
        .ec2()
        .await
        .describe_vpcs()
        .vpc_ids(vpc_id)
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    assert!(state["journal"].as_array().unwrap().is_empty(), "{state}");
}
