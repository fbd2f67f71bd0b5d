//! Every reconnection path, against the scripted server on simulated time.

use std::time::Duration;

use livekit_protocol as lk;
use lk::signal_request::Message as Req;

use crate::testing::Pair;
use crate::wire::fake;
use crate::{
    ChatError, DisconnectReason, MAX_QUEUED_CHAT_BYTES, RECONNECT_GIVE_UP, ReconnectKind,
    SessionEvent, SessionState, TrackKind, TrackRequest, TrackSettings, TrackSid, TrackSource,
};

fn mic() -> TrackRequest {
    TrackRequest {
        cid: "microphone-1".into(),
        name: "microphone".into(),
        kind: TrackKind::Audio,
        source: TrackSource::Microphone,
        width: 0,
        height: 0,
        muted: false,
        layers: vec![],
    }
}

/// Joined with a trainer in the room and our microphone published.
fn class() -> Pair {
    let mut pair = Pair::joined(vec![fake::participant("PA_trainer", "trainer", 1)]);
    pair.client.publish_track(mic()).unwrap();
    pair.step();
    pair.take_events();
    pair
}

fn chats(pair: &mut Pair, n: usize, prefix: &str) {
    for i in 0..n {
        let id = format!("{prefix}-{i}");
        pair.client
            .send_chat(pair.now, &id, &format!("message {i}"))
            .unwrap();
    }
    pair.step();
}

fn reconnected(events: &[SessionEvent]) -> Option<(ReconnectKind, Duration)> {
    events.iter().find_map(|e| match e {
        SessionEvent::Reconnected { kind, after, .. } => Some((*kind, *after)),
        _ => None,
    })
}

#[test]
fn a_broken_socket_is_resumed_at_once_and_the_room_stays_the_same() {
    let mut pair = class();
    let sid = pair.client.local().unwrap().sid.clone();
    pair.server
        .others
        .push(fake::participant("PA_new", "student-2", 1));
    pair.break_signal();

    let events = pair.take_events();
    assert_eq!(
        reconnected(&events),
        Some((ReconnectKind::Resume, Duration::ZERO))
    );
    assert!(matches!(
        &events[0],
        SessionEvent::Reconnecting {
            attempt: 1,
            kind: ReconnectKind::Resume,
            reason: DisconnectReason::SignalLost(_)
        }
    ));
    // Only what really changed: the one who came meanwhile. Nobody "left and joined".
    let roster: Vec<_> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                SessionEvent::ParticipantJoined(_) | SessionEvent::ParticipantLeft { .. }
            )
        })
        .collect();
    assert!(
        matches!(&roster[..], [SessionEvent::ParticipantJoined(p)] if p.sid.0 == "PA_new"),
        "{roster:?}"
    );
    assert_eq!(pair.client.local().unwrap().sid, sid, "same participant");
    assert_eq!(pair.client.state(), SessionState::Connected);
    let request = &pair.requests[0];
    assert_eq!(request.resume.as_ref().map(|(s, _)| s), Some(&sid));
    assert_eq!(pair.ice_restarts, 1);
    assert_eq!(pair.pc_generations, 1, "the PeerConnections were kept");

    // The server was told what we have: our microphone with its sid, our channels.
    let sync = pair.server.sync_states()[0].clone();
    assert_eq!(sync.publish_tracks.len(), 1);
    assert_eq!(sync.publish_tracks[0].cid, "microphone-1");
    assert_eq!(
        sync.publish_tracks[0].track.as_ref().unwrap().sid,
        pair.client.local().unwrap().tracks[0].sid.0
    );
    assert_eq!(sync.data_channels[0].label, "_reliable");
    assert_eq!(sync.answer.as_ref().unwrap().sdp, "answer");
}

