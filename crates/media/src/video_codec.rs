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

/// The largest picture a decoder accepts, either way round (a portrait 2160×3840 fits
/// too): 4K UHD. A peer allowed to publish video could otherwise announce 16383×16383 in a
/// VP8 keyframe and have every subscriber allocate some 400 MB for it.
pub const MAX_DECODE_WIDTH: u32 = 3840;
/// See [`MAX_DECODE_WIDTH`].
pub const MAX_DECODE_HEIGHT: u32 = 2160;

/// The largest picture a decoder takes, as its long and short side (orientation-agnostic:
/// a phone's camera may turn mid-call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SizeLimit {
    long: u32,
    short: u32,
}

impl SizeLimit {
    pub const HARD: Self = Self {
        long: MAX_DECODE_WIDTH,
        short: MAX_DECODE_HEIGHT,
    };

    /// `width × height` either way round, never above [`SizeLimit::HARD`]; a zero side (a
    /// track that published no dimensions) leaves the hard limit.
    pub fn new(width: u32, height: u32) -> Self {
        if width == 0 || height == 0 {
            return Self::HARD;
        }
        Self {
            long: width.max(height).min(Self::HARD.long),
            short: width.min(height).min(Self::HARD.short),
        }
    }

    /// Rounded up to whole 16×16 macroblocks: H.264 announces its coded size, so 1920×1080
    /// arrives as 1920×1088. Stays within the hard limit (itself whole macroblocks).
    pub fn whole_macroblocks(self) -> Self {
        Self {
            long: self.long.next_multiple_of(16).min(Self::HARD.long),
            short: self.short.next_multiple_of(16).min(Self::HARD.short),
        }
    }

