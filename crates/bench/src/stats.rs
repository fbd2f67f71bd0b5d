//! Percentiles and the printed table.

/// Nearest-rank percentile; `NaN` for no samples.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

pub struct Row {
    pub name: String,
    pub ours: Vec<f64>,
    pub reference: Vec<f64>,
    pub target_ms: Option<f64>,
}

fn cell(v: &[f64]) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    format!(
        "{:6.1} / {:6.1} (n={})",
        percentile(v, 50.0),
        percentile(v, 95.0),
        v.len()
    )
}

pub fn print(rows: &[Row]) {
    println!(
        "{:<48} | {:<26} | {:<26} | {:<7} | verdict",
        "scenario (ms)", "Estrade p50 / p95", "libwebrtc p50 / p95", "target"
    );
    println!("{}", "-".repeat(133));
    for r in rows {
        let (ours50, ref50) = (percentile(&r.ours, 50.0), percentile(&r.reference, 50.0));
        let target = r.target_ms.map_or("—".into(), |t| format!("≤ {t:.0}"));
        let meets = r.target_ms.is_none_or(|t| ours50 <= t);
        let mut verdict = match (meets, ours50 < ref50) {
            _ if r.reference.is_empty() => "no reference measured",
            (true, true) => "p50 meets target, beats reference",
            (true, false) => "p50 meets target, NOT better than reference",
            (false, true) => "p50 MISSES target, beats reference",
            (false, false) => "p50 MISSES target and reference",
        }
        .to_string();
        if r.target_ms.is_some_and(|t| percentile(&r.ours, 95.0) > t) {
            verdict.push_str("; p95 misses target");
        }
        println!(
            "{:<48} | {:<26} | {:<26} | {:<7} | {verdict}",
            r.name,
            cell(&r.ours),
            cell(&r.reference),
            target
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 10.0);
        assert_eq!(percentile(&v, 95.0), 19.0);
        assert_eq!(percentile(&[3.0], 95.0), 3.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