#[test]
fn a_ten_second_cut_is_over_two_seconds_after_the_network_is_back() {
    for cut_ms in [7_000, 10_000, 10_500, 13_000, 25_000] {
        let mut pair = class();
        pair.server.network_up = false;
        let cut_at = pair.now;
        // Nothing heard for 5 s: ICE says the path is gone.
        pair.advance(Duration::from_secs(5));
        pair.client
            .handle_media_interrupted(pair.now, "ICE disconnected".into());
        pair.advance(Duration::from_millis(cut_ms - 5_000));
        pair.network_back();
        let back_at = pair.now;
        pair.advance(Duration::from_secs(3));
        let events = pair.take_events();
        let (kind, after) = reconnected(&events).expect("back");
        assert_eq!(kind, ReconnectKind::Resume);
        let done = cut_at + Duration::from_secs(5) + after;
        assert!(
            done.saturating_duration_since(back_at) <= Duration::from_secs(2),
            "a {cut_ms} ms cut: back {:?} after the network",
            done.saturating_duration_since(back_at)
        );
    }
}

#[test]
fn the_refresh_token_is_used_for_reconnects() {
    let mut pair = class();
    pair.client
        .handle_frame(
            pair.now,
            &fake::frame(lk::signal_response::Message::RefreshToken(
                "fresh-jwt".into(),
            )),
        )
        .unwrap();
    pair.break_signal();
    assert_eq!(pair.requests[0].token(), Some("fresh-jwt"));
}

#[test]
fn chat_written_during_a_cut_arrives_once_in_order_and_unseen_packets_are_sent_again() {
    let mut pair = class();
    chats(&mut pair, 2, "before");
    let delivered = pair.server.data.len();
    // The network goes silent; two more messages leave before anyone notices, and are lost.
    pair.server.network_up = false;
    chats(&mut pair, 2, "unseen");
    pair.advance(Duration::from_secs(5));
    pair.client
        .handle_media_interrupted(pair.now, "ICE disconnected".into());
    pair.step();
    assert_eq!(pair.client.state(), SessionState::Reconnecting);
    chats(&mut pair, 3, "during");
    assert_eq!(
        pair.server.data.len(),
        delivered,
        "nothing leaves while reconnecting"
    );

    pair.advance(Duration::from_secs(5));
    pair.server.network_up = true;
    pair.advance(Duration::from_secs(6));
    let events = pair.take_events();
    let (kind, after) = reconnected(&events).expect("resumed");
    assert_eq!(kind, ReconnectKind::Resume);
    assert!(after <= Duration::from_secs(11), "{after:?}");

    // Every packet exactly once, in sequence order: the unseen ones resent, then the rest.
    let data = &pair.server.data;
    let mut sorted = data.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(&sorted, data, "no duplicate, in order: {data:?}");
    assert_eq!(data.len(), 7 * 4, "7 messages of 4 packets: {data:?}");
    // It asks the others what it missed: at once, after 2 s (within this test's 6 s), 6 s.
    assert_eq!(
        pair.server.missed_requests, 2,
        "it asks the others what it missed"
    );
}

#[test]
fn a_server_that_forgot_us_gets_a_full_reconnect_and_the_room_differences_are_told() {
    let mut pair = class();
    let old_sid = pair.client.local().unwrap().sid.clone();
    chats(&mut pair, 1, "before");
    // The server restarts: our session is gone; meanwhile the trainer left and a student came.
    pair.server.restart();
    pair.server.others = vec![fake::participant("PA_s2", "student-2", 1)];
    pair.client.handle_signal_lost(pair.now, "closed".into());
    pair.step();
    pair.advance(Duration::from_secs(1));

    let events = pair.take_events();
    let kinds: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Reconnecting { attempt, kind, .. } => Some((*attempt, *kind)),
            _ => None,
        })
        .collect();
    // The resume is refused (STATE_MISMATCH), the full reconnect follows without delay.
    assert_eq!(
        kinds,
        vec![(1, ReconnectKind::Resume), (2, ReconnectKind::Full)]
    );
    assert_eq!(reconnected(&events).map(|r| r.0), Some(ReconnectKind::Full));
    let local = pair.client.local().unwrap();
    assert_ne!(local.sid, old_sid, "a new participant");
    assert!(
        events.iter().any(
            |e| matches!(e, SessionEvent::ParticipantLeft { sid, .. } if sid.0 == "PA_trainer")
        )
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SessionEvent::ParticipantJoined(p) if p.sid.0 == "PA_s2"))
    );
    assert_eq!(pair.pc_generations, 2, "new PeerConnections");
    assert!(pair.client.local().unwrap().tracks.is_empty());
    assert_eq!(pair.requests[1].resume, None);
}

