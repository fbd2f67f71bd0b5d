//! The whole chain of the foundation, with real components: the devserver issues a join
//! token, and the real livekit-server accepts it over WebSocket and answers with a
//! `JoinResponse` naming the session's room, the user's identity and the role's permissions.
//!
//! Needs livekit-server on `ESTRADE_LIVEKIT_URL` (scripts/livekit.sh starts it).

mod common;

use common::{Ws, devserver, join_grant, open_signal};
use estrade_backend::api::JoinResponse as Grant;
use estrade_devserver::{Config, seed};
use futures_util::{SinkExt as _, StreamExt as _};
use livekit_protocol::{self as lk, signal_request, signal_response};
use prost::Message as _;
use tokio_tungstenite::tungstenite::{self, Message};

/// Opens the signalling WebSocket (token in the Authorization header, never in the URL)
/// and returns it with the first server message, which must be a JoinResponse.
async fn connect(grant: &Grant) -> (Ws, lk::JoinResponse) {
    let (mut ws, response) = open_signal(grant).await.unwrap_or_else(|e| match e {
        tungstenite::Error::Http(r) => panic!(
            "livekit-server refused the upgrade: {} {}",
            r.status(),
            String::from_utf8_lossy(r.body().as_deref().unwrap_or_default())
        ),
        e => panic!("cannot reach livekit-server at {}: {e}", grant.url),
    });
    assert_eq!(response.status(), 101);
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .expect("a first message within 10 s")
        .expect("the socket stays open")
        .expect("a valid frame");
    let Message::Binary(bytes) = first else {
        panic!("expected a binary protobuf frame, got {first:?}");
    };
    let response = lk::SignalResponse::decode(bytes.as_ref()).expect("a SignalResponse");
    match response.message {
        Some(signal_response::Message::Join(join)) => (ws, join),
        other => panic!("expected a JoinResponse first, got {other:?}"),
    }
}

async fn leave(mut ws: Ws) {
    let leave = lk::SignalRequest {
        message: Some(signal_request::Message::Leave(lk::LeaveRequest {
            reason: lk::DisconnectReason::ClientInitiated as i32,
            ..Default::default()
        })),
    };
    ws.send(Message::Binary(leave.encode_to_vec().into()))
        .await
        .unwrap();
    let _ = ws.close(None).await;
}

fn sources(p: &lk::ParticipantInfo) -> Vec<lk::TrackSource> {
    let perm = p
        .permission
        .as_ref()
        .expect("permissions in ParticipantInfo");
    let mut s: Vec<_> = perm
        .can_publish_sources
        .iter()
        .map(|s| lk::TrackSource::try_from(*s).unwrap())
        .collect();
    s.sort_by_key(|s| *s as i32);
    s
}

#[tokio::test]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn livekit_accepts_devserver_tokens_with_the_role_permissions() {
    let (devserver, backend) = devserver(Config::default()).await;

    // The lead trainer.
    let trainer = join_grant(&backend, seed::DEMO_TRAINER_EMAIL).await;
    let (trainer_ws, join) = connect(&trainer).await;
    let room = join.room.as_ref().expect("room in JoinResponse");
    assert_eq!(room.name, trainer.room_name);
    assert!(room.name.ends_with("estrade-course-1-session-1"));
    let me = join
        .participant
        .as_ref()
        .expect("participant in JoinResponse");
    assert_eq!(me.identity, trainer.identity.0);
    assert_eq!(me.name, "Claire Martin");
    assert!(me.sid.starts_with("PA_"), "{}", me.sid);
    assert_eq!(
        me.attributes.get("estrade.role").map(String::as_str),
        Some("trainer")
    );
    let perm = me.permission.as_ref().unwrap();
    assert!(
        perm.can_publish && perm.can_subscribe && perm.can_publish_data && perm.can_update_metadata
    );
    assert_eq!(
        sources(me),
        vec![
            lk::TrackSource::Camera,
            lk::TrackSource::Microphone,
            lk::TrackSource::ScreenShare
        ]
    );
    assert_eq!(join.server_info.as_ref().map(|s| s.protocol), Some(17));
    assert!(join.ping_interval > 0 && join.ping_timeout > join.ping_interval);

    // A student joins the same room: microphone only, and sees the trainer already there.
    let student = join_grant(&backend, "lea.dubois@estrade.example").await;
    let (student_ws, join) = connect(&student).await;
    assert_eq!(join.room.as_ref().unwrap().name, trainer.room_name);
    let me = join.participant.as_ref().unwrap();
    assert_eq!(me.identity, student.identity.0);
    assert_eq!(me.name, "Léa Dubois");
    assert_eq!(sources(me), vec![lk::TrackSource::Microphone]);
    assert!(me.permission.as_ref().unwrap().can_publish_data);
    let others: Vec<_> = join
        .other_participants
        .iter()
        .map(|p| p.identity.as_str())
        .collect();
    assert_eq!(others, vec![trainer.identity.0.as_str()]);

    // The co-trainer: microphone and camera.
    let co = join_grant(&backend, "karim.benali@estrade.example").await;
    let (co_ws, join) = connect(&co).await;
    assert_eq!(
        sources(join.participant.as_ref().unwrap()),
        vec![lk::TrackSource::Camera, lk::TrackSource::Microphone]
    );

    leave(co_ws).await;
    leave(student_ws).await;
    leave(trainer_ws).await;
    devserver.shutdown().await;
}

#[tokio::test]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn livekit_refuses_a_token_signed_with_another_secret() {
    let (devserver, backend) = devserver(Config {
        livekit_api_secret: "not-the-server-secret".into(),
        ..Config::default()
    })
    .await;
    let grant = join_grant(&backend, seed::DEMO_TRAINER_EMAIL).await;
    match open_signal(&grant).await {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!(
            "expected a 401 upgrade refusal, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
    devserver.shutdown().await;
}
