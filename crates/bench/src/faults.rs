//! The fault bench: one call — a trainer publishing a steady tone and a 720p30 simulcast
//! camera, one listener — through a faulty network (`estrade-netfault`: every client's
//! path to the SFU, both ways), for each fault profile, Estrade ↔ Estrade then
//! libwebrtc ↔ libwebrtc (the Python SDK), same timeline, same path. What the listener got
//! while the fault lasted (audio frames from data, from FEC, concealed; video frames
//! shown, the longest freeze, the lowest layer) and after it (back at the top layer).

use std::sync::Arc;
use std::time::Duration;

use estrade_backend::api::JoinResponse as Grant;
use estrade_engine::synthetic::ToneBursts;
use estrade_engine::synthetic_video::TestPattern;
use estrade_engine::{
    CameraSettings, FrameRecorder, JoinOptions, ParticipantIdentity, PulseRecorder, VideoCodec,
};
use estrade_media::synthetic::unix_us_now;
use estrade_netfault::{Class, FaultRelay, Impairment, Link};
use serde_json::Value;

use crate::reference;

/// From the listener's join to the fault: both sides settled at the top layer.
const SETTLE: Duration = Duration::from_secs(8);
const FAULT: Duration = Duration::from_secs(10);
/// After the fault, to see the video come back.
const AFTER: Duration = Duration::from_secs(6);
const FPS: f64 = 30.0;
/// Samples per 20 ms at 48 kHz (libwebrtc counts samples).
const FRAME_SAMPLES: f64 = 960.0;

pub struct Profile {
    pub name: &'static str,
    pub link: Link,
}

pub fn profiles() -> Vec<Profile> {
    let ms = Duration::from_millis;
    vec![
        Profile {
            name: "none (the same call, no fault)",
            link: Link::CLEAN,
        },
        Profile {
            name: "5 % loss each way",
            link: Link::both(Impairment::loss(0.05)),
        },
        Profile {
            name: "10 % loss each way",
            link: Link::both(Impairment::loss(0.10)),
        },
        Profile {
            name: "10 % loss, client → SFU only",
            link: Link {
                up: Impairment::loss(0.10),
                down: Impairment::NONE,
            },
        },
        Profile {
            name: "10 % loss, SFU → client only",
            link: Link {
                up: Impairment::NONE,
                down: Impairment::loss(0.10),
            },
        },
        Profile {
            name: "20 % loss each way",
            link: Link::both(Impairment::loss(0.20)),
        },
        Profile {
            name: "50 ms ± 50 ms jitter each way",
            link: Link::both(Impairment {
                delay: ms(50),
                jitter: ms(50),
                ..Impairment::NONE
            }),
        },
        Profile {
            name: "300 ms RTT (150 ms each way)",
            link: Link::both(Impairment {
                delay: ms(150),
                ..Impairment::NONE
            }),
        },
        Profile {
            name: "150 kbit/s cap, SFU → client (mobile data)",
            link: Link {
                up: Impairment::NONE,
                down: Impairment {
                    rate_kbps: Some(150),
                    ..Impairment::NONE
                },
            },
        },
        Profile {
            name: "500 kbit/s cap each way",
            link: Link::both(Impairment {
                rate_kbps: Some(500),
                ..Impairment::NONE
            }),
        },
    ]
}

/// What the listener got from the trainer under one fault.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// Shares of the 20 ms audio frames played during the fault: from data or FEC.
    pub played: f64,
    /// `None` where the stack does not say (libwebrtc counts Opus FEC as decoded data).
    pub from_fec: Option<f64>,
    pub concealed: f64,
    /// Frames shown during the fault, of those the camera made.
    pub video_shown: f64,
    /// The longest time without a new frame, from the fault's start to the end.
    pub longest_freeze_ms: f64,
    pub lowest_height: u32,
    /// From the fault's end to the top layer flowing again; `None`: not within `AFTER`.
    pub back_at_top_ms: Option<f64>,
    /// Keyframes the listener asked for, fault and after.
    pub keyframes_asked: u64,
    /// Packets the path dropped while the fault lasted (both clients, both ways).
    pub path_dropped: u64,
}

/// Every profile, Estrade then libwebrtc. The relay must have been started before any
/// client joined the server it points at.
pub async fn run(
    relay: &FaultRelay,
    trainer: &Grant,
    listener: &Grant,
) -> anyhow::Result<Vec<(Profile, Outcome, Outcome)>> {
    let mut rows = Vec::new();
    // ESTRADE_BENCH_FAULTS=loss,jitter: only the profiles whose name has one of those in it.
    let only = std::env::var("ESTRADE_BENCH_FAULTS").unwrap_or_default();
    let wanted = |name: &str| only.split(',').any(|o| name.contains(o));
    for profile in profiles().into_iter().filter(|p| wanted(p.name)) {
        eprintln!("  {}: Estrade", profile.name);
        let ours = ours(relay, profile.link, trainer, listener).await?;
        eprintln!("  {}: libwebrtc", profile.name);
        let reference = libwebrtc(relay, profile.link, trainer, listener).await?;
        rows.push((profile, ours, reference));
    }
    Ok(rows)
}

