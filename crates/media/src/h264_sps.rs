//! Just enough of an H.264 sequence parameter set (ITU-T H.264 §7.3.2.1.1) to know the
//! picture size it announces before OpenH264 allocates for it. Remote input: every read is
//! bounds-checked and anything unexpected is `None`, never a panic.

/// Profiles whose SPS carries chroma format, bit depths and scaling matrices (§7.3.2.1.1).
const HIGH_PROFILES: [u32; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// The coded size (whole macroblocks, before cropping: what a decoder allocates) that an SPS
/// announces, from the bytes after its NAL header, emulation prevention included. `None`:
/// it ends early or breaks the syntax. Sizes too large for `u32` saturate (refused anyway).
pub(crate) fn coded_size(sps: &[u8]) -> Option<(u32, u32)> {
    let mut r = Rbsp::new(sps);
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags, reserved zero bits, level_idc
    r.ue()?; // seq_parameter_set_id
    if HIGH_PROFILES.contains(&profile_idc) {
        skip_chroma_and_scaling(&mut r)?;
    }
    r.ue()?; // log2_max_frame_num_minus4
    skip_pic_order_cnt(&mut r)?;
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.bit()?;
    // Without frame_mbs_only_flag a map unit is a pair of macroblock rows (two fields).
    let height_mbs = height_map_units * (2 - u64::from(frame_mbs_only));
    let pixels = |mbs: u64| u32::try_from(mbs * 16).unwrap_or(u32::MAX);
    Some((pixels(width_mbs), pixels(height_mbs)))
}

fn skip_chroma_and_scaling(r: &mut Rbsp<'_>) -> Option<()> {
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc == 3 {
        r.bit()?; // separate_colour_plane_flag
    }
    r.ue()?; // bit_depth_luma_minus8
    r.ue()?; // bit_depth_chroma_minus8
    r.bit()?; // qpprime_y_zero_transform_bypass_flag
    if r.bit()? == 1 {
        // seq_scaling_matrix_present_flag: six 4×4 lists, then two or six 8×8 ones.
        let lists = if chroma_format_idc == 3 { 12 } else { 8 };
        for i in 0..lists {
            if r.bit()? == 1 {
                skip_scaling_list(r, if i < 6 { 16 } else { 64 })?;
            }
        }
    }
    Some(())
}

/// §7.3.2.1.1.1: delta-coded; a next scale of 0 ends the deltas early.
fn skip_scaling_list(r: &mut Rbsp<'_>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            // The standard's range, which OpenH264 enforces too.
            if !(-128..=127).contains(&delta) {
                return None;
            }
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

fn skip_pic_order_cnt(r: &mut Rbsp<'_>) -> Option<()> {
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue()?; // num_ref_frames_in_pic_order_cnt_cycle
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                r.se()?; // offset_for_ref_frame
            }
        }
        2 => {}
        _ => return None,
    }
    Some(())
}

/// Reads the raw byte sequence payload of a NAL unit bit by bit, dropping emulation
/// prevention bytes (00 00 03 → 00 00) as it goes, so nothing is copied.
struct Rbsp<'a> {
    nal: &'a [u8],
    at: usize,
    /// Zero bytes just read (up to 2): a 03 after two is emulation prevention.
    zeros: u8,
    byte: u8,
    bits_left: u8,
}

impl<'a> Rbsp<'a> {
    fn new(nal: &'a [u8]) -> Self {
        Self {
            nal,
            at: 0,
            zeros: 0,
            byte: 0,
            bits_left: 0,
        }
    }

    fn next_byte(&mut self) -> Option<u8> {
        let mut b = *self.nal.get(self.at)?;
        self.at += 1;
        if self.zeros == 2 {
            match b {
                // 00 00 00/01/02 cannot occur inside a NAL unit: it ended (trailing zeros).
                0..=2 => return None,
                3 => {
                    // Followed by anything but 00–03 it is not emulation prevention, and
                    // OpenH264 would drop the zeros too: refuse rather than guess.
                    let after = self.nal.get(self.at);
                    if after.is_some_and(|&n| n > 3) {
                        return None;
                    }
                    self.zeros = 0;
                    b = *after?;
                    self.at += 1;
                }
                _ => {}
            }
        }
        self.zeros = if b == 0 { (self.zeros + 1).min(2) } else { 0 };
        Some(b)
    }

