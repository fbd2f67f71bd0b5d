//! Camera frames to I420, the encoders' format: packed YUYV, NV12, grey, RGB/BGR and MJPEG
//! (decoded with `zune-jpeg`, pure Rust). Output is BT.601 limited range (what WebRTC's
//! capturers produce and decoders assume); JPEG's full-range YCbCr is mapped to it.
//!
//! [`FrameConverter`] keeps its buffers between frames: converting allocates nothing once
//! the size is known, except inside the JPEG decoder (its scratch per image).

use yuvutils_rs::{
    BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix,
};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::video::I420Frame;

/// How a camera lays out a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PixelFormat {
    /// Motion JPEG: each frame a JPEG (webcams' format for 720p and up over USB 2).
    Mjpeg,
    /// Packed 4:2:2, Y0 U Y1 V.
    Yuyv,
    /// Y plane, then interleaved U/V at half size.
    Nv12,
    /// Planar 4:2:0 already.
    I420,
    /// Luma only (full range).
    Gray,
    /// 8-bit R, G, B per pixel (full range).
    Rgb24,
    Bgr24,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    #[error("a {format:?} frame of {width}x{height} needs {expected} bytes, got {got}")]
    TooShort {
        format: PixelFormat,
        width: u32,
        height: u32,
        expected: usize,
        got: usize,
    },
    #[error("{width}x{height}: camera frames must have even, non-zero sides up to 7680x4320")]
    BadSize { width: u32, height: u32 },
    #[error("the MJPEG frame could not be decoded")]
    Jpeg(#[source] zune_jpeg::errors::DecodeErrors),
    #[error("the {format:?} conversion failed")]
    Yuv {
        format: PixelFormat,
        #[source]
        source: yuvutils_rs::YuvError,
    },
}

/// Converts frames into I420, reusing its buffers.
#[derive(Default)]
pub struct FrameConverter {
    /// A decoded JPEG, interleaved Y Cb Cr per pixel.
    ycbcr: Vec<u8>,
}

