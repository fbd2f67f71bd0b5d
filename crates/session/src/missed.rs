//! Chat that reached the server while we were away. livekit-server drops reliable data to
//! a participant whose path is down (its data channel write times out), and keeps what it
//! forwards for joining participants only: so after a reconnect we ask the others for the
//! chat they sent while we were away, and they send it again to us alone. Messages keep
//! their ids; receivers drop what they already have.
//!
//! The request is a user packet on [`MISSED_TOPIC`], `{"v":1,"away_ms":…}`: how long we
//! were away. It goes at once and twice more ([`ASK_AGAIN`]): right after a reconnect the
//! server's path to the others may not be back yet (ours was first, or theirs), and a
//! request, or an answer, written then is dropped too. The answer is every message of
//! ours sent within that absence (plus a margin): by time, not by sequence, since what was
//! lost may be older than what arrived since. Estrade answers it; other SDKs ignore the
//! topic.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::ids::ParticipantIdentity;

pub const MISSED_TOPIC: &str = "estrade.chat.missed";
/// Messages of ours kept to answer requests, and their text.
const KEPT_MESSAGES: usize = 256;
const KEPT_BYTES: usize = 1024 * 1024;
/// Added to the requester's own measure of its absence: the loss was noticed after it began.
const AWAY_MARGIN: Duration = Duration::from_secs(20);
/// Never more than this far back, whatever a request says.
const LONGEST_AWAY: Duration = Duration::from_secs(120);
/// When to ask again after the first request.
pub(crate) const ASK_AGAIN: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(6)];
/// Answers to one requester: one per this at most, and no more than so many a minute, so a
/// hostile peer cannot make us repeat our chat at it.
const ANSWER_INTERVAL: Duration = Duration::from_millis(1500);
const ANSWERS_PER_MINUTE: usize = 5;
/// A request is small (one entry per sender in the room); larger is not one.
const MAX_REQUEST_BYTES: usize = 1024;

/// A request that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MissedRequestError {
    #[error("a missed-chat request of {0} bytes (at most {MAX_REQUEST_BYTES})")]
    TooLarge(usize),
    #[error("a missed-chat request is not the expected JSON")]
    Malformed,
}

/// One chat message of ours, as it went out.
#[derive(Debug, Clone)]
pub(crate) struct SentChat {
    pub id: String,
    pub text: String,
    pub timestamp_ms: i64,
    pub at: Instant,
}

#[derive(Default)]
pub(crate) struct MissedChat {
    sent: VecDeque<SentChat>,
    sent_bytes: usize,
    /// When each requester was answered, within the last minute.
    answered: HashMap<ParticipantIdentity, VecDeque<Instant>>,
}

/// What a request asks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// How long the requester was away.
    pub away: Duration,
}

pub(crate) fn encode_request(away: Duration) -> Vec<u8> {
    serde_json::json!({"v": 1, "away_ms": away.as_millis() as u64})
        .to_string()
        .into_bytes()
}

pub(crate) fn decode_request(payload: &[u8]) -> Result<Request, MissedRequestError> {
    if payload.len() > MAX_REQUEST_BYTES {
        return Err(MissedRequestError::TooLarge(payload.len()));
    }
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|_| MissedRequestError::Malformed)?;
    let away_ms = value["away_ms"]
        .as_u64()
        .ok_or(MissedRequestError::Malformed)?;
    Ok(Request {
        away: Duration::from_millis(away_ms),
    })
}

impl MissedChat {
    /// Remembers one of our messages (the oldest go beyond the bounds).
    pub fn sent(&mut self, chat: SentChat) {
        self.sent_bytes += chat.text.len();
        self.sent.push_back(chat);
        while self.sent.len() > KEPT_MESSAGES || self.sent_bytes > KEPT_BYTES {
            let Some(old) = self.sent.pop_front() else {
                break;
            };
            self.sent_bytes = self.sent_bytes.saturating_sub(old.text.len());
        }
    }

    /// Our messages `from` asks for: those sent within its absence (plus a margin). Empty
    /// when it asks too often.
    pub fn answer(
        &mut self,
        now: Instant,
        from: &ParticipantIdentity,
        request: &Request,
    ) -> Vec<SentChat> {
        let minute = Duration::from_secs(60);
        self.answered.retain(|_, times| {
            times.retain(|at| now.saturating_duration_since(*at) < minute);
            !times.is_empty()
        });
        let times = self.answered.entry(from.clone()).or_default();
        let too_soon = times
            .back()
            .is_some_and(|at| now.saturating_duration_since(*at) < ANSWER_INTERVAL);
        if too_soon || times.len() >= ANSWERS_PER_MINUTE {
            return Vec::new();
        }
        times.push_back(now);
        let window = (request.away + AWAY_MARGIN).min(LONGEST_AWAY);
        self.sent
            .iter()
            .filter(|c| now.saturating_duration_since(c.at) <= window)
            .cloned()
            .collect()
    }

    /// A participant left: its rate limit goes with it.
    pub fn forget(&mut self, from: &ParticipantIdentity) {
        self.answered.remove(from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(id: &str, at: Instant) -> SentChat {
        SentChat {
            id: id.into(),
            text: format!("text of {id}"),
            timestamp_ms: 0,
            at,
        }
    }

    #[test]
    fn requests_round_trip_and_nonsense_is_refused() {
        let r = decode_request(&encode_request(Duration::from_millis(1500))).unwrap();
        assert_eq!(r.away, Duration::from_millis(1500));
        assert_eq!(decode_request(b"{"), Err(MissedRequestError::Malformed));
        assert_eq!(
            decode_request(br#"{"v":1}"#),
            Err(MissedRequestError::Malformed)
        );
        let huge = vec![b' '; MAX_REQUEST_BYTES + 1];
        assert!(matches!(
            decode_request(&huge),
            Err(MissedRequestError::TooLarge(_))
        ));
    }

    #[test]
    fn what_was_sent_within_the_absence_is_sent_again_a_few_times_at_most() {
        let t0 = Instant::now();
        let mut m = MissedChat::default();
        m.sent(chat("old", t0));
        m.sent(chat("missed", t0 + Duration::from_secs(100)));
        let mut now = t0 + Duration::from_secs(110);
        let request = Request {
            away: Duration::from_secs(10),
        };
        let who = ParticipantIdentity("2".into());
        let again = m.answer(now, &who, &request);
        let ids: Vec<_> = again.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["missed"]);
        // At once again: nothing. Then a few more, but not a flood.
        assert!(m.answer(now, &who, &request).is_empty());
        let mut answered = 1;
        for _ in 0..20 {
            now += ANSWER_INTERVAL;
            answered += usize::from(!m.answer(now, &who, &request).is_empty());
        }
        assert_eq!(answered, ANSWERS_PER_MINUTE);
    }

    #[test]
    fn what_is_kept_is_bounded() {
        let t0 = Instant::now();
        let mut m = MissedChat::default();
        for i in 0..(KEPT_MESSAGES + 10) {
            m.sent(chat(&format!("m{i}"), t0));
        }
        assert_eq!(m.sent.len(), KEPT_MESSAGES);
        assert_eq!(m.sent.front().unwrap().id, "m10");
    }
}