    fn bit(&mut self) -> Option<u32> {
        if self.bits_left == 0 {
            self.byte = self.next_byte()?;
            self.bits_left = 8;
        }
        self.bits_left -= 1;
        Some(u32::from((self.byte >> self.bits_left) & 1))
    }

    /// `n` ≤ 32 bits, most significant first.
    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |v, _| Some((v << 1) | self.bit()?))
    }

    /// Unsigned exp-Golomb (§9.1): up to 31 leading zeros, as in OpenH264 (and `u32`).
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let value = (1u64 << zeros) - 1 + u64::from(self.bits(zeros)?);
        u32::try_from(value).ok()
    }

    /// Signed exp-Golomb (§9.1.1): 1, −1, 2, −2, … from 1, 2, 3, 4, …
    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes SPS fields as bits, then adds emulation prevention as an encoder must.
    #[derive(Default)]
    struct Writer {
        bits: Vec<bool>,
    }

    impl Writer {
        fn bits(&mut self, n: u32, v: u64) -> &mut Self {
            self.bits.extend((0..n).rev().map(|i| (v >> i) & 1 == 1));
            self
        }

        fn ue(&mut self, v: u64) -> &mut Self {
            let zeros = 63 - (v + 1).leading_zeros();
            self.bits(zeros, 0).bits(zeros + 1, v + 1)
        }

        fn se(&mut self, v: i64) -> &mut Self {
            let k = if v > 0 { 2 * v - 1 } else { -2 * v };
            self.ue(k as u64)
        }

        /// rbsp_trailing_bits, bytes, then 00 00 0x → 00 00 03 0x.
        fn finish(&mut self) -> Vec<u8> {
            self.bits.push(true);
            while !self.bits.len().is_multiple_of(8) {
                self.bits.push(false);
            }
            let rbsp = self
                .bits
                .chunks(8)
                .map(|c| c.iter().fold(0u8, |b, &bit| (b << 1) | u8::from(bit)));
            let mut out = Vec::new();
            for b in rbsp {
                if out.ends_with(&[0, 0]) && b <= 3 {
                    out.push(3);
                }
                out.push(b);
            }
            out
        }
    }

    /// A baseline SPS (poc type 2) of `w_mbs × h_map_units`, after its NAL header.
    pub(crate) fn baseline(w_mbs: u64, h_map_units: u64, frame_mbs_only: bool) -> Vec<u8> {
        let mut w = Writer::default();
        w.bits(8, 66).bits(8, 0xc0).bits(8, 31).ue(0);
        w.ue(0).ue(2).ue(1).bits(1, 0);
        w.ue(w_mbs - 1)
            .ue(h_map_units - 1)
            .bits(1, u64::from(frame_mbs_only));
        w.bits(1, 1).bits(1, 0).bits(1, 0); // direct_8x8, no cropping, no VUI
        w.finish()
    }

    #[test]
    fn baseline_sizes_are_read_in_macroblocks() {
        assert_eq!(coded_size(&baseline(40, 23, true)), Some((640, 368)));
        assert_eq!(
            coded_size(&baseline(1024, 1024, true)),
            Some((16384, 16384))
        );
        // Field coding: map units are macroblock pairs.
        assert_eq!(coded_size(&baseline(120, 34, false)), Some((1920, 1088)));
    }

    #[test]
    fn high_profile_with_scaling_lists_and_poc_cycle_is_read() {
        let mut w = Writer::default();
        w.bits(8, 100).bits(8, 0).bits(8, 40).ue(0);
        w.ue(1).ue(0).ue(0).bits(1, 0); // 4:2:0, 8-bit, no bypass
        w.bits(1, 1); // seq_scaling_matrix_present_flag
        for i in 0..8 {
            if i % 3 == 0 {
                w.bits(1, 0);
                continue;
            }
            w.bits(1, 1);
            if i == 7 {
                // 8 → 135 → 250 → 256, which is 0 modulo 256: the list stops there.
                w.se(127).se(115).se(6);
                continue;
            }
            let size = if i < 6 { 16 } else { 64 };
            // Up and down (8, 13, 10, 15, …); list 4 stops early on a next scale of 0.
            for j in 0..size {
                if i == 4 && j == 3 {
                    w.se(-15);
                    break;
                }
                w.se(if j % 2 == 0 { 5 } else { -3 });
            }
        }
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(1).bits(1, 0).se(-2).se(3).ue(3).se(1).se(-1).se(7); // poc type 1, cycle of 3
        w.ue(4).bits(1, 0).ue(239).ue(134).bits(1, 1);
        assert_eq!(coded_size(&w.finish()), Some((3840, 2160)));

        // 4:4:4 has a separate_colour_plane_flag and twelve lists.
        let mut w = Writer::default();
        w.bits(8, 244)
            .bits(16, 0)
            .ue(0)
            .ue(3)
            .bits(1, 0)
            .ue(0)
            .ue(0)
            .bits(1, 0);
        w.bits(1, 1).bits(12, 0); // matrices present, no list given
        w.ue(0)
            .ue(0)
            .ue(0)
            .ue(1)
            .bits(1, 0)
            .ue(19)
            .ue(14)
            .bits(1, 1);
        assert_eq!(coded_size(&w.finish()), Some((320, 240)));
    }

    #[test]
    fn emulation_prevention_is_removed() {
        // 2^23 macroblocks: an ue() of 47 bits, 46 of them zero, three zero bytes in a row.
        let sps = baseline(1 << 23, 1, true);
        assert!(sps.windows(4).any(|w| w == [0, 0, 3, 0]), "{sps:02x?}");
        assert_eq!(coded_size(&sps), Some((1 << 27, 16)));
        // Past u32 it saturates: too large either way.
        assert_eq!(
            coded_size(&baseline(1 << 31, 1, true)),
            Some((u32::MAX, 16))
        );
    }

    #[test]
    fn malformed_sets_are_none_never_a_panic() {
        let good = baseline(40, 23, true);
        // Cut anywhere before frame_mbs_only_flag (in the last byte but one).
        for len in 0..good.len() - 1 {
            assert_eq!(coded_size(&good[..len]), None, "cut at {len}");
        }
        assert_eq!(coded_size(&good[..good.len() - 1]), Some((640, 368)));
        // 00 00 03 not followed by 00–03, and a start code inside the set.
        assert_eq!(coded_size(&[66, 0, 0, 3, 0x80, 0x88, 0x84, 0xff]), None);
        assert_eq!(coded_size(&[66, 0, 0, 1, 0x80, 0x88, 0x84, 0xff]), None);
        // An unknown pic_order_cnt_type, and an exp-Golomb code of 32 leading zeros.
        let mut w = Writer::default();
        w.bits(8, 66).bits(16, 0).ue(0).ue(0).ue(3);
        assert_eq!(coded_size(&w.bits(32, u64::MAX).finish()), None);
        let mut w = Writer::default();
        w.bits(8, 66)
            .bits(16, 0)
            .ue(0)
            .bits(32, 0)
            .bits(40, u64::MAX);
        assert_eq!(coded_size(&w.finish()), None);
        // A scaling delta out of range.
        let mut w = Writer::default();
        w.bits(8, 100)
            .bits(16, 0)
            .ue(0)
            .ue(1)
            .ue(0)
            .ue(0)
            .bits(1, 0)
            .bits(1, 1);
        w.bits(1, 1).se(200);
        assert_eq!(coded_size(&w.bits(64, u64::MAX).finish()), None);
        // Noise: whatever it says, it says it without panicking.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut noise = [0u8; 24];
            for b in &mut noise {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let _ = coded_size(&noise[..(x >> 59) as usize % 25]);
        }
    }
}
