//! Chat as LiveKit's own UIs (LiveKit Meet, components-js) speak it: a text stream on topic
//! `lk.chat`, plus the legacy `lk-chat-topic` JSON packet marked `ignoreLegacy` so old
//! clients show it once. Both forms are received.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::ids::ParticipantIdentity;
use crate::wire::data::{DataInbound, DataPayload, StreamHeader};

pub const CHAT_TOPIC: &str = "lk.chat";
pub const LEGACY_CHAT_TOPIC: &str = "lk-chat-topic";
/// Longest message we send or accept, in UTF-8 bytes. LiveKit's SDKs stream text of any
/// length (a 30 kB message between two browsers arrives whole); a pasted page of notes
/// or a code listing fits.
pub const MAX_CHAT_BYTES: usize = 256 * 1024;
/// Stream chunks stay under the server's per-packet limits (15 000 bytes in the SDKs).
const CHUNK_BYTES: usize = 15_000;
/// Streams a sender may have open at once before we stop buffering theirs.
const MAX_OPEN_STREAMS_PER_SENDER: usize = 8;
/// What one sender's unfinished messages may hold, all streams together.
pub const MAX_BUFFERED_PER_SENDER: usize = 2 * MAX_CHAT_BYTES;
/// What everyone's unfinished messages may hold: a room of hostile senders is bounded too.
pub const MAX_BUFFERED_TOTAL: usize = 8 * MAX_CHAT_BYTES;
/// A stream without its trailer this long after its header is given up: its sender was
/// cut off mid-message (a network cut), and must not keep a slot for the session.
pub const CHAT_STREAM_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// The stream id: the same message sent in both forms has one id.
    pub id: String,
    pub from: ParticipantIdentity,
    pub timestamp_ms: i64,
    pub text: String,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ChatError {
    #[error("not connected to the room")]
    NotConnected,
    #[error("a chat message cannot be empty")]
    Empty,
    #[error("the message is {len} bytes long; the limit is {max}")]
    TooLong { len: usize, max: usize },
    /// Reconnecting, and `max` bytes of chat already wait to be sent.
    #[error("reconnecting, and {max} bytes of chat already wait to be sent")]
    QueueFull { max: usize },
}

/// A received chat packet that could not be used; nothing else is affected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChatReceiveError {
    #[error("chat stream {stream_id} is not valid UTF-8")]
    NotUtf8 { stream_id: String },
    #[error("chat stream {stream_id} announced {expected} bytes but carried {got}")]
    LengthMismatch {
        stream_id: String,
        expected: u64,
        got: u64,
    },
    #[error("chat stream {stream_id} exceeds {MAX_CHAT_BYTES} bytes")]
    TooLarge { stream_id: String },
    #[error("chat stream {stream_id} was aborted by its sender: {reason}")]
    Aborted { stream_id: String, reason: String },
    #[error("chat stream {stream_id}: chunk {got} arrived where {expected} was expected")]
    OutOfOrder {
        stream_id: String,
        expected: u64,
        got: u64,
    },
    #[error("compressed chat streams are not supported")]
    Compressed,
    #[error("too many chat streams open from {0}")]
    TooManyStreams(ParticipantIdentity),
    #[error("chat stream {stream_id} from {from} would exceed what unfinished messages may hold")]
    BufferFull {
        from: ParticipantIdentity,
        stream_id: String,
    },
    #[error("the legacy chat packet is not the expected JSON")]
    LegacyMalformed,
}

