//! The PNG chart of a run: medians per case, throughput each way on the left, echo round trip
//! (mean and p99) on the right. Text is drawn with DejaVu Sans loaded from its apt path (no
//! system font lookup).

use std::path::Path;

use anyhow::Context;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::install::FONT;
use crate::report::Report;

const DOWN: RGBColor = RGBColor(0x2b, 0x6c, 0xb0);
const UP: RGBColor = RGBColor(0xe0, 0x8a, 0x1e);
const P99: RGBColor = RGBColor(0x9b, 0x3b, 0x8c);

/// One bar group: case name and two values.
struct Group {
    name: String,
    a: f64,
    b: f64,
}

/// Draws `report` into a PNG at `path`.
pub(crate) fn draw(report: &Report, path: &Path) -> anyhow::Result<()> {
    let font: &'static [u8] =
        Box::leak(std::fs::read(FONT).with_context(|| format!("reading {FONT}"))?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| anyhow::anyhow!("{FONT} is not a usable font"))?;

    let throughput: Vec<Group> = report
        .cases
        .iter()
        .filter_map(|c| {
            Some(Group {
                name: c.id.name().to_owned(),
                a: c.summary(|x| Some(x.down_mbit))?.median,
                b: c.summary(|x| Some(x.up_mbit))?.median,
            })
        })
        .collect();
    let rtt: Vec<Group> = report
        .cases
        .iter()
        .filter_map(|c| {
            Some(Group {
                name: c.id.name().to_owned(),
                a: c.summary(|x| Some(x.rtt_mean_ms))?.median,
                b: c.summary(|x| Some(x.rtt_p99_ms))?.median,
            })
        })
        .collect();
    anyhow::ensure!(!throughput.is_empty(), "no successful run to chart");

    let root = BitMapBackend::new(path, (1800, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "hometun benchmark, {}: {} ({} cores), {} MiB each way, median of {} round(s)",
        report.sys.date,
        report.sys.cpu,
        report.sys.cores,
        report.size >> 20,
        report.rounds
    );
    let root = root.titled(&title, ("sans-serif", 24))?;
    let (left, right) = root.split_horizontally(1000);
    bars(&left, "Throughput, Mbit/s (higher is better)", &throughput, ("download", DOWN), ("upload", UP), 0)?;
    bars(&right, "TCP echo round trip, ms (lower is better)", &rtt, ("mean", DOWN), ("p99", P99), 2)?;
    root.present()?;
    Ok(())
}

fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    groups: &[Group],
    a: (&str, RGBColor),
    b: (&str, RGBColor),
    decimals: usize,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let n = groups.len() as u32;
    let top = groups.iter().map(|g| g.a.max(g.b)).fold(0.0, f64::max).max(1e-3) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), 0.0..top)?;
    let names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .y_label_formatter(&|v| format!("{v:.decimals$}"))
        .x_labels(groups.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => names.get(*i as usize).cloned().unwrap_or_default(),
            SegmentValue::Last => String::new(),
        })
        .x_label_style(("sans-serif", 13))
        .y_label_style(("sans-serif", 15))
        .draw()?;
    let (width, _) = chart.plotting_area().dim_in_pixel();
    let quarter = (width as i32 / n.max(1) as i32) / 4;
    let label = |v: f64| format!("{v:.decimals$}");
    for (which, (name, color)) in [a, b].into_iter().enumerate() {
        let rects = groups.iter().enumerate().map(move |(i, g)| {
            let i = i as u32;
            let (v, from, to) = if which == 0 {
                (g.a, SegmentValue::Exact(i), SegmentValue::CenterOf(i))
            } else {
                (g.b, SegmentValue::CenterOf(i), SegmentValue::Exact(i + 1))
            };
            let mut bar = Rectangle::new([(from, 0.0), (to, v)], color.filled());
            bar.set_margin(0, 0, if which == 0 { 8 } else { 1 }, if which == 0 { 1 } else { 8 });
            bar
        });
        chart
            .draw_series(rects)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], color.filled()));
        let offset = if which == 0 { -quarter } else { quarter };
        chart.draw_series(groups.iter().enumerate().map(|(i, g)| {
            let v = if which == 0 { g.a } else { g.b };
            EmptyElement::at((SegmentValue::CenterOf(i as u32), v))
                + Text::new(label(v), (offset - 14, -18), ("sans-serif", 14).into_font())
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    Ok(())
}