#[test]
fn attempts_back_off_and_give_up_reporting_the_chat_that_could_not_leave() {
    let mut pair = class();
    pair.lose_network();
    chats(&mut pair, 2, "lost");
    let start = pair.now;
    pair.advance(Duration::from_secs(120));
    let events = pair.take_events();
    let attempts = events
        .iter()
        .filter(|e| matches!(e, SessionEvent::Reconnecting { .. }))
        .count();
    // Each waits out its 5 s connect timeout, then 1–2 s, then (after 30 s) 5–7 s.
    assert!((8..=12).contains(&attempts), "{attempts} attempts");
    let undelivered: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::ChatUndelivered { id } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(undelivered, ["lost-0", "lost-1"], "one report per message");
    let Some(SessionEvent::Disconnected { reason }) = events.last() else {
        panic!("{events:?}")
    };
    assert!(
        matches!(reason, DisconnectReason::ReconnectFailed { attempts: n, .. } if *n as usize == attempts)
    );
    assert!(reason.can_rejoin());
    assert_eq!(pair.requests.len(), attempts);
    assert_eq!(pair.client.state(), SessionState::Disconnected);
    let gave_up = pair.gave_up_at.expect("gave up") - start;
    assert!(
        gave_up <= RECONNECT_GIVE_UP + Duration::from_secs(5),
        "gave up after {gave_up:?}"
    );
    assert_eq!(pair.client.poll_timeout(), None);
}

#[test]
fn a_server_that_keeps_sending_us_away_gets_attempts_spaced_out() {
    let mut pair = class();
    pair.server.sends_away = true;
    pair.break_signal();
    pair.advance(Duration::from_secs(10));
    // The resume is sent away, the full reconnect follows at once; from then on the
    // usual delays (1–2 s), not a loop.
    let attempts = pair.requests.len();
    assert!((5..=10).contains(&attempts), "{attempts} attempts in 10 s");
    assert_eq!(pair.client.state(), SessionState::Reconnecting);
}

#[test]
fn a_removal_while_reconnecting_ends_the_session() {
    let mut pair = class();
    pair.server.removed = true;
    pair.break_signal();
    let events = pair.take_events();
    let Some(SessionEvent::Disconnected { reason }) = events.last() else {
        panic!("{events:?}")
    };
    assert!(!reason.can_rejoin(), "{reason:?}");
    assert_eq!(pair.requests.len(), 1, "no rejoin after a removal");
}

#[test]
fn a_mute_undone_during_the_restore_stays_undone() {
    let mut pair = class();
    let track = pair.client.local().unwrap().tracks[0].sid.clone();
    pair.lose_network();
    pair.client.set_track_muted(&track, true);
    // Back, the server answered, media not yet: the user unmutes.
    pair.media_up = false;
    pair.network_back();
    pair.advance(Duration::from_secs(1));
    pair.client.set_track_muted(&track, false);
    pair.media_up = true;
    pair.advance(Duration::from_secs(1));
    assert!(reconnected(&pair.take_events()).is_some());
    let last = pair.server.received.iter().rev().find_map(|r| match r {
        Req::Mute(m) => Some(m.muted),
        _ => None,
    });
    assert_eq!(last, Some(false), "the server's last word is the unmute");
}

#[test]
fn a_refused_token_ends_the_attempts_at_once() {
    let mut pair = class();
    pair.server.unauthorized = true;
    pair.break_signal();
    let events = pair.take_events();
    assert!(matches!(
        events.last(),
        Some(SessionEvent::Disconnected {
            reason: DisconnectReason::TokenRefused(_)
        })
    ));
    assert_eq!(pair.requests.len(), 1);
}

