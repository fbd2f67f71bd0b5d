//! The synthetic camera: the stamped test pattern (frame counter and capture time, readable
//! after encoding) as a device, at the size and rate asked for, through the same capture
//! thread as a real camera. Listed beside real cameras, like Chromium's fake device.

use std::time::{Duration, Instant};

use estrade_media::synthetic::unix_us_now;
use estrade_media::synthetic_video::{VideoStamp, draw_background, draw_stamp};
use estrade_media::{I420Frame, PixelFormat};

use super::{
    CameraBackend, CameraDevice, CameraError, CameraFormat, CameraId, CameraInfo, CameraRequest,
};

#[derive(Debug, Default, Clone, Copy)]
pub struct SyntheticCamera;

impl CameraBackend for SyntheticCamera {
    fn list(&self) -> Result<Vec<CameraInfo>, CameraError> {
        Ok(vec![CameraInfo {
            id: CameraId(CameraId::SYNTHETIC.into()),
            name: "Test pattern (Estrade)".into(),
            description: "synthetic".into(),
        }])
    }

    fn open(
        &self,
        id: &CameraId,
        request: CameraRequest,
    ) -> Result<Box<dyn CameraDevice>, CameraError> {
        if id.0 != CameraId::SYNTHETIC {
            return Err(CameraError::NotFound(id.clone()));
        }
        let (width, height) = (
            request.width.clamp(16, 3840) & !1,
            request.height.clamp(16, 2160) & !1,
        );
        let fps = request.fps.clamp(1, 60);
        Ok(Box::new(Pattern {
            frame: I420Frame::new(width, height),
            format: CameraFormat {
                width,
                height,
                fps,
                pixel: PixelFormat::I420,
            },
            interval: Duration::from_secs(1) / fps,
            next_at: None,
            counter: 0,
        }))
    }
}

struct Pattern {
    frame: I420Frame,
    format: CameraFormat,
    interval: Duration,
    next_at: Option<Instant>,
    counter: u32,
}

impl CameraDevice for Pattern {
    fn format(&self) -> CameraFormat {
        self.format
    }

    fn next_frame(&mut self, frame: &mut dyn FnMut(&[u8])) -> Result<(), CameraError> {
        let at = *self.next_at.get_or_insert_with(Instant::now);
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        // Late: skip ahead rather than burst, as a camera drops frames.
        let now = Instant::now();
        self.next_at = Some(if now > at + self.interval {
            now + self.interval
        } else {
            at + self.interval
        });
        draw_background(&mut self.frame, self.counter);
        draw_stamp(
            &mut self.frame,
            VideoStamp {
                frame: self.counter & 0xff_ffff,
                captured_unix_ms: (unix_us_now() / 1000) & 0xff_ffff_ffff,
            },
        );
        self.counter = self.counter.wrapping_add(1);
        frame(self.frame.as_bytes());
        Ok(())
    }
}
