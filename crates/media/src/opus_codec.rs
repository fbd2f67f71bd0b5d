//! Opus as WebRTC uses it for speech: 48 kHz mono, 20 ms frames, in-band FEC, DTX.

use crate::audio::{AudioFrame, FRAME_SAMPLES, SAMPLE_RATE};

/// Largest packet we produce (RFC 6716 allows 1275 bytes per frame).
pub const MAX_PACKET: usize = 1275;

/// Shared by every codec of this crate; the message names the codec.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CodecError {
    #[error("the codec could not start: {0}")]
    Setup(String),
    #[error("could not encode: {0}")]
    Encode(String),
    #[error("a packet could not be decoded: {0}")]
    Decode(String),
    /// A video stream announced a picture over the decoder's limit (either way round):
    /// refused before the codec allocates for it.
    #[error(
        "a {width}x{height} picture is over the decoder's {max_width}x{max_height} limit (either way round)"
    )]
    FrameTooLarge {
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
    },
}

pub struct OpusEncoder {
    inner: opus::Encoder,
}

impl OpusEncoder {
    pub fn new() -> Result<Self, CodecError> {
        let setup = |e: opus::Error| CodecError::Setup(format!("Opus: {e}"));
        let mut inner =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
                .map_err(setup)?;
        inner
            .set_bitrate(opus::Bitrate::Bits(32_000))
            .map_err(setup)?;
        // FEC only helps if the encoder expects some loss.
        inner.set_inband_fec(true).map_err(setup)?;
        inner.set_packet_loss_perc(10).map_err(setup)?;
        inner.set_dtx(true).map_err(setup)?;
        Ok(Self { inner })
    }

    /// Encodes 20 ms into `out`; returns the packet's length.
    pub fn encode(
        &mut self,
        pcm: &AudioFrame,
        out: &mut [u8; MAX_PACKET],
    ) -> Result<usize, CodecError> {
        self.inner
            .encode(pcm, out)
            .map_err(|e| CodecError::Encode(format!("Opus: {e}")))
    }
}

pub struct OpusDecoder {
    inner: opus::Decoder,
}

impl OpusDecoder {
    pub fn new() -> Result<Self, CodecError> {
        let inner = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)
            .map_err(|e| CodecError::Setup(format!("Opus: {e}")))?;
        Ok(Self { inner })
    }

    /// Decodes one packet (stereo packets are downmixed by libopus).
    pub fn decode(&mut self, packet: &[u8], out: &mut AudioFrame) -> Result<(), CodecError> {
        self.run(packet, out, false)
    }

    /// Rebuilds the lost frame before `next` from the FEC copy `next` carries.
    pub fn decode_fec(&mut self, next: &[u8], out: &mut AudioFrame) -> Result<(), CodecError> {
        self.run(next, out, true)
    }

    /// Packet loss concealment: a plausible continuation of what came before.
    pub fn conceal(&mut self, out: &mut AudioFrame) -> Result<(), CodecError> {
        self.run(&[], out, false)
    }

    fn run(&mut self, packet: &[u8], out: &mut AudioFrame, fec: bool) -> Result<(), CodecError> {
        let n = self
            .inner
            .decode(packet, out, fec)
            .map_err(|e| CodecError::Decode(format!("Opus: {e}")))?;
        // A shorter frame (10 ms packets from another SDK) is padded with silence.
        out[n.min(FRAME_SAMPLES)..].fill(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{PulseAnalyser, ToneBursts};

    #[test]
    fn a_tone_survives_encoding_with_a_lost_packet_recovered_by_fec() {
        let source = ToneBursts::new(880.0);
        let mut enc = OpusEncoder::new().unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let mut pcm = [0i16; FRAME_SAMPLES];
        let mut out = [0i16; FRAME_SAMPLES];
        let mut packets = Vec::new();
        let t0 = 1_790_000_000_000_000u64;
        for k in 0..100u64 {
            source.fill(t0 + (k + 1) * 20_000, &mut pcm);
            let mut buf = [0u8; MAX_PACKET];
            let n = enc.encode(&pcm, &mut buf).unwrap();
            packets.push(buf[..n].to_vec());
        }
        let mut analyser = PulseAnalyser::default();
        for (k, p) in packets.iter().enumerate() {
            if k == 10 {
                dec.decode_fec(&packets[11], &mut out).unwrap();
            } else {
                dec.decode(p, &mut out).unwrap();
            }
            analyser.feed(&out, t0 + k as u64 * 20_000);
        }
        assert!(analyser.frequencies_hz.len() >= 3, "{analyser:?}");
        for f in &analyser.frequencies_hz {
            assert!((f - 880.0).abs() < 30.0, "{f}");
        }
        assert!(dec.conceal(&mut out).is_ok());
        assert!(
            dec.decode(&[0xff; 3], &mut out).is_err(),
            "garbage is an error, not a panic"
        );
    }

    /// What a jitter buffer does to speech on a jittery network: inside every burst one
    /// frame is concealed while a late packet is awaited (then played), and one is trimmed.
    /// The pitch still reads as the speaker's.
    #[test]
    fn a_tone_keeps_its_pitch_through_concealment_and_trimming() {
        let source = ToneBursts::new(880.0);
        let mut enc = OpusEncoder::new().unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let mut pcm = [0i16; FRAME_SAMPLES];
        let mut out = [0i16; FRAME_SAMPLES];
        let mut analyser = PulseAnalyser::default();
        let t0 = 1_790_000_000_000_000u64;
        let mut played = 0u64;
        let mut play = |frame: &[i16; FRAME_SAMPLES], analyser: &mut PulseAnalyser| {
            analyser.feed(frame, t0 + played * 20_000);
            played += 1;
        };
        for k in 0..150u64 {
            source.fill(t0 + (k + 1) * 20_000, &mut pcm);
            let mut buf = [0u8; MAX_PACKET];
            let n = enc.encode(&pcm, &mut buf).unwrap();
            match k % 25 {
                2 => {
                    dec.conceal(&mut out).unwrap();
                    play(&out, &mut analyser);
                    dec.decode(&buf[..n], &mut out).unwrap();
                    play(&out, &mut analyser);
                }
                3 => {} // trimmed
                _ => {
                    dec.decode(&buf[..n], &mut out).unwrap();
                    play(&out, &mut analyser);
                }
            }
        }
        assert!(analyser.frequencies_hz.len() >= 5, "{analyser:?}");
        for f in &analyser.frequencies_hz {
            assert!((f - 880.0).abs() < 30.0, "{:?}", analyser.frequencies_hz);
        }
    }
}
