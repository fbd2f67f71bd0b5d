//! The session state machine driven by real frames from livekit-server v1.13.5: join, see
//! another participant arrive and leave, measure the signalling round trip, leave.
//! (Signalling only; WebRTC is the next layer.)

mod common;

use std::time::{Duration, Instant};

use common::{Ws, devserver, join_grant, open_signal, unix_ms_now};
use estrade_backend::Backend;
use estrade_devserver::{Config, seed};
use estrade_session::{DisconnectReason, Session, SessionEvent, SessionState};
use futures_util::{SinkExt as _, StreamExt as _};
use livekit_protocol as lk;
use tokio_tungstenite::tungstenite::Message;

/// One participant: a socket and its session, stepped by hand.
struct Peer {
    ws: Ws,
    session: Session,
    events: Vec<SessionEvent>,
}

impl Peer {
    async fn join(backend: &Backend, email: &str) -> Self {
        let grant = join_grant(backend, email).await;
        let (ws, _) = open_signal(&grant).await.expect("upgrade");
        let unix_ms = unix_ms_now();
        let mut peer = Self {
            ws,
            session: Session::new(Instant::now(), unix_ms),
            events: Vec::new(),
        };
        peer.until("the JoinResponse", |e| {
            matches!(e, SessionEvent::Joined { .. })
        })
        .await;
        peer
    }

    /// Runs the I/O loop (frames in, timers, frames out) until an event matches.
    async fn until(&mut self, what: &str, wanted: impl Fn(&SessionEvent) -> bool) -> SessionEvent {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            while let Some(frame) = self.session.poll_transmit() {
                self.ws.send(Message::Binary(frame.into())).await.unwrap();
            }
            while let Some(e) = self.session.poll_event() {
                self.events.push(e.clone());
                if wanted(&e) {
                    return e;
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; saw {:?}",
                self.events
            );
            let wake = self
                .session
                .poll_timeout()
                .unwrap_or(deadline)
                .min(deadline);
            tokio::select! {
                msg = self.ws.next() => match msg {
                    Some(Ok(Message::Binary(b))) => self.session.handle_frame(Instant::now(), &b).expect("valid frames"),
                    Some(Ok(_)) => {}
                    other => panic!("socket ended while waiting for {what}: {other:?}"),
                },
                _ = tokio::time::sleep_until(wake.into()) => self.session.handle_timeout(Instant::now()),
            }
        }
    }

    async fn leave(mut self) {
        self.session.leave();
        while let Some(frame) = self.session.poll_transmit() {
            self.ws.send(Message::Binary(frame.into())).await.unwrap();
        }
        let _ = self.ws.close(None).await;
    }
}

#[tokio::test]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn the_session_follows_a_real_room() {
    let (devserver, backend) = devserver(Config::default()).await;

    let mut trainer = Peer::join(&backend, seed::DEMO_TRAINER_EMAIL).await;
    assert_eq!(trainer.session.state(), SessionState::Connected);
    assert!(
        trainer
            .session
            .room()
            .name
            .ends_with("estrade-course-1-session-1")
    );
    let me = trainer.session.local().unwrap().clone();
    assert!(
        me.permissions
            .may_publish(estrade_session::TrackSource::ScreenShare)
    );

    // The server answers our pings: a real round trip, on loopback well under 100 ms.
    match trainer
        .until("a round trip", |e| {
            matches!(e, SessionEvent::RoundTripMeasured { .. })
        })
        .await
    {
        SessionEvent::RoundTripMeasured { rtt_ms } => assert!(rtt_ms < 1000, "{rtt_ms} ms"),
        _ => unreachable!(),
    }
    assert!(
        trainer.session.refresh_token().is_some(),
        "the server sends a refresh token after join"
    );

    // A student joins: the trainer's session sees her arrive, with her identity and role.
    let mut student = Peer::join(&backend, "lea.dubois@estrade.example").await;
    let camera = estrade_session::TrackRequest {
        cid: "cam".into(),
        name: "camera".into(),
        kind: estrade_session::TrackKind::Video,
        source: estrade_session::TrackSource::Camera,
        width: 1280,
        height: 720,
        muted: false,
        layers: vec![],
    };
    assert_eq!(
        student.session.publish_track(camera),
        Err(estrade_session::PublishError::NotAllowed(
            estrade_session::TrackSource::Camera
        )),
        "a student's token has no camera"
    );
    let lea_id = student.session.local().unwrap().identity.clone();
    let joined = trainer
        .until(
            "the student",
            |e| matches!(e, SessionEvent::ParticipantJoined(p) if p.identity == lea_id),
        )
        .await;
    let SessionEvent::ParticipantJoined(lea) = joined else {
        unreachable!()
    };
    assert_eq!(lea.name, "Léa Dubois");
    assert_eq!(
        lea.attributes.get("estrade.role").map(String::as_str),
        Some("student")
    );

    // She leaves: the trainer sees it.
    student.leave().await;
    trainer
        .until("the student leaving", |e| matches!(e, SessionEvent::ParticipantLeft { identity, .. } if *identity == lea.identity))
        .await;

    trainer.session.leave();
    assert!(matches!(
        trainer.session.poll_event(),
        Some(SessionEvent::Disconnected {
            reason: DisconnectReason::ClientInitiated,
            ..
        })
    ));
    trainer.leave().await;
    devserver.shutdown().await;
}

