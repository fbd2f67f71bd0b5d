//! A synthetic camera whose pictures carry their frame number and capture time, readable
//! after lossy coding and at every simulcast size: 72 big black-or-white cells (24-bit
//! frame counter, 40-bit Unix milliseconds, CRC-8) in the top-left corner, over a moving
//! gradient that gives the encoder real work. A receiver reads them back to check order,
//! resolution and glass-to-glass latency.

use std::time::{Duration, Instant};

use crate::audio::SourceEnded;
use crate::synthetic::unix_us_now;
use crate::video::{I420Frame, VideoSource};

const COLS: u32 = 12;
const ROWS: u32 = 6;
const BITS: u32 = COLS * ROWS;
const WHITE: u8 = 235;
const BLACK: u8 = 16;

/// What a test-pattern frame says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoStamp {
    /// Frame counter modulo 2^24.
    pub frame: u32,
    /// Capture time, Unix milliseconds modulo 2^40.
    pub captured_unix_ms: u64,
}

/// Cells are 1/40 of the width: 32 px at 1280, 8 px at 320.
fn cell_size(width: u32) -> u32 {
    (width / 40).max(4)
}

/// CRC-8 (poly 0x07) with a non-zero start, so an all-black picture is not a valid stamp.
fn crc8(mut v: u64) -> u8 {
    let mut crc = 0xa5u8;
    for _ in 0..8 {
        crc ^= (v & 0xff) as u8;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
        v >>= 8;
    }
    crc
}

fn payload(stamp: VideoStamp) -> u128 {
    let data =
        (u64::from(stamp.frame & 0xff_ffff) << 40) | (stamp.captured_unix_ms & 0xff_ffff_ffff);
    (u128::from(data) << 8) | u128::from(crc8(data))
}

/// Draws the background for frame `n` and the stamp over it.
pub fn draw(frame: &mut I420Frame, stamp: VideoStamp) {
    draw_background(frame, stamp.frame);
    draw_stamp(frame, stamp);
}

/// A diagonal gradient moving 4 px per frame: motion everywhere, as a camera has.
pub fn draw_background(frame: &mut I420Frame, n: u32) {
    let w = frame.width();
    let shift = n.wrapping_mul(4);
    for (row, line) in frame.y_mut().chunks_exact_mut(w as usize).enumerate() {
        for (x, px) in line.iter_mut().enumerate() {
            *px = 40 + ((x as u32 + row as u32 + shift) % 160) as u8;
        }
    }
    let (u, v) = frame.uv_mut();
    u.fill(110);
    v.fill(140);
}

/// The 72 cells; draw them last, right after taking the capture time.
pub fn draw_stamp(frame: &mut I420Frame, stamp: VideoStamp) {
    let (w, h) = (frame.width(), frame.height());
    let bits = payload(stamp);
    let cell = cell_size(w);
    for i in 0..BITS {
        let on = (bits >> (BITS - 1 - i)) & 1 == 1;
        let (cx, cy) = (cell * (1 + i % COLS), cell * (1 + i / COLS));
        for y in cy..(cy + cell).min(h) {
            let start = (y * w + cx) as usize;
            let end = (y * w + (cx + cell).min(w)) as usize;
            frame.y_mut()[start..end].fill(if on { WHITE } else { BLACK });
        }
    }
}

/// Reads the stamp back; `None` if the cells are unreadable or the CRC disagrees.
pub fn read(frame: &I420Frame) -> Option<VideoStamp> {
    let (w, h) = (frame.width(), frame.height());
    let cell = cell_size(w);
    if cell * (COLS + 1) > w || cell * (ROWS + 1) > h {
        return None;
    }
    let y = frame.y();
    let mut bits: u128 = 0;
    for i in 0..BITS {
        let (cx, cy) = (cell * (1 + i % COLS), cell * (1 + i / COLS));
        // The centre half of the cell: its edges blur under compression and scaling.
        let (x0, y0, side) = (cx + cell / 4, cy + cell / 4, (cell / 2).max(1));
        let mut sum = 0u32;
        for yy in y0..y0 + side {
            for xx in x0..x0 + side {
                sum += u32::from(y[(yy * w + xx) as usize]);
            }
        }
        bits = (bits << 1) | u128::from(sum / (side * side) > 128);
    }
    let data = (bits >> 8) as u64;
    (crc8(data) == (bits & 0xff) as u8).then_some(VideoStamp {
        frame: (data >> 40) as u32,
        captured_unix_ms: data & 0xff_ffff_ffff,
    })
}

