//! `estrade-bench`: Estrade's session engine and the libwebrtc reference (LiveKit's Python
//! SDK) measured in the same run, through the same livekit-server on loopback.
//!
//! Scenarios: join → connected and → first remote audio frame (20 joins each); mouth-to-ear
//! between two clients from the wall-clock tone bursts the synthetic microphones carry.
//! Needs livekit-server (ESTRADE_LIVEKIT_URL) and the SDK venv (ESTRADE_PY); run it with
//! `./scripts/estrade bench`, which provides both.

mod costs;
mod device_path;
use device_path::Clients;
mod echo;
mod faults;
mod load;
mod machine;
mod pulse;
mod reference;
mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use estrade_backend::api::{JoinResponse as Grant, SessionId};
use estrade_backend::{Backend, BackendUrl, Secret};
use estrade_devserver::{Config, seed};
use estrade_engine::synthetic::ToneBursts;
use estrade_engine::synthetic_video::TestPattern;
use estrade_engine::{
    CameraSettings, FrameRecorder, JoinOptions, ParticipantIdentity, PulseRecorder, Room,
    RoomEvent, RoomEvents, VideoCodec,
};

use crate::machine::with_steal;
use crate::stats::Row;

/// Onsets before this are warm-up (the jitter buffers settle on both sides).
const WARM_UP_BURSTS: usize = 2;
/// Frames before this are warm-up (first keyframe, encoder rate control settling).
const WARM_UP_FRAMES: usize = 30;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let livekit_url = std::env::var("ESTRADE_LIVEKIT_URL")
        .context("ESTRADE_LIVEKIT_URL (scripts/estrade bench sets it)")?;
    let joins: usize = std::env::var("ESTRADE_BENCH_JOINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seconds: u64 = std::env::var("ESTRADE_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let devserver = estrade_devserver::spawn(Config {
        bind: "127.0.0.1:0".parse()?,
        livekit_url: livekit_url.clone(),
        room_prefix: format!("bench-{}-", std::process::id()),
        ..Config::default()
    })
    .await?;
    let backend = Backend::new(BackendUrl::parse(&devserver.url())?)?;

    if std::env::var("ESTRADE_BENCH_ONLY").is_ok_and(|v| v == "faults") {
        fault_bench(&backend).await?;
        devserver.shutdown().await;
        return Ok(());
    }

    // Devices first: per-frame costs, then echo cancellation on the real audio path.
    eprintln!("per-frame costs of the device paths");
    let (audio_costs, video_costs) = (costs::audio(), costs::video()?);
    costs::print("per 10 ms of audio (one core)", &audio_costs);
    costs::print("per 720p camera frame (one core)", &video_costs);
    eprintln!(
        "echo: a call recorded on the virtual devices (about 40 s), then each canceller on it"
    );
    let echo_rows = echo::run().await?;
    echo::print(&echo_rows);
    if std::env::var("ESTRADE_BENCH_ONLY").is_ok_and(|v| v == "devices") {
        let (a, b) = (
            join_grant(&backend, "lea.dubois@estrade.example").await?,
            join_grant(&backend, "amina.diallo@estrade.example").await?,
        );
        let ours =
            device_path::mouth_to_ear(Clients::Estrade, &a, &b, seconds, WARM_UP_BURSTS).await?;
        let reference =
            device_path::mouth_to_ear(Clients::Libwebrtc, &a, &b, seconds, WARM_UP_BURSTS).await?;
        stats::print(&[Row {
            name: "microphone → speaker, virtual devices".into(),
            ours,
            reference,
            target_ms: None,
        }]);
        devserver.shutdown().await;
        return Ok(());
    }

    let grant = |email: &'static str| {
        let backend = backend.clone();
        async move { join_grant(&backend, email).await }
    };

    eprintln!("join: {joins} joins each, with a publisher already in the room");
    let publisher_grant = grant(seed::DEMO_TRAINER_EMAIL).await?;
    let (publisher, _publisher_events) = join(&publisher_grant, None).await?;
    publisher
        .publish_microphone(ToneBursts::continuous(440.0))
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let joiner = grant("thomas.petit@estrade.example").await?;
    let ((ours_connected, ours_first_audio), ours_steal) = with_steal(async {
        let (mut connected, mut first_audio) = (Vec::new(), Vec::new());
        for _ in 0..joins {
            let (c, f) = time_one_join(&joiner).await?;
            connected.push(c);
            first_audio.push(f);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Ok((connected, first_audio))
    })
    .await?;
    let reference_joiner = grant("hugo.moreau@estrade.example").await?;
    let (report, reference_steal) =
        with_steal(reference::join_bench(&reference_joiner, joins)).await?;
    let mut steal = vec![("join", ours_steal, reference_steal)];
    publisher.leave().await;

    eprintln!(
        "mouth-to-ear: {seconds} s of tone bursts each way, Estrade ↔ Estrade then libwebrtc ↔ libwebrtc"
    );
    let (a, b) = (
        grant("lea.dubois@estrade.example").await?,
        grant("amina.diallo@estrade.example").await?,
    );
    let (ours_m2e, ours_steal) = with_steal(mouth_to_ear_ours(&a, &b, seconds)).await?;
    let (c, d) = (
        grant("karim.benali@estrade.example").await?,
        grant("hugo.moreau@estrade.example").await?,
    );
    let (reference_m2e, reference_steal) =
        with_steal(reference::mouth_to_ear(&c, &d, seconds, WARM_UP_BURSTS)).await?;
    steal.push(("mouth-to-ear", ours_steal, reference_steal));
    eprintln!(
        "microphone → speaker through the virtual devices: {seconds} s one way, Estrade then libwebrtc's device module"
    );
    let (ours_m2e_devices, devices_steal) = with_steal(device_path::mouth_to_ear(
        Clients::Estrade,
        &a,
        &b,
        seconds,
        WARM_UP_BURSTS,
    ))
    .await?;
    let (reference_m2e_devices, reference_devices_steal) = with_steal(device_path::mouth_to_ear(
        Clients::Libwebrtc,
        &c,
        &d,
        seconds,
        WARM_UP_BURSTS,
    ))
    .await?;
    steal.push(("devices", devices_steal, reference_devices_steal));

    eprintln!(
        "glass-to-glass: {seconds} s of 720p30 each way, Estrade ↔ Estrade then libwebrtc ↔ libwebrtc"
    );
    let (e, f) = (
        grant(seed::DEMO_TRAINER_EMAIL).await?,
        grant("karim.benali@estrade.example").await?,
    );
    let mut g2g = Vec::new();
    for (codec, name, row) in [
        (VideoCodec::Vp8, "vp8", "glass-to-glass VP8"),
        (VideoCodec::H264, "h264", "glass-to-glass H.264"),
    ] {
        let (ours, ours_steal) = with_steal(glass_to_glass_ours(&e, &f, seconds, codec)).await?;
        let (reference, reference_steal) = with_steal(reference::glass_to_glass(
            &e,
            &f,
            "1280x720",
            name,
            seconds,
            WARM_UP_FRAMES,
        ))
        .await?;
        steal.push((row, ours_steal, reference_steal));
        g2g.push((ours, reference));
    }
    let [
        (ours_g2g, reference_g2g),
        (ours_g2g_h264, reference_g2g_h264),
    ]: [_; 2] = g2g.try_into().expect("two codecs");

    eprintln!(
        "CPU and memory: one client publishing 720p30 simulcast + audio, watching 8 cameras (360p30) and hearing 3 talkers"
    );
    let load = load::cpu_and_memory(&livekit_url, 5, seconds).await?;

    println!();
    println!(
        "Estrade {} vs libwebrtc (LiveKit Python SDK, tests/interop/requirements.txt), livekit-server v1.13.5 on loopback, build profile: {}",
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) {
            "dev (dependencies at opt-level 2)"
        } else {
            "release"
        }
    );
    stats::print(&[
        Row {
            name: format!("join → connected ({joins} joins)"),
            ours: ours_connected,
            reference: report.connected_ms,
            target_ms: Some(300.0),
        },
        Row {
            name: format!("join → first audible remote audio ({joins} joins)"),
            ours: ours_first_audio,
            reference: report.first_audio_ms,
            target_ms: Some(300.0),
        },
        Row {
            name: "glass-to-glass, VP8 720p30 (both directions)".into(),
            ours: ours_g2g,
            reference: reference_g2g,
            target_ms: Some(70.0),
        },
        Row {
            name: "glass-to-glass, H.264 720p30 (both directions)".into(),
            ours: ours_g2g_h264,
            reference: reference_g2g_h264,
            target_ms: Some(70.0),
        },
        Row {
            name: "mouth-to-ear, audio (both directions)".into(),
            ours: ours_m2e,
            reference: reference_m2e,
            target_ms: Some(60.0),
        },
        Row {
            name: "microphone → speaker, virtual devices".into(),
            ours: ours_m2e_devices,
            reference: reference_m2e_devices,
            target_ms: None,
        },
    ]);
    println!(
        "CPU taken by the hypervisor while measuring (% of this machine's CPU time, Estrade / libwebrtc): {}",
        steal
            .iter()
            .map(|(name, ours, reference)| format!("{name} {ours:.0} / {reference:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();
    println!(
        "one client, 720p30 simulcast camera + microphone out, 8 × 360p30 cameras + 3 talkers in ({seconds} s after 5 s warm-up, CPU in % of one core):"
    );
    println!("| client | CPU % | RSS MiB (peak) | frames decoded per camera |\n|---|---|---|---|");
    for (name, usage, output) in [
        (
            "Estrade (estrade-cli, synthetic microphone)",
            load.ours,
            &load.ours_output,
        ),
        (
            "Estrade on the virtual devices, processing on",
            load.ours_devices,
            &load.ours_devices_output,
        ),
        (
            "libwebrtc (Python SDK peer)",
            load.reference,
            &load.reference_output,
        ),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} ({:.0}) | {output} |",
            usage.cpu_percent, usage.rss_mib, usage.peak_rss_mib
        );
    }
    fault_bench(&backend).await?;
    devserver.shutdown().await;
    Ok(())
}

