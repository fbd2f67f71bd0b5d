//! Audio through the engine, livekit-server and real WebRTC: two clients publish tone
//! bursts (440 Hz and 880 Hz, locked to the wall clock); each hears the other's frequency,
//! with onsets every 500 ms, through Opus and the jitter buffer. Mute stops the sound and
//! shows as muted on the other side; unmute brings it back.

mod common;

use std::time::Duration;

use common::{devserver, p50, wait_for};
use estrade_backend::Backend;
use estrade_devserver::{Config, seed};
use estrade_engine::synthetic::ToneBursts;
use estrade_engine::{
    ParticipantIdentity, PulseRecorder, Room, RoomEvent, RoomEvents, SessionEvent,
};

async fn join_as(
    backend: &Backend,
    email: &str,
) -> (Room, RoomEvents, PulseRecorder, ParticipantIdentity) {
    let heard = PulseRecorder::default();
    let (room, events, identity) =
        common::join_room(backend, email, Some(heard.clone()), None).await;
    (room, events, heard, identity)
}

fn onsets(heard: &PulseRecorder, from: &ParticipantIdentity) -> usize {
    heard.heard_from(from).pulses.latencies_ms.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn two_clients_hear_each_other_and_mute_propagates() {
    let (devserver, backend) = devserver(Config::default()).await;
    let (trainer, mut trainer_events, trainer_heard, trainer_id) =
        join_as(&backend, seed::DEMO_TRAINER_EMAIL).await;
    let (student, mut student_events, student_heard, student_id) =
        join_as(&backend, "lea.dubois@estrade.example").await;

    trainer
        .publish_microphone(ToneBursts::new(440.0))
        .await
        .unwrap();
    student
        .publish_microphone(ToneBursts::new(880.0))
        .await
        .unwrap();
    let trainer_track =
        common::own_track_published(&mut trainer_events, "the trainer's track").await;
    wait_for(&mut student_events, "the trainer's audio", |e| match e {
        RoomEvent::TrackSubscribed { track, .. } if *track == trainer_track => Some(()),
        _ => None,
    })
    .await;

    // Six seconds of conversation: about twelve bursts each way.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for (listener, heard, speaker, freq) in [
        ("student", &student_heard, &trainer_id, 440.0),
        ("trainer", &trainer_heard, &student_id, 880.0),
    ] {
        let a = heard.heard_from(speaker).pulses;
        eprintln!(
            "{listener} heard {} bursts, frequencies {:?}, mouth-to-ear p50 {:.1} ms (all: {:?})",
            a.latencies_ms.len(),
            a.frequencies_hz
                .iter()
                .map(|f| f.round())
                .collect::<Vec<_>>(),
            p50(&a.latencies_ms),
            a.latencies_ms.iter().map(|l| l.round()).collect::<Vec<_>>()
        );
        assert!(
            a.latencies_ms.len() >= 6,
            "{listener} heard too few bursts: {a:?}"
        );
        assert!(
            estrade_engine::synthetic::mostly_at(&a.frequencies_hz, freq),
            "{listener} heard the wrong voice: {a:?}"
        );
    }

    // Mute: the student sees it, and the bursts stop.
    trainer.set_microphone_enabled(false).await.unwrap();
    wait_for(&mut student_events, "the trainer's mute", |e| match e {
        RoomEvent::Session(SessionEvent::TrackMuted { track, .. }) if *track == trainer_track => {
            Some(())
        }
        _ => None,
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await; // what was in flight
    let before = onsets(&student_heard, &trainer_id);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        onsets(&student_heard, &trainer_id),
        before,
        "muted means silent"
    );

    trainer.set_microphone_enabled(true).await.unwrap();
    wait_for(&mut student_events, "the trainer's unmute", |e| match e {
        RoomEvent::Session(SessionEvent::TrackUnmuted { track, .. }) if *track == trainer_track => {
            Some(())
        }
        _ => None,
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        onsets(&student_heard, &trainer_id) >= before + 3,
        "the voice is back"
    );

    student.leave().await;
    trainer.leave().await;
    devserver.shutdown().await;
}
