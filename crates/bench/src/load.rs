//! CPU and memory of one client in a full class: it publishes a 720p30 simulcast camera and
//! a microphone while 8 other participants send 360p30 cameras (3 of them talking). The
//! measured client runs alone in a child process (`estrade-cli`, or the Python SDK peer
//! for the libwebrtc reference) so /proc gives its own CPU time and memory; the 8 others
//! run in this process with Estrade's engine. Their tokens are co-trainers' (cameras
//! allowed), minted with the devserver's key and grants.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use estrade_backend::api::SessionRole;
use estrade_devserver::grants;
use estrade_engine::synthetic::ToneBursts;
use estrade_engine::synthetic_video::TestPattern;
use estrade_engine::{CameraSettings, JoinOptions, Room, VideoCodec};

use crate::reference;

const PUBLISHERS: usize = 8;
const TALKERS: usize = 3;
/// The dev-mode key pair scripts/livekit.sh configures.
const API_KEY: &str = "devkey";
const API_SECRET: &str = "secret";
/// Linux's USER_HZ: /proc counts CPU time in these ticks.
const TICKS_PER_SECOND: f64 = 100.0;

/// What one client cost over the measuring window.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Percent of one core, averaged over the window.
    pub cpu_percent: f64,
    pub rss_mib: f64,
    pub peak_rss_mib: f64,
}

pub struct LoadReport {
    pub ours: Usage,
    pub reference: Usage,
    /// The CLI on the virtual devices, with processing on.
    pub ours_devices: Usage,
    /// What each decoded, to show both did the same work (frames per remote camera).
    pub ours_output: String,
    pub ours_devices_output: String,
    pub reference_output: String,
}

pub async fn cpu_and_memory(url: &str, warm_up: u64, window: u64) -> anyhow::Result<LoadReport> {
    let room_name = format!("load-{}", std::process::id());
    let mut others: Vec<Room> = Vec::new();
    for i in 0..PUBLISHERS {
        let token = mint(&room_name, &format!("student-{}", i + 1))?;
        let (room, events) = estrade_engine::join(JoinOptions {
            url: url.to_owned(),
            token,
            audio_output: None,
            video_output: None,
        })
        .await?;
        // Nobody reads their events: let them go rather than hold the rooms up.
        tokio::spawn(drain(events));
        room.publish_camera(
            TestPattern::new(640, 360, 30),
            CameraSettings {
                width: 640,
                height: 360,
                fps: 30,
                bitrate_kbps: 500,
                codec: VideoCodec::Vp8,
                simulcast: false,
            },
        )
        .await?;
        if i < TALKERS {
            room.publish_microphone(ToneBursts::new(300.0 + 100.0 * i as f64))
                .await?;
        }
        others.push(room);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seconds = (warm_up + window + 2).to_string();

    let cli = std::env::current_exe()?
        .parent()
        .context("the bench's directory")?
        .join("estrade-cli");
    let run_cli = |audio: &[&str]| -> anyhow::Result<Child> {
        Command::new(&cli)
            .args(["--url", url, "--api-key", API_KEY, "--room", &room_name])
            .args(["--camera", "1280x720", "--simulcast"])
            .args(audio)
            .args(["--watch", "--tile", "640x360", "--seconds", &seconds])
            .env("ESTRADE_API_SECRET", API_SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("{} (scripts/bench.sh builds it)", cli.display()))
    };
    let (ours, ours_output) = measure_cli(run_cli(&["--tone", "440"])?, warm_up, window).await?;
    // The same on the virtual devices: the microphone through echo cancellation, noise
    // suppression and gain control, the three talkers mixed and played on the speaker.
    let devices = [
        "--mic",
        "pulseaudio:estrade_mic",
        "--speaker",
        "pulseaudio:estrade_speaker",
    ];
    let (ours_devices, ours_devices_output) =
        measure_cli(run_cli(&devices)?, warm_up, window).await?;

    let token = mint(&room_name, "reference")?;
    let python = reference::command_for(url, &token)?
        .args([
            "--video",
            "--video-size",
            "1280x720",
            "--simulcast",
            "--count-only",
        ])
        .args(["--freq", "440", "--seconds", &seconds])
        .spawn()?;
    let (reference, python) = measure(python, warm_up, window).await?;
    let report = reference::report(python).await?;
    let reference_output = report["watched"]
        .as_object()
        .map(|w| {
            w.iter()
                .map(|(who, seen)| {
                    let frames = seen["frames"].as_array().map_or(0, Vec::len);
                    format!("{who}:{frames}")
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();

    for room in &others {
        room.leave().await;
    }
    Ok(LoadReport {
        ours,
        ours_devices,
        reference,
        ours_output,
        ours_devices_output,
        reference_output,
    })
}

/// Measures a CLI participant; what it decoded per remote camera.
async fn measure_cli(child: Child, warm_up: u64, window: u64) -> anyhow::Result<(Usage, String)> {
    let (usage, child) = measure(child, warm_up, window).await?;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let decoded = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"video_seen\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            format!("{}:{}", v["from"], v["frames"])
        })
        .collect::<Vec<_>>()
        .join(" ");
    Ok((usage, decoded))
}

pub(crate) async fn drain(mut events: estrade_engine::RoomEvents) {
    while events.recv().await.is_some() {}
}

/// A co-trainer's token (camera allowed), signed as the devserver signs them.
fn mint(room: &str, identity: &str) -> anyhow::Result<String> {
    let minted = grants::mint(grants::TokenRequest {
        api_key: API_KEY,
        api_secret: API_SECRET,
        identity,
        name: identity,
        room,
        role: SessionRole::CoTrainer,
        ttl: Duration::from_secs(600),
    })?;
    Ok(minted.jwt)
}

/// CPU time over `window` seconds after `warm_up`, and memory at the end of the window.
async fn measure(child: Child, warm_up: u64, window: u64) -> anyhow::Result<(Usage, Child)> {
    let pid = child.id();
    tokio::time::sleep(Duration::from_secs(warm_up)).await;
    let (t0, cpu0) = (Instant::now(), cpu_ticks(pid)?);
    tokio::time::sleep(Duration::from_secs(window)).await;
    let (elapsed, cpu1) = (t0.elapsed(), cpu_ticks(pid)?);
    let (rss_mib, peak_rss_mib) = memory_mib(pid)?;
    Ok((
        Usage {
            cpu_percent: (cpu1 - cpu0) / TICKS_PER_SECOND / elapsed.as_secs_f64() * 100.0,
            rss_mib,
            peak_rss_mib,
        },
        child,
    ))
}

/// User + system CPU time of the process (all its threads), in ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} ended early"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line: 12th and 13th after the name.
    match (fields.get(11), fields.get(12)) {
        (Some(u), Some(s)) => Ok(u.parse::<f64>()? + s.parse::<f64>()?),
        _ => bail!("unexpected /proc/{pid}/stat: {stat}"),
    }
}

/// VmRSS and VmHWM (peak), in MiB.
fn memory_mib(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    Ok((kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0))
}
