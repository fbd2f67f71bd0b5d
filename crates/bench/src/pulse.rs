//! The virtual devices' tools (pulseaudio-utils), as the device rows drive them.

use std::process::{Child, Command, Stdio};

use anyhow::Context as _;

pub fn pactl(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("pactl").args(args).output().context("pactl")?;
    anyhow::ensure!(
        out.status.success(),
        "pactl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// pacat playing raw 48 kHz mono s16le from its stdin into `sink`, 10 ms latency.
pub fn pacat(sink: &str) -> anyhow::Result<Child> {
    Command::new("pacat")
        .args(["-d", sink, "--raw", "--format=s16le", "--channels=1"])
        .args(["--rate=48000", "--latency-msec=10"])
        .stdin(Stdio::piped())
        .spawn()
        .context("pacat (scripts/setup.sh installs pulseaudio-utils)")
}
