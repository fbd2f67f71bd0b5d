//! How much CPU the hypervisor took from this machine while a scenario ran. On a shared
//! 2-core VM the same build measures 45 or 150 ms glass-to-glass depending on the
//! neighbours; printing the steal beside each row tells a slow machine from a slow client.

/// Runs `measurement`, and says what share of the machine's CPU time the hypervisor took
/// meanwhile (percent; `NaN` where /proc/stat is not readable).
pub async fn with_steal<T>(
    measurement: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, f64)> {
    let mark = Mark::now();
    let value = measurement.await?;
    Ok((value, mark.map_or(f64::NAN, |m| m.stolen_percent())))
}

/// A reading of the machine's CPU time counters (/proc/stat, all CPUs).
struct Mark {
    steal: u64,
    total: u64,
}

impl Mark {
    fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let steal = *fields.get(7)?;
        // guest time is already counted in user time.
        let total = fields.iter().take(8).sum();
        Some(Self { steal, total })
    }

    /// Percent of the machine's CPU time stolen since this mark; `NaN` if unknown.
    fn stolen_percent(&self) -> f64 {
        match Self::now() {
            Some(now) if now.total > self.total => {
                (now.steal - self.steal) as f64 / (now.total - self.total) as f64 * 100.0
            }
            _ => f64::NAN,
        }
    }
}
