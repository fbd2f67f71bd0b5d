//! The state machine on simulated time: no sockets, no sleeping.

use std::time::{Duration, Instant};

use super::*;
use crate::ids::ParticipantIdentity;
use crate::model::TrackSource;
use crate::reconnect::ReconnectKind;
use crate::wire::fake::{self, lk};

const T0_MS: i64 = 1_790_000_000_000;

fn joined(others: Vec<lk::ParticipantInfo>) -> (Session, Instant) {
    let t0 = Instant::now();
    let mut s = Session::new(t0, T0_MS);
    s.handle_frame(t0, &fake::join(fake::participant("PA_me", "1", 1), others))
        .unwrap();
    (s, t0)
}

fn events(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn update(ps: Vec<lk::ParticipantInfo>) -> Vec<u8> {
    fake::frame(lk::signal_response::Message::Update(
        lk::ParticipantUpdate { participants: ps },
    ))
}

fn sid(s: &str) -> ParticipantSid {
    ParticipantSid(s.into())
}

#[test]
fn join_reports_the_room_us_and_the_others() {
    let (mut s, t0) = joined(vec![fake::participant("PA_a", "2", 1)]);
    assert_eq!(s.state(), SessionState::Connected);
    assert_eq!(s.room().name, "estrade-course-1-session-1");
    assert_eq!(s.local().unwrap().identity.as_str(), "1");
    assert_eq!(s.remote_count(), 1);
    let ev = events(&mut s);
    assert!(matches!(&ev[..], [SessionEvent::Joined { others, .. }] if others.len() == 1));
    assert_eq!(
        s.local().unwrap().permissions.can_publish_sources,
        vec![TrackSource::Microphone]
    );
    assert!(
        s.local()
            .unwrap()
            .permissions
            .may_publish(TrackSource::Microphone)
    );
    assert!(
        !s.local()
            .unwrap()
            .permissions
            .may_publish(TrackSource::Camera)
    );
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    let ice = s.ice_servers();
    assert_eq!(ice[0].urls, vec!["turn:turn.example:3478".to_string()]);
    assert_eq!(ice[0].credential, "turn-secret");
    assert!(
        !format!("{ice:?}").contains("turn-secret"),
        "TURN credentials never reach logs"
    );
}

#[test]
fn malformed_frames_are_errors_and_change_nothing() {
    let t0 = Instant::now();
    let mut s = Session::new(t0, T0_MS);
    assert!(matches!(
        s.handle_frame(t0, b"\xff\xff\xff"),
        Err(FrameError::Malformed(_))
    ));
    assert_eq!(s.handle_frame(t0, b""), Err(FrameError::Empty));
    let update = update(vec![]);
    assert!(matches!(
        s.handle_frame(t0, &update),
        Err(FrameError::Unexpected(_))
    ));
    let no_participant = fake::frame(lk::signal_response::Message::Join(
        lk::JoinResponse::default(),
    ));
    assert!(matches!(
        s.handle_frame(t0, &no_participant),
        Err(FrameError::MissingField { .. })
    ));
    assert_eq!(s.state(), SessionState::Joining);
    assert!(events(&mut s).is_empty());
    // Still able to join afterwards.
    s.handle_frame(t0, &fake::join(fake::participant("PA_me", "1", 1), vec![]))
        .unwrap();
    assert_eq!(s.state(), SessionState::Connected);
    let again = fake::join(fake::participant("PA_me", "1", 1), vec![]);
    assert_eq!(
        s.handle_frame(t0, &again),
        Err(FrameError::Unexpected("a second JoinResponse"))
    );
}

#[test]
fn random_bytes_never_panic() {
    // A fixed xorshift stream: reproducible garbage, including valid-looking varints.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let (mut s, t0) = joined(vec![]);
    for len in 0..2000usize {
        let frame: Vec<u8> = (0..len % 97)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = s.handle_frame(t0, &frame);
    }
}

#[test]
fn unknown_messages_are_ignored() {
    let (mut s, t0) = joined(vec![]);
    events(&mut s);
    // Field 99 is no SignalResponse case today: the oneof decodes as absent.
    let unknown = [0x9a, 0x06, 0x02, 0x08, 0x01];
    assert_eq!(s.handle_frame(t0, &unknown), Err(FrameError::Empty));
    let offer = fake::frame(lk::signal_response::Message::Offer(
        lk::SessionDescription::default(),
    ));
    s.handle_frame(t0, &offer).unwrap();
    assert!(events(&mut s).is_empty());
    assert_eq!(s.state(), SessionState::Connected);
}

#[test]
fn participants_join_publish_mute_unpublish_and_leave() {
    let (mut s, t0) = joined(vec![]);
    events(&mut s);
    let mut a = fake::participant("PA_a", "2", 1);
    a.tracks = vec![fake::track("TR_mic", lk::TrackType::Audio, false)];
    s.handle_frame(t0, &update(vec![a.clone()])).unwrap();
    let ev = events(&mut s);
    assert!(matches!(&ev[0], SessionEvent::ParticipantJoined(p) if p.identity.as_str() == "2"));
    assert!(
        matches!(&ev[1], SessionEvent::TrackPublished { track, .. } if track.sid.as_str() == "TR_mic")
    );

    a.version = 2;
    a.tracks[0].muted = true;
    a.tracks
        .push(fake::track("TR_cam", lk::TrackType::Video, false));
    s.handle_frame(t0, &update(vec![a.clone()])).unwrap();
    let ev = events(&mut s);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(matches!(&ev[0], SessionEvent::TrackMuted { track, .. } if track.as_str() == "TR_mic"));
    assert!(
        matches!(&ev[1], SessionEvent::TrackPublished { track, .. } if track.sid.as_str() == "TR_cam")
    );

    // An older version arriving late changes nothing.
    let mut stale = a.clone();
    stale.version = 1;
    stale.tracks.clear();
    s.handle_frame(t0, &update(vec![stale])).unwrap();
    assert!(events(&mut s).is_empty());

    a.version = 3;
    a.tracks.remove(0);
    a.name = "Léa".into();
    s.handle_frame(t0, &update(vec![a.clone()])).unwrap();
    let ev = events(&mut s);
    assert!(
        matches!(&ev[0], SessionEvent::TrackUnpublished { track, .. } if track.as_str() == "TR_mic")
    );
    assert!(matches!(&ev[1], SessionEvent::ParticipantUpdated(p) if p.name == "Léa"));

    a.version = 4;
    a.state = lk::participant_info::State::Disconnected as i32;
    s.handle_frame(t0, &update(vec![a])).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::ParticipantLeft {
            sid: sid("PA_a"),
            identity: ParticipantIdentity("2".into())
        }]
    );
    assert_eq!(s.remote_count(), 0);
}