/// The packets of one outgoing message, in order: header, chunks, trailer, legacy packet.
pub(crate) fn outgoing(
    text: &str,
    stream_id: &str,
    timestamp_ms: i64,
) -> Result<Vec<DataPayload>, ChatError> {
    if text.trim().is_empty() {
        return Err(ChatError::Empty);
    }
    if text.len() > MAX_CHAT_BYTES {
        return Err(ChatError::TooLong {
            len: text.len(),
            max: MAX_CHAT_BYTES,
        });
    }
    let mut packets = vec![DataPayload::StreamHeader(StreamHeader {
        stream_id: stream_id.to_owned(),
        timestamp_ms,
        topic: CHAT_TOPIC.to_owned(),
        total_length: Some(text.len() as u64),
        text: true,
        inline_content: None,
        compression: 0,
    })];
    for (index, chunk) in utf8_chunks(text, CHUNK_BYTES).enumerate() {
        packets.push(DataPayload::StreamChunk {
            stream_id: stream_id.to_owned(),
            index: index as u64,
            content: chunk.as_bytes().to_vec(),
        });
    }
    packets.push(DataPayload::StreamTrailer {
        stream_id: stream_id.to_owned(),
        reason: String::new(),
    });
    let legacy = serde_json::json!({
        "id": stream_id,
        "timestamp": timestamp_ms,
        "message": text,
        "ignoreLegacy": true,
    })
    .to_string()
    .into_bytes();
    // For clients that only know the legacy packet. It is one packet, so a long message
    // (or one whose escapes grow it: a control character takes 6 bytes of JSON) would
    // exceed what a data packet may carry; those clients do not get it at all then.
    if legacy.len() <= CHUNK_BYTES {
        packets.push(DataPayload::User {
            topic: Some(LEGACY_CHAT_TOPIC.to_owned()),
            payload: legacy,
        });
    }
    Ok(packets)
}

/// Pieces of at most `max` bytes, never cut inside a character (receivers decode each
/// chunk on its own).
fn utf8_chunks(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (head, tail) = rest.split_at(end);
        rest = tail;
        Some(head)
    })
}

struct Partial {
    opened: Instant,
    timestamp_ms: i64,
    total_length: Option<u64>,
    bytes: Vec<u8>,
    next_index: u64,
}

/// Reassembles incoming chat streams, per sender.
#[derive(Default)]
pub(crate) struct ChatAssembler {
    open: HashMap<(ParticipantIdentity, String), Partial>,
    /// Bytes held in `open`, all senders.
    buffered: usize,
}

/// A chat stream given up (see [`CHAT_STREAM_TIMEOUT`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expired {
    pub from: ParticipantIdentity,
    pub stream_id: String,
}

impl ChatAssembler {
    /// Feeds one data packet received at `now`; returns a finished message, if this
    /// completed one.
    pub fn handle(
        &mut self,
        now: Instant,
        packet: DataInbound,
    ) -> Result<Option<ChatMessage>, ChatReceiveError> {
        let from = packet.from;
        match packet.payload {
            DataPayload::StreamHeader(h) if h.topic == CHAT_TOPIC && h.text => {
                if h.compression != 0 {
                    return Err(ChatReceiveError::Compressed);
                }
                if let Some(content) = h.inline_content {
                    return finish(from, h.stream_id, h.timestamp_ms, h.total_length, content)
                        .map(Some);
                }
                if h.total_length.is_some_and(|l| l > MAX_CHAT_BYTES as u64) {
                    return Err(ChatReceiveError::TooLarge {
                        stream_id: h.stream_id,
                    });
                }
                let open = self.open.keys().filter(|(f, _)| *f == from).count();
                if open >= MAX_OPEN_STREAMS_PER_SENDER {
                    return Err(ChatReceiveError::TooManyStreams(from));
                }
                self.open.insert(
                    (from, h.stream_id),
                    Partial {
                        opened: now,
                        timestamp_ms: h.timestamp_ms,
                        total_length: h.total_length,
                        bytes: Vec::new(),
                        next_index: 0,
                    },
                );
                Ok(None)
            }
            DataPayload::StreamChunk {
                stream_id,
                index,
                content,
            } => {
                let key = (from, stream_id);
                // Chunks of streams that are not chat (files, other topics) are not ours.
                let Some(partial) = self.open.get(&key) else {
                    return Ok(None);
                };
                let (expected, held) = (partial.next_index, partial.bytes.len());
                if index != expected {
                    self.drop_stream(&key);
                    return Err(ChatReceiveError::OutOfOrder {
                        stream_id: key.1,
                        expected,
                        got: index,
                    });
                }
                if held + content.len() > MAX_CHAT_BYTES {
                    self.drop_stream(&key);
                    return Err(ChatReceiveError::TooLarge { stream_id: key.1 });
                }
                let sender: usize = self
                    .open
                    .iter()
                    .filter(|((f, _), _)| *f == key.0)
                    .map(|(_, p)| p.bytes.len())
                    .sum();
                if sender + content.len() > MAX_BUFFERED_PER_SENDER
                    || self.buffered + content.len() > MAX_BUFFERED_TOTAL
                {
                    self.drop_stream(&key);
                    let (from, stream_id) = key;
                    return Err(ChatReceiveError::BufferFull { from, stream_id });
                }
                self.buffered += content.len();
                if let Some(partial) = self.open.get_mut(&key) {
                    partial.bytes.extend_from_slice(&content);
                    partial.next_index += 1;
                }
                Ok(None)
            }
            DataPayload::StreamTrailer { stream_id, reason } => {
                let key = (from, stream_id);
                let Some(partial) = self.drop_stream(&key) else {
                    return Ok(None);
                };
                let (from, stream_id) = key;
                if !reason.is_empty() {
                    return Err(ChatReceiveError::Aborted { stream_id, reason });
                }
                finish(
                    from,
                    stream_id,
                    partial.timestamp_ms,
                    partial.total_length,
                    partial.bytes,
                )
                .map(Some)
            }
            DataPayload::User {
                topic: Some(topic),
                payload,
            } if topic == LEGACY_CHAT_TOPIC => legacy(from, &payload),
            _ => Ok(None),
        }
    }

