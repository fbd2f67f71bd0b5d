//! Which of a camera's formats to use: the size and rate asked for if offered, else the
//! nearest above (scaled down later costs less than a blurry upscale), else the largest;
//! among equals, the pixel format cheapest to convert that still reaches the frame rate
//! (USB 2 webcams send 720p30 only as MJPEG). Pure: tested without a camera.

use estrade_media::PixelFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CameraFormat {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub pixel: PixelFormat,
}

/// What a role wants from its camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraRequest {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl Default for CameraRequest {
    /// 720p30: trainers and co-trainers.
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            fps: 30,
        }
    }
}

/// Conversion cost rank: lower is cheaper.
fn cost(pixel: PixelFormat) -> u32 {
    match pixel {
        PixelFormat::I420 => 0,
        PixelFormat::Nv12 => 1,
        PixelFormat::Yuyv => 2,
        PixelFormat::Gray => 3,
        PixelFormat::Rgb24 | PixelFormat::Bgr24 => 4,
        PixelFormat::Mjpeg => 5,
        _ => 9,
    }
}

/// The format to open, or `None` if nothing offered is usable (odd sizes, zero rates).
pub fn choose_format(offered: &[CameraFormat], want: CameraRequest) -> Option<CameraFormat> {
    let usable = offered
        .iter()
        .filter(|f| f.width >= 2 && f.height >= 2 && f.width % 2 == 0 && f.height % 2 == 0)
        .filter(|f| f.fps > 0);
    let pixels = |f: &CameraFormat| u64::from(f.width) * u64::from(f.height);
    let wanted = u64::from(want.width) * u64::from(want.height);
    // Size first: exact, then the smallest above, then the largest below.
    let size_rank = |f: &CameraFormat| -> (u8, u64) {
        let p = pixels(f);
        if f.width == want.width && f.height == want.height {
            (0, 0)
        } else if p >= wanted {
            (1, p - wanted)
        } else {
            (2, wanted - p)
        }
    };
    // Then the rate: reaching the wanted one, then the closest.
    let fps_rank = |f: &CameraFormat| -> (u8, u32) {
        if f.fps >= want.fps {
            (0, f.fps - want.fps)
        } else {
            (1, want.fps - f.fps)
        }
    };
    usable
        .min_by_key(|f| (size_rank(f), fps_rank(f), cost(f.pixel)))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(width: u32, height: u32, fps: u32, pixel: PixelFormat) -> CameraFormat {
        CameraFormat {
            width,
            height,
            fps,
            pixel,
        }
    }

    #[test]
    fn a_usb2_webcam_gives_720p30_in_mjpeg_not_yuyv_at_10_fps() {
        let offered = [
            f(640, 480, 30, PixelFormat::Yuyv),
            f(1280, 720, 10, PixelFormat::Yuyv),
            f(1280, 720, 30, PixelFormat::Mjpeg),
            f(1920, 1080, 30, PixelFormat::Mjpeg),
        ];
        assert_eq!(
            choose_format(&offered, CameraRequest::default()),
            Some(f(1280, 720, 30, PixelFormat::Mjpeg))
        );
        // 480p30 asked: YUYV reaches it and costs less than MJPEG.
        let small = CameraRequest {
            width: 640,
            height: 480,
            fps: 30,
        };
        assert_eq!(
            choose_format(&offered, small),
            Some(f(640, 480, 30, PixelFormat::Yuyv))
        );
    }

    #[test]
    fn falls_back_to_the_nearest_size_above_then_the_largest_below() {
        let above = [
            f(640, 480, 30, PixelFormat::Yuyv),
            f(1920, 1080, 30, PixelFormat::Nv12),
            f(3840, 2160, 30, PixelFormat::Nv12),
        ];
        assert_eq!(
            choose_format(&above, CameraRequest::default()),
            Some(f(1920, 1080, 30, PixelFormat::Nv12))
        );
        let below = [
            f(320, 240, 30, PixelFormat::Yuyv),
            f(640, 480, 15, PixelFormat::Yuyv),
        ];
        assert_eq!(
            choose_format(&below, CameraRequest::default()),
            Some(f(640, 480, 15, PixelFormat::Yuyv))
        );
    }

    #[test]
    fn nothing_usable_is_none() {
        assert_eq!(choose_format(&[], CameraRequest::default()), None);
        let odd = [
            f(1279, 719, 30, PixelFormat::Yuyv),
            f(1280, 720, 0, PixelFormat::Yuyv),
        ];
        assert_eq!(choose_format(&odd, CameraRequest::default()), None);
    }
}
