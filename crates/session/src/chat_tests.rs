use std::sync::OnceLock;

use super::*;
use crate::wire::data::{self, DataInbound};

/// The tests' one instant (the assembler only compares times it is handed).
fn now() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fn send(text: &str, id: &str) -> Vec<Vec<u8>> {
    outgoing(text, id, 1_790_000_000_000)
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, p)| data::encode(i as u32 + 1, p))
        .collect()
}

fn receive(
    a: &mut ChatAssembler,
    from: &str,
    packets: &[Vec<u8>],
) -> Vec<Result<Option<ChatMessage>, ChatReceiveError>> {
    packets
        .iter()
        .map(|p| a.handle(now(), data::decode(&data::forwarded(from, p)).unwrap()))
        .collect()
}

fn messages(results: Vec<Result<Option<ChatMessage>, ChatReceiveError>>) -> Vec<ChatMessage> {
    results.into_iter().filter_map(Result::unwrap).collect()
}

#[test]
fn a_message_survives_the_round_trip_once() {
    let mut a = ChatAssembler::default();
    let got = messages(receive(&mut a, "2", &send("Bonjour à tous 👋", "s1")));
    assert_eq!(
        got,
        vec![ChatMessage {
            id: "s1".into(),
            from: ParticipantIdentity("2".into()),
            timestamp_ms: 1_790_000_000_000,
            text: "Bonjour à tous 👋".into()
        }],
        "the legacy copy is marked ignoreLegacy and not shown twice"
    );
}

#[test]
fn long_messages_are_cut_on_character_boundaries() {
    let text = "é".repeat(8000); // 16 000 bytes, two chunks, the cut falls mid-way
    let packets = outgoing(&text, "s", 0).unwrap();
    let chunks: Vec<&Vec<u8>> = packets
        .iter()
        .filter_map(|p| match p {
            DataPayload::StreamChunk { content, .. } => Some(content),
            _ => None,
        })
        .collect();
    assert_eq!(chunks.len(), 2);
    for c in &chunks {
        assert!(c.len() <= 15_000);
        assert!(std::str::from_utf8(c).is_ok(), "each chunk decodes alone");
    }
    let mut a = ChatAssembler::default();
    assert_eq!(
        messages(receive(&mut a, "2", &send(&text, "s")))[0].text,
        text
    );
}

#[test]
fn the_size_limit_is_a_clear_error() {
    assert_eq!(outgoing("   ", "s", 0), Err(ChatError::Empty));
    let big = "x".repeat(MAX_CHAT_BYTES + 1);
    assert_eq!(
        outgoing(&big, "s", 0),
        Err(ChatError::TooLong {
            len: MAX_CHAT_BYTES + 1,
            max: MAX_CHAT_BYTES
        })
    );
    assert!(outgoing(&"x".repeat(MAX_CHAT_BYTES), "s", 0).is_ok());
}

fn inbound(from: &str, payload: DataPayload) -> DataInbound {
    DataInbound {
        from: ParticipantIdentity(from.into()),
        from_sid: String::new(),
        sequence: 0,
        payload,
    }
}

fn header(id: &str, total: Option<u64>) -> DataPayload {
    DataPayload::StreamHeader(data::StreamHeader {
        stream_id: id.into(),
        timestamp_ms: 5,
        topic: CHAT_TOPIC.into(),
        total_length: total,
        text: true,
        inline_content: None,
        compression: 0,
    })
}

fn chunk(id: &str, index: u64, content: &[u8]) -> DataPayload {
    DataPayload::StreamChunk {
        stream_id: id.into(),
        index,
        content: content.to_vec(),
    }
}

fn trailer(id: &str, reason: &str) -> DataPayload {
    DataPayload::StreamTrailer {
        stream_id: id.into(),
        reason: reason.into(),
    }
}

