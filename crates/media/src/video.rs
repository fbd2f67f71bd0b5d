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

    /// All three planes, contiguous (what codecs take).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data
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
}

/// Where a remote camera's decoded frames go (a window's texture, a test checker).
pub trait VideoSink: Send + 'static {
    fn show(&mut self, frame: &I420Frame, at: Instant);
}
