//! The libwebrtc reference: tests/interop/peer.py (LiveKit's Python SDK) in child processes.
//! Tokens go through the environment, never the command line.

use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};
use estrade_backend::api::JoinResponse as Grant;

pub struct JoinReport {
    pub connected_ms: Vec<f64>,
    pub first_audio_ms: Vec<f64>,
}

pub fn command(grant: &Grant) -> anyhow::Result<Command> {
    command_for(&grant.url, &grant.token)
}

/// The venv's interpreter (the LiveKit Python SDK is installed there).
pub fn python() -> anyhow::Result<String> {
    let venv = std::env::var("ESTRADE_PY").context("ESTRADE_PY (scripts/estrade bench sets it)")?;
    Ok(format!("{venv}/bin/python"))
}

/// A script of tests/interop/, found in this clone (ESTRADE_ROOT) at run time.
pub fn script(name: &str) -> anyhow::Result<String> {
    let root = std::env::var("ESTRADE_ROOT").context("ESTRADE_ROOT (scripts/env.sh sets it)")?;
    Ok(format!("{root}/tests/interop/{name}"))
}

/// The Python peer joining `url` with `token`.
pub fn command_for(url: &str, token: &str) -> anyhow::Result<Command> {
    let mut cmd = Command::new(python()?);
    cmd.arg(script("peer.py")?)
        .env("LK_URL", url)
        .env("LK_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Ok(cmd)
}

pub async fn report(child: Child) -> anyhow::Result<serde_json::Value> {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "the Python peer failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_str(
        stdout.lines().last().unwrap_or_default(),
    )?)
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default()
}

pub async fn join_bench(grant: &Grant, joins: usize) -> anyhow::Result<JoinReport> {
    let child = command(grant)?
        .args(["--join-bench", &joins.to_string()])
        .spawn()?;
    let r = report(child).await?;
    Ok(JoinReport {
        connected_ms: floats(&r["connected_ms"]),
        first_audio_ms: floats(&r["first_audio_ms"]),
    })
}

/// Two Python peers publishing bursts to each other; what each heard from the other.
pub async fn mouth_to_ear(
    a: &Grant,
    b: &Grant,
    seconds: u64,
    warm_up: usize,
) -> anyhow::Result<Vec<f64>> {
    let secs = seconds.to_string();
    let (args_a, args_b) = (
        ["--freq", "880", "--seconds", &secs],
        ["--freq", "660", "--seconds", &secs],
    );
    face_to_face(a, b, &args_a, &args_b, ["heard", "latencies_ms"], warm_up).await
}

/// Two Python peers publishing the stamped pattern at `size` in `codec` (vp8, h264) to
/// each other; glass-to-glass of every readable frame after the first `warm_up` of each
/// direction.
pub async fn glass_to_glass(
    a: &Grant,
    b: &Grant,
    size: &str,
    codec: &str,
    seconds: u64,
    warm_up: usize,
) -> anyhow::Result<Vec<f64>> {
    let secs = seconds.to_string();
    let args = [
        "--video",
        "--video-size",
        size,
        "--video-codec",
        codec,
        "--seconds",
        &secs,
    ];
    face_to_face(
        a,
        b,
        &args,
        &args,
        ["watched", "glass_to_glass_ms"],
        warm_up,
    )
    .await
}

/// Runs one peer as `a` and one as `b` at once; pools what each reported about the other
/// (`report[section][other identity][field]`), each direction's first `warm_up` dropped.
async fn face_to_face(
    a: &Grant,
    b: &Grant,
    args_a: &[&str],
    args_b: &[&str],
    [section, field]: [&str; 2],
    warm_up: usize,
) -> anyhow::Result<Vec<f64>> {
    let pa = command(a)?.args(args_a).spawn()?;
    let pb = command(b)?.args(args_b).spawn()?;
    let (ra, rb) = tokio::try_join!(report(pa), report(pb))?;
    let mut all = Vec::new();
    for (r, other) in [(&ra, &b.identity.0), (&rb, &a.identity.0)] {
        all.extend(
            floats(&r[section][other.as_str()][field])
                .into_iter()
                .skip(warm_up),
        );
    }
    Ok(all)
}
