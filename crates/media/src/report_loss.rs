//! The loss one of our streams sees, from the cumulative counts of the server's receiver
//! reports rather than their `fraction lost`.
//!
//! Why: a packet that arrives after a report was made counts as lost in that report and
//! as received in the next, and `fraction lost` is never below zero (RFC 3550 §6.4.1),
//! so under reordering (jitter) it shows a steady loss that is not there (the fault
//! bench's jitter row: ~3 % a second, read as congestion, the camera cut to 180p). The
//! cumulative count gives the late packets back: over two intervals they cancel out.

/// Reports the loss is computed over (the newest and the two before it).
const SPAN: usize = 3;
/// More packets than this between two reports is not a stream of ours (a broken or
/// forged report, or a restart): the window starts again.
const MOST_PACKETS: i64 = 1 << 20;

/// The last few reports about one stream.
#[derive(Debug, Clone, Default)]
pub struct ReportLoss {
    /// (cumulative lost, 24-bit signed as sent; extended highest sequence number), oldest first.
    points: Vec<(u32, u32)>,
}

impl ReportLoss {
    /// One report block's `total lost` and `extended highest sequence number`: the share
    /// of packets lost, in 256ths like `fraction lost`, over the last reports (the lower
    /// of the newest interval's and the whole span's, so a lone interval of late packets
    /// does not count). `None` until two reports, and when no packet was expected.
    pub fn handle_report(&mut self, total_lost: u32, highest: u32) -> Option<u8> {
        if let Some(&(_, last)) = self.points.last() {
            let packets = i64::from(highest.wrapping_sub(last) as i32);
            if !(0..=MOST_PACKETS).contains(&packets) {
                self.points.clear();
            }
        }
        if self.points.len() == SPAN {
            self.points.remove(0);
        }
        self.points.push((total_lost, highest));
        let newest = *self.points.last()?;
        let share = |from: (u32, u32)| {
            let expected = i64::from(newest.1.wrapping_sub(from.1) as i32);
            // 24-bit signed, sign-extended from the difference's low 24 bits.
            let lost = i64::from((newest.0.wrapping_sub(from.0) << 8) as i32 >> 8);
            (expected > 0).then(|| (lost.clamp(0, expected) * 256 / expected).min(255) as u8)
        };
        let n = self.points.len();
        let interval = share(*self.points.get(n.checked_sub(2)?)?)?;
        let span = share(self.points[0])?;
        Some(interval.min(span))
    }
}

#[cfg(test)]
mod tests {
    use super::ReportLoss;

    #[test]
    fn late_packets_are_not_loss() {
        let mut loss = ReportLoss::default();
        // 150 packets a second; each report finds 5–8 late ones that arrive after it.
        let late = [5u32, 8, 6, 7, 5, 8];
        let mut shown = Vec::new();
        for (i, l) in late.iter().enumerate() {
            let highest = 1_000 + 150 * i as u32;
            shown.push(loss.handle_report(*l, highest));
        }
        assert_eq!(shown[0], None);
        // Once the span holds three reports, under 1 %, where `fraction lost` would show
        // 2–5 % for every interval whose late packets outnumber the last one's.
        assert!(shown[2..].iter().all(|s| s.unwrap() <= 2), "{shown:?}");
    }

    #[test]
    fn real_loss_shows_within_a_report() {
        let mut loss = ReportLoss::default();
        assert_eq!(loss.handle_report(0, 1_000), None);
        assert_eq!(loss.handle_report(0, 1_150), Some(0));
        // 15 of 150 lost (10 %): the span (two intervals) shows half, the next all of it.
        assert_eq!(loss.handle_report(15, 1_300), Some(12));
        assert_eq!(loss.handle_report(30, 1_450), Some(25));
    }

    #[test]
    fn hostile_and_wrapping_values_stay_in_range() {
        let mut loss = ReportLoss::default();
        // Cumulative loss wrapping its 24 bits, and the sequence number its 32.
        assert_eq!(loss.handle_report(0xFF_FFF0, u32::MAX - 100), None);
        assert_eq!(loss.handle_report(0x00_0010, 49), Some(54));
        // A jump of 2^31 packets: the window starts again.
        assert_eq!(loss.handle_report(0, 0x8000_0000), None);
        // More lost than expected, and a negative count: clamped.
        assert_eq!(loss.handle_report(0x7F_FFFF, 0x8000_0010), Some(255));
        assert_eq!(loss.handle_report(0x80_0000, 0x8000_0020), Some(0));
    }
}
