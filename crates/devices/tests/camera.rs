//! The camera path without a camera (this machine has none and cannot make a virtual one):
//! nokhwa for real (listing, opening what does not exist), recorded frames of each format
//! through the capture thread, the synthetic camera, off/on and a camera that vanishes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use estrade_devices::camera::{
    CameraBackend, CameraDevice, CameraError, CameraFormat, CameraId, CameraInfo, CameraRequest,
    CameraSource, CameraState, NativeCameras, SyntheticCamera,
};
use estrade_media::synthetic_video;
use estrade_media::{I420Frame, PixelFormat, VideoSource};

fn fixture(name: &str) -> Vec<u8> {
    // At run time, as in the media crate's tests (pixel_formats.rs says why).
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test");
    let path = format!("{dir}/../media/tests/fixtures/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn nokhwa_lists_no_camera_here_and_opening_one_is_a_typed_error() {
    let native: Arc<dyn CameraBackend> = Arc::new(NativeCameras);
    let cameras = native.list().expect("listing works without cameras");
    assert!(
        cameras.is_empty() || std::path::Path::new("/dev/video0").exists(),
        "{cameras:?}"
    );
    match CameraSource::open(
        native,
        CameraId("native:0".into()),
        CameraRequest::default(),
    ) {
        Err(e @ CameraError::Open { .. }) => assert_eq!(e.code(), "camera_open_failed"),
        Err(other) => panic!("expected an open error, got {other:?}"),
        Ok(_) => panic!("there is no camera 0 here"),
    }
    let unknown = CameraSource::open(
        Arc::new(NativeCameras),
        CameraId("native:nope".into()),
        CameraRequest::default(),
    );
    assert!(matches!(unknown, Err(CameraError::NotFound(_))));
}

/// A recorded camera: serves one fixture frame of `pixel` again and again, at 100 fps,
/// and vanishes after `frames` (as when unplugged).
struct Recorded {
    pixel: PixelFormat,
    data: Vec<u8>,
    frames: usize,
    opened: Arc<AtomicUsize>,
}

impl CameraBackend for Recorded {
    fn list(&self) -> Result<Vec<CameraInfo>, CameraError> {
        Ok(vec![])
    }

    fn open(&self, _: &CameraId, _: CameraRequest) -> Result<Box<dyn CameraDevice>, CameraError> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(Replay {
            format: CameraFormat {
                width: 64,
                height: 48,
                fps: 100,
                pixel: self.pixel,
            },
            data: self.data.clone(),
            left: self.frames,
        }))
    }
}

struct Replay {
    format: CameraFormat,
    data: Vec<u8>,
    left: usize,
}

impl CameraDevice for Replay {
    fn format(&self) -> CameraFormat {
        self.format
    }

    fn next_frame(&mut self, frame: &mut dyn FnMut(&[u8])) -> Result<(), CameraError> {
        std::thread::sleep(Duration::from_millis(10));
        if self.left == 0 {
            return Err(CameraError::Lost {
                camera: CameraId("recorded".into()),
                reason: "unplugged".into(),
            });
        }
        self.left -= 1;
        frame(&self.data);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_frames_of_each_format_reach_the_encoder_and_the_preview_as_i420() {
    let reference = fixture("pattern.i420");
    for (pixel, file, tolerance) in [
        (PixelFormat::Yuyv, "pattern.yuyv", 1),
        (PixelFormat::Nv12, "pattern.nv12", 0),
        (PixelFormat::Rgb24, "pattern.ppm", 2),
        (PixelFormat::Mjpeg, "pattern.jpg", 12),
    ] {
        let mut data = fixture(file);
        if file.ends_with(".ppm") {
            data.drain(..data.len() - 64 * 48 * 3); // the header
        }
        let backend = Arc::new(Recorded {
            pixel,
            data,
            frames: 1000,
            opened: Arc::default(),
        });
        let mut camera = CameraSource::open(
            backend,
            CameraId("recorded".into()),
            CameraRequest::default(),
        )
        .unwrap();
        assert_eq!(camera.format().pixel, pixel);
        let mut frame = I420Frame::new(2, 2);
        tokio::time::timeout(Duration::from_secs(5), camera.next_frame(&mut frame))
            .await
            .expect("a frame")
            .unwrap();
        assert_eq!((frame.width(), frame.height()), (64, 48));
        let luma_off = frame.as_bytes()[..64 * 48]
            .iter()
            .zip(&reference[..64 * 48])
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(luma_off <= tolerance, "{pixel:?}: luma off by {luma_off}");
        let mut preview = camera.preview();
        let mut shown = I420Frame::new(2, 2);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            preview.latest(&mut shown),
            "{pixel:?}: the preview has a frame"
        );
        assert!(
            !preview.latest(&mut shown),
            "and says when there is nothing newer"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_off_closes_the_device_on_opens_it_and_a_vanished_camera_ends_the_source() {
    let opened = Arc::new(AtomicUsize::new(0));
    let backend = Arc::new(Recorded {
        pixel: PixelFormat::Yuyv,
        data: fixture("pattern.yuyv"),
        frames: 30,
        opened: opened.clone(),
    });
    let mut camera = CameraSource::open(
        backend,
        CameraId("recorded".into()),
        CameraRequest::default(),
    )
    .unwrap();
    let state = camera.state();
    let mut frame = I420Frame::new(2, 2);
    camera.next_frame(&mut frame).await.unwrap();
    camera.set_active(false);
    assert_eq!(*state.borrow(), CameraState::Off);
    let waited =
        tokio::time::timeout(Duration::from_millis(200), camera.next_frame(&mut frame)).await;
    assert!(waited.is_err(), "no frames while off");
    camera.set_active(true);
    assert_eq!(opened.load(Ordering::SeqCst), 2, "opened again");
    assert!(matches!(*state.borrow(), CameraState::Running(_)));
    camera.next_frame(&mut frame).await.unwrap();
    // This device dies after 30 frames: the source ends with the reason.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Err(e) = camera.next_frame(&mut frame).await {
                return e;
            }
        }
    })
    .await
    .expect("the source ends");
    assert!(ended.0.contains("unplugged"), "{ended}");
    assert!(
        matches!(
            &*state.borrow(),
            CameraState::Failed {
                code: "camera_lost",
                ..
            }
        ),
        "{:?}",
        *state.borrow()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_synthetic_camera_is_a_device_whose_frames_carry_their_stamps() {
    let listed = SyntheticCamera.list().unwrap();
    assert_eq!(listed[0].id.as_str(), CameraId::SYNTHETIC);
    let request = CameraRequest {
        width: 640,
        height: 360,
        fps: 30,
    };
    let mut camera =
        CameraSource::open(Arc::new(SyntheticCamera), listed[0].id.clone(), request).unwrap();
    assert_eq!(
        camera.format(),
        CameraFormat {
            width: 640,
            height: 360,
            fps: 30,
            pixel: PixelFormat::I420
        }
    );
    let mut frame = I420Frame::new(2, 2);
    let mut counters = Vec::new();
    for _ in 0..10 {
        camera.next_frame(&mut frame).await.unwrap();
        counters.push(synthetic_video::read(&frame).expect("a stamp").frame);
    }
    assert!(counters.windows(2).all(|w| w[1] > w[0]), "{counters:?}");
}
