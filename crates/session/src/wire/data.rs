//! Data packets (what travels on the `_reliable` and `_lossy` data channels), in domain terms.

use livekit_protocol as lk;
use lk::data_packet::Value;
use lk::data_stream;
use prost::Message as _;

use crate::ids::ParticipantIdentity;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DataError {
    #[error("the data packet is not a valid DataPacket: {0}")]
    Malformed(String),
}

/// One received data packet: who sent it and what it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DataInbound {
    /// Set by the server; empty for a hidden sender.
    pub from: ParticipantIdentity,
    /// The sender's sid, set by the server: sequences are per sender session (a sender
    /// that joined again starts over).
    pub from_sid: String,
    pub sequence: u32,
    pub payload: DataPayload,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DataPayload {
    StreamHeader(StreamHeader),
    StreamChunk {
        stream_id: String,
        index: u64,
        content: Vec<u8>,
    },
    StreamTrailer {
        stream_id: String,
        /// Non-empty: the sender aborted the stream.
        reason: String,
    },
    User {
        topic: Option<String>,
        payload: Vec<u8>,
    },
    /// RPC, transcription, metrics…: not used by this version.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamHeader {
    pub stream_id: String,
    pub timestamp_ms: i64,
    pub topic: String,
    pub total_length: Option<u64>,
    /// A text stream (as opposed to a byte stream).
    pub text: bool,
    /// Data streams v2: the whole content in the header.
    pub inline_content: Option<Vec<u8>>,
    /// Non-zero: compressed (only deflate-raw exists); not supported here.
    pub compression: i32,
}

pub(crate) fn decode(bytes: &[u8]) -> Result<DataInbound, DataError> {
    let p = lk::DataPacket::decode(bytes).map_err(|e| DataError::Malformed(e.to_string()))?;
    let payload = match p.value {
        Some(Value::StreamHeader(h)) => DataPayload::StreamHeader(StreamHeader {
            text: matches!(
                h.content_header,
                Some(data_stream::header::ContentHeader::TextHeader(_))
            ),
            stream_id: h.stream_id,
            timestamp_ms: h.timestamp,
            topic: h.topic,
            total_length: h.total_length,
            inline_content: h.inline_content,
            compression: h.compression,
        }),
        Some(Value::StreamChunk(c)) => DataPayload::StreamChunk {
            stream_id: c.stream_id,
            index: c.chunk_index,
            content: c.content,
        },
        Some(Value::StreamTrailer(t)) => DataPayload::StreamTrailer {
            stream_id: t.stream_id,
            reason: t.reason,
        },
        Some(Value::User(u)) => DataPayload::User {
            topic: u.topic,
            payload: u.payload,
        },
        _ => DataPayload::Other,
    };
    Ok(DataInbound {
        from: ParticipantIdentity(p.participant_identity),
        from_sid: p.participant_sid,
        sequence: p.sequence,
        payload,
    })
}

/// Test helper: a packet to everyone.
#[cfg(test)]
pub(crate) fn encode(sequence: u32, payload: DataPayload) -> Vec<u8> {
    encode_to(sequence, payload, Vec::new())
}

/// A reliable packet carrying `payload`, numbered `sequence`, to the identities `to`
/// (empty: everyone).
pub(crate) fn encode_to(sequence: u32, payload: DataPayload, to: Vec<String>) -> Vec<u8> {
    let value = match payload {
        DataPayload::StreamHeader(h) => Value::StreamHeader(data_stream::Header {
            stream_id: h.stream_id,
            timestamp: h.timestamp_ms,
            topic: h.topic,
            mime_type: "text/plain".into(),
            total_length: h.total_length,
            content_header: Some(data_stream::header::ContentHeader::TextHeader(
                data_stream::TextHeader {
                    operation_type: data_stream::OperationType::Create as i32,
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        DataPayload::StreamChunk {
            stream_id,
            index,
            content,
        } => Value::StreamChunk(data_stream::Chunk {
            stream_id,
            chunk_index: index,
            content,
            ..Default::default()
        }),
        DataPayload::StreamTrailer { stream_id, reason } => {
            Value::StreamTrailer(data_stream::Trailer {
                stream_id,
                reason,
                ..Default::default()
            })
        }
        DataPayload::User { topic, payload } => Value::User(lk::UserPacket {
            payload,
            topic,
            ..Default::default()
        }),
        DataPayload::Other => unreachable!("never sent"),
    };
    lk::DataPacket {
        sequence,
        destination_identities: to,
        value: Some(value),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Test helper: a packet as the server forwards it, with the sender's identity set.
#[cfg(test)]
pub(crate) fn forwarded(from: &str, packet: &[u8]) -> Vec<u8> {
    let mut p = lk::DataPacket::decode(packet).unwrap();
    p.participant_identity = from.into();
    p.encode_to_vec()
}