/// The fault rows (`faults.rs`), through a relay started before their clients join.
async fn fault_bench(backend: &Backend) -> anyhow::Result<()> {
    let port: u16 = std::env::var("ESTRADE_LIVEKIT_PORT")
        .context("ESTRADE_LIVEKIT_PORT (scripts/estrade bench sets it)")?
        .parse()?;
    let relay = estrade_netfault::FaultRelay::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], port + 2)),
        port + 1,
    )
    .context("the fault relay (nftables, as root)")?;
    let (trainer, listener) = (
        join_grant(backend, seed::DEMO_TRAINER_EMAIL).await?,
        join_grant(backend, "lea.dubois@estrade.example").await?,
    );
    eprintln!("faults: each profile for 10 s in a call, Estrade then libwebrtc");
    let rows = faults::run(&relay, &trainer, &listener).await?;
    faults::print(&rows);
    Ok(())
}

async fn join_grant(backend: &Backend, email: &str) -> anyhow::Result<Grant> {
    let user = backend
        .login(email, &Secret::new(seed::DEMO_PASSWORD))
        .await?;
    Ok(user
        .join_session(&SessionId(seed::sessions::LIVE.to_string()))
        .await?)
}

async fn join(grant: &Grant, output: Option<PulseRecorder>) -> anyhow::Result<(Room, RoomEvents)> {
    Ok(estrade_engine::join(JoinOptions {
        url: grant.url.clone(),
        token: grant.token.clone(),
        audio_output: output.map(|o| Arc::new(o) as Arc<dyn estrade_engine::AudioOutput>),
        video_output: None,
    })
    .await?)
}

