//! Line charts as SVG, drawn on the server: no script, no chart library.
use maud::{Markup, html};

/// One line of a chart.
#[derive(Debug)]
pub(crate) struct Line<'a> {
    pub(crate) label: &'a str,
    pub(crate) colour: &'a str,
    pub(crate) points: Vec<f64>,
}

const W: f64 = 640.0;
const H: f64 = 200.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;

/// A round number at or above `v` for the axis's top (1, 2, 5 × 10^n).
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

/// Numbers on the axis: "1.5k", "2M".
pub(crate) fn short(v: f64) -> String {
    let a = v.abs();
    let (d, s) = if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / d;
    if x.fract().abs() < 1e-9 || x.abs() >= 10.0 {
        format!("{x:.0}{s}")
    } else {
        format!("{x:.1}{s}")
    }
}

/// A chart of `lines` over `labels` (one per point: the x axis shows the
/// first, middle and last), `unit` under its title.
pub(crate) fn chart(
    id: &str,
    title: &str,
    unit: &str,
    labels: &[String],
    lines: &[Line<'_>],
) -> Markup {
    let n = labels.len().max(1);
    let max = nice_max(
        lines
            .iter()
            .flat_map(|l| l.points.iter().copied())
            .fold(0.0, f64::max),
    );
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x = |i: usize| {
        if n == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| TOP + plot_h * (1.0 - v / max);
    let ticks = [0.0, max / 2.0, max];
    let described: Vec<String> = lines
        .iter()
        .map(|l| {
            let total: f64 = l.points.iter().sum();
            let peak = l.points.iter().copied().fold(0.0, f64::max);
            format!(
                "{}: peak {} {unit}, average {}",
                l.label,
                short(peak),
                short(total / n as f64)
            )
        })
        .collect();
    let summary = format!("{title}. {}.", described.join("; "));
    html! {
        figure id=(id) class="chart" {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(summary) {
                @for t in ticks {
                    line x1=(LEFT) x2=(W - RIGHT) y1=(y(t)) y2=(y(t)) stroke="#d0d7de" stroke-width="1" {}
                    text x=(LEFT - 6.0) y=(y(t) + 4.0) text-anchor="end" font-size="11" fill="#57606a" { (short(t)) }
                }
                @for (i, anchor) in [(0, "start"), (n / 2, "middle"), (n - 1, "end")] {
                    @if let Some(l) = labels.get(i) {
                        text x=(x(i)) y=(H - 8.0) text-anchor=(anchor) font-size="11" fill="#57606a" { (l) }
                    }
                }
                @for l in lines {
                    polyline fill="none" stroke=(l.colour) stroke-width="2" stroke-linejoin="round"
                        points=(l.points.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect::<Vec<_>>().join(" ")) {}
                }
            }
            figcaption {
                strong { (title) }
                " (" (unit) ") "
                @for l in lines {
                    span class="key" {
                        svg xmlns="http://www.w3.org/2000/svg" width="12" height="12" viewBox="0 0 12 12" aria-hidden="true" {
                            rect width="12" height="12" fill=(l.colour) {}
                        }
                        " " (l.label) " "
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round_and_labels_short() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(3.2), 5.0);
        assert_eq!(nice_max(12.0), 20.0);
        assert_eq!(nice_max(100.0), 100.0);
        assert_eq!(short(1500.0), "1.5k");
        assert_eq!(short(2_000_000.0), "2M");
        assert_eq!(short(0.5), "0.5");
    }

    #[test]
    fn a_chart_draws_each_line_and_describes_it() {
        let labels: Vec<String> = (0..4).map(|i| format!("t{i}")).collect();
        let out = chart(
            "c",
            "Messages",
            "per minute",
            &labels,
            &[Line {
                label: "in",
                colour: "#0969da",
                points: vec![0.0, 2.0, 4.0, 1.0],
            }],
        )
        .into_string();
        assert!(out.contains("<polyline"), "{out}");
        assert!(out.contains("in: peak 4 per minute"), "{out}");
        assert!(out.contains(">t0<") && out.contains(">t3<"), "{out}");
    }
}
