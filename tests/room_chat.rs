//! The engine (`estrade_engine::join`) against the real livekit-server with real WebRTC:
//! two clients connect, chat both ways in order over the data channels, and a leave
//! propagates. Also the typed join errors with the server's reason.

mod common;

use std::time::Duration;

use common::{devserver, wait_for};
use estrade_backend::Backend;
use estrade_devserver::{Config, seed};
use estrade_engine::{
    ConnectError, DisconnectReason, JoinError, JoinOptions, Room, RoomEvent, RoomEvents,
    SessionEvent,
};

const STUDENT: &str = "lea.dubois@estrade.example";

async fn join_as(backend: &Backend, email: &str) -> (Room, RoomEvents) {
    let (room, events, _) = common::join_room(backend, email, None, None).await;
    (room, events)
}

fn chat(e: &RoomEvent) -> Option<(String, String)> {
    match e {
        RoomEvent::Session(SessionEvent::ChatReceived(m)) => {
            Some((m.from.to_string(), m.text.clone()))
        }
        _ => None,
    }
}

fn media_connected(e: &RoomEvent) -> Option<Duration> {
    match e {
        RoomEvent::MediaConnected { after } => Some(*after),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn two_clients_chat_both_ways_in_order_and_see_each_other_leave() {
    let (devserver, backend) = devserver(Config::default()).await;
    let (trainer, mut trainer_events) = join_as(&backend, seed::DEMO_TRAINER_EMAIL).await;
    let (student, mut student_events) = join_as(&backend, STUDENT).await;

    let t = wait_for(&mut trainer_events, "the trainer's media", media_connected).await;
    let s = wait_for(&mut student_events, "the student's media", media_connected).await;
    eprintln!("join → both PeerConnections and _reliable open: trainer {t:?}, student {s:?}");
    let student_identity = wait_for(
        &mut trainer_events,
        "the student in the roster",
        |e| match e {
            RoomEvent::Session(SessionEvent::ParticipantJoined(p)) => Some(p.identity.clone()),
            _ => None,
        },
    )
    .await;

    let texts = [
        "Bienvenue ! Des questions ?",
        "Deuxième message",
        "<b>pas du HTML</b> 👋",
    ];
    let mut trainer_identity = None;
    for text in texts {
        let sent = trainer.send_chat(text).await.expect("chat sent");
        assert_eq!(sent.text, text);
        trainer_identity = Some(sent.from);
    }
    let trainer_identity = trainer_identity.unwrap().to_string();
    for text in texts {
        let got = wait_for(&mut student_events, text, chat).await;
        assert_eq!(
            got,
            (trainer_identity.clone(), text.to_string()),
            "in order, once each"
        );
    }

    student.send_chat("Oui : la diapo 3 ✋").await.unwrap();
    let got = wait_for(&mut trainer_events, "the student's chat", chat).await;
    assert_eq!(
        got,
        (
            student_identity.to_string(),
            "Oui : la diapo 3 ✋".to_string()
        )
    );

    assert_eq!(
        student.send_chat("").await,
        Err(estrade_engine::CommandError::Chat(
            estrade_engine::ChatError::Empty
        ))
    );

    student.leave().await;
    let left = wait_for(&mut trainer_events, "the student leaving", |e| match e {
        RoomEvent::Session(SessionEvent::ParticipantLeft { identity, .. }) => {
            Some(identity.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(left, student_identity);
    let reason = wait_for(&mut student_events, "the student's end", |e| match e {
        RoomEvent::Session(SessionEvent::Disconnected { reason, .. }) => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::ClientInitiated);
    assert!(
        student_events.recv().await.is_none(),
        "Disconnected is the last event"
    );
    assert_eq!(
        student.send_chat("après").await,
        Err(estrade_engine::CommandError::Closed)
    );

    trainer.leave().await;
    devserver.shutdown().await;
}

#[tokio::test]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn an_expired_token_fails_with_the_servers_reason() {
    let now = common::unix_ms_now() / 1000;
    // Expired an hour ago (the server allows a minute of clock skew).
    let expired = common::signed_livekit_token(&serde_json::json!({
        "iss": "devkey", "sub": "late-student", "nbf": now - 7200, "exp": now - 3600,
        "video": {"roomJoin": true, "room": "estrade-expired-token-test"}
    }));
    let url = common::livekit_url();
    let err = estrade_engine::join(JoinOptions {
        url: url.clone(),
        token: expired.clone(),
        audio_output: None,
        video_output: None,
    })
    .await
    .expect_err("an expired token cannot join");
    match &err {
        JoinError::Connect(ConnectError::Unauthorized { reason }) => {
            assert!(reason.contains("expired"), "the server's reason: {reason}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(
        !format!("{err} {err:?}").contains(&expired),
        "the token never shows"
    );

    let forged = estrade_engine::join(JoinOptions {
        url,
        token: "not-a-jwt".into(),
        audio_output: None,
        video_output: None,
    })
    .await
    .expect_err("garbage is refused");
    assert!(
        matches!(
            forged,
            JoinError::Connect(ConnectError::Unauthorized { .. })
        ),
        "{forged:?}"
    );
}

/// Commands never wait on the event stream: an application that stops reading its events
/// for ten seconds (while 400 chat messages pour in, more than the channel holds) still
/// leaves at once, and afterwards reads every message, in order, then `Disconnected`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn leaving_does_not_wait_for_an_application_that_stopped_reading() {
    const MESSAGES: usize = 400;
    let (devserver, backend) = devserver(Config::default()).await;
    let (trainer, mut trainer_events) = join_as(&backend, seed::DEMO_TRAINER_EMAIL).await;
    let (student, mut student_events) = join_as(&backend, STUDENT).await;
    wait_for(&mut trainer_events, "the trainer's media", media_connected).await;
    wait_for(&mut student_events, "the student's media", media_connected).await;
    wait_for(&mut trainer_events, "the student in the roster", |e| {
        matches!(e, RoomEvent::Session(SessionEvent::ParticipantJoined(_))).then_some(())
    })
    .await;
    // From here the student's application reads nothing. The trainer chats at ~45 a
    // second (below the per-sender flood limit) for nine seconds.
    let sending = tokio::spawn(async move {
        let mut pace = tokio::time::interval(Duration::from_millis(22));
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for i in 0..MESSAGES {
            pace.tick().await;
            trainer.send_chat(format!("message {i}")).await.unwrap();
        }
        trainer
    });
    tokio::time::sleep(Duration::from_secs(10)).await;
    let trainer = sending.await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), student.leave())
        .await
        .expect("leave completes while nobody reads the events");
    eprintln!("left in {:?} with the events unread", started.elapsed());

    let mut texts = Vec::new();
    let mut last = None;
    while let Ok(Some(e)) =
        tokio::time::timeout(Duration::from_secs(5), student_events.recv()).await
    {
        if let Some((_, text)) = chat(&e) {
            texts.push(text);
        }
        last = Some(e);
    }
    assert_eq!(texts.len(), MESSAGES, "every message, none twice");
    assert!(
        texts
            .iter()
            .enumerate()
            .all(|(i, t)| *t == format!("message {i}")),
        "in order"
    );
    assert!(
        matches!(
            last,
            Some(RoomEvent::Session(SessionEvent::Disconnected {
                reason: DisconnectReason::ClientInitiated,
                ..
            }))
        ),
        "Disconnected last: {last:?}"
    );
    trainer.leave().await;
    devserver.shutdown().await;
}

/// A bug that panics the room's task still ends the room the way the application
/// expects: `Disconnected { Internal }` last, the handle's commands refused, `leave`
/// returning at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn a_panicking_room_task_still_ends_the_room_properly() {
    let (devserver, backend) = devserver(Config::default()).await;
    let (student, mut events) = join_as(&backend, STUDENT).await;
    wait_for(&mut events, "the student's media", media_connected).await;
    student.panic_for_tests().await;
    let reason = wait_for(&mut events, "the end of the room", |e| match e {
        RoomEvent::Session(SessionEvent::Disconnected { reason, .. }) => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(&reason, DisconnectReason::Internal(why) if why.contains("asked to panic")),
        "{reason:?}"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("the stream ends")
            .is_none(),
        "Disconnected is the last event"
    );
    assert!(student.send_chat("encore là ?").await.is_err());
    tokio::time::timeout(Duration::from_secs(5), student.leave())
        .await
        .expect("leave returns");
    devserver.shutdown().await;
}
