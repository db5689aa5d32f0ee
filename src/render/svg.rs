//! A few SVG primitives for the report's charts. The charts are written as SVG text
//! rather than drawn with a plotting crate because what makes them readable is SVG's own:
//! a `<title>` per mark (full details on hover, so labels stay short), shaded spans, and
//! labels placed in lanes so they never overlap.

use std::fmt::Write as _;

use super::html_escape as esc;

pub(super) const OK: &str = "#2DA44E";
pub(super) const BAD: &str = "#D73A49";
pub(super) const FAULT: &str = "#6F42C1";
pub(super) const HARNESS: &str = "#6E7781";
pub(super) const RTO: &str = "#1F77B4";
pub(super) const INK: &str = "#24292F";
pub(super) const GRID: &str = "#EAEEF2";
/// What the table predicts, drawn without alarm: a quorum lost on purpose.
pub(super) const NEUTRAL: &str = "#8C959F";
pub(super) const LEADER: &str = "#9A6700";

/// Finite, else 0: keeps NaN and infinities out of coordinates.
pub(super) fn fin(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// Data seconds to pixels along a horizontal axis.
#[derive(Debug, Clone, Copy)]
pub(super) struct Axis {
    pub t0: f64,
    pub t1: f64,
    pub left: f64,
    pub width: f64,
}

impl Axis {
    /// An axis over `t0..t1` (widened to 1 s when empty) drawn from `left`, `width` wide.
    pub fn new(t0: f64, t1: f64, left: f64, width: f64) -> Axis {
        let (t0, mut t1) = (fin(t0), fin(t1));
        if t1 <= t0 {
            t1 = t0 + 1.0;
        }
        Axis {
            t0,
            t1,
            left,
            width,
        }
    }

    pub fn px(&self, t: f64) -> f64 {
        let t = fin(t).clamp(self.t0, self.t1);
        self.left + (t - self.t0) / (self.t1 - self.t0) * self.width
    }

    pub fn contains(&self, t: f64) -> bool {
        (self.t0..=self.t1).contains(&t)
    }

    /// Tick positions at a 1, 2 or 5 × 10ⁿ step, about eight across.
    pub fn ticks(&self) -> Vec<f64> {
        let raw = (self.t1 - self.t0) / 8.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag);
        let first = (self.t0 / step).ceil() * step;
        (0..)
            .map(|i| first + i as f64 * step)
            .take_while(|t| *t <= self.t1 + step * 1e-9)
            .take(50)
            .collect()
    }

    /// Vertical grid lines from `top` to `bottom`, tick labels and the axis title below.
    pub fn draw(&self, out: &mut String, top: f64, bottom: f64, title: &str) {
        let ticks = self.ticks();
        let step = ticks.get(1).zip(ticks.first()).map_or(1.0, |(b, a)| b - a);
        let digits = if step >= 1.0 { 0 } else { 1 };
        for t in ticks {
            let x = self.px(t);
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"{GRID}\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"tick\">{t:.digits$}</text>",
                bottom + 14.0
            );
        }
        let _ = writeln!(
            out,
            "<line x1=\"{:.1}\" y1=\"{bottom:.1}\" x2=\"{:.1}\" y2=\"{bottom:.1}\" stroke=\"{INK}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"axis\">{}</text>",
            self.left,
            self.left + self.width,
            self.left + self.width / 2.0,
            bottom + 32.0,
            esc(title)
        );
    }
}

/// The opening tag of a chart `width` × `height`, scaled to its container, with its styles.
pub(super) fn open(out: &mut String, width: f64, height: f64, label: &str) {
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{}\" font-family=\"DejaVu Sans, Verdana, sans-serif\">\n\
         <style>text{{fill:{INK};font-size:12px}}.tick{{font-size:11px}}.axis{{font-size:12px}}.row{{font-size:13px;font-weight:600}}.in{{fill:#fff;font-size:11px}}.small{{font-size:11px}}.bad{{fill:#CF222E;font-weight:600}}</style>",
        esc(label)
    );
}

/// A rectangle with hover text.
pub(super) fn rect(out: &mut String, x: f64, y: f64, w: f64, h: f64, fill: &str, title: &str) {
    let _ = writeln!(
        out,
        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{fill}\"><title>{}</title></rect>",
        w.max(0.0),
        esc(title)
    );
}

