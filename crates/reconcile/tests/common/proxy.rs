//! A fault-injecting HTTP proxy in front of moto, one request per connection,
//! counting requests per EC2 `Action`: it injects errors (throttling, eventual
//! consistency, plain failures) and delays, so retries and interruptions can be
//! tested end to end with the real binary.

use super::Moto;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// No socket of the proxy waits longer than this, so no thread outlives a test by much.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// An EC2 error the proxy answers with instead of forwarding the request.
pub struct Fault {
    pub status: u16,
    pub code: &'static str,
    pub message: &'static str,
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
pub type Rule = fn(action: &str, nth: u64) -> Option<Fault>;

/// How long to hold a forwarded request (`nth` as for [`Rule`]).
pub type Delay = fn(action: &str, nth: u64) -> Duration;

/// Every request seen, in arrival order: its `Action` and its form body.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A loopback HTTP proxy to moto, one request per connection, recording each
/// request's `Action` and body. Stops (and joins its threads) when dropped.
pub struct Proxy {
    pub url: String,
    addr: SocketAddr,
    seen: Seen,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    pub fn start(moto: &Moto, rule: Rule) -> Proxy {
        Proxy::start_with_delay(moto, rule, |_, _| Duration::ZERO)
    }

    /// As `start`, and holds each forwarded request for `delay(action, nth)` first,
    /// to make an apply slow enough to interrupt in the middle.
    pub fn start_with_delay(moto: &Moto, rule: Rule, delay: Delay) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream: SocketAddr = ([127, 0, 0, 1], moto.port).into();
        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut workers: Vec<JoinHandle<()>> = Vec::new();
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let seen = seen.clone();
                    workers.retain(|w| !w.is_finished());
                    workers.push(std::thread::spawn(move || {
                        let _ = serve(conn, upstream, &seen, rule, delay);
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
            seen,
            stop,
            accept: Some(accept),
        }
    }

    /// Requests seen for `action`, injected or forwarded.
    pub fn count(&self, action: &str) -> u64 {
        self.bodies(action).len() as u64
    }

    /// Every operation seen, in arrival order (for checking the order of deletes).
    pub fn actions(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// Every request seen, in arrival order: its operation and its body.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }

    /// The form bodies of the requests seen for `action`, in arrival order.
    pub fn bodies(&self, action: &str) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| a == action)
            .map(|(_, b)| b.clone())
            .collect()
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

/// One request: record it, then inject a fault or relay moto's answer.
fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    seen: &Mutex<Vec<(String, String)>>,
    rule: Rule,
    delay: Delay,
) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let (head, body) = read_request(&mut client)?;
    // Query protocols (EC2, RDS, ELBv2, IAM) name the operation in the form;
    // JSON protocols (ECS, WAFv2, Logs, ECR, ACM, Secrets Manager) in X-Amz-Target.
    let action = form_value(&body, "Action")
        .or_else(|| target_operation(&head))
        .unwrap_or_default();
    let nth = {
        let mut seen = seen.lock().unwrap();
        seen.push((action.clone(), String::from_utf8_lossy(&body).into_owned()));
        seen.iter().filter(|(a, _)| *a == action).count() as u64
    };
    let reply = match rule(&action, nth) {
        Some(fault) => fault.response(),
        None => {
            std::thread::sleep(delay(&action, nth));
            forward(upstream, &head, &body)?
        }
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

/// `DeleteService` of `X-Amz-Target: AmazonEC2ContainerServiceV20141113.DeleteService`.
fn target_operation(head: &str) -> Option<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("x-amz-target"))
        .and_then(|(_, v)| v.trim().rsplit('.').next().map(str::to_string))
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
