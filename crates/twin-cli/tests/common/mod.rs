//! What the CLI tests share: running the built `urbantwin` binary.

use std::process::Command;

/// Runs `urbantwin` with `args`: (success, stdout, stderr).
pub fn urbantwin(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_urbantwin"))
        .args(args)
        .output()
        .expect("run urbantwin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
