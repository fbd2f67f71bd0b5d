//! VP8 with the system libvpx, set up as WebRTC does for real time: CBR, no lookahead,
//! error resilient, speed −6, keyframes on request (PLI) rather than on a short timer.
//! The only `unsafe` of the media crate lives here, around libvpx's C API.

use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_long, c_ulong};
use std::ptr;

use vpx_sys as vpx;

use crate::opus_codec::CodecError;
use crate::video::I420Frame;
use crate::video_codec::{SizeLimit, check_size};

fn check(what: &str, err: vpx::vpx_codec_err_t) -> Result<(), CodecError> {
    if err == vpx::vpx_codec_err_t::VPX_CODEC_OK {
        Ok(())
    } else {
        Err(CodecError::Setup(format!("libvpx {what}: {err:?}")))
    }
}

pub(crate) struct Vp8Encoder {
    ctx: Box<vpx::vpx_codec_ctx_t>,
    /// Kept to change the rate: libvpx takes a whole configuration (half a kilobyte).
    cfg: Box<vpx::vpx_codec_enc_cfg_t>,
    width: u32,
    height: u32,
    pts: i64,
}

// The context is only touched through &mut self.
unsafe impl Send for Vp8Encoder {}

impl Vp8Encoder {
    pub fn new(width: u32, height: u32, fps: u32, bitrate_kbps: u32) -> Result<Self, CodecError> {
        // SAFETY: libvpx fills the config; the context is zeroed then initialised by libvpx
        // and destroyed exactly once in Drop.
        unsafe {
            let iface = vpx::vpx_codec_vp8_cx();
            let mut cfg = MaybeUninit::<vpx::vpx_codec_enc_cfg_t>::zeroed();
            check(
                "config",
                vpx::vpx_codec_enc_config_default(iface, cfg.as_mut_ptr(), 0),
            )?;
            let mut cfg = cfg.assume_init();
            cfg.g_w = width;
            cfg.g_h = height;
            cfg.g_timebase = vpx::vpx_rational {
                num: 1,
                den: fps.max(1) as c_int,
            };
            cfg.g_threads = 1;
            cfg.g_lag_in_frames = 0;
            cfg.g_error_resilient = vpx::VPX_ERROR_RESILIENT_DEFAULT;
            cfg.rc_end_usage = vpx::vpx_rc_mode::VPX_CBR;
            cfg.rc_target_bitrate = bitrate_kbps;
            cfg.rc_min_quantizer = 2;
            cfg.rc_max_quantizer = 56;
            cfg.rc_undershoot_pct = 100;
            cfg.rc_overshoot_pct = 15;
            cfg.rc_buf_initial_sz = 500;
            cfg.rc_buf_optimal_sz = 600;
            cfg.rc_buf_sz = 1000;
            cfg.rc_dropframe_thresh = 0;
            cfg.kf_mode = vpx::vpx_kf_mode::VPX_KF_AUTO;
            cfg.kf_max_dist = 3000;
            let mut ctx: Box<vpx::vpx_codec_ctx_t> = Box::new(MaybeUninit::zeroed().assume_init());
            check(
                "encoder init",
                vpx::vpx_codec_enc_init_ver(
                    &mut *ctx,
                    iface,
                    &cfg,
                    0,
                    vpx::VPX_ENCODER_ABI_VERSION as c_int,
                ),
            )?;
            let encoder = Self {
                ctx,
                cfg: Box::new(cfg),
                width,
                height,
                pts: 0,
            };
            let mut encoder = encoder;
            check(
                "speed",
                vpx::vpx_codec_control_(
                    &mut *encoder.ctx,
                    vpx::vp8e_enc_control_id::VP8E_SET_CPUUSED as c_int,
                    -6 as c_int,
                ),
            )?;
            Ok(encoder)
        }
    }

