//! A remote microphone as an audio device pulls it. The network side pushes packets as
//! they arrive (any thread; never blocks); the device's clock pulls one 20 ms frame per
//! tick, and the jitter buffer and the Opus decoder run there, on the audio thread, as
//! libwebrtc runs NetEq under the device callback. Playout then keeps the device's time:
//! a network task that wakes late delays a packet (which the jitter buffer absorbs), not
//! the audio.

use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

use crate::audio::{AudioFrame, FRAME_SAMPLES, SAMPLE_RATE};
use crate::jitter::{JitterBuffer, JitterStats, Playout};
use crate::opus_codec::{CodecError, OpusDecoder};
use crate::resample::MonoResampler;

/// Packets waiting for the next pull, at most (2.56 s of 20 ms frames, each with two RED
/// copies): more means the device stopped pulling.
const QUEUE: usize = 384;

struct Arrival {
    at: Instant,
    sequence: u16,
    timestamp: u32,
    payload: Bytes,
    /// A copy of an earlier frame (RED), not a packet.
    copy: bool,
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
            drift: MonoResampler::new(SAMPLE_RATE, SAMPLE_RATE, FRAME_SAMPLES, true)
                .map_err(|e| CodecError::Setup(e.to_string()))?,
            decoded: [0.0; DECODED],
            decoded_len: 0,
            pcm: [0; FRAME_SAMPLES],
            resampled: [0.0; FRAME_SAMPLES],
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
        self.send(Arrival {
            at,
            sequence,
            timestamp,
            payload,
            copy: false,
        })
    }

    /// A copy of an earlier frame, carried by a packet that arrived at `at` (RED).
    pub fn push_copy(&self, at: Instant, sequence: u16, payload: Bytes) -> Result<(), QueueFull> {
        self.send(Arrival {
            at,
            sequence,
            timestamp: 0,
            payload,
            copy: true,
        })
    }

    fn send(&self, arrival: Arrival) -> Result<(), QueueFull> {
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
    /// How much faster (positive) than the output's clock the sender's clock runs, as the
    /// drift follower measured it and now compensates.
    pub sender_drift_ppm: i32,
    /// Audio queued ahead of playout (whole packets).
    pub queued: Duration,
}

/// The device side: pull a frame per 20 ms tick of the output's clock.
pub struct RemoteAudio {
    rx: Receiver<Arrival>,
    buffer: JitterBuffer,
    decoder: OpusDecoder,
    stats: PlayoutStats,
    /// The feed is gone: play what is buffered, then say `Ended`.
    ended: bool,
    /// Follows the drift between the sender's clock and the output's: plays a few hundred
    /// ppm faster or slower instead of dropping or repeating whole frames.
    drift: MonoResampler,
    /// Decoded audio not yet through `drift` (at most two frames).
    decoded: [f32; DECODED],
    decoded_len: usize,
    pcm: AudioFrame,
    resampled: [f32; FRAME_SAMPLES],
}

/// Room for what the drift follower may need at once: its largest input plus a frame.
const DECODED: usize = 3 * FRAME_SAMPLES;
/// Speed correction per ms of delay beyond the target (10 ms → 0.1 %): follows any real
/// clock drift (±300 ppm leaves ~3 ms), inaudible (0.1 % is 2 cents of pitch).
const DRIFT_PPM_PER_MS: f64 = 100.0;
const MAX_DRIFT_PPM: f64 = 2_000.0;
/// Delay kept beyond the jitter buffer's target. A packet is taken at the pull before the
/// one its first sample plays in, up to a pull (20 ms) early, and where in that window
/// slides slowly while drift is followed; half a pull keeps it safe without a full
/// pull's latency (the target itself has 10 ms of slack).
const PULL_SLACK: Duration = Duration::from_millis(10);