#[test]
fn broken_streams_are_typed_errors() {
    let mut a = ChatAssembler::default();
    a.handle(now(), inbound("2", header("s", Some(3)))).unwrap();
    let err = a
        .handle(now(), inbound("2", chunk("s", 1, b"abc")))
        .unwrap_err();
    assert!(matches!(
        err,
        ChatReceiveError::OutOfOrder {
            expected: 0,
            got: 1,
            ..
        }
    ));

    a.handle(now(), inbound("2", header("t", Some(5)))).unwrap();
    a.handle(now(), inbound("2", chunk("t", 0, b"abc")))
        .unwrap();
    let err = a.handle(now(), inbound("2", trailer("t", ""))).unwrap_err();
    assert!(matches!(
        err,
        ChatReceiveError::LengthMismatch {
            expected: 5,
            got: 3,
            ..
        }
    ));

    a.handle(now(), inbound("2", header("u", None))).unwrap();
    a.handle(now(), inbound("2", chunk("u", 0, b"\xff\xfe")))
        .unwrap();
    assert!(matches!(
        a.handle(now(), inbound("2", trailer("u", ""))),
        Err(ChatReceiveError::NotUtf8 { .. })
    ));

    a.handle(now(), inbound("2", header("v", None))).unwrap();
    let err = a
        .handle(now(), inbound("2", trailer("v", "cancelled")))
        .unwrap_err();
    assert!(matches!(err, ChatReceiveError::Aborted { reason, .. } if reason == "cancelled"));

    let err = a
        .handle(now(), inbound("2", header("w", Some(1 << 40))))
        .unwrap_err();
    assert!(matches!(err, ChatReceiveError::TooLarge { .. }));

    a.handle(now(), inbound("2", header("x", None))).unwrap();
    a.handle(
        now(),
        inbound("2", chunk("x", 0, &vec![b'a'; MAX_CHAT_BYTES])),
    )
    .unwrap();
    let err = a
        .handle(now(), inbound("2", chunk("x", 1, b"a")))
        .unwrap_err();
    assert!(matches!(err, ChatReceiveError::TooLarge { .. }));

    // Chunks and trailers of unknown streams (other topics, files) are not chat.
    assert_eq!(
        a.handle(now(), inbound("2", chunk("zz", 0, b"a"))),
        Ok(None)
    );
    assert_eq!(a.handle(now(), inbound("2", trailer("zz", ""))), Ok(None));
    assert!(a.open.is_empty(), "every failed stream was dropped");
}

#[test]
fn senders_cannot_hoard_open_streams() {
    let mut a = ChatAssembler::default();
    for i in 0..MAX_OPEN_STREAMS_PER_SENDER {
        a.handle(now(), inbound("2", header(&format!("s{i}"), None)))
            .unwrap();
    }
    let err = a
        .handle(now(), inbound("2", header("one-more", None)))
        .unwrap_err();
    assert_eq!(
        err,
        ChatReceiveError::TooManyStreams(ParticipantIdentity("2".into()))
    );
    // Others are unaffected; a leaving sender's streams are dropped.
    a.handle(now(), inbound("3", header("s0", None))).unwrap();
    a.forget(&ParticipantIdentity("2".into()));
    assert_eq!(a.open.len(), 1);
}

#[test]
fn interleaved_streams_from_two_senders_stay_apart() {
    let mut a = ChatAssembler::default();
    a.handle(now(), inbound("2", header("s", None))).unwrap();
    a.handle(now(), inbound("3", header("s", None))).unwrap();
    a.handle(now(), inbound("3", chunk("s", 0, b"from 3")))
        .unwrap();
    a.handle(now(), inbound("2", chunk("s", 0, b"from 2")))
        .unwrap();
    let m2 = a
        .handle(now(), inbound("2", trailer("s", "")))
        .unwrap()
        .unwrap();
    let m3 = a
        .handle(now(), inbound("3", trailer("s", "")))
        .unwrap()
        .unwrap();
    assert_eq!((m2.text.as_str(), m3.text.as_str()), ("from 2", "from 3"));
}