    /// The rate from the next frame on (the uplink estimate changed).
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), CodecError> {
        if self.cfg.rc_target_bitrate == kbps {
            return Ok(());
        }
        self.cfg.rc_target_bitrate = kbps;
        // SAFETY: the context was initialised in `new`; libvpx copies the configuration.
        unsafe {
            check(
                "bitrate",
                vpx::vpx_codec_enc_config_set(&mut *self.ctx, &*self.cfg),
            )
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
        // libvpx reads the planes at the configured size: a smaller frame would be read
        // past its end.
        check_size("VP8", frame, self.width, self.height)?;
        out.clear();
        let mut key = false;
        // SAFETY: the image only borrows `frame`'s planes for the duration of the call;
        // packets are copied out before the next libvpx call.
        unsafe {
            let mut img = MaybeUninit::<vpx::vpx_image_t>::zeroed();
            let wrapped = vpx::vpx_img_wrap(
                img.as_mut_ptr(),
                vpx::vpx_img_fmt::VPX_IMG_FMT_I420,
                self.width,
                self.height,
                1,
                frame.as_bytes().as_ptr().cast_mut(),
            );
            if wrapped.is_null() {
                return Err(CodecError::Encode(
                    "VP8: vpx_img_wrap refused the frame".into(),
                ));
            }
            let flags = if keyframe {
                vpx::VPX_EFLAG_FORCE_KF as c_long
            } else {
                0
            };
            let err = vpx::vpx_codec_encode(
                &mut *self.ctx,
                wrapped,
                self.pts,
                1,
                flags,
                vpx::VPX_DL_REALTIME as c_ulong,
            );
            self.pts += 1;
            if err != vpx::vpx_codec_err_t::VPX_CODEC_OK {
                return Err(CodecError::Encode(format!("VP8: {err:?}")));
            }
            let mut iter: vpx::vpx_codec_iter_t = ptr::null();
            loop {
                let pkt = vpx::vpx_codec_get_cx_data(&mut *self.ctx, &mut iter);
                if pkt.is_null() {
                    break;
                }
                if (*pkt).kind == vpx::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    let f = (*pkt).data.frame;
                    out.extend_from_slice(std::slice::from_raw_parts(
                        f.buf as *const u8,
                        f.sz as usize,
                    ));
                    key |= f.flags & vpx::VPX_FRAME_IS_KEY != 0;
                }
            }
        }
        Ok(key)
    }
}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        // SAFETY: initialised in new, destroyed once.
        unsafe {
            vpx::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

pub(crate) struct Vp8Decoder {
    ctx: Box<vpx::vpx_codec_ctx_t>,
    limit: SizeLimit,
}

unsafe impl Send for Vp8Decoder {}

impl Vp8Decoder {
    pub fn new() -> Result<Self, CodecError> {
        // SAFETY: as for the encoder.
        unsafe {
            let mut ctx: Box<vpx::vpx_codec_ctx_t> = Box::new(MaybeUninit::zeroed().assume_init());
            check(
                "decoder init",
                vpx::vpx_codec_dec_init_ver(
                    &mut *ctx,
                    vpx::vpx_codec_vp8_dx(),
                    ptr::null(),
                    0,
                    vpx::VPX_DECODER_ABI_VERSION as c_int,
                ),
            )?;
            Ok(Self {
                ctx,
                limit: SizeLimit::HARD,
            })
        }
    }

    pub fn set_limit(&mut self, limit: SizeLimit) {
        self.limit = limit;
    }

    /// Decodes one VP8 frame into `out` (resized if the stream's size changed). `Ok(false)`:
    /// nothing to show yet.
    pub fn decode(&mut self, data: &[u8], out: &mut I420Frame) -> Result<bool, CodecError> {
        // libvpx reallocates its frame buffers (several frames) at whatever size a keyframe
        // announces, up to 16383×16383: check it first.
        if let Some((w, h)) = keyframe_size(data) {
            self.limit.check(w, h)?;
        }
        // SAFETY: libvpx copies what it needs from `data`; the image it returns stays valid
        // until the next decode call, and is copied out before that.
        unsafe {
            let err = vpx::vpx_codec_decode(
                &mut *self.ctx,
                data.as_ptr(),
                data.len() as u32,
                ptr::null_mut(),
                0,
            );
            if err != vpx::vpx_codec_err_t::VPX_CODEC_OK {
                return Err(CodecError::Decode(format!("VP8: {err:?}")));
            }
            let mut iter: vpx::vpx_codec_iter_t = ptr::null();
            let img = vpx::vpx_codec_get_frame(&mut *self.ctx, &mut iter);
            if img.is_null() {
                return Ok(false);
            }
            let img = &*img;
            // Inter frames carry no size: this holds a limit lowered mid-stream.
            self.limit.check(img.d_w, img.d_h)?;
            let planes = image_planes(img)?;
            out.copy_from_planes(img.d_w, img.d_h, planes);
            Ok(true)
        }
    }
}

/// The Y, U and V planes of a decoded I420 image, each slice exactly the plane's rows.
///
/// # Safety
///
/// `img` must be an image libvpx returned and still owns (valid until its next decode).
unsafe fn image_planes(img: &vpx::vpx_image_t) -> Result<[(&[u8], usize); 3], CodecError> {
    if img.fmt != vpx::vpx_img_fmt::VPX_IMG_FMT_I420 {
        return Err(CodecError::Decode(format!("VP8: a {:?} image", img.fmt)));
    }
    let (w, h) = (img.d_w as usize, img.d_h as usize);
    let dims = [
        (w, h),
        (w.div_ceil(2), h.div_ceil(2)),
        (w.div_ceil(2), h.div_ceil(2)),
    ];
    let mut planes: [(&[u8], usize); 3] = [(&[], 0); 3];
    for (p, (pw, ph)) in dims.into_iter().enumerate() {
        let stride = usize::try_from(img.stride[p])
            .map_err(|_| CodecError::Decode("VP8: a bottom-up image".into()))?;
        if ph == 0 || img.planes[p].is_null() {
            continue;
        }
        // The last row ends at the picture's width, not at the stride: read no further.
        let len = (ph - 1) * stride + pw;
        // SAFETY: libvpx's plane p holds `ph` rows of `pw` samples, `stride` apart.
        planes[p] = (
            unsafe { std::slice::from_raw_parts(img.planes[p], len) },
            stride,
        );
    }
    Ok(planes)
}

/// The width and height a VP8 keyframe announces (RFC 6386 §9.1: a 3-byte frame tag whose
/// bit 0 is 0 on keyframes, the start code 9d 01 2a, then width and height as 16-bit little
/// endian, each 14 bits of size under a 2-bit upscaling hint that libvpx does not decode
/// at). `None`: not a keyframe, or too short or broken to be one, which libvpx then refuses
/// or decodes at the current size. The bytes libvpx's own peek (`vp8_peek_si`) reads.
pub(crate) fn keyframe_size(frame: &[u8]) -> Option<(u32, u32)> {
    let header: &[u8; 10] = frame.get(..10)?.try_into().ok()?;
    if !is_vp8_keyframe(frame) || header[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let dim = |lo: u8, hi: u8| u32::from(u16::from_le_bytes([lo, hi]) & 0x3fff);
    Some((dim(header[6], header[7]), dim(header[8], header[9])))
}

impl Drop for Vp8Decoder {
    fn drop(&mut self) {
        // SAFETY: initialised in new, destroyed once.
        unsafe {
            vpx::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// RFC 6386 §9.1: bit 0 of the first byte is 0 on keyframes.
pub(crate) fn is_vp8_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 1 == 0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // Round trips, sizes and timings: video_codec.rs tests both codecs the same way.

    /// A keyframe's first ten bytes for `width × height` (no upscaling hint), then junk.
    pub(crate) fn keyframe_header(width: u16, height: u16) -> Vec<u8> {
        let mut frame = vec![0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a];
        frame.extend_from_slice(&width.to_le_bytes());
        frame.extend_from_slice(&height.to_le_bytes());
        frame.extend_from_slice(&[0x5a; 32]);
        frame
    }

    #[test]
    fn keyframe_sizes_are_read_from_the_header_alone() {
        assert_eq!(keyframe_size(&keyframe_header(640, 360)), Some((640, 360)));
        assert_eq!(
            keyframe_size(&keyframe_header(16383, 16383)),
            Some((16383, 16383))
        );
        // The two top bits are an upscaling hint: libvpx decodes at the 14-bit size.
        let hinted = keyframe_header(640 | 0xc000, 360 | 0x4000);
        assert_eq!(keyframe_size(&hinted), Some((640, 360)));
        // An inter frame (bit 0 set), a broken start code, a cut header: no size.
        let mut inter = keyframe_header(640, 360);
        inter[0] |= 1;
        assert_eq!(keyframe_size(&inter), None);
        let mut broken = keyframe_header(640, 360);
        broken[4] = 0;
        assert_eq!(keyframe_size(&broken), None);
        assert_eq!(keyframe_size(&keyframe_header(640, 360)[..9]), None);
        assert_eq!(keyframe_size(&[]), None);
    }

    #[test]
    fn huge_keyframes_are_refused_before_libvpx_sees_them() {
        let mut dec = Vp8Decoder::new().unwrap();
        let mut out = I420Frame::new(2, 2);
        for (w, h) in [(16383, 16383), (3841, 1000), (2161, 2161), (1000, 3841)] {
            let err = dec.decode(&keyframe_header(w, h), &mut out).unwrap_err();
            let (w, h) = (u32::from(w), u32::from(h));
            assert!(
                matches!(err, CodecError::FrameTooLarge { width, height, .. } if (width, height) == (w, h)),
                "{w}x{h}: {err}"
            );
        }
        assert_eq!((out.width(), out.height()), (2, 2), "nothing allocated");
        // Portrait 4K is within the limit: libvpx gets it (and finds the junk after it).
        let err = dec.decode(&keyframe_header(2160, 3840), &mut out);
        assert!(
            !matches!(err, Err(CodecError::FrameTooLarge { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn garbage_is_an_error() {
        let mut dec = Vp8Decoder::new().unwrap();
        let mut out = I420Frame::new(2, 2);
        assert!(
            dec.decode(&[0x9d, 0x01, 0x2a, 0xff, 0xff], &mut out)
                .is_err()
        );
    }
}