impl FrameConverter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Converts one frame of `format` at `width`×`height` into `out` (resized to the frame's
    /// size if it differs; for MJPEG the JPEG's own size counts).
    pub fn convert(
        &mut self,
        format: PixelFormat,
        width: u32,
        height: u32,
        data: &[u8],
        out: &mut I420Frame,
    ) -> Result<(), ConvertError> {
        if format == PixelFormat::Mjpeg {
            return self.mjpeg(data, out);
        }
        check_size(width, height)?;
        let (w, h) = (width as usize, height as usize);
        let expected = match format {
            PixelFormat::Yuyv => w * h * 2,
            PixelFormat::Nv12 | PixelFormat::I420 => w * h * 3 / 2,
            PixelFormat::Gray => w * h,
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => w * h * 3,
            PixelFormat::Mjpeg => unreachable!("handled above"),
        };
        if data.len() < expected {
            return Err(ConvertError::TooShort {
                format,
                width,
                height,
                expected,
                got: data.len(),
            });
        }
        // Cameras may hand over a whole mapped buffer: only the frame's bytes count.
        let data = &data[..expected];
        fit(out, width, height);
        let yuv = |source| ConvertError::Yuv { format, source };
        match format {
            PixelFormat::Yuyv => {
                yuyv_to_i420(data, w, h, out);
                Ok(())
            }
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => {
                let convert = if format == PixelFormat::Rgb24 {
                    yuvutils_rs::rgb_to_yuv420
                } else {
                    yuvutils_rs::bgr_to_yuv420
                };
                convert(
                    &mut planes(out),
                    data,
                    width * 3,
                    YuvRange::Limited,
                    YuvStandardMatrix::Bt601,
                    YuvConversionMode::Balanced,
                )
                .map_err(yuv)
            }
            PixelFormat::I420 => {
                out.as_bytes_mut().copy_from_slice(data);
                Ok(())
            }
            PixelFormat::Nv12 => {
                let (y, uv) = data.split_at(w * h);
                out.y_mut().copy_from_slice(y);
                let (u, v) = out.uv_mut();
                for ((pair, u), v) in uv.chunks_exact(2).zip(u.iter_mut()).zip(v.iter_mut()) {
                    (*u, *v) = (pair[0], pair[1]);
                }
                Ok(())
            }
            PixelFormat::Gray => {
                for (o, &g) in out.y_mut().iter_mut().zip(data) {
                    *o = full_to_limited_luma(g);
                }
                let (u, v) = out.uv_mut();
                u.fill(128);
                v.fill(128);
                Ok(())
            }
            PixelFormat::Mjpeg => unreachable!("handled above"),
        }
    }

    fn mjpeg(&mut self, data: &[u8], out: &mut I420Frame) -> Result<(), ConvertError> {
        let options = DecoderOptions::default()
            .set_max_width(7680)
            .set_max_height(4320)
            .jpeg_set_out_colorspace(ColorSpace::YCbCr);
        let mut decoder = JpegDecoder::new_with_options(ZCursor::new(data), options);
        decoder.decode_headers().map_err(ConvertError::Jpeg)?;
        let info = decoder.info().ok_or(ConvertError::Jpeg(
            zune_jpeg::errors::DecodeErrors::FormatStatic("no image information after the headers"),
        ))?;
        let (width, height) = (u32::from(info.width), u32::from(info.height));
        check_size(width, height)?;
        if info.components == 1 {
            // A grey JPEG: decode its luma alone.
            let mut decoder = JpegDecoder::new_with_options(
                ZCursor::new(data),
                options.jpeg_set_out_colorspace(ColorSpace::Luma),
            );
            fit(out, width, height);
            self.ycbcr.resize((width * height) as usize, 0);
            decoder
                .decode_into(&mut self.ycbcr)
                .map_err(ConvertError::Jpeg)?;
            for (o, &g) in out.y_mut().iter_mut().zip(&self.ycbcr) {
                *o = full_to_limited_luma(g);
            }
            let (u, v) = out.uv_mut();
            u.fill(128);
            v.fill(128);
            return Ok(());
        }
        self.ycbcr.resize((width * height * 3) as usize, 0);
        decoder
            .decode_into(&mut self.ycbcr)
            .map_err(ConvertError::Jpeg)?;
        fit(out, width, height);
        ycbcr444_full_to_i420(&self.ycbcr, width as usize, height as usize, out);
        Ok(())
    }
}

fn check_size(width: u32, height: u32) -> Result<(), ConvertError> {
    let ok = width > 0
        && height > 0
        && width.is_multiple_of(2)
        && height.is_multiple_of(2)
        && width <= 7680
        && height <= 4320;
    if ok {
        Ok(())
    } else {
        Err(ConvertError::BadSize { width, height })
    }
}

/// Makes `out` the frame's size (allocates only when the size changes).
fn fit(out: &mut I420Frame, width: u32, height: u32) {
    if out.width() != width || out.height() != height {
        *out = I420Frame::new(width, height);
    }
}

fn planes(frame: &mut I420Frame) -> YuvPlanarImageMut<'_, u8> {
    let (width, height) = (frame.width(), frame.height());
    let (y, uv) = frame.as_bytes_mut().split_at_mut((width * height) as usize);
    let (u, v) = uv.split_at_mut((width * height / 4) as usize);
    YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: width,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: width / 2,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: width / 2,
        width,
        height,
    }
}