impl RemoteAudio {
    /// The output's clock ticked: `now` is when the first sample written to `out` will
    /// play (the device's clock, not the callback's time). The next 20 ms into `out`. No
    /// allocation, no lock.
    pub fn pull(&mut self, now: Instant, out: &mut AudioFrame) -> Pulled {
        while !self.ended {
            match self.rx.try_recv() {
                Ok(a) if a.copy => self.buffer.push_copy(a.at, a.sequence, a.payload),
                Ok(a) => self.buffer.push(a.at, a.sequence, a.timestamp, a.payload),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.ended = true,
            }
        }
        // Before asking how much input the next chunk takes: a new ratio changes it.
        if let Some(error) = self.buffer.take_delay_error() {
            let error = error - PULL_SLACK.as_secs_f64();
            let ppm = (-error * 1_000.0 * DRIFT_PPM_PER_MS).clamp(-MAX_DRIFT_PPM, MAX_DRIFT_PPM);
            self.drift.set_drift(ppm);
            self.stats.sender_drift_ppm = -ppm as i32;
        }
        let need = self.drift.needed();
        while self.decoded_len < need {
            // When this frame's first sample will play: after what is already decoded.
            let ahead = Duration::from_micros(self.decoded_len as u64 * 1_000_000 / 48_000);
            if self.ended && self.buffer.queued().is_zero() {
                if self.decoded_len == 0 {
                    out.fill(0);
                    return Pulled::Ended;
                }
                break; // the tail: `process` pads it with silence
            }
            if !self.decode_next(now + ahead) {
                out.fill(0);
                return Pulled::Silence;
            }
        }
        let used = self
            .drift
            .process(&self.decoded[..self.decoded_len], &mut self.resampled)
            .min(self.decoded_len);
        self.decoded.copy_within(used..self.decoded_len, 0);
        self.decoded_len -= used;
        for (o, &s) in out.iter_mut().zip(&self.resampled) {
            *o = (s * 32_768.0).clamp(-32_768.0, 32_767.0) as i16;
        }
        Pulled::Audio
    }

    /// Decodes the next frame (played at `at`) into `decoded`. False while buffering.
    fn decode_next(&mut self, at: Instant) -> bool {
        let decoded = match self.buffer.pop(at) {
            Playout::Buffering => return false,
            Playout::Frame(p) => self.decoder.decode(&p, &mut self.pcm),
            Playout::Recover { next } => self.decoder.decode_fec(&next, &mut self.pcm),
            Playout::Conceal => self.decoder.conceal(&mut self.pcm),
        };
        if decoded.is_err() {
            self.stats.decode_errors += 1;
            if self.decoder.conceal(&mut self.pcm).is_err() {
                self.pcm.fill(0);
            }
        }
        let room = &mut self.decoded[self.decoded_len..self.decoded_len + FRAME_SAMPLES];
        for (d, &s) in room.iter_mut().zip(&self.pcm) {
            *d = f32::from(s) / 32_768.0;
        }
        self.decoded_len += FRAME_SAMPLES;
        true
    }