#[test]
fn a_rejoin_under_a_new_sid_replaces_the_old_one() {
    let (mut s, t0) = joined(vec![fake::participant("PA_old", "2", 5)]);
    events(&mut s);
    s.handle_frame(t0, &update(vec![fake::participant("PA_new", "2", 1)]))
        .unwrap();
    let ev = events(&mut s);
    assert!(
        matches!(&ev[0], SessionEvent::ParticipantLeft { sid, .. } if sid.as_str() == "PA_old")
    );
    assert!(matches!(&ev[1], SessionEvent::ParticipantJoined(p) if p.sid.as_str() == "PA_new"));
    assert_eq!(s.remote_count(), 1);
}

#[test]
fn our_own_updates_change_the_local_participant() {
    let (mut s, t0) = joined(vec![]);
    events(&mut s);
    let mut me = fake::participant("PA_me", "1", 2);
    me.permission
        .as_mut()
        .unwrap()
        .can_publish_sources
        .push(lk::TrackSource::Camera as i32);
    s.handle_frame(t0, &update(vec![me])).unwrap();
    let ev = events(&mut s);
    assert!(matches!(&ev[..], [SessionEvent::ParticipantUpdated(p)] if p.sid.as_str() == "PA_me"));
    assert!(
        s.local()
            .unwrap()
            .permissions
            .may_publish(TrackSource::Camera)
    );
    assert_eq!(s.remote_count(), 0);
}

#[test]
fn speaker_updates_are_deltas_sorted_by_level() {
    let (mut s, t0) = joined(vec![
        fake::participant("PA_a", "2", 1),
        fake::participant("PA_b", "3", 1),
    ]);
    events(&mut s);
    let speakers = |list: Vec<(&str, f32, bool)>| {
        fake::frame(lk::signal_response::Message::SpeakersChanged(
            lk::SpeakersChanged {
                speakers: list
                    .into_iter()
                    .map(|(sid, level, active)| lk::SpeakerInfo {
                        sid: sid.into(),
                        level,
                        active,
                    })
                    .collect(),
            },
        ))
    };
    s.handle_frame(
        t0,
        &speakers(vec![("PA_a", 0.4, true), ("PA_b", 0.9, true)]),
    )
    .unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::ActiveSpeakersChanged(vec![
            sid("PA_b"),
            sid("PA_a")
        ])]
    );
    s.handle_frame(t0, &speakers(vec![("PA_b", 0.0, false)]))
        .unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::ActiveSpeakersChanged(vec![sid("PA_a")])]
    );
    s.handle_frame(t0, &speakers(vec![("PA_a", f32::NAN, true)]))
        .unwrap();
    assert!(events(&mut s).is_empty(), "same set, no event");
    let mut a = fake::participant("PA_a", "2", 2);
    a.state = lk::participant_info::State::Disconnected as i32;
    s.handle_frame(t0, &update(vec![a])).unwrap();
    let ev = events(&mut s);
    assert!(
        ev.contains(&SessionEvent::ActiveSpeakersChanged(vec![])),
        "{ev:?}"
    );
}

#[test]
fn pings_measure_the_round_trip_and_silence_ends_the_session() {
    let (mut s, t0) = joined(vec![]);
    events(&mut s);
    let t5 = t0 + Duration::from_secs(5);
    s.handle_timeout(t5 - Duration::from_millis(1));
    assert_eq!(s.poll_transmit(), None, "not due yet");
    s.handle_timeout(t5);
    let ping = s.poll_transmit().expect("a ping");
    let lk::signal_request::Message::PingReq(p) = fake::request(&ping) else {
        panic!("expected ping_req");
    };
    assert_eq!(p.timestamp, T0_MS + 5000);
    let pong = fake::frame(lk::signal_response::Message::PongResp(lk::Pong {
        last_ping_timestamp: p.timestamp,
        timestamp: 0,
    }));
    s.handle_frame(t5 + Duration::from_millis(42), &pong)
        .unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::RoundTripMeasured { rtt_ms: 42 }]
    );
    assert_eq!(s.rtt_ms(), Some(42));

    // A pong from the future is ignored.
    let bogus = fake::frame(lk::signal_response::Message::PongResp(lk::Pong {
        last_ping_timestamp: T0_MS + 999_999,
        timestamp: 0,
    }));
    s.handle_frame(t5 + Duration::from_millis(50), &bogus)
        .unwrap();
    assert!(events(&mut s).is_empty());
    // Forged to overflow the subtraction either way: ignored, no panic.
    for forged in [i64::MIN, i64::MAX, -1] {
        let pong = fake::frame(lk::signal_response::Message::PongResp(lk::Pong {
            last_ping_timestamp: forged,
            timestamp: forged,
        }));
        s.handle_frame(t5 + Duration::from_millis(50), &pong)
            .unwrap();
    }
    assert!(events(&mut s).is_empty());
    assert_eq!(s.rtt_ms(), Some(42));

    // Silence: the next ping goes out, then the timeout fires 15 s after the last frame.
    let last = t5 + Duration::from_millis(50);
    assert_eq!(s.poll_timeout(), Some(t5 + Duration::from_secs(5)));
    s.handle_timeout(t5 + Duration::from_secs(5));
    assert!(s.poll_transmit().is_some());
    s.handle_timeout(last + Duration::from_secs(15));
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Reconnecting {
            attempt: 1,
            kind: ReconnectKind::Resume,
            reason: DisconnectReason::PingTimeout,
        }]
    );
    assert_eq!(s.state(), SessionState::Reconnecting);
    // The first attempt is immediate.
    assert_eq!(s.poll_timeout(), Some(last + Duration::from_secs(15)));
}

