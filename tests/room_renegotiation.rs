//! Three publishers and one listener, with renegotiations in between: tracks are added and
//! removed while others play, and every track must reach the listener mapped to the right
//! person (each publisher has its own tone; a mis-mapped track shows as the wrong frequency
//! under someone's name). The third track arrives after the first was unpublished, so the
//! server may reuse the inactive m-line for it.

mod common;

use std::time::Duration;

use common::devserver;
use estrade_devserver::{Config, seed};
use estrade_engine::synthetic::{PulseAnalyser, ToneBursts};
use estrade_engine::{ParticipantIdentity, PulseRecorder, RoomEvent, SessionEvent};

fn heard_from(heard: &PulseRecorder, who: &ParticipantIdentity) -> PulseAnalyser {
    heard.heard_from(who).pulses
}

async fn until_heard(
    heard: &PulseRecorder,
    who: &ParticipantIdentity,
    at_least: usize,
    what: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while heard_from(heard, who).latencies_ms.len() < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never heard {what}: {:?}",
            heard.all()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_voice(heard: &PulseRecorder, who: &ParticipantIdentity, freq: f64, name: &str) {
    let a = heard_from(heard, who);
    eprintln!(
        "{name}: {} bursts, frequencies {:?}",
        a.latencies_ms.len(),
        a.frequencies_hz
            .iter()
            .map(|f| f.round())
            .collect::<Vec<_>>()
    );
    assert!(!a.frequencies_hz.is_empty(), "{name} never heard");
    assert!(
        estrade_engine::synthetic::mostly_at(&a.frequencies_hz, freq),
        "{name}'s track carries someone else's voice: {a:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn three_publishers_with_renegotiations_reach_one_listener_correctly_mapped() {
    let (devserver, backend) = devserver(Config::default()).await;
    let heard = PulseRecorder::default();
    let (listener, mut listener_events, _) = common::join_room(
        &backend,
        "thomas.petit@estrade.example",
        Some(heard.clone()),
        None,
    )
    .await;
    let (claire, _claire_events, claire_id) =
        common::join_room(&backend, seed::DEMO_TRAINER_EMAIL, None, None).await;
    let (karim, _karim_events, karim_id) =
        common::join_room(&backend, "karim.benali@estrade.example", None, None).await;
    let (lea, _lea_events, lea_id) =
        common::join_room(&backend, "lea.dubois@estrade.example", None, None).await;

    claire
        .publish_microphone(ToneBursts::new(440.0))
        .await
        .unwrap();
    until_heard(&heard, &claire_id, 3, "Claire's first track").await;

    karim
        .publish_microphone(ToneBursts::new(660.0))
        .await
        .unwrap();
    until_heard(&heard, &karim_id, 3, "Karim's track").await;
    let claire_before = heard_from(&heard, &claire_id).latencies_ms.len();
    until_heard(
        &heard,
        &claire_id,
        claire_before + 2,
        "Claire still, next to Karim",
    )
    .await;

    claire.unpublish_microphone().await.unwrap();
    let gone = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match listener_events.recv().await {
                Some(RoomEvent::Session(SessionEvent::TrackUnpublished {
                    participant, ..
                })) => break participant,
                Some(_) => {}
                None => panic!("the listener's room ended"),
            }
        }
    })
    .await
    .expect("the listener sees Claire's track go");
    eprintln!("unpublished by {gone}");
    lea.publish_microphone(ToneBursts::new(880.0))
        .await
        .unwrap();
    until_heard(&heard, &lea_id, 3, "Léa's track (after an unpublish)").await;

    // Claire stays silent now; Karim and Léa go on.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let claire_after = heard_from(&heard, &claire_id).latencies_ms.len();
    let karim_now = heard_from(&heard, &karim_id).latencies_ms.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        heard_from(&heard, &claire_id).latencies_ms.len(),
        claire_after,
        "an unpublished track is silent"
    );
    assert!(
        heard_from(&heard, &karim_id).latencies_ms.len() >= karim_now + 3,
        "Karim is still heard"
    );

    assert_voice(&heard, &claire_id, 440.0, "Claire");
    assert_voice(&heard, &karim_id, 660.0, "Karim");
    assert_voice(&heard, &lea_id, 880.0, "Léa");

    for room in [&listener, &claire, &karim, &lea] {
        room.leave().await;
    }
    devserver.shutdown().await;
}
