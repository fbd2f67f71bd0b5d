//! Encodes a clip for the app to ship (the speaker test sound): raw 48 kHz mono s16le in,
//! 20 ms Opus packets out, each preceded by its length (u16, little endian). 32 kb/s:
//! about 4 kB a second. Used by scripts/speaker-test-sound.sh.

use estrade_media::{FRAME_SAMPLES, MAX_PACKET, OpusEncoder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output] = args.as_slice() else {
        return Err("usage: opus_clip IN.raw OUT.opus".into());
    };
    let raw = std::fs::read(input)?;
    let samples: Vec<i16> = raw
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let mut encoder = OpusEncoder::new()?;
    let mut out = Vec::new();
    let mut packet = [0u8; MAX_PACKET];
    for chunk in samples.chunks(FRAME_SAMPLES) {
        let mut frame = [0i16; FRAME_SAMPLES];
        frame[..chunk.len()].copy_from_slice(chunk);
        let n = encoder.encode(&frame, &mut packet)?;
        out.extend_from_slice(&(n as u16).to_le_bytes());
        out.extend_from_slice(&packet[..n]);
    }
    std::fs::write(output, &out)?;
    eprintln!(
        "{} frames, {} bytes",
        samples.len().div_ceil(FRAME_SAMPLES),
        out.len()
    );
    Ok(())
}