/// Applies `link` for `FAULT`; returns (start, end) in Unix ms and the packets dropped.
async fn fault(relay: &FaultRelay, link: Link) -> (i64, i64, u64) {
    let dropped = |relay: &FaultRelay| {
        let (up, down) = relay.counts(Class::Everyone);
        up.lost + up.overflowed + down.lost + down.overflowed
    };
    let before = dropped(relay);
    let start = unix_ms();
    relay.set(Class::Everyone, link);
    tokio::time::sleep(FAULT).await;
    relay.set(Class::Everyone, Link::CLEAN);
    (start, unix_ms(), dropped(relay) - before)
}

async fn ours(
    relay: &FaultRelay,
    link: Link,
    trainer: &Grant,
    listener: &Grant,
) -> anyhow::Result<Outcome> {
    let (heard, seen) = (PulseRecorder::default(), FrameRecorder::default());
    let (a, _a_events) = estrade_engine::join(JoinOptions {
        url: trainer.url.clone(),
        token: trainer.token.clone(),
        audio_output: None,
        video_output: None,
    })
    .await?;
    a.publish_microphone(ToneBursts::continuous(440.0)).await?;
    a.publish_camera(
        TestPattern::new(1280, 720, 30),
        CameraSettings {
            width: 1280,
            height: 720,
            fps: 30,
            bitrate_kbps: 1_500,
            codec: VideoCodec::Vp8,
            simulcast: true,
        },
    )
    .await?;
    let (b, _b_events) = estrade_engine::join(JoinOptions {
        url: listener.url.clone(),
        token: listener.token.clone(),
        audio_output: Some(Arc::new(heard.clone())),
        video_output: Some(Arc::new(seen.clone())),
    })
    .await?;
    tokio::time::sleep(SETTLE).await;
    let from = ParticipantIdentity(trainer.identity.0.clone());
    let before = heard.heard_from(&from).playout.jitter;
    let keyframes_before = seen.seen_from(&from).keyframes_requested;
    // The trainer's uplink estimate each second of the fault (and just before it).
    let sampled = async {
        let mut kbps = vec![a.uplink_estimate_kbps()];
        for _ in 0..FAULT.as_secs() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            kbps.push(a.uplink_estimate_kbps());
        }
        kbps
    };
    let ((start, end, path_dropped), estimates) = tokio::join!(fault(relay, link), sampled);
    let during = heard.heard_from(&from).playout.jitter;
    tokio::time::sleep(AFTER).await;
    let video = seen.seen_from(&from);
    eprintln!(
        "    Estrade's uplink estimate (video, kbit/s), each second of the fault: {estimates:?}; {} s after: {}",
        AFTER.as_secs(),
        a.uplink_estimate_kbps()
    );
    b.leave().await;
    a.leave().await;
    let audio = during.since(&before);
    eprintln!(
        "    Estrade's jitter buffer during the fault: {} played ({} from RED copies), {} from FEC, {} concealed, {} too late or repeated, {} trimmed",
        audio.played,
        audio.from_copies,
        audio.recovered,
        audio.concealed,
        audio.discarded,
        audio.trimmed
    );
    eprintln!(
        "    Estrade's video receiver, whole call: {} gaps of lost packets ({} packets), {} keyframes asked",
        video.loss_gaps, video.packets_lost, video.keyframes_requested
    );
    let heights: Vec<u32> = video.sizes.iter().map(|(_, h)| *h).collect();
    let mut outcome = video_outcome(&video.shown_unix_ms, &heights, start, end);
    let total = (audio.played + audio.recovered + audio.concealed).max(1) as f64;
    outcome.played = audio.played_share();
    outcome.from_fec = Some(audio.recovered as f64 / total);
    outcome.concealed = audio.concealed as f64 / total;
    outcome.keyframes_asked = u64::from(video.keyframes_requested - keyframes_before);
    outcome.path_dropped = path_dropped;
    Ok(outcome)
}

