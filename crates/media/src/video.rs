//! Video as the engine will move it: I420 frames (planar Y, then U and V at half size),
//! one buffer per stream reused frame after frame.

use std::time::Instant;

use crate::audio::SourceEnded;

#[derive(Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl std::fmt::Debug for I420Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "I420Frame({}x{})", self.width, self.height)
    }
}

impl I420Frame {
    /// A black frame. Width and height are rounded up to even numbers (chroma is halved).
    pub fn new(width: u32, height: u32) -> Self {
        let (width, height) = (
            width.max(2).next_multiple_of(2),
            height.max(2).next_multiple_of(2),
        );
        let luma = (width * height) as usize;
        let mut data = vec![128u8; luma + luma / 2];
        data[..luma].fill(16);
        Self {
            width,
            height,
            data,
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    fn luma_len(&self) -> usize {
        (self.width * self.height) as usize
    }

    pub fn y(&self) -> &[u8] {
        &self.data[..self.luma_len()]
    }

    pub fn y_mut(&mut self) -> &mut [u8] {
        let n = self.luma_len();
        &mut self.data[..n]
    }

    /// U then V, each `width/2 × height/2`.
    pub fn uv_mut(&mut self) -> (&mut [u8], &mut [u8]) {
        let n = self.luma_len();
        let (u, v) = self.data[n..].split_at_mut(n / 4);
        (u, v)
    }

    /// Makes this frame `width × height` (rounded up to even, as in [`I420Frame::new`]),
    /// black, unless it already is that size: then it is left as it is. Comparing the
    /// rounded size keeps an odd-sized stream from reallocating on every frame.
    pub(crate) fn resize(&mut self, width: u32, height: u32) {
        let rounded = |n: u32| n.max(2).next_multiple_of(2);
        if (self.width, self.height) != (rounded(width), rounded(height)) {
            *self = I420Frame::new(width, height);
        }
    }

    /// Copies a decoder's `width × height` picture in, given as its Y, U and V planes with
    /// their strides (the chroma planes `⌈width/2⌉ × ⌈height/2⌉`). Resizes only when the size
    /// changed. Nothing is read beyond a plane's slice or its rows: when the picture is
    /// odd-sized, the frame's padding column and row repeat the picture's edge.
    pub(crate) fn copy_from_planes(
        &mut self,
        width: u32,
        height: u32,
        planes: [(&[u8], usize); 3],
    ) {
        self.resize(width, height);
        let (fw, fh) = (self.width as usize, self.height as usize);
        let (w, h) = (width as usize, height as usize);
        let luma = fw * fh;
        let (dy, duv) = self.data.split_at_mut(luma);
        let (du, dv) = duv.split_at_mut(luma / 4);
        let [(y, sy), (u, su), (v, sv)] = planes;
        copy_plane(y, sy, w, h, dy, fw, fh);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        copy_plane(u, su, cw, ch, du, fw / 2, fh / 2);
        copy_plane(v, sv, cw, ch, dv, fw / 2, fh / 2);
    }

    /// Makes this a copy of `other`, reusing this frame's buffer when the sizes match.
    pub fn copy_from(&mut self, other: &I420Frame) {
        if self.width == other.width && self.height == other.height {
            self.data.copy_from_slice(&other.data);
        } else {
            *self = other.clone();
        }
    }

    /// All three planes, contiguous (what codecs take).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Writes this frame at half its width and height into `out` (a 2×2 box filter; `out`
    /// is resized only if its size differs): the next simulcast layer down.
    pub fn downscale_half_into(&self, out: &mut I420Frame) {
        let (dw, dh) = (self.width / 2, self.height / 2);
        if out.width != dw.max(2).next_multiple_of(2) || out.height != dh.max(2).next_multiple_of(2)
        {
            *out = I420Frame::new(dw, dh);
        }
        let (sw, sh) = (self.width as usize, self.height as usize);
        let (dw, dh) = (out.width as usize, out.height as usize);
        let (src_y, src_uv) = self.data.split_at(sw * sh);
        let (src_u, src_v) = src_uv.split_at(sw * sh / 4);
        let (dst_y, dst_uv) = out.data.split_at_mut(dw * dh);
        let (dst_u, dst_v) = dst_uv.split_at_mut(dw * dh / 4);
        half_plane(src_y, sw, sh, dst_y, dw, dh);
        half_plane(src_u, sw / 2, sh / 2, dst_u, dw / 2, dh / 2);
        half_plane(src_v, sw / 2, sh / 2, dst_v, dw / 2, dh / 2);
    }
}

/// Averages 2×2 blocks; edges repeat the last row/column when the source is odd-sized.
fn half_plane(src: &[u8], sw: usize, sh: usize, dst: &mut [u8], dw: usize, dh: usize) {
    for (y, row) in dst.chunks_exact_mut(dw).take(dh).enumerate() {
        let r0 = (2 * y).min(sh - 1) * sw;
        let r1 = (2 * y + 1).min(sh - 1) * sw;
        for (x, out) in row.iter_mut().enumerate() {
            let (c0, c1) = ((2 * x).min(sw - 1), (2 * x + 1).min(sw - 1));
            let sum = u16::from(src[r0 + c0])
                + u16::from(src[r0 + c1])
                + u16::from(src[r1 + c0])
                + u16::from(src[r1 + c1]);
            *out = ((sum + 2) / 4) as u8;
        }
    }
}

/// Copies a `width × height` source plane (rows `stride` apart) into a `dw × dh` one. Reads
/// stop at the source's width, height and slice end (a decoder's slice may stop short of
/// its last row's padding); destination columns and rows beyond what was read repeat the
/// last ones read. A source with nothing to read leaves the destination as it was.
fn copy_plane(
    src: &[u8],
    stride: usize,
    width: usize,
    height: usize,
    dst: &mut [u8],
    dw: usize,
    dh: usize,
) {
    let cols = width.min(dw);
    let mut rows = 0usize;
    if cols > 0 {
        for out in dst.chunks_exact_mut(dw).take(height.min(dh)) {
            let line = rows
                .checked_mul(stride)
                .and_then(|start| src.get(start..start.checked_add(cols)?));
            let Some(line) = line else {
                break;
            };
            out[..cols].copy_from_slice(line);
            out[cols..].fill(line[cols - 1]);
            rows += 1;
        }
    }
    if rows == 0 {
        return;
    }
    let (done, rest) = dst.split_at_mut(rows * dw);
    let last = &done[(rows - 1) * dw..];
    for out in rest.chunks_exact_mut(dw).take(dh - rows) {
        out.copy_from_slice(last);
    }
}

/// Where a published camera's frames come from: a device (media issue) or synthetic.
pub trait VideoSource: Send + 'static {
    /// Waits for the next frame and writes it into `frame` (reallocating only if the size
    /// changed).
    fn next_frame(
        &mut self,
        frame: &mut I420Frame,
    ) -> impl std::future::Future<Output = Result<(), SourceEnded>> + Send;

    /// The camera was turned off (`false`: release the device, so its light goes off) or
    /// on again. Called by the engine when the published track is disabled or enabled.
    fn set_active(&mut self, active: bool) {
        let _ = active;
    }
}

/// Where a remote camera's decoded frames go (a window's texture, a test checker).
pub trait VideoSink: Send + 'static {
    fn show(&mut self, frame: &I420Frame, at: Instant);

