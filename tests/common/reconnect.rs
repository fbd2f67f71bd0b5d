//! What the reconnection tests share: reading the events they wait for, and the sound
//! heard from a participant.

use std::time::{Duration, Instant};

use estrade_engine::{
    ParticipantIdentity, PulseRecorder, ReconnectKind, RoomEvent, RoomEvents, SessionEvent,
};

use super::wait_for;

pub fn onsets(heard: &PulseRecorder, from: &ParticipantIdentity) -> usize {
    heard.heard_from(from).pulses.latencies_ms.len()
}

pub fn reconnecting(e: &RoomEvent) -> Option<(u32, ReconnectKind)> {
    match e {
        RoomEvent::Session(SessionEvent::Reconnecting { attempt, kind, .. }) => {
            Some((*attempt, *kind))
        }
        _ => None,
    }
}

pub fn reconnected(e: &RoomEvent) -> Option<(ReconnectKind, Duration)> {
    match e {
        RoomEvent::Session(SessionEvent::Reconnected { kind, after, .. }) => Some((*kind, *after)),
        _ => None,
    }
}

/// Every chat text received until `last` arrives, and whether anyone left meanwhile.
pub async fn chats_until(events: &mut RoomEvents, last: &str) -> (Vec<String>, bool) {
    let (mut texts, mut someone_left) = (Vec::new(), false);
    wait_for(events, last, |e| match e {
        RoomEvent::Session(SessionEvent::ChatReceived(m)) => {
            texts.push(m.text.clone());
            (m.text == last).then_some(())
        }
        RoomEvent::Session(SessionEvent::ParticipantLeft { .. }) => {
            someone_left = true;
            None
        }
        _ => None,
    })
    .await;
    (texts, someone_left)
}

/// Waits for `Reconnected`, keeping the chat that arrives meanwhile (what was sent during a
/// cut may come before our own side reports the resume done).
pub async fn back_with_chat(events: &mut RoomEvents, what: &str) -> (ReconnectKind, Vec<String>) {
    let mut texts = Vec::new();
    let kind = wait_for(events, what, |e| match e {
        RoomEvent::Session(SessionEvent::ChatReceived(m)) => {
            texts.push(m.text.clone());
            None
        }
        other => reconnected(other).map(|(kind, _)| kind),
    })
    .await;
    (kind, texts)
}

/// Chat texts received (after `texts`, already in) until each of `expected` came (in any order: what was missed during
/// a cut is sent again after what followed it), and for two seconds more, to catch a
/// repeat.
pub async fn chats_of(
    events: &mut RoomEvents,
    mut texts: Vec<String>,
    expected: &[&str],
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut quiet_from: Option<Instant> = None;
    loop {
        let all = expected.iter().all(|e| texts.iter().any(|t| t == e));
        if all && quiet_from.is_none() {
            quiet_from = Some(Instant::now());
        }
        let until = match quiet_from {
            Some(at) => at + Duration::from_secs(2),
            None => deadline,
        };
        match tokio::time::timeout_at(until.into(), events.recv()).await {
            Ok(Some(RoomEvent::Session(SessionEvent::ChatReceived(m)))) => texts.push(m.text),
            Ok(Some(RoomEvent::Session(SessionEvent::ParticipantLeft { .. }))) => {
                panic!("someone left during a resume")
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the room ended; chat so far {texts:?}"),
            Err(_) if quiet_from.is_some() => return texts,
            Err(_) => panic!("timed out: chat so far {texts:?}, expected {expected:?}"),
        }
    }
}

pub async fn hears_more(
    heard: &PulseRecorder,
    from: &ParticipantIdentity,
    than: usize,
    what: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while onsets(heard, from) < than + 3 {
        assert!(
            Instant::now() < deadline,
            "{what}: heard {}",
            onsets(heard, from)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
