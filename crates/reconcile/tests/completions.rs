//! `reconcile completions SHELL` prints a completion script that the shell accepts
//! and that offers the real subcommands, so a renamed command cannot leave the
//! scripts behind.

use std::io::Write;
use std::process::{Command, Stdio};

fn script(shell: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_reconcile"))
        .args(["completions", shell])
        .output()
        .expect("run reconcile completions");
    assert!(
        out.status.success(),
        "`reconcile completions {shell}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the script is UTF-8")
}

#[test]
fn every_shell_gets_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let s = script(shell);
        for sub in [
            "plan",
            "apply",
            "watch",
            "validate",
            "schema",
            "completions",
        ] {
            assert!(s.contains(sub), "{shell} script does not mention `{sub}`");
        }
    }
}

#[test]
fn bash_accepts_the_bash_script() {
    let s = script("bash");
    let mut child = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bash -n");
    child
        .stdin
        .take()
        .expect("bash's stdin")
        .write_all(s.as_bytes())
        .expect("feed the script to bash");
    let out = child.wait_with_output().expect("wait for bash -n");
    assert!(
        out.status.success(),
        "bash -n rejects the script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unknown_shell_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_reconcile"))
        .args(["completions", "cmd.exe"])
        .output()
        .expect("run reconcile completions");
    assert!(!out.status.success(), "an unknown shell was accepted");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bash"),
        "the error does not list the shells"
    );
}