    pub fn check(self, width: u32, height: u32) -> Result<(), CodecError> {
        if width.max(height) <= self.long && width.min(height) <= self.short {
            return Ok(());
        }
        // Said the way round the picture is, so the message compares like with like.
        let (max_width, max_height) = if width >= height {
            (self.long, self.short)
        } else {
            (self.short, self.long)
        };
        Err(CodecError::FrameTooLarge {
            width,
            height,
            max_width,
            max_height,
        })
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

    /// The rate from the next frame on, in kbit/s (the uplink estimate changed).
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), CodecError> {
        match &mut self.0 {
            Encoder::Vp8(e) => e.set_bitrate(kbps),
            Encoder::H264(e) => {
                e.set_bitrate(kbps);
                Ok(())
            }
        }
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

    /// Narrows the largest picture this decoder accepts to `width × height`, either way
    /// round; never above [`MAX_DECODE_WIDTH`] × [`MAX_DECODE_HEIGHT`], which is also the
    /// limit until this is called, and what a zero side leaves. Callers derive it from the
    /// track's published dimensions plus a margin (a publisher may change its resolution
    /// mid-call). H.264 rounds it up to whole macroblocks (1080 lines are coded as 1088).
    /// Pictures over it fail with [`CodecError::FrameTooLarge`].
    pub fn set_max_size(&mut self, width: u32, height: u32) {
        let limit = SizeLimit::new(width, height);
        match &mut self.0 {
            Decoder::Vp8(d) => d.set_limit(limit),
            Decoder::H264(d) => d.set_limit(limit),
        }
    }

    /// Decodes one frame into `out` (resized to the stream's size). `Ok(false)`: nothing to
    /// show yet. A picture over the size limit ([`VideoDecoder::set_max_size`]) is refused
    /// with [`CodecError::FrameTooLarge`] before the codec sees it, where the bitstream
    /// announces its size up front (VP8 keyframes, H.264 sequence parameter sets).
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

    /// `n` frames of the test pattern at `w × h`, the first a keyframe.
    fn stream(codec: VideoCodec, w: u32, h: u32, n: u32) -> Vec<Vec<u8>> {
        let mut enc = VideoEncoder::new(codec, w, h, 30, 2_000).unwrap();
        let mut frame = I420Frame::new(w, h);
        (0..n)
            .map(|i| {
                let stamp = VideoStamp {
                    frame: i,
                    captured_unix_ms: 1_000,
                };
                draw(&mut frame, stamp);
                let mut packet = Vec::new();
                enc.encode(&frame, i == 0, &mut packet).unwrap();
                assert!(!packet.is_empty(), "{codec:?} frame {i}");
                packet
            })
            .collect()
    }

    fn too_large(result: Result<bool, CodecError>) -> Option<(u32, u32, u32, u32)> {
        match result {
            Err(CodecError::FrameTooLarge {
                width,
                height,
                max_width,
                max_height,
            }) => Some((width, height, max_width, max_height)),
            _ => None,
        }
    }

    #[test]
    fn size_limits_hold_either_way_round_and_never_above_4k() {
        let hard = SizeLimit::HARD;
        assert!(hard.check(3840, 2160).is_ok() && hard.check(2160, 3840).is_ok());
        assert!(hard.check(3841, 100).is_err() && hard.check(100, 3841).is_err());
        assert!(hard.check(2161, 2161).is_err());
        assert_eq!(SizeLimit::new(10_000, 10_000), hard);
        assert_eq!(SizeLimit::new(0, 720), hard, "no published size");
        let hd = SizeLimit::new(1280, 720);
        assert!(hd.check(720, 1280).is_ok() && hd.check(1281, 720).is_err());
        assert_eq!(
            hd.check(720, 1300),
            Err(CodecError::FrameTooLarge {
                width: 720,
                height: 1300,
                max_width: 720,
                max_height: 1280
            })
        );
        let fhd = SizeLimit::new(1920, 1080);
        assert!(fhd.check(1920, 1088).is_err());
        assert!(fhd.whole_macroblocks().check(1920, 1088).is_ok());
        assert_eq!(hard.whole_macroblocks(), hard);
    }

    /// The limit a caller sets from the track's published size: streams over it are refused,
    /// keyframes before decoding, inter frames when the limit drops mid-stream; streams
    /// within it, either way round, decode.
    #[test]
    fn decoders_refuse_streams_over_their_max_size() {
        for codec in [VideoCodec::Vp8, VideoCodec::H264] {
            let packets = stream(codec, 640, 360, 3);
            // H.264 codes 360 lines as 23 macroblock rows (368).
            let coded_h = if codec == VideoCodec::H264 { 368 } else { 360 };
            let mut out = I420Frame::new(2, 2);

            let mut dec = VideoDecoder::new(codec).unwrap();
            dec.set_max_size(320, 180);
            let refused = too_large(dec.decode(&packets[0], &mut out));
            let max_h = if codec == VideoCodec::H264 { 192 } else { 180 };
            assert_eq!(refused, Some((640, coded_h, 320, max_h)), "{codec:?}");
            assert_eq!((out.width(), out.height()), (2, 2), "{codec:?}");

            for (w, h) in [(640, 360), (360, 640), (0, 0)] {
                let mut dec = VideoDecoder::new(codec).unwrap();
                dec.set_max_size(w, h);
                for (n, packet) in packets.iter().enumerate() {
                    let shown = dec.decode(packet, &mut out);
                    assert_eq!(shown, Ok(true), "{codec:?} limit {w}x{h}, frame {n}");
                }
                assert_eq!((out.width(), out.height()), (640, 360));
            }

            let mut dec = VideoDecoder::new(codec).unwrap();
            assert_eq!(dec.decode(&packets[0], &mut out), Ok(true));
            dec.set_max_size(320, 180);
            let refused = too_large(dec.decode(&packets[1], &mut out));
            assert_eq!(
                refused,
                Some((640, 360, 320, max_h)),
                "{codec:?} inter frame"
            );
        }
    }

    /// What a publisher could send: sizes that would cost every subscriber hundreds of MB,
    /// refused without the codec seeing them; the decoder then takes a normal stream.
    #[test]
    fn huge_announced_sizes_are_refused_before_decoding() {
        let mut out = I420Frame::new(2, 2);
        let mut vp8 = VideoDecoder::new(VideoCodec::Vp8).unwrap();
        let header = crate::vp8::tests::keyframe_header(16383, 16383);
        let refused = too_large(vp8.decode(&header, &mut out));
        assert_eq!(refused, Some((16383, 16383, 3840, 2160)));

        let mut h264 = VideoDecoder::new(VideoCodec::H264).unwrap();
        // 4096×2304 is within OpenH264's own ceiling (level 5.2), 16384² is not; neither
        // reaches it. The SPS may come after other units, behind either start code.
        for (w_mbs, h_mbs, start) in [(256, 144, &[0, 0, 1][..]), (1024, 1024, &[0, 0, 0, 1])] {
            let mut au = vec![0, 0, 0, 1, 0x09, 0xf0];
            au.extend_from_slice(start);
            au.push(0x67);
            au.extend(crate::h264_sps::tests::baseline(w_mbs, h_mbs, true));
            let refused = too_large(h264.decode(&au, &mut out));
            let (w, h) = (w_mbs as u32 * 16, h_mbs as u32 * 16);
            assert_eq!(refused, Some((w, h, 3840, 2160)), "{w}x{h}");
        }
        // An SPS we cannot read is not passed on either.
        let unreadable = [0, 0, 0, 1, 0x67, 66, 0, 0, 3, 0xff, 0xff];
        assert!(matches!(
            h264.decode(&unreadable, &mut out),
            Err(CodecError::Decode(_))
        ));
        assert_eq!((out.width(), out.height()), (2, 2), "nothing allocated");

        for (codec, mut dec) in [(VideoCodec::Vp8, vp8), (VideoCodec::H264, h264)] {
            for packet in stream(codec, 320, 180, 2) {
                assert_eq!(dec.decode(&packet, &mut out), Ok(true), "{codec:?}");
            }
        }
    }

    /// libvpx keeps odd sizes (H.264 crops in pairs of pixels: OpenH264's pictures are
    /// even). A 322×182 stream relabelled 321×181 in its keyframe decodes on the same
    /// macroblocks; the frame, rounded up to even, repeats the picture's last column and
    /// row rather than reading past them, and is not reallocated frame after frame.
    #[test]
    fn odd_sized_pictures_repeat_their_edge_into_the_even_frame() {
        let (w, h) = (322u32, 182u32);
        let mut enc = VideoEncoder::new(VideoCodec::Vp8, w, h, 30, 4_000).unwrap();
        let mut frame = I420Frame::new(w, h);
        // Mid-grey with a white last column and row: what must not show through.
        frame.y_mut().fill(100);
        for (y, row) in frame.y_mut().chunks_exact_mut(w as usize).enumerate() {
            row[w as usize - 1] = 235;
            if y == h as usize - 1 {
                row.fill(235);
            }
        }
        let mut dec = VideoDecoder::new(VideoCodec::Vp8).unwrap();
        let mut out = I420Frame::new(2, 2);
        let mut buffer = None;
        for n in 0..3 {
            let mut packet = Vec::new();
            assert_eq!(enc.encode(&frame, n == 0, &mut packet), Ok(n == 0));
            if n == 0 {
                assert_eq!(crate::vp8::keyframe_size(&packet), Some((w, h)));
                packet[6..10].copy_from_slice(&[0x41, 0x01, 0xb5, 0x00]); // 321, 181
                assert_eq!(crate::vp8::keyframe_size(&packet), Some((321, 181)));
            }
            assert_eq!(dec.decode(&packet, &mut out), Ok(true), "frame {n}");
            assert_eq!((out.width(), out.height()), (w, h));
            let at = *buffer.get_or_insert(out.as_bytes().as_ptr());
            assert_eq!(out.as_bytes().as_ptr(), at, "frame {n} reallocated");

            let rows: Vec<&[u8]> = out.y().chunks_exact(w as usize).collect();
            assert_eq!(rows[181], rows[180], "frame {n}: the last row repeats");
            for (y, row) in rows.iter().enumerate() {
                assert_eq!(
                    row[321], row[320],
                    "frame {n}, row {y}: the last column repeats"
                );
            }
            let inside = rows[90][160];
            assert!(inside.abs_diff(100) < 8, "frame {n} decoded: {inside}");
            assert!(
                rows[180][160].abs_diff(100) < 40,
                "frame {n}: {}",
                rows[180][160]
            );
        }
    }

    /// Each codec at 720p, 360p and 180p: every frame decodes at the right size, the stamps
    /// survive, keyframes come exactly when asked. Prints per-frame costs (one thread).
    #[test]
    fn a_lower_rate_set_mid_stream_is_held_by_both_codecs() {
        // A patch of noise changing every frame: more than either rate holds, so the
        // encoder's rate is what is measured, not the picture's.
        let mut seed = 0x9e37_79b9_u32;
        let mut noise = |frame: &mut I420Frame| {
            let width = frame.width() as usize;
            for row in frame.y_mut().chunks_mut(width).take(48) {
                for px in &mut row[..64] {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    *px = (seed >> 24) as u8;
                }
            }
        };
        for codec in [VideoCodec::Vp8, VideoCodec::H264] {
            let (w, h) = (640, 360);
            let mut enc = VideoEncoder::new(codec, w, h, 30, 1_200).unwrap();
            let (mut frame, mut packet) = (I420Frame::new(w, h), Vec::new());
            // kbit/s over each 2 s (60 frames at 30 fps), after a first second to settle.
            let mut second = |enc: &mut VideoEncoder, from: u32| {
                let mut bytes = 0;
                for n in from..from + 60 {
                    noise(&mut frame);
                    enc.encode(&frame, n == 0, &mut packet).unwrap();
                    bytes += packet.len();
                }
                bytes * 8 / 2 / 1000
            };
            second(&mut enc, 0);
            let high = second(&mut enc, 60);
            enc.set_bitrate(300).unwrap();
            second(&mut enc, 120);
            let low = second(&mut enc, 180);
            eprintln!("{codec:?}: {high} kb/s at 1200, {low} kb/s at 300");
            assert!(low * 2 < high, "{codec:?}: {high} → {low} kb/s");
            assert!(low <= 300 * 13 / 10, "{codec:?}: {low} kb/s for 300");
        }
    }

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
