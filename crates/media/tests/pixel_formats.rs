//! Every camera format the converter accepts, against a reference: the fixtures are one test
//! picture as a camera delivers it in each format (`scripts/camera-fixtures.py`); the
//! reference I420 is computed here from its RGB with the BT.601 limited-range formulas.

use estrade_media::I420Frame;
use estrade_media::pixel::{FrameConverter, PixelFormat};

const W: u32 = 64;
const H: u32 = 48;

fn fixture(name: &str) -> Vec<u8> {
    // At run time: a test binary built in another checkout sharing the target directory
    // (cargo fingerprints workspace paths relatively) would look in that checkout.
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test");
    let path = format!("{dir}/tests/fixtures/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The pixels of a binary PPM (P6, 8-bit).
fn ppm(name: &str) -> Vec<u8> {
    let data = fixture(name);
    let header = format!("P6\n{W} {H}\n255\n");
    assert!(data.starts_with(header.as_bytes()), "{name}: a {W}x{H} P6");
    data[header.len()..].to_vec()
}

/// RGB → BT.601 limited-range I420 (chroma averaged per 2×2 block), in floating point.
fn reference(rgb: &[u8]) -> Vec<u8> {
    let (w, h) = (W as usize, H as usize);
    let yuv: Vec<(f64, f64, f64)> = rgb
        .chunks_exact(3)
        .map(|p| {
            let (r, g, b) = (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
            (
                16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0,
                128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0,
                128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0,
            )
        })
        .collect();
    let mut out: Vec<u8> = yuv.iter().map(|p| p.0.round() as u8).collect();
    for chroma in [1, 2] {
        for cy in 0..h / 2 {
            for cx in 0..w / 2 {
                let sum: f64 = [(0, 0), (0, 1), (1, 0), (1, 1)]
                    .iter()
                    .map(|(dy, dx)| {
                        let p = yuv[(2 * cy + dy) * w + 2 * cx + dx];
                        if chroma == 1 { p.1 } else { p.2 }
                    })
                    .sum();
                out.push((sum / 4.0).round() as u8);
            }
        }
    }
    out
}

/// Peak signal-to-noise ratio of each plane (Y, U, V) and the largest luma difference.
fn compare(got: &I420Frame, want: &[u8]) -> ([f64; 3], u8) {
    let n = (W * H) as usize;
    let got = got.as_bytes();
    assert_eq!(got.len(), want.len());
    let planes = [(0, n), (n, n + n / 4), (n + n / 4, n + n / 2)];
    let psnr = planes.map(|(a, b)| {
        let mse: f64 = got[a..b]
            .iter()
            .zip(&want[a..b])
            .map(|(&g, &w)| (f64::from(g) - f64::from(w)).powi(2))
            .sum::<f64>()
            / (b - a) as f64;
        if mse == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (255.0 * 255.0 / mse).log10()
        }
    });
    let max_luma = got[..n]
        .iter()
        .zip(&want[..n])
        .map(|(&g, &w)| g.abs_diff(w))
        .max()
        .unwrap_or(0);
    (psnr, max_luma)
}

#[test]
fn every_format_converts_to_the_reference_picture() {
    let rgb = ppm("pattern.ppm");
    let want = reference(&rgb);
    let mut converter = FrameConverter::new();
    // (format, data, lowest PSNR per plane in dB, largest luma difference)
    let cases = [
        (PixelFormat::Rgb24, rgb.clone(), 45.0, 1),
        (PixelFormat::Bgr24, fixture("pattern.bgr"), 45.0, 1),
        (PixelFormat::I420, fixture("pattern.i420"), 50.0, 1),
        (PixelFormat::Nv12, fixture("pattern.nv12"), 50.0, 1),
        // 4:2:2 to 4:2:0 averages each pair of rows' chroma (rounded twice).
        (PixelFormat::Yuyv, fixture("pattern.yuyv"), 45.0, 1),
        (PixelFormat::Gray, fixture("pattern.gray"), 0.0, 1),
    ];
    for (format, data, min_psnr, max_luma) in cases {
        let mut out = I420Frame::new(2, 2);
        converter
            .convert(format, W, H, &data, &mut out)
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!((out.width(), out.height()), (W, H));
        let (psnr, luma) = compare(&out, &want);
        eprintln!("{format:?}: PSNR Y/U/V {psnr:.1?} dB, largest luma difference {luma}");
        assert!(luma <= max_luma, "{format:?}: luma off by {luma}");
        if format == PixelFormat::Gray {
            let (_, uv) = out.as_bytes().split_at((W * H) as usize);
            assert!(uv.iter().all(|&c| c == 128), "grey has neutral chroma");
        } else {
            assert!(psnr.iter().all(|&p| p >= min_psnr), "{format:?}: {psnr:?}");
        }
    }
}

#[test]
fn mjpeg_decodes_to_what_a_reference_decoder_sees() {
    // ImageMagick's decoding of the same JPEG is the oracle (different IDCT and chroma
    // upsampling: close, not identical).
    let want = reference(&ppm("pattern-jpg.ppm"));
    let mut out = I420Frame::new(2, 2);
    FrameConverter::new()
        .convert(PixelFormat::Mjpeg, W, H, &fixture("pattern.jpg"), &mut out)
        .unwrap();
    let (psnr, luma) = compare(&out, &want);
    eprintln!("MJPEG: PSNR Y/U/V {psnr:.1?} dB, largest luma difference {luma}");
    assert!(psnr[0] >= 40.0, "{psnr:?}");
    assert!(psnr[1] >= 34.0 && psnr[2] >= 34.0, "{psnr:?}");
    // And against the original picture, the JPEG's own loss.
    let (original, _) = compare(&out, &reference(&ppm("pattern.ppm")));
    assert!(original[0] >= 30.0, "{original:?}");
}

#[test]
fn a_camera_buffer_longer_than_the_frame_is_fine_and_sizes_follow_the_frame() {
    let mut data = fixture("pattern.yuyv");
    data.extend_from_slice(&[0xaa; 4096]); // a mapped buffer's tail
    let mut out = I420Frame::new(1280, 720);
    FrameConverter::new()
        .convert(PixelFormat::Yuyv, W, H, &data, &mut out)
        .unwrap();
    assert_eq!((out.width(), out.height()), (W, H));
}