/// A camera at `fps` drawing the stamped pattern.
pub struct TestPattern {
    width: u32,
    height: u32,
    interval: Duration,
    counter: u32,
    next_at: Option<Instant>,
}

impl TestPattern {
    pub fn new(width: u32, height: u32, fps: u32) -> Self {
        Self {
            width,
            height,
            interval: Duration::from_secs(1) / fps.max(1),
            counter: 0,
            next_at: None,
        }
    }
}

impl VideoSource for TestPattern {
    async fn next_frame(&mut self, frame: &mut I420Frame) -> Result<(), SourceEnded> {
        let at = *self.next_at.get_or_insert_with(Instant::now);
        tokio::time::sleep_until(at.into()).await;
        let now = Instant::now();
        // Late (busy machine): skip ahead instead of bursting frames.
        self.next_at = Some(if now > at + self.interval {
            now + self.interval
        } else {
            at + self.interval
        });
        if frame.width() != self.width || frame.height() != self.height {
            *frame = I420Frame::new(self.width, self.height);
        }
        // The capture time is taken once the picture exists, as a camera's would be.
        draw_background(frame, self.counter);
        draw_stamp(
            frame,
            VideoStamp {
                frame: self.counter & 0xff_ffff,
                captured_unix_ms: unix_us_now() / 1000,
            },
        );
        self.counter = self.counter.wrapping_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Box-filter downscale, as a simulcast layer or a lossy path would blur it.
    fn downscale(f: &I420Frame, by: u32) -> I420Frame {
        let mut out = I420Frame::new(f.width() / by, f.height() / by);
        let (w, ow) = (f.width(), out.width());
        for oy in 0..out.height() {
            for ox in 0..ow {
                let mut s = 0u32;
                for dy in 0..by {
                    for dx in 0..by {
                        s += u32::from(f.y()[((oy * by + dy) * w + ox * by + dx) as usize]);
                    }
                }
                out.y_mut()[(oy * ow + ox) as usize] = (s / (by * by)) as u8;
            }
        }
        out
    }

    #[test]
    fn the_stamp_reads_back_at_every_simulcast_size_and_with_noise() {
        let stamp = VideoStamp {
            frame: 0xab_cdef,
            captured_unix_ms: 1_795_297_020_250 & 0xff_ffff_ffff,
        };
        for (w, h) in [(1280, 720), (640, 360), (320, 180)] {
            let mut f = I420Frame::new(w, h);
            draw(&mut f, stamp);
            assert_eq!(read(&f), Some(stamp), "{w}x{h}");
        }
        let mut f = I420Frame::new(1280, 720);
        draw(&mut f, stamp);
        assert_eq!(read(&downscale(&f, 4)), Some(stamp), "720p scaled to 180p");
        // ±40 of noise on every pixel (heavy compression) still reads.
        let mut x: u32 = 7;
        for p in f.y_mut() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *p = (i32::from(*p) + (x >> 16) as i32 % 81 - 40).clamp(0, 255) as u8;
        }
        assert_eq!(read(&f), Some(stamp));
    }

    #[test]
    fn a_frame_without_a_stamp_is_none_not_garbage() {
        assert_eq!(read(&I420Frame::new(1280, 720)), None, "all black");
        let mut f = I420Frame::new(1280, 720);
        f.y_mut().fill(200);
        assert_eq!(read(&f), None, "all white");
        assert_eq!(read(&I420Frame::new(64, 16)), None, "too small");
        let mut f = I420Frame::new(640, 360);
        draw(
            &mut f,
            VideoStamp {
                frame: 1,
                captured_unix_ms: 2,
            },
        );
        assert!(read(&f).is_some());
        // Flip the first cell (black ↔ white): a single wrong bit, which CRC-8 always catches.
        let cell = cell_size(640) as usize;
        let flipped = if f.y()[cell * 640 + cell] > 128 {
            BLACK
        } else {
            WHITE
        };
        for y in cell..2 * cell {
            f.y_mut()[y * 640 + cell..y * 640 + 2 * cell].fill(flipped);
        }
        assert_eq!(read(&f), None, "one flipped cell is caught");
    }

    #[tokio::test(start_paused = true)]
    async fn the_test_pattern_counts_frames() {
        let mut cam = TestPattern::new(320, 180, 30);
        let mut f = I420Frame::new(2, 2);
        let mut seen = Vec::new();
        for _ in 0..5 {
            cam.next_frame(&mut f).await.unwrap();
            seen.push(read(&f).unwrap().frame);
        }
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        assert_eq!((f.width(), f.height()), (320, 180));
    }
}