#[test]
fn inline_and_legacy_forms_are_accepted() {
    let mut a = ChatAssembler::default();
    let inline = DataPayload::StreamHeader(data::StreamHeader {
        inline_content: Some("d'un coup".as_bytes().to_vec()),
        ..match header("i", None) {
            DataPayload::StreamHeader(h) => h,
            _ => unreachable!(),
        }
    });
    assert_eq!(
        a.handle(now(), inbound("2", inline)).unwrap().unwrap().text,
        "d'un coup"
    );

    let legacy = |json: &str| DataPayload::User {
        topic: Some(LEGACY_CHAT_TOPIC.into()),
        payload: json.as_bytes().to_vec(),
    };
    let m = a
        .handle(
            now(),
            inbound(
                "2",
                legacy(r#"{"id":"L1","timestamp":7,"message":"<b>old</b> client"}"#),
            ),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        (m.id.as_str(), m.timestamp_ms, m.text.as_str()),
        ("L1", 7, "<b>old</b> client")
    );
    assert_eq!(
        a.handle(
            now(),
            inbound(
                "2",
                legacy(r#"{"id":"L2","message":"x","ignoreLegacy":true}"#)
            )
        ),
        Ok(None)
    );
    assert_eq!(
        a.handle(now(), inbound("2", legacy("not json"))),
        Err(ChatReceiveError::LegacyMalformed)
    );
    assert_eq!(
        a.handle(now(), inbound("2", legacy(r#"{"id":"L3"}"#))),
        Err(ChatReceiveError::LegacyMalformed)
    );
    // Other topics are not chat.
    let other = DataPayload::User {
        topic: Some("game".into()),
        payload: b"{}".to_vec(),
    };
    assert_eq!(a.handle(now(), inbound("2", other)), Ok(None));
}

/// A pasted page (256 KiB, as LiveKit's SDKs carry it) goes out in chunks and comes back
/// whole; the one-packet legacy copy is left out for it, as it would not fit a packet.
#[test]
fn a_message_of_the_largest_size_goes_through() {
    let text = "Ligne de notes, avec accents é à ü.\n".repeat(MAX_CHAT_BYTES / 40);
    assert!(text.len() > 200 * 1024 && text.len() <= MAX_CHAT_BYTES);
    let packets = outgoing(&text, "big", 0).unwrap();
    assert!(packets.len() > 16);
    assert!(
        !packets
            .iter()
            .any(|p| matches!(p, DataPayload::User { .. })),
        "no legacy copy"
    );
    for p in send(&text, "big") {
        assert!(p.len() < 16 * 1024, "every packet fits: {}", p.len());
    }
    let mut a = ChatAssembler::default();
    assert_eq!(
        messages(receive(&mut a, "2", &send(&text, "big")))[0].text,
        text
    );
    assert_eq!(a.buffered, 0, "nothing held once delivered");
    // Short messages keep their legacy copy for old clients.
    assert!(
        outgoing("salut", "s", 0)
            .unwrap()
            .iter()
            .any(|p| matches!(p, DataPayload::User { .. }))
    );
}

/// A sender cut off mid-message (8 headers, no trailers) is not silenced for good: the
/// streams are given up after the timeout, said so, and the sender's next message
/// arrives.
#[test]
fn unfinished_streams_expire_and_free_their_sender() {
    let mut a = ChatAssembler::default();
    for i in 0..MAX_OPEN_STREAMS_PER_SENDER {
        a.handle(now(), inbound("2", header(&format!("cut{i}"), None)))
            .unwrap();
        a.handle(now(), inbound("2", chunk(&format!("cut{i}"), 0, b"half a")))
            .unwrap();
    }
    assert!(a.handle(now(), inbound("2", header("next", None))).is_err());
    assert_eq!(a.next_expiry(), Some(now() + CHAT_STREAM_TIMEOUT));
    let early = now() + CHAT_STREAM_TIMEOUT - Duration::from_millis(1);
    assert!(a.expire(early).is_empty());
    let later = now() + CHAT_STREAM_TIMEOUT;
    let mut lost: Vec<String> = a.expire(later).into_iter().map(|e| e.stream_id).collect();
    lost.sort();
    assert_eq!(lost.len(), MAX_OPEN_STREAMS_PER_SENDER);
    assert_eq!(lost[0], "cut0");
    assert_eq!((a.buffered, a.next_expiry()), (0, None));
    let got = messages(
        send("me revoilà", "next")
            .iter()
            .map(|p| a.handle(later, data::decode(&data::forwarded("2", p)).unwrap()))
            .collect(),
    );
    assert_eq!(got[0].text, "me revoilà");
}

/// One sender's unfinished messages together are capped (each may be the largest size,
/// not eight of them at once), and so is everyone's.
#[test]
fn what_unfinished_messages_hold_is_capped() {
    let mut a = ChatAssembler::default();
    let piece = vec![b'a'; 15_000];
    let fill = |a: &mut ChatAssembler, from: &str, id: &str| -> Result<(), ChatReceiveError> {
        a.handle(now(), inbound(from, header(id, None)))?;
        for i in 0..(MAX_CHAT_BYTES / piece.len()) as u64 {
            a.handle(now(), inbound(from, chunk(id, i, &piece)))?;
        }
        Ok(())
    };
    fill(&mut a, "2", "a").unwrap();
    let err = fill(&mut a, "2", "b").and_then(|_| fill(&mut a, "2", "c"));
    assert!(
        matches!(err, Err(ChatReceiveError::BufferFull { .. })),
        "{err:?}"
    );
    assert!(a.buffered <= MAX_BUFFERED_PER_SENDER);
    // Others still get through, until the room-wide cap.
    let mut refused = 0;
    for sender in 3..40 {
        if fill(&mut a, &sender.to_string(), "x").is_err() {
            refused += 1;
        }
    }
    assert!(refused > 0, "the room-wide cap holds");
    assert!(a.buffered <= MAX_BUFFERED_TOTAL);
}
