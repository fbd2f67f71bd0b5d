//! What the targets share: a session that has joined (so frames reach the parts that
//! matter), and the input cut into timed records.

#![allow(dead_code)] // each target uses a part

use std::time::{Duration, Instant};

use estrade_session::{RtcSnapshot, Session};
use livekit_protocol as lk;
use prost::Message as _;

pub const T0_MS: i64 = 1_790_000_000_000;

pub fn participant(sid: &str, identity: &str) -> lk::ParticipantInfo {
    lk::ParticipantInfo {
        sid: sid.into(),
        identity: identity.into(),
        state: lk::participant_info::State::Active as i32,
        version: 1,
        permission: Some(lk::ParticipantPermission {
            can_subscribe: true,
            can_publish: true,
            can_publish_data: true,
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn frame(message: lk::signal_response::Message) -> Vec<u8> {
    lk::SignalResponse {
        message: Some(message),
    }
    .encode_to_vec()
}

pub fn join_frame() -> Vec<u8> {
    frame(lk::signal_response::Message::Join(lk::JoinResponse {
        room: Some(lk::Room {
            sid: "RM_1".into(),
            name: "room".into(),
            ..Default::default()
        }),
        participant: Some(participant("PA_me", "1")),
        other_participants: vec![participant("PA_a", "2")],
        ping_interval: 5,
        ping_timeout: 15,
        ..Default::default()
    }))
}

/// A session past its JoinResponse, with one other participant.
pub fn joined() -> (Session, Instant) {
    let t0 = Instant::now();
    let mut s = Session::new(t0, T0_MS);
    s.handle_frame(t0, &join_frame()).expect("a valid join");
    (s, t0)
}

/// Records of `[kind, delay in ms, length (2 bytes LE), bytes…]`; the last one may be short.
pub fn records(mut data: &[u8]) -> impl Iterator<Item = (u8, Duration, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let (kind, delay) = (data[0], Duration::from_millis(data[1].into()));
        let len = usize::from(u16::from_le_bytes([data[2], data[3]])).min(data.len() - 4);
        let chunk = &data[4..4 + len];
        data = &data[4 + len..];
        Some((kind, delay, chunk))
    })
}

/// Takes everything the session has for the I/O layer, as a driver would, and answers
/// what a driver answers (sockets open at once, the transport is up).
pub fn drain(s: &mut Session, now: Instant) {
    while s.poll_transmit().is_some() {}
    while s.poll_rtc().is_some() {}
    while s.poll_data_transmit(now).is_some() {}
    while s.poll_event().is_some() {}
    if s.poll_reconnect().is_some() {
        s.handle_signal_opened(now, RtcSnapshot::default());
    }
    // A timer that is due must be handled within a few calls (the driver calls again at
    // once while it is due): one that stays due would spin the driver.
    for _ in 0..16 {
        if !s.poll_timeout().is_some_and(|at| at <= now) {
            return;
        }
        s.handle_timeout(now);
        while s.poll_transmit().is_some() {}
        while s.poll_rtc().is_some() {}
        while s.poll_event().is_some() {}
        if s.poll_reconnect().is_some() {
            s.handle_signal_opened(now, RtcSnapshot::default());
        }
    }
    panic!("the session's timer stays due at {now:?}");
}
