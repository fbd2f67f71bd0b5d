//! Video through the engine, livekit-server and real WebRTC: the trainer (VP8) and the
//! co-trainer (H.264) publish the stamped test pattern (640×360 at 30 fps) and each receives
//! the other's: frames decode at the right size with increasing frame counters, and the
//! capture stamp gives glass-to-glass latency. Turning a camera off shows as muted and stops
//! the frames; back on, frames resume from a keyframe. A student's camera is a typed error.
//! A simulcast camera is forwarded at the layer the viewer's tile asks for.

mod common;

use std::time::Duration;

use common::{devserver, p50, wait_for};
use estrade_backend::Backend;
use estrade_devserver::{Config, seed};
use estrade_engine::synthetic_video::TestPattern;
use estrade_engine::{
    CameraSettings, CommandError, FrameRecorder, ParticipantIdentity, PublishError, Room,
    RoomEvent, RoomEvents, SessionEvent, TrackSettings, TrackSource, VideoCodec,
};

const CAMERA: CameraSettings = CameraSettings {
    width: 640,
    height: 360,
    fps: 30,
    bitrate_kbps: 600,
    codec: VideoCodec::Vp8,
    simulcast: false,
};

async fn join_as(
    backend: &Backend,
    email: &str,
) -> (Room, RoomEvents, FrameRecorder, ParticipantIdentity) {
    let screen = FrameRecorder::default();
    let (room, events, identity) =
        common::join_room(backend, email, None, Some(screen.clone())).await;
    (room, events, screen, identity)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn trainer_and_co_trainer_see_each_other_and_camera_off_propagates() {
    let _turn = common::one_at_a_time().await;
    let (devserver, backend) = devserver(Config::default()).await;
    let (claire, mut claire_events, claire_screen, claire_id) =
        join_as(&backend, seed::DEMO_TRAINER_EMAIL).await;
    let (karim, mut karim_events, karim_screen, karim_id) =
        join_as(&backend, "karim.benali@estrade.example").await;
    let (lea, _lea_events, _, _) = join_as(&backend, "lea.dubois@estrade.example").await;

    assert_eq!(
        lea.publish_camera(TestPattern::new(640, 360, 30), CAMERA)
            .await,
        Err(CommandError::Publish(PublishError::NotAllowed(
            TrackSource::Camera
        ))),
        "a student's camera is refused before anything is sent"
    );

    claire
        .publish_camera(TestPattern::new(640, 360, 30), CAMERA)
        .await
        .unwrap();
    karim
        .publish_camera(
            TestPattern::new(640, 360, 30),
            CameraSettings {
                codec: VideoCodec::H264,
                ..CAMERA
            },
        )
        .await
        .unwrap();
    let claire_track =
        common::own_track_published(&mut claire_events, "Claire's camera published").await;

    tokio::time::sleep(Duration::from_secs(5)).await;
    for (who, screen, from) in [
        ("Karim sees Claire (VP8)", &karim_screen, &claire_id),
        ("Claire sees Karim (H.264)", &claire_screen, &karim_id),
    ] {
        let seen = screen.seen_from(from);
        eprintln!(
            "{who}: {} frames shown ({} unreadable), glass-to-glass p50 {:.1} ms, first/last frame {:?}/{:?}",
            seen.frames.len(),
            seen.unreadable,
            p50(&seen.glass_to_glass_ms),
            seen.frames.first(),
            seen.frames.last()
        );
        assert!(
            seen.frames.len() >= 60,
            "{who}: too few frames in 5 s: {}",
            seen.frames.len()
        );
        assert!(
            seen.frames.windows(2).all(|w| w[1] > w[0]),
            "{who}: frames out of order"
        );
        assert!(
            seen.sizes.iter().all(|s| *s == (640, 360)),
            "{who}: wrong size"
        );
        assert!(
            seen.unreadable * 10 <= seen.frames.len(),
            "{who}: garbled pictures"
        );
    }

    // Camera off: Karim sees it muted and no more frames; back on, they resume.
    claire.set_camera_enabled(false).await.unwrap();
    wait_for(&mut karim_events, "Claire's camera muted", |e| match e {
        RoomEvent::Session(SessionEvent::TrackMuted { track, .. }) if *track == claire_track => {
            Some(())
        }
        _ => None,
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = karim_screen.seen_from(&claire_id).frames.len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        karim_screen.seen_from(&claire_id).frames.len(),
        before,
        "a camera that is off sends nothing"
    );
    claire.set_camera_enabled(true).await.unwrap();
    wait_for(&mut karim_events, "Claire's camera back", |e| match e {
        RoomEvent::Session(SessionEvent::TrackUnmuted { track, .. }) if *track == claire_track => {
            Some(())
        }
        _ => None,
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        karim_screen.seen_from(&claire_id).frames.len() >= before + 20,
        "frames resume after the camera is back on"
    );

    for room in [&claire, &karim, &lea] {
        room.leave().await;
    }
    devserver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn a_simulcast_camera_is_forwarded_at_the_layer_the_tile_asks_for() {
    let _turn = common::one_at_a_time().await;
    let (devserver, backend) = devserver(Config::default()).await;
    let (claire, mut claire_events, _, claire_id) =
        join_as(&backend, seed::DEMO_TRAINER_EMAIL).await;
    let (karim, _karim_events, karim_screen, _) =
        join_as(&backend, "karim.benali@estrade.example").await;

    claire
        .publish_camera(
            TestPattern::new(1280, 720, 30),
            CameraSettings {
                width: 1280,
                height: 720,
                bitrate_kbps: 1_200,
                simulcast: true,
                ..CAMERA
            },
        )
        .await
        .unwrap();
    let track = common::own_track_published(&mut claire_events, "Claire's camera published").await;

    // After each tile change: wait until the last frames are at the expected size (the
    // server switches at a keyframe of the new layer, and moves up only once its bandwidth
    // estimate allows), then every frame of the next second must be at that size.
    let switch_to = |settings: TrackSettings, expected: Option<(u32, u32)>| {
        let (karim, screen, track, claire_id) = (&karim, &karim_screen, &track, &claire_id);
        async move {
            karim
                .set_track_settings(track.clone(), settings)
                .await
                .unwrap();
            let asked = std::time::Instant::now();
            let settled = |sizes: &[(u32, u32)]| match expected {
                Some(size) => sizes.len() >= 10 && sizes.iter().rev().take(10).all(|s| *s == size),
                None => true,
            };
            while !settled(&screen.seen_from(claire_id).sizes)
                && asked.elapsed() < Duration::from_secs(10)
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let switched = asked.elapsed();
            if expected.is_none() {
                tokio::time::sleep(Duration::from_millis(1_000)).await;
            }
            let before = screen.seen_from(claire_id).sizes.len();
            tokio::time::sleep(Duration::from_millis(1_000)).await;
            let window = screen.seen_from(claire_id).sizes[before..].to_vec();
            eprintln!(
                "tile {}x{} (shown: {}): settled after {switched:?}; next second {} frames, sizes {:?}",
                settings.width,
                settings.height,
                settings.enabled,
                window.len(),
                window.iter().collect::<std::collections::BTreeSet<_>>()
            );
            window
        }
    };
    let tile = |width, height| TrackSettings {
        enabled: true,
        width,
        height,
    };
    for (settings, expected) in [
        (tile(1280, 720), (1280, 720)),
        (tile(320, 180), (320, 180)),
        (tile(640, 360), (640, 360)),
        (tile(1280, 720), (1280, 720)),
    ] {
        let window = switch_to(settings, Some(expected)).await;
        // Which layer is the point, not the frame rate (a busy 2-core machine drops it).
        assert!(window.len() >= 5, "too few frames at {expected:?}");
        assert!(
            window.iter().all(|s| *s == expected),
            "a {}x{} tile gets the {expected:?} layer: {window:?}",
            settings.width,
            settings.height
        );
    }
    let hidden = switch_to(
        TrackSettings {
            enabled: false,
            ..tile(640, 360)
        },
        None,
    )
    .await;
    assert!(hidden.is_empty(), "a hidden tile receives nothing");
    let back = switch_to(tile(320, 180), Some((320, 180))).await;
    assert!(
        !back.is_empty() && back.iter().all(|s| *s == (320, 180)),
        "shown again: {back:?}"
    );
    let seen = karim_screen.seen_from(&claire_id);
    // At a switch the same capture may show twice (once per layer); never an older one.
    let backwards: Vec<_> = seen
        .frames
        .windows(2)
        .filter(|w| w[1] < w[0])
        .map(|w| (w[0], w[1]))
        .collect();
    assert!(backwards.is_empty(), "out of order: {backwards:?}");
    let repeats = seen.frames.windows(2).filter(|w| w[1] == w[0]).count();
    assert!(repeats <= 6, "{repeats} repeated frames for 6 switches");
    assert!(seen.unreadable * 10 <= seen.frames.len(), "garbled");

    for room in [&claire, &karim] {
        room.leave().await;
    }
    devserver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn layers_nobody_receives_are_not_encoded() {
    let _turn = common::one_at_a_time().await;
    let (devserver, backend) = devserver(Config::default()).await;
    let (claire, mut claire_events, _, _) = join_as(&backend, seed::DEMO_TRAINER_EMAIL).await;
    let (karim, _karim_events, _, _) = join_as(&backend, "karim.benali@estrade.example").await;
    claire
        .publish_camera(
            TestPattern::new(1280, 720, 30),
            CameraSettings {
                width: 1280,
                height: 720,
                bitrate_kbps: 1_200,
                simulcast: true,
                ..CAMERA
            },
        )
        .await
        .unwrap();
    let track = common::own_track_published(&mut claire_events, "Claire's camera published").await;
    // Frames Claire sends a second, all layers together.
    let rate = || {
        let claire = &claire;
        async move {
            let before = claire.frames_sent(TrackSource::Camera);
            tokio::time::sleep(Duration::from_secs(2)).await;
            (claire.frames_sent(TrackSource::Camera) - before) / 2
        }
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = rate().await;
    // Karim, the only viewer, shows her in a small tile: the server tells Claire (dynacast,
    // after its 5 s debounce of downgrades) that only the quarter layer is received.
    let small = TrackSettings {
        enabled: true,
        width: 320,
        height: 180,
    };
    karim
        .set_track_settings(track.clone(), small)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let one = rate().await;
    let large = TrackSettings {
        width: 1280,
        height: 720,
        ..small
    };
    karim.set_track_settings(track, large).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let back = rate().await;
    eprintln!("frames sent a second: all layers {all}, small tile {one}, large again {back}");
    assert!(all >= 60, "three layers at up to 30 fps: {all}");
    assert!(one * 2 <= all, "one layer, not three: {one} of {all}");
    assert!(
        back * 10 >= all * 8,
        "the layers come back: {back} of {all}"
    );
    for room in [&claire, &karim] {
        room.leave().await;
    }
    devserver.shutdown().await;
}