    /// A participant left: drop their unfinished streams.
    pub fn forget(&mut self, from: &ParticipantIdentity) {
        self.open.retain(|(f, _), _| f != from);
        self.buffered = self.open.values().map(|p| p.bytes.len()).sum();
    }

    /// Gives up the streams whose trailer is overdue at `now`, and says which.
    pub fn expire(&mut self, now: Instant) -> Vec<Expired> {
        let overdue: Vec<_> = self
            .open
            .iter()
            .filter(|(_, p)| now >= p.opened + CHAT_STREAM_TIMEOUT)
            .map(|(k, _)| k.clone())
            .collect();
        overdue
            .into_iter()
            .filter_map(|key| {
                self.drop_stream(&key)?;
                let (from, stream_id) = key;
                Some(Expired { from, stream_id })
            })
            .collect()
    }

    /// When the oldest open stream is due to be given up.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.open
            .values()
            .map(|p| p.opened + CHAT_STREAM_TIMEOUT)
            .min()
    }

    fn drop_stream(&mut self, key: &(ParticipantIdentity, String)) -> Option<Partial> {
        let partial = self.open.remove(key)?;
        self.buffered = self.buffered.saturating_sub(partial.bytes.len());
        Some(partial)
    }
}

fn finish(
    from: ParticipantIdentity,
    stream_id: String,
    timestamp_ms: i64,
    total_length: Option<u64>,
    bytes: Vec<u8>,
) -> Result<ChatMessage, ChatReceiveError> {
    if bytes.len() > MAX_CHAT_BYTES {
        return Err(ChatReceiveError::TooLarge { stream_id });
    }
    if let Some(expected) = total_length.filter(|&l| l != bytes.len() as u64) {
        return Err(ChatReceiveError::LengthMismatch {
            stream_id,
            expected,
            got: bytes.len() as u64,
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| ChatReceiveError::NotUtf8 {
        stream_id: stream_id.clone(),
    })?;
    Ok(ChatMessage {
        id: stream_id,
        from,
        timestamp_ms,
        text,
    })
}

/// `{"id", "timestamp", "message", "ignoreLegacy"?}`; skipped when `ignoreLegacy` is true
/// (the same message also arrives as a text stream).
fn legacy(
    from: ParticipantIdentity,
    payload: &[u8],
) -> Result<Option<ChatMessage>, ChatReceiveError> {
    let v: serde_json::Value =
        serde_json::from_slice(payload).map_err(|_| ChatReceiveError::LegacyMalformed)?;
    if v["ignoreLegacy"] == serde_json::Value::Bool(true) {
        return Ok(None);
    }
    let text = v["message"]
        .as_str()
        .ok_or(ChatReceiveError::LegacyMalformed)?;
    if text.len() > MAX_CHAT_BYTES {
        return Err(ChatReceiveError::TooLarge {
            stream_id: v["id"].as_str().unwrap_or_default().to_owned(),
        });
    }
    Ok(Some(ChatMessage {
        id: v["id"].as_str().unwrap_or_default().to_owned(),
        from,
        timestamp_ms: v["timestamp"].as_i64().unwrap_or_default(),
        text: text.to_owned(),
    }))
}

#[cfg(test)]
#[path = "chat_tests.rs"]
mod tests;
