//! The session's side of chat and reliable data: sending (numbered, queued while
//! reconnecting, kept for resending), receiving (duplicates dropped by sequence and by
//! message id, floods capped per sender), and missed chat after a reconnect.

use std::time::Instant;

use super::{
    CHAT_WINDOW, ChatWindow, DataReceiveError, MAX_CHAT_PER_SECOND, MAX_QUEUED_CHAT_BYTES,
    MAX_RESEND_BYTES, MAX_RESEND_PACKETS, Outgoing, RECENT_CHAT_IDS, Sender, Session, SessionState,
};
use crate::chat::{self, ChatError, ChatMessage};
use crate::events::SessionEvent;
use crate::ids::ParticipantIdentity;
use crate::wire::data;

impl Session {
    /// Queues a chat message (text stream on `lk.chat` plus the legacy packet) for the
    /// `_reliable` channel. `stream_id` must be unique (a UUID): it is the message id.
    /// While reconnecting it is queued (up to [`MAX_QUEUED_CHAT_BYTES`]) and sent once the
    /// session is back; if the session ends first, `ChatUndelivered` says so.
    pub fn send_chat(
        &mut self,
        now: Instant,
        stream_id: &str,
        text: &str,
    ) -> Result<ChatMessage, ChatError> {
        let from = match (&self.state, &self.local) {
            (SessionState::Connected | SessionState::Reconnecting, Some(local)) => {
                local.identity.clone()
            }
            _ => return Err(ChatError::NotConnected),
        };
        let timestamp_ms = self.unix_ms(now);
        let payloads = chat::outgoing(text, stream_id, timestamp_ms)?;
        if self.state == SessionState::Reconnecting
            && self.queued_bytes + text.len() > MAX_QUEUED_CHAT_BYTES
        {
            return Err(ChatError::QueueFull {
                max: MAX_QUEUED_CHAT_BYTES,
            });
        }
        self.queue_chat(payloads, stream_id, Vec::new(), true);
        self.missed.sent(crate::missed::SentChat {
            id: stream_id.to_owned(),
            text: text.to_owned(),
            timestamp_ms,
            at: now,
        });
        Ok(ChatMessage {
            id: stream_id.to_owned(),
            from,
            timestamp_ms,
            text: text.to_owned(),
        })
    }

    /// Numbers and queues the packets of one message (`to`: these identities only).
    /// `user_chat`: the user's own message, just written (see [`Outgoing::user_chat`]).
    fn queue_chat(
        &mut self,
        payloads: Vec<data::DataPayload>,
        id: &str,
        to: Vec<String>,
        user_chat: bool,
    ) {
        for payload in payloads {
            self.data_sequence = self.data_sequence.wrapping_add(1).max(1);
            let bytes = data::encode_to(self.data_sequence, payload, to.clone());
            if user_chat {
                self.queued_bytes += bytes.len();
            }
            self.data_transmits.push_back(Outgoing {
                sequence: self.data_sequence,
                message_id: id.to_owned(),
                user_chat,
                bytes,
            });
        }
    }

    /// After a reconnect: asks the others for the chat they sent while we were away, now
    /// and again a little later (see `missed::ASK_AGAIN`).
    pub(crate) fn ask_for_missed_chat(&mut self, now: Instant, lost_at: Instant) {
        self.ask_missed(now, lost_at);
        self.missed_asks = crate::missed::ASK_AGAIN
            .iter()
            .map(|after| (now + *after, lost_at))
            .collect();
    }

    fn ask_missed(&mut self, now: Instant, lost_at: Instant) {
        let away = now.saturating_duration_since(lost_at);
        let request = data::DataPayload::User {
            topic: Some(crate::missed::MISSED_TOPIC.to_owned()),
            payload: crate::missed::encode_request(away),
        };
        self.queue_chat(vec![request], "", Vec::new(), false);
    }

    /// The requests for missed chat that are due.
    pub(super) fn ask_missed_again(&mut self, now: Instant) {
        while let Some(&(at, lost_at)) = self.missed_asks.front() {
            if now < at {
                break;
            }
            self.missed_asks.pop_front();
            self.ask_missed(now, lost_at);
        }
    }

    /// Someone asks for the chat of ours it missed: sent again, to it alone.
    fn answer_missed_chat(
        &mut self,
        now: Instant,
        from: &ParticipantIdentity,
        payload: &[u8],
    ) -> Result<(), DataReceiveError> {
        let request = crate::missed::decode_request(payload)?;
        // Reconnecting ourselves: it will ask again, and we will be able to answer then.
        let Some(local) = self
            .local
            .as_ref()
            .filter(|_| self.state == SessionState::Connected)
        else {
            return Ok(());
        };
        if &local.identity == from {
            return Ok(());
        }
        for chat in self.missed.answer(now, from, &request) {
            if let Ok(payloads) = chat::outgoing(&chat.text, &chat.id, chat.timestamp_ms) {
                self.queue_chat(payloads, &chat.id, vec![from.0.clone()], false);
            }
        }
        Ok(())
    }