/// Packed 4:2:2 → I420, each chroma sample the average of the two rows' (yuvutils-rs
/// 0.8.3's own conversion garbles luma on its SIMD path: measured against the fixtures).
fn yuyv_to_i420(src: &[u8], w: usize, h: usize, out: &mut I420Frame) {
    for (row, dst) in src.chunks_exact(w * 2).zip(out.y_mut().chunks_exact_mut(w)) {
        for (pair, y) in row.chunks_exact(2).zip(dst.iter_mut()) {
            *y = pair[0];
        }
    }
    let (u, v) = out.uv_mut();
    let cw = w / 2;
    for (cy, rows) in src.chunks_exact(w * 4).take(h / 2).enumerate() {
        let (top, bottom) = rows.split_at(w * 2);
        let (u_row, v_row) = (
            &mut u[cy * cw..(cy + 1) * cw],
            &mut v[cy * cw..(cy + 1) * cw],
        );
        for (i, (t, b)) in top.chunks_exact(4).zip(bottom.chunks_exact(4)).enumerate() {
            u_row[i] = (u16::from(t[1]) + u16::from(b[1])).div_ceil(2) as u8;
            v_row[i] = (u16::from(t[3]) + u16::from(b[3])).div_ceil(2) as u8;
        }
    }
}

/// 0..=255 → 16..=235.
fn full_to_limited_luma(y: u8) -> u8 {
    (16 + (u32::from(y) * 219 + 127) / 255) as u8
}

/// 0..=255 around 128 → 16..=240 around 128.
fn full_to_limited_chroma(c: u32) -> u8 {
    // `c` is the sum of four samples: average and scale in one rounding.
    let scaled = (c as i32 - 512) * 224 / 255;
    (128 + (scaled + 2 * scaled.signum()) / 4).clamp(16, 240) as u8
}

/// JPEG's full-range 4:4:4 (as decoded, Y Cb Cr per pixel) → limited-range I420, chroma
/// averaged over each 2×2 block.
fn ycbcr444_full_to_i420(src: &[u8], w: usize, h: usize, out: &mut I420Frame) {
    for (row, dst) in src.chunks_exact(w * 3).zip(out.y_mut().chunks_exact_mut(w)) {
        for (px, y) in row.chunks_exact(3).zip(dst.iter_mut()) {
            *y = full_to_limited_luma(px[0]);
        }
    }
    let (u, v) = out.uv_mut();
    let cw = w / 2;
    for cy in 0..h / 2 {
        let top = &src[2 * cy * w * 3..(2 * cy + 1) * w * 3];
        let bottom = &src[(2 * cy + 1) * w * 3..(2 * cy + 2) * w * 3];
        let (u_row, v_row) = (
            &mut u[cy * cw..(cy + 1) * cw],
            &mut v[cy * cw..(cy + 1) * cw],
        );
        for cx in 0..cw {
            let (a, b) = (6 * cx, 6 * cx + 3);
            let sum = |k: usize| {
                u32::from(top[a + k])
                    + u32::from(top[b + k])
                    + u32::from(bottom[a + k])
                    + u32::from(bottom[b + k])
            };
            u_row[cx] = full_to_limited_chroma(sum(1));
            v_row[cx] = full_to_limited_chroma(sum(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_mapping_hits_the_limits() {
        assert_eq!(full_to_limited_luma(0), 16);
        assert_eq!(full_to_limited_luma(255), 235);
        assert_eq!(full_to_limited_chroma(4 * 128), 128);
        assert_eq!(full_to_limited_chroma(0), 16);
        assert_eq!(full_to_limited_chroma(4 * 255), 240);
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        let mut c = FrameConverter::new();
        let mut out = I420Frame::new(2, 2);
        assert!(matches!(
            c.convert(PixelFormat::Yuyv, 64, 48, &[0; 100], &mut out),
            Err(ConvertError::TooShort {
                expected: 6144,
                got: 100,
                ..
            })
        ));
        assert!(matches!(
            c.convert(PixelFormat::Rgb24, 63, 48, &[0; 10_000], &mut out),
            Err(ConvertError::BadSize { .. })
        ));
        assert!(matches!(
            c.convert(PixelFormat::Mjpeg, 64, 48, b"not a jpeg", &mut out),
            Err(ConvertError::Jpeg(_))
        ));
        assert!(matches!(
            c.convert(PixelFormat::Mjpeg, 64, 48, &[], &mut out),
            Err(ConvertError::Jpeg(_))
        ));
    }
}