async fn libwebrtc(
    relay: &FaultRelay,
    link: Link,
    trainer: &Grant,
    listener: &Grant,
) -> anyhow::Result<Outcome> {
    // The peers count from their own start; joining takes them a second or two.
    let joining = Duration::from_secs(2);
    let seconds = (joining + SETTLE + FAULT + AFTER).as_secs_f64().to_string();
    let a = reference::command(trainer)?
        .args([
            "--video",
            "--video-size",
            "1280x720",
            "--simulcast",
            "--continuous",
            "--freq",
            "440",
            "--seconds",
            &seconds,
        ])
        .spawn()?;
    let b = reference::command(listener)?
        .args([
            "--listen-only",
            "--stats-every",
            "0.5",
            "--seconds",
            &seconds,
        ])
        .spawn()?;
    tokio::time::sleep(joining + SETTLE).await;
    let (start, end, path_dropped) = fault(relay, link).await;
    let (_, report) = tokio::try_join!(reference::report(a), reference::report(b))?;
    let from = trainer.identity.0.as_str();
    let video = &report["watched"][from];
    let shown: Vec<i64> = ints(&video["shown_ms"]);
    let heights: Vec<u32> = ints(&video["heights"])
        .into_iter()
        .map(|h| h as u32)
        .collect();
    let mut outcome = video_outcome(&shown, &heights, start, end);
    let samples = report["stats"].as_array().cloned().unwrap_or_default();
    let at = |kind: &str, unix_ms: i64| -> Option<Value> {
        samples
            .iter()
            .filter(|s| s["identity"] == from && s["kind"] == kind)
            .take_while(|s| s["unix_ms"].as_i64().is_some_and(|t| t <= unix_ms))
            .last()
            .cloned()
    };
    let delta = |kind: &str, field: &str, from_ms: i64, to_ms: i64| -> f64 {
        let read = |t| at(kind, t).and_then(|s| s[field].as_f64()).unwrap_or(0.0);
        read(to_ms) - read(from_ms)
    };
    let total = delta("audio", "total_samples_received", start, end).max(FRAME_SAMPLES);
    outcome.concealed = delta("audio", "concealed_samples", start, end) / total;
    outcome.played = 1.0 - outcome.concealed;
    outcome.from_fec = None;
    outcome.keyframes_asked = delta("video", "pli_count", start, i64::MAX) as u64;
    outcome.path_dropped = path_dropped;
    Ok(outcome)
}

/// Video figures from when each frame was shown and its height.
fn video_outcome(shown_ms: &[i64], heights: &[u32], start: i64, end: i64) -> Outcome {
    let fault_ms = (end - start) as f64;
    let during = shown_ms
        .iter()
        .filter(|t| (start..end).contains(*t))
        .count();
    let top = shown_ms
        .iter()
        .zip(heights)
        .filter(|(t, _)| **t < start)
        .map(|(_, h)| *h)
        .max()
        .unwrap_or(0);
    let lowest_height = shown_ms
        .iter()
        .zip(heights)
        .filter(|(t, _)| (start..end).contains(*t))
        .map(|(_, h)| *h)
        .min()
        .unwrap_or(0);
    // The longest stretch without a frame, edges included.
    let mut last = start;
    let mut longest = 0i64;
    for t in shown_ms.iter().copied().filter(|t| *t >= start) {
        longest = longest.max(t - last);
        last = t;
    }
    let after_end = end + AFTER.as_millis() as i64;
    longest = longest.max(after_end.min(unix_ms()) - last);
    // Back: the first top-layer frame from the fault's end on that is followed by ten
    // more within half a second (the layer is flowing, not a lone keyframe).
    let back_at_top_ms = (0..shown_ms.len())
        .filter(|i| shown_ms[*i] >= end && heights[*i] == top && top > 0)
        .find(|i| {
            shown_ms
                .get(i + 10)
                .is_some_and(|t| t - shown_ms[*i] <= 500 && heights[i + 10] == top)
        })
        .map(|i| (shown_ms[i] - end) as f64);
    Outcome {
        video_shown: during as f64 / (fault_ms / 1000.0 * FPS),
        longest_freeze_ms: longest as f64,
        lowest_height,
        back_at_top_ms,
        ..Outcome::default()
    }
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

fn unix_ms() -> i64 {
    (unix_us_now() / 1000) as i64
}

pub fn print(rows: &[(Profile, Outcome, Outcome)]) {
    println!(
        "\nfaults on every client's path to the SFU, {} s each; listener's view of a trainer's continuous tone and 720p30 simulcast camera:",
        FAULT.as_secs()
    );
    println!(
        "| fault | client | audio played from data or FEC % (of which FEC) | concealed % | video frames shown % | longest freeze ms | lowest layer | back at top after fault ms | keyframes asked | path dropped pkts |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (profile, ours, reference) in rows {
        for (client, o) in [("Estrade", ours), ("libwebrtc", reference)] {
            let fec = o
                .from_fec
                .map(|f| format!(" ({:.1})", f * 100.0))
                .unwrap_or_else(|| " (—)".into());
            let back = o
                .back_at_top_ms
                .map(|ms| format!("{ms:.0}"))
                .unwrap_or_else(|| format!("not in {} s", AFTER.as_secs()));
            println!(
                "| {} | {client} | {:.1}{fec} | {:.1} | {:.0} | {:.0} | {}p | {back} | {} | {} |",
                profile.name,
                o.played * 100.0,
                o.concealed * 100.0,
                o.video_shown * 100.0,
                o.longest_freeze_ms,
                o.lowest_height,
                o.keyframes_asked,
                o.path_dropped,
            );
        }
    }
}