    /// One message from a data channel.
    pub fn handle_data(&mut self, now: Instant, packet: &[u8]) -> Result<(), DataReceiveError> {
        self.expire_chat(now);
        let packet = data::decode(packet)?;
        if packet.sequence != 0 {
            let sender = if packet.from_sid.is_empty() {
                Sender::Identity(packet.from.clone())
            } else {
                Sender::Sid(packet.from_sid.clone())
            };
            let last = self.data_seen.entry(sender).or_default();
            if packet.sequence <= *last {
                return Ok(()); // a duplicate after a resume
            }
            *last = packet.sequence;
        }
        if let data::DataPayload::User {
            topic: Some(topic),
            payload,
        } = &packet.payload
            && topic == crate::missed::MISSED_TOPIC
        {
            return self.answer_missed_chat(now, &packet.from, payload);
        }
        if let Some(message) = self.chat.handle(now, packet)? {
            if !self.first_time(&message.id) {
                return Ok(()); // sent again by a sender that reconnected
            }
            let window = self
                .chat_rate
                .entry(message.from.clone())
                .or_insert(ChatWindow {
                    started: now,
                    taken: 0,
                    dropped: 0,
                });
            if now >= window.started + CHAT_WINDOW {
                let dropped = std::mem::take(&mut window.dropped);
                *window = ChatWindow {
                    started: now,
                    taken: 0,
                    dropped: 0,
                };
                if dropped > 0 {
                    self.events.push_back(SessionEvent::ChatDropped {
                        from: message.from.clone(),
                        count: dropped,
                    });
                }
            }
            if window.taken < MAX_CHAT_PER_SECOND {
                window.taken += 1;
                self.events.push_back(SessionEvent::ChatReceived(message));
            } else {
                window.dropped += 1;
            }
        }
        Ok(())
    }

    /// Senders whose flood window ended are told about: how many were dropped.
    pub(super) fn tell_dropped_chat(&mut self, now: Instant) {
        for (from, window) in &mut self.chat_rate {
            if window.dropped > 0 && now >= window.started + CHAT_WINDOW {
                self.events.push_back(SessionEvent::ChatDropped {
                    from: from.clone(),
                    count: std::mem::take(&mut window.dropped),
                });
            }
        }
    }

    /// When a flood's count is next due.
    pub(super) fn next_chat_report(&self) -> Option<Instant> {
        self.chat_rate
            .values()
            .filter(|w| w.dropped > 0)
            .map(|w| w.started + CHAT_WINDOW)
            .min()
    }

    /// Chat streams whose trailer is overdue are given up, and said so.
    pub(super) fn expire_chat(&mut self, now: Instant) {
        for lost in self.chat.expire(now) {
            self.events.push_back(SessionEvent::ChatIncomplete {
                from: lost.from,
                stream_id: lost.stream_id,
            });
        }
    }

    /// Whether chat message `id` is new (remembering the last [`RECENT_CHAT_IDS`]).
    fn first_time(&mut self, id: &str) -> bool {
        if !self.recent_chat.insert(id.to_owned()) {
            return false;
        }
        self.recent_chat_order.push_back(id.to_owned());
        if self.recent_chat_order.len() > RECENT_CHAT_IDS
            && let Some(old) = self.recent_chat_order.pop_front()
        {
            self.recent_chat.remove(&old);
        }
        true
    }

    /// The next reliable packet to send on `_reliable`, while connected (while
    /// reconnecting they wait). Kept a while after, to be sent again if a reconnect
    /// shows it may not have arrived.
    pub fn poll_data_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.state != SessionState::Connected {
            return None;
        }
        let packet = self.data_transmits.pop_front()?;
        if packet.user_chat {
            self.queued_bytes = self.queued_bytes.saturating_sub(packet.bytes.len());
        }
        let bytes = packet.bytes.clone();
        self.sent_bytes += bytes.len();
        self.sent.push_back((now, packet));
        while self.sent.len() > MAX_RESEND_PACKETS || self.sent_bytes > MAX_RESEND_BYTES {
            let Some((_, old)) = self.sent.pop_front() else {
                break;
            };
            self.sent_bytes = self.sent_bytes.saturating_sub(old.bytes.len());
        }
        Some(bytes)
    }
}
