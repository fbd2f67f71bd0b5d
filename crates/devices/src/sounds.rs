//! Sounds the app plays itself.

use std::sync::Arc;

use estrade_media::{FRAME_SAMPLES, OpusDecoder};

/// The speaker test: a voice saying "Bonjour ! Ceci est le test du haut-parleur…" (6.6 s,
/// made by scripts/speaker-test-sound.sh). Speech, because the echo canceller learns the
/// room from it during the pre-join: measured, a chime or a plucked melody left the delay
/// estimate 300 ms off and removed 5-12 dB; speech 30-45 dB within two seconds.
const SPEAKER_TEST: &[u8] = include_bytes!("../assets/speaker-test.opus");

/// The speaker test decoded: 48 kHz mono, −1.0..=1.0.
pub fn speaker_test() -> Arc<[f32]> {
    decode_clip(SPEAKER_TEST)
}

/// Packets as `opus_clip` writes them: a u16 length, then the packet. A truncated clip
/// ends where it breaks.
fn decode_clip(mut clip: &[u8]) -> Arc<[f32]> {
    let Ok(mut decoder) = OpusDecoder::new() else {
        return Arc::from([]);
    };
    let mut out = Vec::with_capacity(clip.len() * 40);
    let mut pcm = [0i16; FRAME_SAMPLES];
    while let [a, b, rest @ ..] = clip {
        let n = usize::from(u16::from_le_bytes([*a, *b]));
        let Some((packet, rest)) = rest.split_at_checked(n) else {
            break;
        };
        if decoder.decode(packet, &mut pcm).is_err() {
            break;
        }
        out.extend(pcm.iter().map(|&s| f32::from(s) / 32_768.0));
        clip = rest;
    }
    out.into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_speaker_test_is_a_few_seconds_of_sound_that_never_clips() {
        let sound = super::speaker_test();
        assert!(
            (6.0..8.0).contains(&(sound.len() as f32 / 48_000.0)),
            "{}",
            sound.len()
        );
        let peak = sound.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.3 && peak < 0.9, "{peak}");
        assert!(
            super::decode_clip(&[5, 0, 1]).is_empty(),
            "a truncated clip is empty"
        );
    }
}