#[test]
fn a_resume_whose_media_never_comes_back_becomes_a_full_reconnect() {
    let mut pair = class();
    pair.media_up = false;
    pair.break_signal();
    assert_eq!(pair.client.state(), SessionState::Reconnecting);
    pair.advance(Duration::from_secs(15));
    pair.media_up = true;
    pair.advance(Duration::from_secs(1));
    let events = pair.take_events();
    assert!(events.iter().any(|e| matches!(
        e,
        SessionEvent::Reconnecting {
            attempt: 2,
            kind: ReconnectKind::Full,
            reason: DisconnectReason::MediaFailed(_)
        }
    )));
    assert_eq!(reconnected(&events).map(|r| r.0), Some(ReconnectKind::Full));
}

#[test]
fn a_server_that_disables_resume_gets_full_reconnects() {
    let mut pair = Pair::joined(vec![]);
    // The JoinResponse's client configuration said no resume.
    pair.client.resume_disabled = true;
    pair.take_events();
    pair.break_signal();
    assert_eq!(pair.requests[0].kind, ReconnectKind::Full);
}

#[test]
fn a_mute_while_reconnecting_reaches_the_server_after_the_resume() {
    let mut pair = class();
    let track = pair.client.local().unwrap().tracks[0].sid.clone();
    pair.lose_network();
    pair.client.set_track_muted(&track, true);
    pair.server.network_up = true;
    pair.advance(Duration::from_secs(6));
    assert!(reconnected(&pair.take_events()).is_some());
    let mutes: Vec<_> = pair
        .server
        .received
        .iter()
        .filter_map(|r| match r {
            Req::Mute(m) => Some((m.sid.clone(), m.muted)),
            _ => None,
        })
        .collect();
    assert_eq!(mutes, vec![(track.0, true)]);
}

#[test]
fn tile_settings_are_sent_again_after_a_reconnect() {
    let mut trainer = fake::participant("PA_trainer", "trainer", 1);
    trainer
        .tracks
        .push(fake::track("TR_cam", lk::TrackType::Video, false));
    let mut pair = Pair::joined(vec![trainer]);
    let small = TrackSettings {
        enabled: true,
        width: 320,
        height: 180,
    };
    pair.client
        .set_track_settings(&TrackSid("TR_cam".into()), small);
    pair.step();
    pair.break_signal();
    let settings = pair
        .server
        .received
        .iter()
        .filter(|r| matches!(r, Req::TrackSetting(t) if t.width == 320))
        .count();
    assert_eq!(settings, 2, "once asked, once again after the resume");
}

#[test]
fn chat_queued_while_reconnecting_is_bounded() {
    let mut pair = class();
    pair.lose_network();
    let big = "x".repeat(200 * 1024);
    let mut refused = None;
    for i in 0..10 {
        if let Err(e) = pair.client.send_chat(pair.now, &format!("big-{i}"), &big) {
            refused = Some((i, e));
            break;
        }
    }
    let (at, error) = refused.expect("refused before 2 MB");
    assert_eq!(
        error,
        ChatError::QueueFull {
            max: MAX_QUEUED_CHAT_BYTES
        }
    );
    assert!(at >= 4, "{at} messages of 200 KiB fit");
}

#[test]
fn a_chat_message_received_twice_is_delivered_once() {
    let (mut alice, mut bob) = (Pair::joined(vec![]), Pair::joined(vec![]));
    alice.client.send_chat(alice.now, "m-1", "bonjour").unwrap();
    let packets: Vec<_> =
        std::iter::from_fn(|| alice.client.poll_data_transmit(alice.now)).collect();
    bob.take_events();
    // Once from alice's first session, once resent from her new one (new sid, new numbering).
    for (sid, packets) in [("PA_a1", &packets), ("PA_a2", &packets)] {
        for p in packets {
            let mut p: lk::DataPacket = prost::Message::decode(&p[..]).unwrap();
            p.participant_identity = "alice".into();
            p.participant_sid = sid.into();
            bob.client
                .handle_data(bob.now, &prost::Message::encode_to_vec(&p))
                .unwrap();
        }
    }
    let got = bob
        .take_events()
        .into_iter()
        .chain(std::iter::from_fn(|| bob.client.poll_event()))
        .filter(|e| matches!(e, SessionEvent::ChatReceived(_)))
        .count();
    assert_eq!(got, 1);
}