impl Peer {
    /// Asks the server to set our own attribute `key` (what a modified client could send),
    /// and returns the server's answer to that request.
    async fn set_own_attribute(&mut self, key: &str, value: &str, request_id: u32) -> i32 {
        use prost::Message as _;
        let request = lk::SignalRequest {
            message: Some(lk::signal_request::Message::UpdateMetadata(
                lk::UpdateParticipantMetadata {
                    attributes: [(key.to_owned(), value.to_owned())].into(),
                    request_id,
                    ..Default::default()
                },
            )),
        };
        self.ws
            .send(Message::Binary(request.encode_to_vec().into()))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("the server answers the request");
            let Some(Ok(Message::Binary(b))) = msg else {
                continue;
            };
            let response = lk::SignalResponse::decode(&b[..]).expect("a SignalResponse");
            if let Some(lk::signal_response::Message::RequestResponse(r)) = &response.message
                && r.request_id == request_id
            {
                return r.reason;
            }
            let _ = self.session.handle_frame(Instant::now(), &b);
        }
    }
}

/// The role attribute is the server's to set: a student's client that tries to make
/// itself a trainer is refused by livekit-server, and the others still see a student.
/// (The lead trainer keeps the grant: its own update is accepted, so the refusal is the
/// token's doing, not a request the server would refuse anyway.)
#[tokio::test]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn a_student_cannot_make_itself_a_trainer() {
    let (devserver, backend) = devserver(Config::default()).await;
    let mut trainer = Peer::join(&backend, seed::DEMO_TRAINER_EMAIL).await;
    let mut student = Peer::join(&backend, "lea.dubois@estrade.example").await;
    let sid = student.session.local().unwrap().sid.clone();
    trainer
        .until(
            "the student",
            |e| matches!(e, SessionEvent::ParticipantJoined(p) if p.sid == sid),
        )
        .await;
    let refused = student
        .set_own_attribute("estrade.role", "trainer", 41)
        .await;
    assert_eq!(
        refused,
        lk::request_response::Reason::NotAllowed as i32,
        "the student's self-promotion"
    );
    let accepted = trainer.set_own_attribute("estrade.note", "lead", 42).await;
    assert_eq!(accepted, lk::request_response::Reason::Ok as i32);

    // What the trainer's roster says of her, once the server has had time to spread it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), trainer.until("nothing", |_| false)).await;
    let seen = trainer
        .session
        .participant(&sid)
        .expect("the student is in the trainer's roster")
        .clone();
    assert_eq!(
        seen.attributes.get("estrade.role").map(String::as_str),
        Some("student")
    );
    student.leave().await;
    trainer.leave().await;
    devserver.shutdown().await;
}