    pub fn stats(&self) -> PlayoutStats {
        PlayoutStats {
            jitter: self.buffer.stats(),
            queued: self.buffer.queued(),
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
        let tail: Vec<Pulled> = (0..5).map(|_| audio.pull(later, &mut out)).collect();
        let audible = tail.iter().take_while(|p| **p == Pulled::Audio).count();
        // Packets 99 and 100, and the drift follower's last few samples.
        assert!((2..=3).contains(&audible), "{tail:?}");
        assert!(
            tail[audible..].iter().all(|p| *p == Pulled::Ended),
            "{tail:?}"
        );
    }

    /// A sender whose clock runs `ppm` fast (or slow) against the output's, for `seconds`
    /// of simulated time, sending a steady 440 Hz tone (8.8 cycles per packet, so a dropped
    /// or repeated frame is a phase jump). Returns the largest queue seen after the first
    /// ten seconds, the largest discontinuity and the stats. A discontinuity is measured
    /// two ways, the larger kept: a sample that breaks the sine's recurrence (relative to
    /// the amplitude), and the tone's phase jumping between two frames (in cycles; Opus
    /// cross-fades a dropped frame over 2.5 ms, which the first measure alone misses).
    fn drift(ppm: f64, seconds: u64) -> (Duration, f64, PlayoutStats) {
        let mut enc = OpusEncoder::new().unwrap();
        let mut packets = Vec::new();
        let mut pcm = [0i16; FRAME_SAMPLES];
        for k in 0..100usize {
            for (i, s) in pcm.iter_mut().enumerate() {
                let t = (k * FRAME_SAMPLES + i) as f64 / 48_000.0;
                *s = (8_000.0 * (std::f64::consts::TAU * 440.0 * t).sin()) as i16;
            }
            let mut packet = [0u8; MAX_PACKET];
            let n = enc.encode(&pcm, &mut packet).unwrap();
            packets.push(Bytes::copy_from_slice(&packet[..n]));
        }
        // 5 packets are 44 whole cycles: looping the encoder's steady state is seamless.
        let cycle = &packets[95..100];
        let (feed, mut audio) = remote_audio().unwrap();
        let t0 = Instant::now();
        let send_period = Duration::from_secs_f64(0.020 / (1.0 + ppm * 1e-6));
        let (mut sent, mut pulled) = (0u32, 0u32);
        let (mut max_queue, mut max_click) = (Duration::ZERO, 0f64);
        let (mut x1, mut x2, mut n, mut last_phase) = (0f64, 0f64, 0u64, None::<f64>);
        let w = std::f64::consts::TAU * 440.0 / 48_000.0;
        let mut out = [0i16; FRAME_SAMPLES];
        while pulled < (seconds * 50) as u32 {
            let send_at = t0 + send_period * sent;
            // A little network jitter, deterministic: 0..3 ms.
            let arrive = send_at + Duration::from_micros(u64::from(sent * 7919 % 3000));
            let pull_at = t0 + Duration::from_millis(20) * pulled + Duration::from_millis(40);
            if arrive <= pull_at {
                let payload = cycle[sent as usize % cycle.len()].clone();
                feed.push(arrive, sent as u16, sent * 960, payload).unwrap();
                sent += 1;
                continue;
            }
            assert_eq!(
                audio.pull(pull_at, &mut out),
                Pulled::Audio,
                "pull {pulled}"
            );
            pulled += 1;
            let settled = pulled > 500;
            if settled {
                max_queue = max_queue.max(audio.stats().queued);
            }
            let (mut i, mut q) = (0f64, 0f64);
            for &s in &out {
                let x = f64::from(s) / 8_000.0;
                if settled {
                    max_click = max_click.max((x - (2.0 * w.cos() * x1 - x2)).abs());
                }
                (x2, x1) = (x1, x);
                let t = w * (n % 48_000_000) as f64;
                (i, q) = (i + x * t.cos(), q + x * t.sin());
                n += 1;
            }
            let phase = q.atan2(i) / std::f64::consts::TAU;
            if let (true, Some(last)) = (settled, last_phase) {
                let jump = (phase - last + 1.5).rem_euclid(1.0) - 0.5;
                max_click = max_click.max(jump.abs());
            }
            last_phase = Some(phase);
        }
        (max_queue, max_click, audio.stats())
    }

    #[test]
    fn clock_drift_of_300_ppm_either_way_over_an_hour_neither_grows_delay_nor_clicks() {
        let runs: Vec<_> = [300.0, -300.0]
            .into_iter()
            .map(|ppm| std::thread::spawn(move || (ppm, drift(ppm, 3600))))
            .collect();
        for run in runs {
            let (ppm, (max_queue, max_click, stats)) = run.join().unwrap();
            eprintln!("{ppm:+} ppm: max queue {max_queue:?}, max click {max_click:.3}, {stats:?}");
            // Without the follower, +300 ppm piles up 1.08 s over the hour (trimmed a frame
            // at a time) and −300 ppm runs dry every 67 s.
            assert!(
                max_queue <= Duration::from_millis(80),
                "{ppm}: {max_queue:?}"
            );
            assert_eq!(stats.jitter.trimmed, 0, "{ppm}: whole frames dropped");
            assert_eq!(stats.jitter.concealed, 0, "{ppm}: frames concealed");
            // A dropped or repeated frame of this tone is a phase jump of 0.2 cycle or a
            // sample off by up to 1.0; Opus's coding noise on it is ~0.002, following
            // the controller bends the phase by at most 0.018 cycle a frame (2000 ppm).
            assert!(max_click < 0.05, "{ppm}: discontinuity of {max_click}");
            assert!(
                (stats.sender_drift_ppm - ppm as i32).abs() < 200,
                "{ppm}: {stats:?}"
            );
        }
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