#[test]
fn no_join_response_in_time_is_a_refused_join() {
    let t0 = Instant::now();
    let mut s = Session::new(t0, T0_MS);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    s.handle_timeout(t0 + Duration::from_secs(10));
    assert!(matches!(
        &events(&mut s)[..],
        [SessionEvent::Disconnected {
            reason: DisconnectReason::JoinRefused(_),
        }]
    ));
}

#[test]
fn server_leave_requests_end_the_session_or_start_the_reconnect_they_ask_for() {
    let removed = DisconnectReason::Server {
        code: lk::DisconnectReason::ParticipantRemoved as i32,
        name: "PARTICIPANT_REMOVED".into(),
    };
    assert!(
        !removed.can_rejoin(),
        "a removed student is not offered to rejoin"
    );
    for (action, kind) in [
        (lk::leave_request::Action::Resume, ReconnectKind::Resume),
        (lk::leave_request::Action::Reconnect, ReconnectKind::Full),
    ] {
        let (mut s, t0) = joined(vec![]);
        events(&mut s);
        let leave = fake::frame(lk::signal_response::Message::Leave(lk::LeaveRequest {
            reason: lk::DisconnectReason::ParticipantRemoved as i32,
            action: action as i32,
            ..Default::default()
        }));
        s.handle_frame(t0, &leave).unwrap();
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::Reconnecting {
                attempt: 1,
                kind,
                reason: removed.clone(),
            }]
        );
        s.handle_timeout(t0);
        let request = s.poll_reconnect().expect("at once");
        assert_eq!((request.kind, request.attempt), (kind, 1));
    }
    for action in [lk::leave_request::Action::Disconnect as i32, 77] {
        let (mut s, t0) = joined(vec![]);
        events(&mut s);
        let leave = fake::frame(lk::signal_response::Message::Leave(lk::LeaveRequest {
            reason: lk::DisconnectReason::ParticipantRemoved as i32,
            action,
            ..Default::default()
        }));
        s.handle_frame(t0, &leave).unwrap();
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::Disconnected {
                reason: removed.clone(),
            }]
        );
        assert_eq!(s.state(), SessionState::Disconnected);
        // Whatever comes after is ignored.
        s.handle_frame(t0, &update(vec![fake::participant("PA_z", "9", 1)]))
            .unwrap();
        assert!(events(&mut s).is_empty());
    }
}

#[test]
fn a_leave_instead_of_a_join_is_a_refused_join() {
    let t0 = Instant::now();
    let mut s = Session::new(t0, T0_MS);
    let leave = fake::frame(lk::signal_response::Message::Leave(lk::LeaveRequest {
        reason: lk::DisconnectReason::StateMismatch as i32,
        action: lk::leave_request::Action::Reconnect as i32,
        ..Default::default()
    }));
    s.handle_frame(t0, &leave).unwrap();
    assert!(matches!(
        &events(&mut s)[..],
        [SessionEvent::Disconnected { reason: DisconnectReason::JoinRefused(name), .. }] if name == "STATE_MISMATCH"
    ));
}

#[test]
fn leaving_sends_a_client_initiated_leave_once() {
    let (mut s, _) = joined(vec![]);
    events(&mut s);
    s.leave();
    s.leave();
    let frame = s.poll_transmit().unwrap();
    assert_eq!(s.poll_transmit(), None);
    let lk::signal_request::Message::Leave(l) = fake::request(&frame) else {
        panic!("expected leave");
    };
    assert_eq!(l.reason, lk::DisconnectReason::ClientInitiated as i32);
    assert_eq!(l.action, lk::leave_request::Action::Disconnect as i32);
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Disconnected {
            reason: DisconnectReason::ClientInitiated,
        }]
    );
}

#[test]
fn refresh_tokens_are_kept_and_server_mutes_obeyed() {
    let (mut s, t0) = joined(vec![]);
    events(&mut s);
    let token = fake::frame(lk::signal_response::Message::RefreshToken("new-jwt".into()));
    s.handle_frame(t0, &token).unwrap();
    assert_eq!(s.refresh_token(), Some("new-jwt"));
    let mute = fake::frame(lk::signal_response::Message::Mute(lk::MuteTrackRequest {
        sid: "TR_mine".into(),
        muted: true,
    }));
    s.handle_frame(t0, &mute).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::TrackMuted {
            participant: sid("PA_me"),
            track: TrackSid("TR_mine".into())
        }]
    );
    s.set_track_muted(&TrackSid("TR_mine".into()), false);
    let lk::signal_request::Message::Mute(m) = fake::request(&s.poll_transmit().unwrap()) else {
        panic!("expected mute");
    };
    assert_eq!((m.sid.as_str(), m.muted), ("TR_mine", false));
    assert_eq!(s.participant(&sid("PA_me")), None, "we are not a remote");
}

