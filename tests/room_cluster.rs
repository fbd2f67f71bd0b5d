//! Scale-out: two livekit-server nodes sharing a Redis (scripts/redis.sh), as an
//! organization runs LiveKit once one node is not enough (docs/deploy.md). The trainer
//! comes through a load balancer (a relay of ours that picks the first node that
//! answers), the student straight to the other node: they hear each other in one room.
//! The trainer's node is killed: the trainer is back through the other node by itself,
//! and they hear each other again.

mod common;

use std::time::{Duration, Instant};

use common::reconnect::{hears_more, onsets, reconnected, reconnecting};
use common::relay::TcpRelay;
use common::{OwnLivekit, OwnRedis, devserver_on, join_grant, wait_for};
use estrade_devserver::{Config, seed};
use estrade_engine::synthetic::ToneBursts;
use estrade_engine::{ParticipantIdentity, PulseRecorder};

const STUDENT: &str = "lea.dubois@estrade.example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server and redis-server: scripts/test.sh"]
async fn a_client_whose_node_dies_is_back_through_the_other_node() {
    let _turn = common::one_at_a_time().await;
    let redis = OwnRedis::start(16390);
    let node_a = OwnLivekit::start_node(18010, &redis);
    let node_b = OwnLivekit::start_node(18020, &redis);
    let balancer = TcpRelay::failover(vec![node_a.addr(), node_b.addr()]).await;
    let (_devserver, backend) = devserver_on(Config::default(), &balancer.url()).await;

    let (trainer_heard, student_heard) = (PulseRecorder::default(), PulseRecorder::default());
    let (trainer, mut trainer_events, max) = common::join_room(
        &backend,
        seed::DEMO_TRAINER_EMAIL,
        Some(trainer_heard.clone()),
        None,
    )
    .await;
    let grant = join_grant(&backend, STUDENT).await;
    let (student, _events) = estrade_engine::join(estrade_engine::JoinOptions {
        url: node_b.url(),
        token: grant.token.clone(),
        audio_output: Some(std::sync::Arc::new(student_heard.clone())),
        video_output: None,
    })
    .await
    .expect("the student joins through the other node");
    let lea = ParticipantIdentity(grant.identity.0.clone());
    trainer
        .publish_microphone(ToneBursts::new(440.0))
        .await
        .unwrap();
    student
        .publish_microphone(ToneBursts::new(880.0))
        .await
        .unwrap();
    hears_more(&trainer_heard, &lea, 0, "the trainer hears the student").await;
    hears_more(&student_heard, &max, 0, "the student hears the trainer").await;

    node_a.kill();
    let killed = Instant::now();
    wait_for(&mut trainer_events, "the trainer notices", reconnecting).await;
    let (kind, _) = wait_for(&mut trainer_events, "the trainer back", reconnected).await;
    let back = killed.elapsed();
    eprintln!("node A killed: the trainer back through node B after {back:?} ({kind:?})");
    assert!(back <= Duration::from_secs(30), "{back:?}");
    let (heard_s, heard_t) = (onsets(&trainer_heard, &lea), onsets(&student_heard, &max));
    hears_more(&trainer_heard, &lea, heard_s, "the student heard again").await;
    hears_more(&student_heard, &max, heard_t, "the trainer heard again").await;
    student.leave().await;
    trainer.leave().await;
    drop(node_b);
}