/// ms from calling `join` to MediaConnected, and to the first audible frame of the
/// publisher's (continuous) tone played.
async fn time_one_join(grant: &Grant) -> anyhow::Result<(f64, f64)> {
    let recorder = PulseRecorder::default();
    let started = Instant::now();
    let (room, mut events) = join(grant, Some(recorder.clone())).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let connected = loop {
        match tokio::time::timeout_at(deadline, events.recv()).await? {
            Some(RoomEvent::MediaConnected { after }) => break after,
            Some(_) => {}
            None => bail!("the room ended during the join"),
        }
    };
    let first = loop {
        if let Some(at) = recorder
            .all()
            .values()
            .filter_map(|h| h.first_audible)
            .min()
        {
            break at;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no remote audio within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    room.leave().await;
    Ok((ms(connected), ms(first.duration_since(started))))
}

async fn mouth_to_ear_ours(a: &Grant, b: &Grant, seconds: u64) -> anyhow::Result<Vec<f64>> {
    let (ra, rb) = (PulseRecorder::default(), PulseRecorder::default());
    let (room_a, _ea) = join(a, Some(ra.clone())).await?;
    let (room_b, _eb) = join(b, Some(rb.clone())).await?;
    room_a.publish_microphone(ToneBursts::new(880.0)).await?;
    room_b.publish_microphone(ToneBursts::new(660.0)).await?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let mut all = Vec::new();
    for (recorder, from) in [(&rb, &a.identity.0), (&ra, &b.identity.0)] {
        let heard = recorder.heard_from(&ParticipantIdentity(from.clone()));
        all.extend(heard.pulses.latencies_ms.into_iter().skip(WARM_UP_BURSTS));
    }
    room_a.leave().await;
    room_b.leave().await;
    Ok(all)
}

/// Two Estrade clients publishing the stamped pattern at 720p30 (1.5 Mb/s, one layer) to
/// each other; glass-to-glass of every readable frame after the warm-up.
async fn glass_to_glass_ours(
    a: &Grant,
    b: &Grant,
    seconds: u64,
    codec: VideoCodec,
) -> anyhow::Result<Vec<f64>> {
    let (sa, sb) = (FrameRecorder::default(), FrameRecorder::default());
    let (room_a, _ea) = join_video(a, sa.clone()).await?;
    let (room_b, _eb) = join_video(b, sb.clone()).await?;
    let settings = CameraSettings {
        width: 1280,
        height: 720,
        fps: 30,
        bitrate_kbps: 1_500,
        codec,
        simulcast: false,
    };
    room_a
        .publish_camera(TestPattern::new(1280, 720, 30), settings)
        .await?;
    room_b
        .publish_camera(TestPattern::new(1280, 720, 30), settings)
        .await?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let mut all = Vec::new();
    for (screen, from) in [(&sb, &a.identity.0), (&sa, &b.identity.0)] {
        let seen = screen.seen_from(&ParticipantIdentity(from.clone()));
        all.extend(seen.glass_to_glass_ms.into_iter().skip(WARM_UP_FRAMES));
    }
    room_a.leave().await;
    room_b.leave().await;
    Ok(all)
}

async fn join_video(grant: &Grant, screen: FrameRecorder) -> anyhow::Result<(Room, RoomEvents)> {
    Ok(estrade_engine::join(JoinOptions {
        url: grant.url.clone(),
        token: grant.token.clone(),
        audio_output: None,
        video_output: Some(Arc::new(screen)),
    })
    .await?)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
