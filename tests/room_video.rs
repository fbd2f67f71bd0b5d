//! Video through the engine, livekit-server and real WebRTC: the trainer and the co-trainer
//! publish the stamped test pattern (VP8, 640×360 at 30 fps) and each receives the other's:
//! frames decode at the right size with increasing frame counters, and the capture stamp
//! gives glass-to-glass latency. Turning a camera off shows as muted and stops the frames;
//! back on, frames resume from a keyframe. A student's camera is a typed error.

mod common;

use std::time::Duration;

use common::{devserver, p50, wait_for};
use estrade_backend::Backend;
use estrade_devserver::{Config, seed};
use estrade_engine::synthetic_video::TestPattern;
use estrade_engine::{
    CameraSettings, CommandError, FrameRecorder, ParticipantIdentity, PublishError, Room,
    RoomEvent, RoomEvents, SessionEvent, TrackSource,
};

const CAMERA: CameraSettings = CameraSettings {
    width: 640,
    height: 360,
    fps: 30,
    bitrate_kbps: 600,
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
        .publish_camera(TestPattern::new(640, 360, 30), CAMERA)
        .await
        .unwrap();
    let claire_track = wait_for(
        &mut claire_events,
        "Claire's camera published",
        |e| match e {
            RoomEvent::Session(SessionEvent::LocalTrackPublished { track, .. }) => {
                Some(track.sid.clone())
            }
            _ => None,
        },
    )
    .await;

    tokio::time::sleep(Duration::from_secs(5)).await;
    for (who, screen, from) in [
        ("Karim sees Claire", &karim_screen, &claire_id),
        ("Claire sees Karim", &claire_screen, &karim_id),
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