fn is_request(packet: &[u8]) -> bool {
    let d: lk::DataPacket = prost::Message::decode(packet).unwrap();
    matches!(&d.value, Some(lk::data_packet::Value::User(u))
        if u.topic.as_deref() == Some(crate::MISSED_TOPIC))
}

/// A packet as the server forwards it: the sender's identity and sid set.
fn forwarded(packet: &[u8], from: &str, sid: &str) -> Vec<u8> {
    let mut d: lk::DataPacket = prost::Message::decode(packet).unwrap();
    d.participant_identity = from.into();
    d.participant_sid = sid.into();
    prost::Message::encode_to_vec(&d)
}

#[test]
fn chat_the_server_dropped_while_we_were_away_is_sent_again_to_us_alone_once() {
    // Alice chats while Bob is away: the server could not deliver it to him.
    let mut alice = Pair::joined(vec![]);
    alice
        .client
        .send_chat(alice.now, "m-1", "vous m'entendez ?")
        .unwrap();
    alice.step();
    let mut bob = Pair::joined(vec![]);
    bob.lose_network();
    bob.advance(Duration::from_secs(1));
    bob.network_back();
    bob.advance(Duration::from_secs(1));
    assert!(reconnected(&bob.take_events()).is_some());
    let asked = bob
        .sent_data
        .iter()
        .find(|p| is_request(p))
        .expect("back, bob asks for what he missed")
        .clone();

    // Alice answers once (a second request at once is ignored): her message, to bob alone.
    alice.sent_data.clear();
    for _ in 0..2 {
        alice
            .client
            .handle_data(alice.now, &forwarded(&asked, "bob", "PA_bob"))
            .unwrap();
    }
    alice.step();
    let again: Vec<lk::DataPacket> = alice
        .sent_data
        .iter()
        .map(|p| prost::Message::decode(&p[..]).unwrap())
        .collect();
    assert_eq!(
        again.len(),
        4,
        "one message: header, chunk, trailer, legacy"
    );
    assert!(again.iter().all(|d| d.destination_identities == ["bob"]));

    // Bob gets it once, whether or not the first copy reached him too.
    for sid in ["PA_alice", "PA_alice2"] {
        for p in &alice.sent_data {
            bob.client
                .handle_data(bob.now, &forwarded(p, "alice", sid))
                .unwrap();
        }
    }
    bob.step();
    let got: Vec<_> = bob
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::ChatReceived(m) => Some(m.id),
            _ => None,
        })
        .collect();
    assert_eq!(got, ["m-1"]);
}

#[test]
fn a_sender_that_joined_again_is_heard_although_its_numbering_started_over() {
    let mut bob = Pair::joined(vec![]);
    let mut alice = Pair::joined(vec![]);
    for (sid, id) in [("PA_a1", "m-1"), ("PA_a2", "m-2")] {
        alice.client.send_chat(alice.now, id, "salut").unwrap();
        // A fresh session numbers from 1 again.
        let mut fresh = Pair::joined(vec![]);
        fresh.client.send_chat(fresh.now, id, "salut").unwrap();
        for p in std::iter::from_fn(|| fresh.client.poll_data_transmit(fresh.now)) {
            let mut p: lk::DataPacket = prost::Message::decode(&p[..]).unwrap();
            p.participant_identity = "alice".into();
            p.participant_sid = sid.into();
            bob.client
                .handle_data(bob.now, &prost::Message::encode_to_vec(&p))
                .unwrap();
        }
    }
    let got = std::iter::from_fn(|| bob.client.poll_event())
        .filter(|e| matches!(e, SessionEvent::ChatReceived(_)))
        .count();
    assert_eq!(got, 2);
}
