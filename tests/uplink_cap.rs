//! A trainer whose uplink is capped at 500 kbit/s (hotel Wi-Fi, a shared office line)
//! while sending a 720p simulcast camera that wants 2.1 Mbit/s: the camera must come down
//! to what the link carries, from the server's receiver reports, instead of flooding it
//! and crowding the voice out. Real stack: livekit-server of the test's own, the cap by
//! estrade-netfault (a token bucket with a 100 ms queue, as `tc tbf` makes one).

mod common;

use std::time::{Duration, Instant};

use common::{OwnLivekit, devserver_on};
use estrade_devserver::{Config, seed};
use estrade_engine::synthetic::ToneBursts;
use estrade_engine::synthetic_video::TestPattern;
use estrade_engine::{CameraSettings, FrameRecorder, PulseRecorder, VideoCodec};
use estrade_netfault::{Class, Impairment, Link};

const CAP_KBPS: u32 = 500;
/// Given to the estimate to find the cap, then measured over the same again.
const SETTLE: Duration = Duration::from_secs(10);
const MEASURED: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server and nftables: scripts/test.sh"]
async fn a_capped_uplink_carries_the_voice_and_a_camera_that_fits() {
    let _turn = common::one_at_a_time().await;
    let port = 18090;
    let livekit = OwnLivekit::start(port);
    let relay = livekit.fault_relay();
    let (_devserver, backend) = devserver_on(Config::default(), &livekit.url()).await;
    let (heard, seen) = (PulseRecorder::default(), FrameRecorder::default());
    let (trainer, _trainer_events, max) =
        common::join_room(&backend, seed::DEMO_TRAINER_EMAIL, None, None).await;
    trainer
        .publish_microphone(ToneBursts::continuous(440.0))
        .await
        .unwrap();
    trainer
        .publish_camera(
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
        .await
        .unwrap();
    let full = trainer.uplink_estimate_kbps();
    let (student, _events, _) = common::join_room(
        &backend,
        "lea.dubois@estrade.example",
        Some(heard.clone()),
        Some(seen.clone()),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.seen_from(&max).frames.len() < 60 {
        assert!(Instant::now() < deadline, "the student sees the camera");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Only the uplink: what the clients send. The student sends nothing but reports.
    let cap = Impairment {
        rate_kbps: Some(CAP_KBPS),
        ..Impairment::NONE
    };
    relay.set(
        Class::Everyone,
        Link {
            up: cap,
            down: Impairment::NONE,
        },
    );
    tokio::time::sleep(SETTLE).await;
    let (up_before, _) = relay.counts(Class::Everyone);
    let audio_before = heard.heard_from(&max).playout.jitter;
    let frames_before = seen.seen_from(&max).frames.len();
    let mut estimates = Vec::new();
    let end = Instant::now() + MEASURED;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(500)).await;
        estimates.push(trainer.uplink_estimate_kbps());
    }
    let (up_after, _) = relay.counts(Class::Everyone);
    let audio = heard.heard_from(&max).playout.jitter.since(&audio_before);
    let frames = seen.seen_from(&max).frames.len() - frames_before;
    let sizes = seen.seen_from(&max).sizes;
    relay.set(Class::Everyone, Link::CLEAN);
    student.leave().await;
    trainer.leave().await;

    let forwarded = up_after.forwarded - up_before.forwarded;
    let overflowed = up_after.overflowed - up_before.overflowed;
    let overflow = overflowed as f64 / (forwarded + overflowed).max(1) as f64;
    let shown = frames as f64 / (MEASURED.as_secs_f64() * 30.0);
    eprintln!(
        "cap {CAP_KBPS} kbit/s up: estimate {full} → {estimates:?} kbit/s; \
         {:.1} % of the packets over the cap; voice {:.3} played ({} data, {} FEC, {} concealed); \
         {:.0} % of frames shown, last {:?}",
        overflow * 100.0,
        audio.played_share(),
        audio.played,
        audio.recovered,
        audio.concealed,
        shown * 100.0,
        sizes.last()
    );
    assert!(
        overflowed + forwarded > 0 && up_after.overflowed > 0,
        "the cap was applied"
    );
    // Without the estimate: 2.1 Mbit/s into 500 kbit/s, three packets in four overflowed
    // and the voice was 74 % played (the fault bench, 2026-12-01). With it, measured: 1.0 %
    // and 7.9 % (an estimate still settling at the window's start, and the probes). The
    // estimate is the video's alone: the sound and the packets' headers (~60 kbit/s) come
    // on top, which the estimate learns only from the loss they cause.
    // Since session 8 (2026-12-02), runs at 0.4–14.6 % over the cap: the estimate grows
    // back to ~420 kbit/s, and with the sound, the headers and a keyframe burst that is
    // over 500 for a moment (four runs: at 12.2 and 14.6 % over, the voice 97.2 and
    // 94.6 % played; at 0.4 and 1.7 %, 99.2 and 98.8 %). Why more often than in session
    // 7's runs (2.2–7.3 %) is not settled (the note, 2026-12-02).
    assert!(overflow <= 0.15, "{:.1} % overflowed", overflow * 100.0);
    assert!(audio.played_share() >= 0.93, "{audio:?}");
    assert!(
        estimates.iter().all(|&e| e <= CAP_KBPS),
        "the estimate stays under the cap: {estimates:?}"
    );
    // The camera goes on, on the layers that fit.
    assert!(shown >= 0.5, "{:.0} % shown", shown * 100.0);
}
