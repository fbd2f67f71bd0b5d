//! One face for the video codecs, so the engine picks VP8 or H.264 per track (a remote
//! track's codec is whatever its publisher chose).

use crate::h264::{H264Decoder, H264Encoder, is_h264_keyframe};
use crate::opus_codec::CodecError;
use crate::video::I420Frame;
use crate::vp8::{Vp8Decoder, Vp8Encoder, is_vp8_keyframe};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    Vp8,
    /// Constrained baseline, packetization-mode 1.
    H264,
}

impl VideoCodec {
    /// Whether decoding can start at this frame.
    pub fn is_keyframe(self, frame: &[u8]) -> bool {
        match self {
            Self::Vp8 => is_vp8_keyframe(frame),
            Self::H264 => is_h264_keyframe(frame),
        }
    }
}

/// Encoders take frames of the size they were made for; anything else is refused.
pub(crate) fn check_size(
    codec: &str,
    frame: &I420Frame,
    width: u32,
    height: u32,
) -> Result<(), CodecError> {
    if (frame.width(), frame.height()) == (width, height) {
        return Ok(());
    }
    Err(CodecError::Encode(format!(
        "{codec}: frame is {}x{}, the encoder {width}x{height}",
        frame.width(),
        frame.height()
    )))
}

/// An encoder of either codec (the codec is a runtime choice).
pub struct VideoEncoder(Encoder);

enum Encoder {
    Vp8(Vp8Encoder),
    /// Boxed: OpenH264's state inline is kilobytes; made once per layer.
    H264(Box<H264Encoder>),
}

impl VideoEncoder {
    pub fn new(
        codec: VideoCodec,
        width: u32,
        height: u32,
        fps: u32,
        bitrate_kbps: u32,
    ) -> Result<Self, CodecError> {
        let encoder = match codec {
            VideoCodec::Vp8 => Encoder::Vp8(Vp8Encoder::new(width, height, fps, bitrate_kbps)?),
            VideoCodec::H264 => {
                let h264 = H264Encoder::new(width, height, fps, bitrate_kbps)?;
                Encoder::H264(Box::new(h264))
            }
        };
        Ok(Self(encoder))
    }

    /// Encodes one frame into `out` (cleared first); returns whether it is a keyframe.
    /// An empty `out` means the encoder produced nothing for this frame.
    pub fn encode(
        &mut self,
        frame: &I420Frame,
        keyframe: bool,
        out: &mut Vec<u8>,
    ) -> Result<bool, CodecError> {
        match &mut self.0 {
            Encoder::Vp8(e) => e.encode(frame, keyframe, out),
            Encoder::H264(e) => e.encode(frame, keyframe, out),
        }
    }
}

/// A decoder of either codec.
pub struct VideoDecoder(Decoder);

enum Decoder {
    Vp8(Vp8Decoder),
    H264(H264Decoder),
}

impl VideoDecoder {
    pub fn new(codec: VideoCodec) -> Result<Self, CodecError> {
        Ok(Self(match codec {
            VideoCodec::Vp8 => Decoder::Vp8(Vp8Decoder::new()?),
            VideoCodec::H264 => Decoder::H264(H264Decoder::new()?),
        }))
    }

    /// Decodes one frame into `out` (resized to the stream's size). `Ok(false)`: nothing to
    /// show yet.
    pub fn decode(&mut self, data: &[u8], out: &mut I420Frame) -> Result<bool, CodecError> {
        match &mut self.0 {
            Decoder::Vp8(d) => d.decode(data, out),
            Decoder::H264(d) => d.decode(data, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::synthetic_video::{VideoStamp, draw, read};

    /// Each codec at 720p, 360p and 180p: every frame decodes at the right size, the stamps
    /// survive, keyframes come exactly when asked. Prints per-frame costs (one thread).
    #[test]
    fn stamps_survive_both_codecs_and_keyframes_come_on_request() {
        for codec in [VideoCodec::Vp8, VideoCodec::H264] {
            for (w, h, kbps) in [(1280, 720, 1_500), (640, 360, 500), (320, 180, 150)] {
                let mut enc = VideoEncoder::new(codec, w, h, 30, kbps).unwrap();
                let mut dec = VideoDecoder::new(codec).unwrap();
                let (mut frame, mut shown, mut packet) =
                    (I420Frame::new(w, h), I420Frame::new(2, 2), Vec::new());
                let (mut enc_t, mut dec_t, mut bytes, mut read_ok) = (0.0, 0.0, 0usize, 0);
                for n in 0..60u32 {
                    let stamp = VideoStamp {
                        frame: n,
                        captured_unix_ms: 1_000 + u64::from(n) * 33,
                    };
                    draw(&mut frame, stamp);
                    let asked = n == 0 || n == 45;
                    let t = Instant::now();
                    let key = enc.encode(&frame, asked, &mut packet).unwrap();
                    enc_t += t.elapsed().as_secs_f64();
                    assert_eq!(key, asked, "{codec:?}: keyframes only on request ({n})");
                    assert_eq!(codec.is_keyframe(&packet), key, "{codec:?} frame {n}");
                    bytes += packet.len();
                    let t = Instant::now();
                    assert!(dec.decode(&packet, &mut shown).unwrap(), "frame {n} shown");
                    dec_t += t.elapsed().as_secs_f64();
                    if read(&shown) == Some(stamp) {
                        read_ok += 1;
                    }
                }
                eprintln!(
                    "{codec:?} {w}x{h} @ {kbps} kb/s: encode {:.1} ms/frame, decode {:.1} ms/frame, {} kb/s out, {read_ok}/60 stamps read",
                    enc_t * 1000.0 / 60.0,
                    dec_t * 1000.0 / 60.0,
                    bytes * 8 * 30 / 60 / 1000
                );
                assert!(read_ok >= 57, "{codec:?} {w}x{h}: {read_ok}/60 stamps");
                assert_eq!((shown.width(), shown.height()), (w, h));
            }
            let wrong_size = VideoEncoder::new(codec, 640, 360, 30, 500).unwrap().encode(
                &I420Frame::new(320, 180),
                false,
                &mut Vec::new(),
            );
            assert!(
                matches!(wrong_size, Err(CodecError::Encode(_))),
                "{codec:?}"
            );
        }
    }
}
