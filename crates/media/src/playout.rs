//! A remote microphone as an audio device pulls it. The network side pushes packets as
//! they arrive (any thread; never blocks); the device's clock pulls one 20 ms frame per
//! tick, and the jitter buffer and the Opus decoder run there, on the audio thread, as
//! libwebrtc runs NetEq under the device callback. Playout then keeps the device's time:
//! a network task that wakes late delays a packet (which the jitter buffer absorbs), not
//! the audio.

use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

use crate::audio::AudioFrame;
use crate::jitter::{JitterBuffer, JitterStats, Playout};
use crate::opus_codec::{CodecError, OpusDecoder};

/// Packets waiting for the next pull, at most (2.56 s of 20 ms frames): more means the
/// device stopped pulling.
const QUEUE: usize = 128;

struct Arrival {
    at: Instant,
    sequence: u16,
    timestamp: u32,
    payload: Bytes,
}

/// A remote microphone's two ends: the network side's and the device side's.
pub fn remote_audio() -> Result<(PacketFeed, RemoteAudio), CodecError> {
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let decoder = OpusDecoder::new()?;
    Ok((
        PacketFeed { tx },
        RemoteAudio {
            rx,
            buffer: JitterBuffer::new(),
            decoder,
            stats: PlayoutStats::default(),
            ended: false,
        },
    ))
}

/// The device stopped pulling and the queue is full: the packet was not kept.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("the audio output is not pulling: packet dropped")]
pub struct QueueFull;

/// The network side. Dropping it ends the stream (the device side sees `Ended`).
pub struct PacketFeed {
    tx: Sender<Arrival>,
}

impl PacketFeed {
    /// An RTP packet of the track arrived at `at`.
    pub fn push(
        &self,
        at: Instant,
        sequence: u16,
        timestamp: u32,
        payload: Bytes,
    ) -> Result<(), QueueFull> {
        let arrival = Arrival {
            at,
            sequence,
            timestamp,
            payload,
        };
        match self.tx.try_send(arrival) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => Ok(()), // nobody listens any more
            Err(TrySendError::Full(_)) => Err(QueueFull),
        }
    }
}

/// What a pull produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pulled {
    /// `out` holds the next 20 ms (received, recovered from FEC, or concealed).
    Audio,
    /// Nothing to play yet (the buffer is filling up to its target delay): `out` is silence.
    Silence,
    /// The track ended: stop pulling.
    Ended,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PlayoutStats {
    pub jitter: JitterStats,
    /// Packets the decoder rejected (concealed instead).
    pub decode_errors: u64,
}

/// The device side: pull a frame per 20 ms tick of the output's clock.
pub struct RemoteAudio {
    rx: Receiver<Arrival>,
    buffer: JitterBuffer,
    decoder: OpusDecoder,
    stats: PlayoutStats,
    /// The feed is gone: play what is buffered, then say `Ended`.
    ended: bool,
}

impl RemoteAudio {
    /// The output's clock ticked at `now`: the next 20 ms into `out`. No allocation, no lock.
    pub fn pull(&mut self, now: Instant, out: &mut AudioFrame) -> Pulled {
        while !self.ended {
            match self.rx.try_recv() {
                Ok(a) => self.buffer.push(a.at, a.sequence, a.timestamp, a.payload),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.ended = true,
            }
        }
        if self.ended && self.buffer.queued().is_zero() {
            out.fill(0);
            return Pulled::Ended;
        }
        let decoded = match self.buffer.pop(now) {
            Playout::Buffering => {
                out.fill(0);
                return Pulled::Silence;
            }
            Playout::Frame(p) => self.decoder.decode(&p, out),
            Playout::Recover { next } => self.decoder.decode_fec(&next, out),
            Playout::Conceal => self.decoder.conceal(out),
        };
        if decoded.is_err() {
            self.stats.decode_errors += 1;
            if self.decoder.conceal(out).is_err() {
                out.fill(0);
            }
        }
        Pulled::Audio
    }

    pub fn stats(&self) -> PlayoutStats {
        PlayoutStats {
            jitter: self.buffer.stats(),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FRAME_SAMPLES;
    use crate::opus_codec::{MAX_PACKET, OpusEncoder};
    use crate::synthetic::{PulseAnalyser, ToneBursts};
    use std::time::Duration;

    #[test]
    fn packets_pushed_on_one_side_play_on_the_other_until_the_feed_ends() {
        let (feed, mut audio) = remote_audio().unwrap();
        let mut enc = OpusEncoder::new().unwrap();
        let source = ToneBursts::new(440.0);
        let (mut pcm, mut out) = ([0i16; FRAME_SAMPLES], [0i16; FRAME_SAMPLES]);
        let mut analyser = PulseAnalyser::default();
        let t0 = Instant::now();
        let unix0 = 1_790_000_000_000_000u64;
        let mut pulled_audio = 0;
        for k in 0..100u32 {
            let at = t0 + Duration::from_millis(20) * k;
            source.fill(unix0 + u64::from(k + 1) * 20_000, &mut pcm);
            let mut packet = [0u8; MAX_PACKET];
            let n = enc.encode(&pcm, &mut packet).unwrap();
            let payload = Bytes::copy_from_slice(&packet[..n]);
            feed.push(at, k as u16, k * 960, payload).unwrap();
            match audio.pull(at + Duration::from_millis(1), &mut out) {
                Pulled::Audio => {
                    pulled_audio += 1;
                    analyser.feed(&out, unix0 + u64::from(k) * 20_000);
                }
                Pulled::Silence => assert_eq!(out, [0; FRAME_SAMPLES]),
                Pulled::Ended => panic!("not ended"),
            }
        }
        assert!(pulled_audio >= 98, "{pulled_audio}");
        assert!(analyser.frequencies_hz.len() >= 3, "{analyser:?}");
        assert!(crate::synthetic::mostly_at(&analyser.frequencies_hz, 440.0));
        assert_eq!(audio.stats().jitter.received, 100);
        // The last packet is still buffered when the track ends: it plays, then the end.
        feed.push(
            t0 + Duration::from_secs(2),
            100,
            100 * 960,
            Bytes::from_static(&[0xf8]),
        )
        .unwrap();
        drop(feed);
        let later = t0 + Duration::from_secs(3);
        let tail: Vec<Pulled> = (0..4).map(|_| audio.pull(later, &mut out)).collect();
        assert_eq!(
            tail,
            [Pulled::Audio, Pulled::Audio, Pulled::Ended, Pulled::Ended],
            "packets 99 and 100 were still buffered"
        );
    }

    #[test]
    fn a_device_that_stopped_pulling_fills_the_queue_and_says_so() {
        let (feed, audio) = remote_audio().unwrap();
        let now = Instant::now();
        for k in 0..QUEUE as u16 {
            feed.push(now, k, 0, Bytes::from_static(&[0xf8])).unwrap();
        }
        assert_eq!(
            feed.push(now, 999, 0, Bytes::from_static(&[0xf8])),
            Err(QueueFull)
        );
        drop(audio);
        assert_eq!(
            feed.push(now, 1000, 0, Bytes::from_static(&[0xf8])),
            Ok(()),
            "nobody listens: nothing to report"
        );
    }
}
