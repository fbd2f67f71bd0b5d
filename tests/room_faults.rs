//! A lossy and a jittery network on the real stack (estrade-netfault between every client
//! and a livekit-server of the test's own): the student keeps hearing the trainer (frames
//! played from data or FEC, not concealed) and seeing the camera, which comes back to a
//! steady flow once the fault ends. The fault bench measures the same with
//! libwebrtc beside it (crates/bench, `faults.rs`); this test holds the floor.

mod common;

use std::time::{Duration, Instant};

use common::{OwnLivekit, devserver_on};
use estrade_devserver::{Config, seed};
use estrade_engine::synthetic::ToneBursts;
use estrade_engine::synthetic_video::TestPattern;
use estrade_engine::{
    CameraSettings, FrameRecorder, PulseRecorder, RoomEvent, SessionEvent, VideoCodec,
};
use estrade_netfault::{Class, Impairment, Link};

const FAULT: Duration = Duration::from_secs(10);

/// What the student got from the trainer while a fault lasted, and after.
#[derive(Debug)]
struct Got {
    /// Share of audio frames played from data or FEC.
    played: f64,
    /// Share of the camera's frames shown.
    shown: f64,
    /// From the fault's end to ten frames shown within half a second.
    back: Option<Duration>,
    /// The server paused the camera for the student at some point (its allocator read
    /// the fault as congestion).
    paused: bool,
}

async fn under(link: Link, port: u16) -> Got {
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
            TestPattern::new(640, 360, 30),
            CameraSettings {
                width: 640,
                height: 360,
                fps: 30,
                bitrate_kbps: 600,
                codec: VideoCodec::Vp8,
                simulcast: false,
            },
        )
        .await
        .unwrap();
    let (student, mut events, _) = common::join_room(
        &backend,
        "lea.dubois@estrade.example",
        Some(heard.clone()),
        Some(seen.clone()),
    )
    .await;
    // Read the student's events throughout (the server may pause the camera).
    let paused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&paused);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let RoomEvent::Session(SessionEvent::TrackStreamStateChanged {
                paused: true, ..
            }) = event
            {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.seen_from(&max).frames.len() < 60 {
        assert!(Instant::now() < deadline, "the student sees the camera");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = heard.heard_from(&max).playout.jitter;
    let frames_before = seen.seen_from(&max).frames.len();
    relay.set(Class::Everyone, link);
    tokio::time::sleep(FAULT).await;
    relay.set(Class::Everyone, Link::CLEAN);
    let (up, down) = relay.counts(Class::Everyone);
    let ended = Instant::now();
    let during = heard.heard_from(&max).playout.jitter;
    let frames_during = seen.seen_from(&max).frames.len() - frames_before;
    // Back: ten frames within half a second, all after the end.
    let mut back = None;
    let mut since = (Instant::now(), seen.seen_from(&max).frames.len());
    while ended.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = seen.seen_from(&max).frames.len();
        if now - since.1 >= 10 {
            back = Some(since.0 - ended);
            break;
        }
        if since.0.elapsed() > Duration::from_millis(500) {
            since = (Instant::now(), now);
        }
    }
    let paused = paused.load(std::sync::atomic::Ordering::Relaxed);
    student.leave().await;
    trainer.leave().await;
    let audio = during.since(&before);
    let got = Got {
        played: audio.played_share(),
        shown: frames_during as f64 / (FAULT.as_secs_f64() * 30.0),
        back,
        paused,
    };
    eprintln!(
        "{link:?}: {got:?}; audio {} from data, {} from FEC, {} concealed; \
         path up {up:?}, down {down:?}",
        audio.played, audio.recovered, audio.concealed
    );
    assert!(up.forwarded > 0 && down.forwarded > 0, "through the relay");
    assert!(
        up.lost + down.lost > 0 || link.up.loss == 0.0,
        "the fault was applied"
    );
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server and nftables: scripts/test.sh"]
async fn under_ten_percent_loss_each_way_the_class_is_heard_and_seen() {
    let _turn = common::one_at_a_time().await;
    let got = under(Link::both(Impairment::loss(0.10)), 18070).await;
    // Measured: 92–98 % played, 72–78 % of frames shown (session 7); since our own NACKs,
    // 41 % once with 3 tries 100 ms apart, 61 and 99 % with 5 tries 60 ms apart (the
    // asks are lost on the lossy uplink too); back 0–3.1 s after the end. The
    // issue's 1 s is not met under this loss yet: a keyframe lost near the end waits
    // for the next, and the server forwards one request a second (its PLI throttle).
    // Since our TWCC feedback reports every loss, the server's loss-based detector may
    // read this random loss as congestion and pause the camera (seen once in three
    // runs: 21 % shown, back 1.0 s after the end): the student is told, and the sound
    // must still hold.
    assert!(got.played >= 0.85, "{got:?}");
    if !got.paused {
        assert!(got.shown >= 0.5, "{got:?}");
    }
    assert!(
        got.back.is_some_and(|b| b <= Duration::from_secs(4)),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server and nftables: scripts/test.sh"]
async fn under_fifty_ms_of_jitter_the_class_is_heard_and_seen() {
    let _turn = common::one_at_a_time().await;
    let jitter = Impairment {
        delay: Duration::from_millis(50),
        jitter: Duration::from_millis(50),
        ..Impairment::NONE
    };
    let got = under(Link::both(jitter), 18080).await;
    // Measured: 98 % played; the camera 93–99 % shown and back at once, or — when the
    // server's send-side estimator read the jitter as congestion — paused (the student
    // told) and resumed when its probe succeeds (36 % shown, seen once more than 5 s).
    assert!(got.played >= 0.95, "{got:?}");
    if !got.paused {
        assert!(got.shown >= 0.8, "{got:?}");
    }
    let limit = Duration::from_secs(if got.paused { 10 } else { 1 });
    assert!(got.back.is_some_and(|b| b <= limit), "{got:?}");
}
