//! Reconnection against the real livekit-server: a cut signalling connection is resumed
//! (same participant, media on, chat queued and delivered once), and a server that
//! crashed and came back gets everyone back with a full reconnect (tracks published again,
//! heard again).

mod common;

use std::time::{Duration, Instant};

use common::reconnect::{chats_until, hears_more, onsets, reconnected, reconnecting};
use common::relay::TcpRelay;
use common::{OwnLivekit, devserver, devserver_on, join_grant, wait_for};
use estrade_devserver::{Config, seed};
use estrade_engine::synthetic::ToneBursts;
use estrade_engine::{ParticipantIdentity, PulseRecorder, ReconnectKind};

const STUDENT: &str = "lea.dubois@estrade.example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn a_cut_signalling_connection_is_resumed_and_chat_sent_meanwhile_arrives_once() {
    let _turn = common::one_at_a_time().await;
    let (_devserver, backend) = devserver(Config::default()).await;
    let heard = PulseRecorder::default();
    let (_trainer, mut trainer_events, _) = common::join_room(
        &backend,
        seed::DEMO_TRAINER_EMAIL,
        Some(heard.clone()),
        None,
    )
    .await;
    // The student's signalling goes through a relay we can cut; her media goes direct.
    let grant = join_grant(&backend, STUDENT).await;
    let livekit = grant.url.trim_start_matches("ws://").parse().unwrap();
    let relay = TcpRelay::to(livekit).await;
    let (student, mut events) = estrade_engine::join(estrade_engine::JoinOptions {
        url: relay.url(),
        token: grant.token.clone(),
        audio_output: None,
        video_output: None,
    })
    .await
    .expect("the student joins through the relay");
    let lea = ParticipantIdentity(grant.identity.0.clone());
    student
        .publish_microphone(ToneBursts::new(880.0))
        .await
        .unwrap();
    hears_more(&heard, &lea, 0, "the trainer hears her").await;
    student.send_chat("avant").await.unwrap();

    relay.cut();
    let cut = Instant::now();
    let first = wait_for(&mut events, "the loss noticed", reconnecting).await;
    let noticed = cut.elapsed();
    assert_eq!(first, (1, ReconnectKind::Resume));
    student
        .send_chat("pendant la coupure")
        .await
        .expect("queued while reconnecting");
    tokio::time::sleep(Duration::from_secs(3)).await;
    relay.restore();
    let restored = Instant::now();
    let (kind, after) = wait_for(&mut events, "the resume", reconnected).await;
    let back = restored.elapsed();
    eprintln!(
        "signalling cut for 3 s: noticed after {noticed:?}, resumed {back:?} after the relay \
         came back ({after:?} after the loss)"
    );
    assert_eq!(kind, ReconnectKind::Resume);
    assert!(back <= Duration::from_secs(2), "resumed {back:?} after");
    student.send_chat("après").await.unwrap();

    let (texts, left) = chats_until(&mut trainer_events, "après").await;
    assert_eq!(
        texts,
        ["avant", "pendant la coupure", "après"],
        "each once, in order"
    );
    assert!(!left, "a resume is not a leave and a join");
    let before = onsets(&heard, &lea);
    hears_more(&heard, &lea, before, "heard after the resume").await;
    student.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn a_crashed_server_back_up_gets_everyone_back_with_their_tracks() {
    let _turn = common::one_at_a_time().await;
    let livekit = OwnLivekit::start(17990);
    let (_devserver, backend) = devserver_on(Config::default(), &livekit.url()).await;
    let heard = PulseRecorder::default();
    let (trainer, mut trainer_events, _) = common::join_room(
        &backend,
        seed::DEMO_TRAINER_EMAIL,
        Some(heard.clone()),
        None,
    )
    .await;
    let (student, mut events, lea) = common::join_room(&backend, STUDENT, None, None).await;
    student
        .publish_microphone(ToneBursts::new(880.0))
        .await
        .unwrap();
    hears_more(&heard, &lea, 0, "the trainer hears her").await;

    livekit.kill();
    wait_for(&mut events, "the student notices", reconnecting).await;
    wait_for(&mut trainer_events, "the trainer notices", reconnecting).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    livekit.restart();
    let up = Instant::now();
    let (kind, _) = wait_for(&mut events, "the student back", reconnected).await;
    let student_back = up.elapsed();
    let (trainer_kind, _) = wait_for(&mut trainer_events, "the trainer back", reconnected).await;
    let trainer_back = up.elapsed();
    eprintln!(
        "server killed, restarted: the student back {student_back:?}, the trainer \
         {trainer_back:?} after it was up"
    );
    assert_eq!(
        (kind, trainer_kind),
        (ReconnectKind::Full, ReconnectKind::Full)
    );
    assert!(student_back <= Duration::from_secs(5), "{student_back:?}");
    assert!(trainer_back <= Duration::from_secs(5), "{trainer_back:?}");

    // Her microphone was published again by itself, and is heard again.
    let before = onsets(&heard, &lea);
    hears_more(&heard, &lea, before, "heard after the full reconnect").await;
    trainer
        .send_chat("Tout le monde est revenu ?")
        .await
        .unwrap();
    let (texts, _) = chats_until(&mut events, "Tout le monde est revenu ?").await;
    assert_eq!(texts.len(), 1);
    student.leave().await;
    trainer.leave().await;
}
