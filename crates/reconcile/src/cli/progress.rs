//! What a person sees while an apply runs: a live spinner per in-flight resource on
//! a terminal, plain timestamped lines otherwise (CI logs, pipes).

use crate::apply::events::{Event, EventSink};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Progress {
    live: Option<MultiProgress>,
    bars: Mutex<HashMap<String, (ProgressBar, Instant)>>,
    started: Mutex<HashMap<String, Instant>>,
    last_status: Mutex<HashMap<String, String>>,
}

impl Progress {
    pub fn new() -> Self {
        let live = std::io::stdout().is_terminal().then(MultiProgress::new);
        Progress {
            live,
            bars: Mutex::new(HashMap::new()),
            started: Mutex::new(HashMap::new()),
            last_status: Mutex::new(HashMap::new()),
        }
    }

    pub fn start(&self, key: &str, verb: &str) {
        match &self.live {
            Some(m) => {
                let pb = m.add(ProgressBar::new_spinner());
                pb.set_style(
                    ProgressStyle::with_template("  {spinner} {msg} ({elapsed})")
                        .expect("valid template"),
                );
                pb.set_message(format!("{key}: {verb}"));
                pb.enable_steady_tick(Duration::from_millis(120));
                self.bars
                    .lock()
                    .unwrap()
                    .insert(key.to_string(), (pb, Instant::now()));
            }
            None => {
                println!("  {key}: {verb}");
                self.started
                    .lock()
                    .unwrap()
                    .insert(key.to_string(), Instant::now());
            }
        }
    }

    /// What AWS says about an operation still in flight (a database "modifying").
    /// Printed once per change of status when not on a terminal.
    pub fn status(&self, key: &str, status: &str) {
        match &self.live {
            Some(_) => {
                if let Some((pb, _)) = self.bars.lock().unwrap().get(key) {
                    pb.set_message(format!("{key}: {status}"));
                }
            }
            None => {
                let mut last = self.last_status.lock().unwrap();
                if last.get(key).map(String::as_str) != Some(status) {
                    last.insert(key.to_string(), status.to_string());
                    println!("  {key}: {status}");
                }
            }
        }
    }

    pub fn finish(&self, key: &str, what: &str) {
        self.end(key, &format!("{key}: {what}"));
    }

    pub fn fail(&self, key: &str, what: &str) {
        self.end(key, &format!("{key}: FAILED: {what}"));
    }

    pub fn note(&self, line: &str) {
        match &self.live {
            Some(m) => {
                let _ = m.println(format!("  {line}"));
            }
            None => println!("  {line}"),
        }
    }

    fn end(&self, key: &str, line: &str) {
        match &self.live {
            Some(m) => {
                if let Some((pb, t)) = self.bars.lock().unwrap().remove(key) {
                    pb.finish_and_clear();
                    m.remove(&pb);
                    let _ = m.println(format!("  {line} [{}]", secs(t.elapsed())));
                }
            }
            None => {
                let t = self
                    .started
                    .lock()
                    .unwrap()
                    .remove(key)
                    .map(|t| t.elapsed())
                    .unwrap_or_default();
                println!("  {line} [{}]", secs(t));
            }
        }
    }
}

impl EventSink for Progress {
    fn event(&self, e: &Event) {
        match e {
            Event::Started { key, verb } => self.start(key, verb),
            Event::Status { key, status } => self.status(key, status),
            Event::Finished { key, message } => self.finish(key, message),
            Event::Failed { key, error } => self.fail(key, &error.message),
            Event::Note(line) => self.note(line),
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

pub fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
