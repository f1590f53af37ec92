//! The seed's graph for a sweep: p50 wall time of each variant across memory sizes.

use std::path::Path;

use anyhow::Context as _;
use plotters::prelude::*;

use crate::sweep::SweepResult;

pub fn write_svg(result: &SweepResult, path: &Path) -> anyhow::Result<()> {
    let mut sizes: Vec<u32> = result.cells.iter().map(|c| c.memory_mb).collect();
    sizes.dedup();
    let mut variants: Vec<&str> = Vec::new();
    for cell in &result.cells {
        if !variants.contains(&cell.variant.as_str()) {
            variants.push(&cell.variant);
        }
    }
    let p50s = || result.cells.iter().map(|c| c.summary.p50_ms);
    let (low, high) = p50s().fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    anyhow::ensure!(low.is_finite() && high > 0.0, "the sweep has no figures to chart");

    let title = format!(
        "p50 wall time, {} objects, {} ({} runs a cell)",
        result.objects,
        result.start.name(),
        result.runs
    );
    let root = SVGBackend::new(path, (960, 560)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title.as_str(), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (0..sizes.len() as u32).into_segmented(),
                (low * 0.8..high * 1.25).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc("Lambda memory size (CPU share = MB / 1769)")
            .y_desc("ms (log scale)")
            .max_light_lines(1)
            .x_label_formatter(&|segment| match segment {
                SegmentValue::CenterOf(i) => sizes.get(*i as usize).map_or_else(String::new, |mb| format!("{mb} MB")),
                _ => String::new(),
            })
            .y_label_formatter(&|ms| format!("{ms:.0}"))
            .draw()?;
        for (index, variant) in variants.iter().enumerate() {
            let colour = Palette99::pick(index).stroke_width(2);
            let points: Vec<(SegmentValue<u32>, f64)> = result
                .cells
                .iter()
                .filter(|c| c.variant == *variant)
                .filter_map(|c| {
                    let at = sizes.iter().position(|&mb| mb == c.memory_mb)?;
                    Some((SegmentValue::CenterOf(at as u32), c.summary.p50_ms))
                })
                .collect();
            chart
                .draw_series(LineSeries::new(points.iter().cloned(), colour))?
                .label(*variant)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
            chart.draw_series(
                points
                    .iter()
                    .map(|(x, y)| Circle::new((x.clone(), *y), 3, colour.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw()
        .map_err(|err| anyhow::anyhow!("{err}"))
        .with_context(|| format!("cannot draw {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Summary;
    use crate::sweep::Cell;

    fn cell(memory_mb: u32, variant: &str, p50_ms: f64) -> Cell {
        Cell {
            memory_mb,
            variant: variant.to_owned(),
            concurrency: 1,
            summary: Summary {
                runs: 1,
                p50_ms,
                p95_ms: p50_ms,
                min_ms: p50_ms,
                cpu_ms_per_invocation: 1.0,
                cpu_us_per_acl: Some(10.0),
                acls_per_second: 1.0,
                failures: 0,
                connections_per_invocation: None,
                retries: None,
            },
            init_ms: 1.0,
            first_invocation_p50_ms: None,
            peak_rss_kb: 1,
            vs_fastest: 1.0,
            vs_floor: Some(1.0),
            floor_ms: Some(1.0),
        }
    }

    #[test]
    fn the_chart_names_every_variant_and_memory_size() {
        let result = SweepResult {
            objects: 100,
            runs: 1,
            start: crate::invoke::Start::Warm,
            endpoint: "local-s3".to_owned(),
            rtt_ms: Some(2.0),
            service_ms: Some(15.0),
            handshake_rtts: Some(2),
            cpu_limit: "test".to_owned(),
            cpu_pinning: None,
            findings: false,
            init_cpu: None,
            idle_s: None,
            warm_connections: None,
            cells: vec![
                cell(128, "sequential", 1900.0),
                cell(128, "join-all", 300.0),
                cell(1769, "sequential", 1900.0),
                cell(1769, "join-all", 60.0),
            ],
        };
        let path = std::env::temp_dir().join(format!("acl-bench-chart-{}.svg", std::process::id()));
        write_svg(&result, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in ["sequential", "join-all", "128 MB", "1769 MB", "warm"] {
            assert!(svg.contains(text), "{text} missing from the chart");
        }
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn an_empty_sweep_is_an_error_not_an_empty_chart() {
        let result = SweepResult {
            objects: 0,
            runs: 0,
            start: crate::invoke::Start::Warm,
            endpoint: "local-s3".to_owned(),
            rtt_ms: None,
            service_ms: None,
            handshake_rtts: None,
            cpu_limit: String::new(),
            cpu_pinning: None,
            findings: false,
            init_cpu: None,
            idle_s: None,
            warm_connections: None,
            cells: Vec::new(),
        };
        let path = std::env::temp_dir().join("acl-bench-never-written.svg");
        assert!(write_svg(&result, &path).is_err());
    }
}