#[test]
fn chat_goes_out_numbered_and_comes_back_as_one_event() {
    let (mut alice, t0) = joined(vec![]);
    let (mut bob, _) = joined(vec![]);
    events(&mut bob);
    assert_eq!(alice.send_chat(t0, "s1", ""), Err(crate::ChatError::Empty));
    alice
        .send_chat(t0, "s1", "Question : la diapo 3 ?")
        .unwrap();
    alice.send_chat(t0, "s2", "merci").unwrap();
    let packets: Vec<Vec<u8>> = std::iter::from_fn(|| alice.poll_data_transmit(t0)).collect();
    assert_eq!(packets.len(), 8, "header, chunk, trailer, legacy, twice");
    for p in &packets {
        bob.handle_data(t0, &crate::wire::data::forwarded("alice", p))
            .unwrap();
    }
    // The same packets again (a resend after a resume) are dropped by sequence.
    for p in &packets {
        bob.handle_data(t0, &crate::wire::data::forwarded("alice", p))
            .unwrap();
    }
    let texts: Vec<String> = events(&mut bob)
        .into_iter()
        .map(|e| match e {
            SessionEvent::ChatReceived(m) => {
                assert_eq!(m.from.as_str(), "alice");
                m.text
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(texts, vec!["Question : la diapo 3 ?", "merci"]);
    assert!(matches!(
        bob.handle_data(t0, b"\xff\x01"),
        Err(DataReceiveError::Malformed(_))
    ));
}

fn drain_rtc(s: &mut Session) -> Vec<crate::RtcCommand> {
    std::iter::from_fn(|| s.poll_rtc()).collect()
}

fn mic(cid: &str) -> crate::TrackRequest {
    crate::TrackRequest {
        cid: cid.into(),
        name: "micro".into(),
        kind: crate::TrackKind::Audio,
        source: TrackSource::Microphone,
        width: 0,
        height: 0,
        muted: false,
        layers: vec![],
    }
}

#[test]
fn publishing_follows_the_grants_and_the_server_answer() {
    let (mut s, t0) = joined(vec![]);
    events(&mut s);
    let camera = crate::TrackRequest {
        cid: "cam".into(),
        kind: crate::TrackKind::Video,
        source: TrackSource::Camera,
        width: 1280,
        height: 720,
        ..mic("cam")
    };
    assert_eq!(
        s.publish_track(camera),
        Err(crate::PublishError::NotAllowed(TrackSource::Camera))
    );
    assert_eq!(s.poll_transmit(), None, "nothing sent for a refused source");

    s.publish_track(mic("mic-1")).unwrap();
    assert_eq!(
        s.publish_track(mic("mic-1")),
        Err(crate::PublishError::DuplicateCid("mic-1".into()))
    );
    let lk::signal_request::Message::AddTrack(add) = fake::request(&s.poll_transmit().unwrap())
    else {
        panic!("expected add_track");
    };
    assert_eq!(
        (add.cid.as_str(), add.source),
        ("mic-1", lk::TrackSource::Microphone as i32)
    );
    assert!(add.disable_red);

    let mut info = fake::track("TR_m1", lk::TrackType::Audio, false);
    info.name = "micro".into();
    let published = fake::frame(lk::signal_response::Message::TrackPublished(
        lk::TrackPublishedResponse {
            cid: "mic-1".into(),
            track: Some(info),
        },
    ));
    s.handle_frame(t0, &published).unwrap();
    let ev = events(&mut s);
    assert!(
        matches!(&ev[..], [SessionEvent::LocalTrackPublished { cid, track }] if cid == "mic-1" && track.sid.as_str() == "TR_m1")
    );
    assert_eq!(s.local().unwrap().tracks.len(), 1);

    // A refusal names the cid; a server-side unpublish removes the publication.
    s.publish_track(mic("mic-2")).unwrap();
    let refused = fake::frame(lk::signal_response::Message::RequestResponse(
        lk::RequestResponse {
            reason: lk::request_response::Reason::NotAllowed as i32,
            message: "not allowed".into(),
            request: Some(lk::request_response::Request::AddTrack(
                lk::AddTrackRequest {
                    cid: "mic-2".into(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        },
    ));
    s.handle_frame(t0, &refused).unwrap();
    assert!(
        matches!(&events(&mut s)[..], [SessionEvent::LocalTrackPublishFailed { cid, reason }] if cid == "mic-2" && reason.starts_with("NOT_ALLOWED"))
    );
    let unpublished = fake::frame(lk::signal_response::Message::TrackUnpublished(
        lk::TrackUnpublishedResponse {
            track_sid: "TR_m1".into(),
        },
    ));
    // Our own participant update, not listing the track any more, may come first (the
    // server ends tracks whose source was taken away): the unpublish is still told, once.
    let mut me = fake::participant("PA_me", "1", 1);
    me.version = 9;
    s.handle_frame(t0, &update(vec![me])).unwrap();
    events(&mut s);
    s.handle_frame(t0, &unpublished).unwrap();
    assert!(
        matches!(&events(&mut s)[..], [SessionEvent::TrackUnpublished { track, .. }] if track.as_str() == "TR_m1")
    );
    assert!(s.local().unwrap().tracks.is_empty());
    s.handle_frame(t0, &unpublished).unwrap();
    assert!(events(&mut s).is_empty(), "said once");
}

#[test]
fn one_publisher_offer_at_a_time_and_renegotiation_after_the_answer() {
    let (mut s, t0) = joined(vec![]);
    let id = s.publisher_offer(t0, "v=0 offer-1".into()).unwrap();
    let lk::signal_request::Message::Offer(o) = fake::request(&s.poll_transmit().unwrap()) else {
        panic!("expected offer");
    };
    assert_eq!(
        (o.id, o.r#type.as_str(), o.sdp.as_str()),
        (id, "offer", "v=0 offer-1")
    );
    assert_eq!(
        s.publisher_offer(t0, "v=0 offer-2".into()),
        Err(crate::NegotiationError::OfferOutstanding)
    );
    assert_eq!(s.poll_transmit(), None);

    let stale = fake::frame(lk::signal_response::Message::Answer(
        lk::SessionDescription {
            id: id + 7,
            ..Default::default()
        },
    ));
    assert!(matches!(
        s.handle_frame(t0, &stale),
        Err(FrameError::Unexpected(_))
    ));
    let answer = fake::frame(lk::signal_response::Message::Answer(
        lk::SessionDescription {
            r#type: "answer".into(),
            sdp: "v=0 answer".into(),
            id,
            mid_to_track_id: [("1".to_owned(), "TR_m1".to_owned())].into(),
        },
    ));
    s.handle_frame(t0, &answer).unwrap();
    let cmds = drain_rtc(&mut s);
    assert!(
        matches!(&cmds[0], crate::RtcCommand::ApplyPublisherAnswer { id: i, mid_to_track, .. } if *i == id && mid_to_track["1"].as_str() == "TR_m1")
    );
    assert_eq!(cmds[1], crate::RtcCommand::RenegotiatePublisher);
    assert!(s.publisher_offer(t0, "v=0 offer-2".into()).unwrap() > id);
}

#[test]
fn an_unanswered_publisher_offer_is_made_again_then_the_session_gives_up() {
    use crate::negotiation::{OFFER_ATTEMPTS, OFFER_TIMEOUT};
    let (mut s, t0) = joined(vec![]);
    events(&mut s);
    let mut now = t0;
    let first = s.publisher_offer(now, "v=0 offer-1".into()).unwrap();
    s.poll_transmit();
    assert!(s.poll_timeout().unwrap() <= now + OFFER_TIMEOUT);
    // Pings keep the signal alive meanwhile: only the offer is lost.
    let mut offers = vec![first];
    for attempt in 2..=OFFER_ATTEMPTS {
        now += OFFER_TIMEOUT;
        s.handle_frame(
            now,
            &fake::frame(lk::signal_response::Message::PongResp(lk::Pong::default())),
        )
        .unwrap();
        s.handle_timeout(now);
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::PublisherOfferUnanswered { attempt }]
        );
        assert_eq!(
            drain_rtc(&mut s),
            vec![crate::RtcCommand::RenegotiatePublisher]
        );
        // The retry is accepted (the lost offer no longer blocks publishing)...
        let id = s
            .publisher_offer(now, format!("v=0 offer-{attempt}"))
            .unwrap();
        offers.push(id);
        while s.poll_transmit().is_some() {}
    }
    // ...and the answer to an expired one is refused as stale.
    let late = fake::frame(lk::signal_response::Message::Answer(
        lk::SessionDescription {
            id: first,
            ..Default::default()
        },
    ));
    assert!(s.handle_frame(now, &late).is_err());
    now += OFFER_TIMEOUT;
    s.handle_frame(
        now,
        &fake::frame(lk::signal_response::Message::PongResp(lk::Pong::default())),
    )
    .unwrap();
    s.handle_timeout(now);
    assert!(
        matches!(
            &events(&mut s)[..],
            [SessionEvent::Reconnecting {
                attempt: 1,
                reason: DisconnectReason::MediaFailed(_),
                ..
            }]
        ),
        "offers {offers:?}"
    );
}

#[test]
fn an_answer_in_time_resets_the_offer_deadline() {
    use crate::negotiation::OFFER_TIMEOUT;
    let (mut s, t0) = joined(vec![]);
    events(&mut s);
    let id = s.publisher_offer(t0, "v=0 offer-1".into()).unwrap();
    let answer = fake::frame(lk::signal_response::Message::Answer(
        lk::SessionDescription {
            r#type: "answer".into(),
            id,
            ..Default::default()
        },
    ));
    s.handle_frame(t0 + Duration::from_secs(1), &answer)
        .unwrap();
    drain_rtc(&mut s);
    let later = t0 + OFFER_TIMEOUT + Duration::from_secs(1);
    s.handle_frame(
        later,
        &fake::frame(lk::signal_response::Message::PongResp(lk::Pong::default())),
    )
    .unwrap();
    s.handle_timeout(later);
    assert!(events(&mut s).is_empty());
    assert!(drain_rtc(&mut s).is_empty());
}

#[test]
fn a_track_change_asks_for_one_offer_now_or_after_the_answer() {
    let (mut s, t0) = joined(vec![]);
    s.renegotiate_publisher();
    s.renegotiate_publisher();
    assert_eq!(
        drain_rtc(&mut s),
        vec![crate::RtcCommand::RenegotiatePublisher],
        "never two"
    );
    let id = s.publisher_offer(t0, "v=0 offer-1".into()).unwrap();
    s.poll_transmit();
    s.renegotiate_publisher();
    assert!(
        drain_rtc(&mut s).is_empty(),
        "waits for the outstanding answer"
    );
    let answer = fake::frame(lk::signal_response::Message::Answer(
        lk::SessionDescription {
            r#type: "answer".into(),
            sdp: "v=0 answer".into(),
            id,
            ..Default::default()
        },
    ));
    s.handle_frame(t0, &answer).unwrap();
    let cmds = drain_rtc(&mut s);
    assert_eq!(cmds.last(), Some(&crate::RtcCommand::RenegotiatePublisher));
}

#[test]
fn candidates_wait_for_their_remote_description() {
    let (mut s, t0) = joined(vec![]);
    let trickle = |target: lk::SignalTarget, c: &str| {
        fake::frame(lk::signal_response::Message::Trickle(lk::TrickleRequest {
            candidate_init: c.into(),
            target: target as i32,
            r#final: false,
        }))
    };
    s.handle_frame(t0, &trickle(lk::SignalTarget::Subscriber, "sub-1"))
        .unwrap();
    s.handle_frame(t0, &trickle(lk::SignalTarget::Publisher, "pub-1"))
        .unwrap();
    let offer = fake::frame(lk::signal_response::Message::Offer(
        lk::SessionDescription {
            r#type: "offer".into(),
            sdp: "v=0 server".into(),
            id: 3,
            ..Default::default()
        },
    ));
    s.handle_frame(t0, &offer).unwrap();
    let cmds = drain_rtc(&mut s);
    assert!(
        matches!(
            &cmds[..],
            [crate::RtcCommand::ApplySubscriberOffer { id: 3, .. }]
        ),
        "{cmds:?}"
    );

    s.remote_description_applied(crate::SignalTarget::Subscriber);
    assert_eq!(
        drain_rtc(&mut s),
        vec![crate::RtcCommand::AddRemoteCandidate {
            target: crate::SignalTarget::Subscriber,
            candidate_init: "sub-1".into()
        }]
    );
    s.handle_frame(t0, &trickle(lk::SignalTarget::Subscriber, "sub-2"))
        .unwrap();
    assert_eq!(drain_rtc(&mut s).len(), 1, "after the description, at once");

    s.subscriber_answer(3, "v=0 answer".into());
    let lk::signal_request::Message::Answer(a) = fake::request(&s.poll_transmit().unwrap()) else {
        panic!("expected answer");
    };
    assert_eq!(a.id, 3, "the answer echoes the offer id");
    s.local_candidate(
        crate::SignalTarget::Publisher,
        "{\"candidate\":\"c\"}".into(),
    );
    let lk::signal_request::Message::Trickle(t) = fake::request(&s.poll_transmit().unwrap()) else {
        panic!("expected trickle");
    };
    assert_eq!(t.target, lk::SignalTarget::Publisher as i32);

    // A server flooding candidates before a description, or sending huge ones, is refused.
    for i in 0..crate::negotiation::MAX_QUEUED_CANDIDATES - 1 {
        s.handle_frame(
            t0,
            &trickle(lk::SignalTarget::Publisher, &format!("pub-{i}")),
        )
        .unwrap();
    }
    assert!(matches!(
        s.handle_frame(t0, &trickle(lk::SignalTarget::Publisher, "one too many")),
        Err(FrameError::Candidate(
            crate::negotiation::CandidateRefused::TooMany
        ))
    ));
    let huge = "x".repeat(crate::negotiation::MAX_CANDIDATE_BYTES + 1);
    assert!(matches!(
        s.handle_frame(t0, &trickle(lk::SignalTarget::Subscriber, &huge)),
        Err(FrameError::Candidate(
            crate::negotiation::CandidateRefused::TooLong(_)
        ))
    ));
    // The publisher's candidate is still held until its own description is applied.
    s.remote_description_applied(crate::SignalTarget::Publisher);
    let released = drain_rtc(&mut s);
    assert_eq!(
        released[0],
        crate::RtcCommand::AddRemoteCandidate {
            target: crate::SignalTarget::Publisher,
            candidate_init: "pub-1".into()
        }
    );
    assert_eq!(released.len(), crate::negotiation::MAX_QUEUED_CANDIDATES);
}

#[test]
fn losing_the_signal_starts_one_reconnect_and_chat_waits_for_it() {
    let t0 = Instant::now();
    let mut s = Session::new(t0, T0_MS);
    assert_eq!(
        s.send_chat(t0, "s0", "trop tôt"),
        Err(crate::ChatError::NotConnected)
    );
    let (mut s, t0) = joined(vec![]);
    events(&mut s);
    s.handle_signal_lost(t0, "reset by peer".into());
    s.handle_media_failed(t0, "the Subscriber PeerConnection failed".into());
    s.handle_media_interrupted(t0, "the Subscriber PeerConnection disconnected".into());
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Reconnecting {
            attempt: 1,
            kind: ReconnectKind::Resume,
            reason: DisconnectReason::SignalLost("reset by peer".into()),
        }],
        "the first cause is the one reported"
    );
    assert_eq!(s.state(), SessionState::Reconnecting);
    assert!(s.send_chat(t0, "s1", "encore là ?").is_ok());
    assert_eq!(
        s.poll_data_transmit(t0),
        None,
        "chat waits for the reconnect"
    );
}

#[test]
fn tile_sizes_become_update_track_settings_and_layers_go_with_the_add_track() {
    let t0 = Instant::now();
    let mut early = Session::new(t0, T0_MS);
    let settings = crate::TrackSettings {
        enabled: true,
        width: 320,
        height: 180,
    };
    early.set_track_settings(&TrackSid("TR_v".into()), settings);
    assert_eq!(early.poll_transmit(), None, "nothing before the join");

    let (mut s, _) = joined(vec![]);
    s.set_track_settings(&TrackSid("TR_v".into()), settings);
    s.set_track_settings(
        &TrackSid("TR_v".into()),
        crate::TrackSettings {
            enabled: false,
            ..settings
        },
    );
    let sent: Vec<_> = std::iter::from_fn(|| s.poll_transmit())
        .map(|f| fake::request(&f))
        .collect();
    let [
        lk::signal_request::Message::TrackSetting(shown),
        lk::signal_request::Message::TrackSetting(hidden),
    ] = &sent[..]
    else {
        panic!("expected two UpdateTrackSettings: {sent:?}");
    };
    assert_eq!(
        (
            shown.track_sids.as_slice(),
            shown.disabled,
            shown.width,
            shown.height
        ),
        (&["TR_v".to_owned()][..], false, 320, 180)
    );
    assert!(hidden.disabled);

    let layer = |quality, rid: &str, width| crate::VideoLayer {
        quality,
        rid: rid.into(),
        width,
        height: width * 9 / 16,
        bitrate_kbps: width,
    };
    let camera = crate::TrackRequest {
        kind: crate::TrackKind::Video,
        source: TrackSource::Camera,
        width: 1280,
        height: 720,
        layers: vec![
            layer(crate::VideoQuality::Low, "q", 320),
            layer(crate::VideoQuality::High, "f", 1280),
        ],
        ..mic("cam")
    };
    let lk::signal_request::Message::AddTrack(add) = fake::request(&crate::wire::encode(
        crate::wire::Outbound::AddTrack(camera),
    )) else {
        panic!("expected add_track");
    };
    let layers: Vec<_> = add
        .layers
        .iter()
        .map(|l| (l.quality, l.rid.as_str(), l.width, l.height, l.bitrate))
        .collect();
    assert_eq!(
        layers,
        vec![
            (lk::VideoQuality::Low as i32, "q", 320, 180, 320_000),
            (lk::VideoQuality::High as i32, "f", 1280, 720, 1_280_000),
        ]
    );
    assert!(!add.disable_red, "RED is only turned off for audio");
}

#[test]
fn an_unfinished_chat_message_is_reported_when_given_up() {
    use crate::wire::data;
    let (mut s, t0) = joined(vec![fake::participant("PA_a", "2", 1)]);
    events(&mut s);
    let header = data::encode(
        1,
        data::DataPayload::StreamHeader(data::StreamHeader {
            stream_id: "cut".into(),
            timestamp_ms: 0,
            topic: crate::chat::CHAT_TOPIC.into(),
            total_length: None,
            text: true,
            inline_content: None,
            compression: 0,
        }),
    );
    s.handle_data(t0, &data::forwarded("2", &header)).unwrap();
    let due = t0 + crate::chat::CHAT_STREAM_TIMEOUT;
    assert!(s.poll_timeout().unwrap() <= due);
    s.handle_timeout(due);
    let ev = events(&mut s);
    assert!(
        ev.contains(&SessionEvent::ChatIncomplete {
            from: ParticipantIdentity("2".into()),
            stream_id: "cut".into()
        }),
        "{ev:?}"
    );
}

/// A sender flooding the chat (1,000 messages in one instant) gets 50 through, the rest
/// are counted and told once its second is over; other senders are unaffected.
#[test]
fn a_chat_flood_is_capped_per_sender_and_counted() {
    use crate::wire::data;
    let (mut s, t0) = joined(vec![
        fake::participant("PA_a", "2", 1),
        fake::participant("PA_b", "3", 1),
    ]);
    events(&mut s);
    let mut sequence = 0;
    let mut say = |s: &mut Session, from: &str, text: &str, at: Instant| {
        for payload in crate::chat::outgoing(text, &format!("{from}-{sequence}"), 0).unwrap() {
            sequence += 1;
            let packet = data::encode(sequence, payload);
            s.handle_data(at, &data::forwarded(from, &packet)).unwrap();
        }
    };
    for i in 0..1000 {
        say(&mut s, "2", &format!("spam {i}"), t0);
    }
    say(&mut s, "3", "une vraie question", t0);
    let ev = events(&mut s);
    let received = |ev: &[SessionEvent], who: &str| {
        ev.iter()
            .filter(|e| matches!(e, SessionEvent::ChatReceived(m) if m.from.as_str() == who))
            .count()
    };
    assert_eq!(received(&ev, "2"), MAX_CHAT_PER_SECOND as usize);
    assert_eq!(received(&ev, "3"), 1, "others are unaffected");
    let due = s.poll_timeout().unwrap();
    assert!(due <= t0 + Duration::from_secs(1));
    s.handle_timeout(t0 + Duration::from_secs(1));
    assert!(events(&mut s).contains(&SessionEvent::ChatDropped {
        from: ParticipantIdentity("2".into()),
        count: 1000 - u64::from(MAX_CHAT_PER_SECOND),
    }));
    // The next second, the sender is heard again.
    say(&mut s, "2", "pardon", t0 + Duration::from_secs(1));
    assert_eq!(received(&events(&mut s), "2"), 1);
}

#[test]
fn a_paused_stream_is_told_once_and_its_resume_too_for_known_tracks_only() {
    let mut a = fake::participant("PA_a", "2", 1);
    a.tracks = vec![fake::track("TR_cam", lk::TrackType::Video, false)];
    let (mut s, t0) = joined(vec![a]);
    events(&mut s);
    let states = |list: &[(&str, lk::StreamState)]| {
        fake::frame(lk::signal_response::Message::StreamStateUpdate(
            lk::StreamStateUpdate {
                stream_states: list
                    .iter()
                    .map(|(track, state)| lk::StreamStateInfo {
                        participant_sid: "PA_a".into(),
                        track_sid: (*track).into(),
                        state: *state as i32,
                    })
                    .collect(),
            },
        ))
    };
    let paused = |e: &SessionEvent| match e {
        SessionEvent::TrackStreamStateChanged {
            participant,
            track,
            paused,
        } => Some((
            participant.as_str().to_owned(),
            track.as_str().to_owned(),
            *paused,
        )),
        _ => None,
    };
    s.handle_frame(
        t0,
        &states(&[
            ("TR_cam", lk::StreamState::Paused),
            ("TR_nobody", lk::StreamState::Paused),
        ]),
    )
    .unwrap();
    let told: Vec<_> = events(&mut s).iter().filter_map(paused).collect();
    assert_eq!(told, [("PA_a".into(), "TR_cam".into(), true)]);
    // Said again: no change, nothing told.
    s.handle_frame(t0, &states(&[("TR_cam", lk::StreamState::Paused)]))
        .unwrap();
    assert!(events(&mut s).is_empty());
    s.handle_frame(t0, &states(&[("TR_cam", lk::StreamState::Active)]))
        .unwrap();
    let told: Vec<_> = events(&mut s).iter().filter_map(paused).collect();
    assert_eq!(told, [("PA_a".into(), "TR_cam".into(), false)]);
    assert!(s.paused_streams.is_empty());
}

#[test]
fn the_layers_someone_receives_are_told_for_our_tracks_only() {
    let (mut s, t0) = joined(vec![]);
    s.publish_track(mic("mic-1")).unwrap();
    let published = fake::frame(lk::signal_response::Message::TrackPublished(
        lk::TrackPublishedResponse {
            cid: "mic-1".into(),
            track: Some(fake::track("TR_m1", lk::TrackType::Audio, false)),
        },
    ));
    s.handle_frame(t0, &published).unwrap();
    events(&mut s);
    let update = |track: &str| {
        let q = |quality: lk::VideoQuality, enabled| lk::SubscribedQuality {
            quality: quality as i32,
            enabled,
        };
        fake::frame(lk::signal_response::Message::SubscribedQualityUpdate(
            lk::SubscribedQualityUpdate {
                track_sid: track.into(),
                subscribed_codecs: vec![lk::SubscribedCodec {
                    codec: "vp8".into(),
                    qualities: vec![
                        q(lk::VideoQuality::High, true),
                        q(lk::VideoQuality::Medium, false),
                        q(lk::VideoQuality::Off, true),
                        q(lk::VideoQuality::Low, true),
                        q(lk::VideoQuality::Low, true),
                    ],
                }],
                ..Default::default()
            },
        ))
    };
    s.handle_frame(t0, &update("TR_m1")).unwrap();
    assert_eq!(
        events(&mut s),
        [SessionEvent::LayersWanted {
            track: crate::TrackSid("TR_m1".into()),
            wanted: vec![crate::VideoQuality::Low, crate::VideoQuality::High],
        }]
    );
    s.handle_frame(t0, &update("TR_someone_else")).unwrap();
    assert!(events(&mut s).is_empty());
}

#[test]
fn remote_video_limited_from_our_side_keeps_the_applications_settings() {
    let mut a = fake::participant("PA_a", "2", 1);
    a.tracks = vec![
        fake::track("TR_cam", lk::TrackType::Video, false),
        fake::track("TR_other", lk::TrackType::Video, false),
        fake::track("TR_mic", lk::TrackType::Audio, false),
    ];
    let (mut s, t0) = joined(vec![a]);
    events(&mut s);
    let sent = |s: &mut Session| -> Vec<(String, bool, u32, i32)> {
        std::iter::from_fn(|| s.poll_transmit())
            .filter_map(|f| match fake::request(&f) {
                lk::signal_request::Message::TrackSetting(t) => {
                    Some((t.track_sids[0].clone(), t.disabled, t.width, t.quality))
                }
                _ => None,
            })
            .collect()
    };
    let small = crate::TrackSettings {
        enabled: true,
        width: 320,
        height: 180,
    };
    s.set_track_settings(&TrackSid("TR_cam".into()), small);
    sent(&mut s);
    assert!(s.remote_video_wanted());

    s.limit_remote_video(crate::RemoteVideoLimit::Off);
    let mut paused = sent(&mut s);
    paused.sort();
    assert_eq!(
        paused
            .iter()
            .map(|p| (p.0.as_str(), p.1))
            .collect::<Vec<_>>(),
        [("TR_cam", true), ("TR_other", true)],
        "every video off, not the sound"
    );
    // The application's changes while paused are kept, not sent as on.
    s.set_track_settings(
        &TrackSid("TR_cam".into()),
        crate::TrackSettings {
            width: 640,
            height: 360,
            ..small
        },
    );
    assert_eq!(sent(&mut s), [("TR_cam".into(), true, 640, 0)]);
    // A camera published meanwhile is paused too.
    let mut b = fake::participant("PA_b", "3", 1);
    b.tracks = vec![fake::track("TR_new", lk::TrackType::Video, false)];
    s.handle_frame(
        t0,
        &fake::frame(lk::signal_response::Message::Update(
            lk::ParticipantUpdate {
                participants: vec![b],
            },
        )),
    )
    .unwrap();
    assert_eq!(sent(&mut s), [("TR_new".into(), true, 0, 2)]);

    // A trial: the lowest layer, or the tile's size when it is smaller.
    s.limit_remote_video(crate::RemoteVideoLimit::Lowest);
    let mut trial = sent(&mut s);
    trial.sort();
    assert_eq!(
        trial,
        [
            ("TR_cam".into(), false, 320, 0),
            ("TR_new".into(), false, 320, 0),
            ("TR_other".into(), false, 320, 0),
        ]
    );
    // Resumed: what the application asked for, or the best layer for a tile never sized.
    s.limit_remote_video(crate::RemoteVideoLimit::None);
    let mut resumed = sent(&mut s);
    resumed.sort();
    assert_eq!(
        resumed,
        [
            ("TR_cam".into(), false, 640, 0),
            ("TR_new".into(), false, 0, lk::VideoQuality::High as i32),
            ("TR_other".into(), false, 0, lk::VideoQuality::High as i32),
        ]
    );
    // A tile the application turned off stays off, and then no video is wanted.
    for track in ["TR_cam", "TR_new", "TR_other"] {
        s.set_track_settings(
            &TrackSid(track.into()),
            crate::TrackSettings {
                enabled: false,
                ..small
            },
        );
    }
    assert!(!s.remote_video_wanted());
}