    /// Packets of the track were lost before the frame about to be shown (or skipped):
    /// called once per gap, with how many packets it held.
    fn packets_lost(&mut self, _packets: u16) {}

    /// A keyframe was asked of the sender (after a loss or a decode error).
    fn keyframe_requested(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder's planes as `copy_from_planes` takes them: rows of `row(y)`, `stride`
    /// apart, the slice ending right after the last row's samples.
    fn plane(width: usize, height: usize, stride: usize, row: impl Fn(usize) -> u8) -> Vec<u8> {
        let mut data = vec![0xee; (height - 1) * stride + width];
        for y in 0..height {
            for x in 0..width {
                data[y * stride + x] = row(y) + x as u8;
            }
        }
        data
    }

    #[test]
    fn odd_pictures_are_copied_within_their_planes_and_repeat_their_edge() {
        // 5×3: the frame is 6×4; chroma 3×2 fills its 3×2 planes exactly.
        let y = plane(5, 3, 8, |r| 10 * r as u8);
        let (u, v) = (plane(3, 2, 4, |r| 100 + r as u8), plane(3, 2, 4, |_| 200));
        let mut frame = I420Frame::new(2, 2);
        frame.copy_from_planes(5, 3, [(&y, 8), (&u, 4), (&v, 4)]);
        assert_eq!((frame.width(), frame.height()), (6, 4));
        let luma: Vec<&[u8]> = frame.y().chunks_exact(6).collect();
        assert_eq!(luma[0], &[0, 1, 2, 3, 4, 4]);
        assert_eq!(luma[2], &[20, 21, 22, 23, 24, 24]);
        assert_eq!(luma[3], luma[2]);
        assert_eq!(&frame.as_bytes()[24..30], &[100, 101, 102, 101, 102, 103]);
        assert_eq!(&frame.as_bytes()[30..], &[200, 201, 202, 200, 201, 202]);

        // The same size again: the buffer is reused, not reallocated.
        let at = frame.as_bytes().as_ptr();
        frame.copy_from_planes(5, 3, [(&y, 8), (&u, 4), (&v, 4)]);
        assert_eq!(frame.as_bytes().as_ptr(), at);

        // A slice cut short (as OpenH264's chroma slices of odd heights are) and empty
        // ones: the rows there are copied, the rest repeat the last; nothing panics.
        let mut frame = I420Frame::new(4, 4);
        let y = plane(4, 4, 4, |r| 10 * r as u8);
        frame.copy_from_planes(4, 4, [(&y[..13], 4), (&[], 2), (&u[..1], 2)]);
        let luma: Vec<&[u8]> = frame.y().chunks_exact(4).collect();
        assert_eq!(luma[2], &[20, 21, 22, 23]);
        assert_eq!(luma[3], luma[2]);
        assert_eq!(
            &frame.as_bytes()[16..20],
            &[128; 4],
            "no source: left as it was"
        );
        assert_eq!(
            &frame.as_bytes()[20..],
            &[128; 4],
            "a row cut short is not read"
        );
    }

    #[test]
    fn halving_averages_blocks_and_keeps_stamps_readable() {
        let mut big = I420Frame::new(8, 4);
        big.y_mut()[..8].copy_from_slice(&[0, 4, 10, 10, 200, 100, 7, 7]);
        big.y_mut()[8..16].copy_from_slice(&[4, 0, 10, 10, 0, 100, 7, 9]);
        let mut half = I420Frame::new(2, 2);
        big.downscale_half_into(&mut half);
        assert_eq!((half.width(), half.height()), (4, 2));
        assert_eq!(&half.y()[..4], &[2, 10, 100, 8]);

        let mut frame = I420Frame::new(1280, 720);
        let stamp = crate::synthetic_video::VideoStamp {
            frame: 77,
            captured_unix_ms: 123_456,
        };
        crate::synthetic_video::draw(&mut frame, stamp);
        let (mut h, mut q) = (I420Frame::new(2, 2), I420Frame::new(2, 2));
        frame.downscale_half_into(&mut h);
        h.downscale_half_into(&mut q);
        assert_eq!((q.width(), q.height()), (320, 180));
        assert_eq!(crate::synthetic_video::read(&q), Some(stamp));
    }
}