/// Text anchored at its start (`start`), middle or end, with an optional class.
pub(super) fn text(out: &mut String, x: f64, y: f64, anchor: &str, class: &str, s: &str) {
    let _ = writeln!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" class=\"{class}\">{}</text>",
        esc(s)
    );
}

/// About how wide `s` is at 11–12 px in a sans-serif face: enough to keep labels apart.
pub(super) fn text_width(s: &str) -> f64 {
    s.chars().count() as f64 * 6.6
}

/// Gap kept between two labels in one lane.
const LANE_GAP: f64 = 6.0;

/// Assigns each label (its left edge and width, in pixels, in any order) to the first of
/// `lanes` lanes where it clears the label before it by [`LANE_GAP`], taking labels from
/// left to right; `None` when no lane has room, and the label is left to the mark's hover
/// text. So two labels in one lane never overlap.
pub(super) fn lanes(labels: &[(f64, f64)], lanes: usize) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| fin(labels[a].0).total_cmp(&fin(labels[b].0)));
    let mut ends = vec![f64::NEG_INFINITY; lanes];
    let mut out = vec![None; labels.len()];
    for i in order {
        let (x, w) = (fin(labels[i].0), fin(labels[i].1).max(0.0));
        out[i] = ends.iter().position(|end| *end + LANE_GAP <= x);
        if let Some(lane) = out[i] {
            ends[lane] = x + w;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_labels_stack_and_overflow_goes_to_hover_text() {
        let l = lanes(&[(0.0, 50.0), (10.0, 50.0), (20.0, 50.0), (30.0, 50.0)], 3);
        assert_eq!(l, vec![Some(0), Some(1), Some(2), None]);
        // Far enough apart, every label shares the first lane.
        assert_eq!(
            lanes(&[(0.0, 50.0), (60.0, 50.0)], 3),
            vec![Some(0), Some(0)]
        );
    }

    /// splitmix64: a fixed stream of pseudo-random numbers, so the property is checked on
    /// the same thousand layouts every run.
    fn stream(mut seed: u64) -> impl FnMut() -> f64 {
        move || {
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as f64 / u64::MAX as f64
        }
    }

    #[test]
    fn no_two_labels_in_one_lane_overlap_and_none_is_dropped_with_room_left() {
        let mut rand = stream(21);
        for case in 0..1000 {
            let n = (rand() * 12.0) as usize;
            // Bursts of faults: many at nearly the same x, as a count:k fault makes them.
            let labels: Vec<(f64, f64)> = (0..n)
                .map(|_| {
                    (
                        (rand() * 40.0).floor() * 20.0 * rand(),
                        20.0 + rand() * 120.0,
                    )
                })
                .collect();
            let k = 1 + (rand() * 3.0) as usize;
            let got = lanes(&labels, k);
            for (i, a) in labels.iter().enumerate() {
                for (j, b) in labels.iter().enumerate().skip(i + 1) {
                    if got[i].is_some() && got[i] == got[j] {
                        let apart = a.0 + a.1 + LANE_GAP <= b.0 || b.0 + b.1 + LANE_GAP <= a.0;
                        assert!(
                            apart,
                            "case {case}: {a:?} and {b:?} overlap in lane {:?}",
                            got[i]
                        );
                    }
                }
                // Dropped only when every lane is taken at its x by a label left of it.
                if got[i].is_none() {
                    for lane in 0..k {
                        let blocked = labels.iter().zip(&got).any(|(b, l)| {
                            *l == Some(lane) && b.0 <= a.0 && a.0 < b.0 + b.1 + LANE_GAP
                        });
                        assert!(blocked, "case {case}: {a:?} dropped with lane {lane} free");
                    }
                }
            }
        }
    }

    #[test]
    fn ticks_are_round_and_cover_the_axis() {
        let a = Axis::new(0.0, 26.0, 0.0, 100.0);
        assert_eq!(a.ticks(), vec![0.0, 5.0, 10.0, 15.0, 20.0, 25.0]);
        let a = Axis::new(8.5, 9.3, 0.0, 100.0);
        let t = a.ticks();
        assert!(
            t.len() >= 4 && t.iter().all(|x| (8.5..=9.3).contains(x)),
            "{t:?}"
        );
        // Degenerate input still gives an axis.
        let a = Axis::new(f64::NAN, f64::NAN, 0.0, 100.0);
        assert_eq!((a.t0, a.t1), (0.0, 1.0));
        assert_eq!(a.px(f64::INFINITY), 0.0);
    }
}
