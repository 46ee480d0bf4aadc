//! Result plots of a sweep, written as PNG files:
//!
//! * [`accuracy_heatmap`]: accuracy per clustering method (rows) and k (columns), the baselines
//!   (`learned` soft assignment, `none` = patch-to-patch) in clearly labelled extra rows;
//! * [`pareto_plot`]: accuracy against per-frame runtime (clustering + ViT inference) for every
//!   cell, with the Pareto front ([`pareto_front`]) drawn as a step line;
//! * [`cluster_scatter`]: the study's figure 4, one face's patch embeddings projected to 2-D by
//!   PCA ([`pca_2d`]), one panel per clustering method, points coloured by cluster id.
//!
//! Rendering is pure Rust: plotters draws the shapes into an RGB buffer, text is rasterised with
//! ab_glyph from an embedded DejaVu Sans subset (`assets/fonts/`, so no system font or
//! fontconfig is needed), and `image` encodes the PNG. Every function returns an error naming
//! the output path instead of panicking.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use anyhow::{Result, anyhow, bail, ensure};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::sweep_results::CellResult;

/// DejaVu Sans, subset to Latin-1 and a few symbols (see `assets/fonts/README.md`).
const FONT_BYTES: &[u8] = include_bytes!("../../models/fonts/DejaVuSans.ttf");

/// The hard clustering methods, in the order the plots list them.
const HARD_ORDER: [&str; 5] = ["kmeans", "agglomerative", "spectral", "gmm", "dbscan"];

/// Categorical palette (cluster ids, methods): ten well-separated colours.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Anchors of a perceptually ordered dark-blue → green → yellow colour map (viridis-like).
const SEQUENTIAL: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// Near-black for text and lines.
const INK: RGBColor = RGBColor(30, 30, 30);
/// Grey for secondary text.
const MUTED: RGBColor = RGBColor(95, 95, 95);
/// Grey of grid lines.
const GRID: RGBColor = RGBColor(225, 225, 225);
/// Label id the scatter treats as noise (drawn grey).
const NOISE: u32 = u32::MAX;

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

// ---------------------------------------------------------------------------------------------
// Shared plumbing: rendering, text, axes, colours
// ---------------------------------------------------------------------------------------------

/// Turns a plotters error into an `anyhow` one.
fn de<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}

/// Makes one flat message that names the path, whether `{}` or `{:#}` prints it.
fn at_path<T>(what: &str, path: &Path, r: Result<T>) -> Result<T> {
    r.map_err(|e| anyhow!("cannot write {what} {}: {e:#}", path.display()))
}

/// Renders `(w, h)` pixels with `draw` on a white background and writes them as a PNG.
fn render(path: &Path, (w, h): (u32, u32), draw: impl FnOnce(&Area<'_>) -> Result<()>) -> Result<(u32, u32)> {
    face()?;
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(&root)?;
        root.present().map_err(de)?;
    }
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &buf,
        w,
        h,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| anyhow!("encoding PNG: {e}"))?;
    std::fs::write(path, png).map_err(|e| anyhow!("{e}"))?;
    Ok((w, h))
}

/// The embedded font, parsed once per process.
fn face() -> Result<&'static FontRef<'static>> {
    static FACE: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FACE.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
        .ok_or_else(|| anyhow!("the embedded plot font does not parse"))
}

/// Horizontal anchor of a text.
#[derive(Clone, Copy, PartialEq)]
enum HA {
    Left,
    Center,
    Right,
}

/// Vertical anchor of a text (`Middle` centres the capital letters).
#[derive(Clone, Copy, PartialEq)]
enum VA {
    Top,
    Middle,
}

/// How a text is drawn: pixel size, colour, anchor, and whether it reads bottom to top.
#[derive(Clone, Copy)]
struct Txt {
    size: f32,
    color: RGBColor,
    h: HA,
    v: VA,
    vertical: bool,
}

impl Txt {
    /// Left/middle-anchored horizontal text.
    fn new(size: f32, color: RGBColor) -> Self {
        Self {
            size,
            color,
            h: HA::Left,
            v: VA::Middle,
            vertical: false,
        }
    }

    /// The same text with another anchor.
    fn at(self, h: HA, v: VA) -> Self {
        Self { h, v, ..self }
    }

    /// The same text rotated to read bottom to top.
    fn vertical(self) -> Self {
        Self {
            vertical: true,
            ..self
        }
    }
}

/// Width of `s` in pixels at `size`.
fn text_width(s: &str, size: f32) -> Result<i32> {
    Ok(layout(face()?, s, size).1.round() as i32)
}

/// Line height (ascent + descent) in pixels at `size`.
fn text_height(size: f32) -> Result<i32> {
    let f = face()?.as_scaled(PxScale::from(size));
    Ok((f.ascent() - f.descent()).ceil() as i32)
}

/// Glyphs of `s` positioned on a baseline at y = 0 from x = 0 (with kerning), and the width.
fn layout(font: &FontRef<'static>, s: &str, size: f32) -> (Vec<ab_glyph::Glyph>, f32) {
    let scale = PxScale::from(size);
    let f = font.as_scaled(scale);
    let mut caret = 0f32;
    let mut prev = None;
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            caret += f.kern(p, id);
        }
        out.push(id.with_scale_and_position(scale, point(caret, 0.0)));
        caret += f.h_advance(id);
        prev = Some(id);
    }
    (out, caret)
}

/// Draws `s` anchored at pixel `(x, y)` of `area` (anti-aliased, alpha-blended).
fn draw_text(area: &Area<'_>, s: &str, (x, y): (i32, i32), t: Txt) -> Result<()> {
    let font = face()?;
    let (glyphs, width) = layout(font, s, t.size);
    let f = font.as_scaled(PxScale::from(t.size));
    let cap = font
        .outline_glyph(font.glyph_id('H').with_scale(t.size))
        .map(|o| -o.px_bounds().min.y)
        .unwrap_or(t.size * 0.7);
    // Offsets along the text (dx) and across it (dy, downwards) from the anchor to the origin.
    let dx = match t.h {
        HA::Left => 0.0,
        HA::Center => -width / 2.0,
        HA::Right => -width,
    }
    .round() as i32;
    let dy = match t.v {
        VA::Top => f.ascent(),
        VA::Middle => cap / 2.0,
    }
    .round() as i32;
    let mut pixels: Vec<(i32, i32, f32)> = Vec::new();
    for g in glyphs {
        if let Some(o) = font.outline_glyph(g) {
            let b = o.px_bounds();
            let (gx, gy) = (b.min.x as i32 + dx, b.min.y as i32 + dy);
            o.draw(|px, py, c| {
                if c > 0.01 {
                    let (u, v) = (gx + px as i32, gy + py as i32);
                    let (ax, ay) = if t.vertical {
                        (x + v, y - u)
                    } else {
                        (x + u, y + v)
                    };
                    pixels.push((ax, ay, c.min(1.0)));
                }
            });
        }
    }
    for (px, py, c) in pixels {
        area.draw_pixel((px, py), &t.color.mix(c as f64)).map_err(de)?;
    }
    Ok(())
}

/// At most about `max` round tick values (steps of 1, 2 or 5 × 10ⁿ) in `lo..=hi`, and the
/// decimals that print them.
fn nice_ticks(lo: f64, hi: f64, max: usize) -> (Vec<f64>, usize) {
    let span = hi - lo;
    if span.is_nan() || span <= 0.0 || span.is_infinite() {
        return (vec![lo], 2);
    }
    let raw = span / max.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let ticks = (first..=last)
        .take(4 * max + 2)
        .map(|i| i as f64 * step)
        .collect();
    (ticks, decimals)
}

/// Axis decoration of a chart: grid, frame, ticks, tick labels and axis titles.
struct Axes<'s> {
    x_title: &'s str,
    y_title: &'s str,
    max_ticks: (usize, usize),
    tick_size: f32,
    title_size: f32,
    suffix_y: &'s str,
}

/// Draws `axes` around `chart`'s plotting area (drawn on `root`, in absolute pixels).
fn draw_axes(
    root: &Area<'_>,
    chart: &Chart<'_, '_>,
    x: (f64, f64),
    y: (f64, f64),
    axes: &Axes<'_>,
) -> Result<()> {
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let (l, r, t, b) = (xr.start, xr.end - 1, yr.start, yr.end - 1);
    let (xt, xd) = nice_ticks(x.0, x.1, axes.max_ticks.0);
    let (yt, yd) = nice_ticks(y.0, y.1, axes.max_ticks.1);
    let tick = Txt::new(axes.tick_size, INK);
    let mut widest = 0;
    for &v in &yt {
        let py = chart.backend_coord(&(x.0, v)).1;
        root.draw(&PathElement::new(vec![(l, py), (r, py)], GRID.stroke_width(1)))
            .map_err(de)?;
        root.draw(&PathElement::new(vec![(l - 5, py), (l, py)], INK.stroke_width(1)))
            .map_err(de)?;
        let label = format!("{v:.yd$}{}", axes.suffix_y);
        widest = widest.max(text_width(&label, axes.tick_size)?);
        draw_text(root, &label, (l - 9, py), tick.at(HA::Right, VA::Middle))?;
    }
    for &v in &xt {
        let px = chart.backend_coord(&(v, y.0)).0;
        root.draw(&PathElement::new(vec![(px, t), (px, b)], GRID.stroke_width(1)))
            .map_err(de)?;
        root.draw(&PathElement::new(vec![(px, b), (px, b + 5)], INK.stroke_width(1)))
            .map_err(de)?;
        draw_text(
            root,
            &format!("{v:.xd$}"),
            (px, b + 9),
            tick.at(HA::Center, VA::Top),
        )?;
    }
    root.draw(&Rectangle::new([(l, t), (r, b)], INK.stroke_width(1)))
        .map_err(de)?;
    let title = Txt::new(axes.title_size, INK);
    let below = b + 9 + text_height(axes.tick_size)? + 6;
    draw_text(
        root,
        axes.x_title,
        ((l + r) / 2, below),
        title.at(HA::Center, VA::Top),
    )?;
    let left = l - 9 - widest - 8 - text_height(axes.title_size)? / 2;
    draw_text(
        root,
        axes.y_title,
        (left, (t + b) / 2),
        title.at(HA::Center, VA::Middle).vertical(),
    )?;
    Ok(())
}

/// Method name without a `:option` suffix.
fn base(method: &str) -> &str {
    method.split(':').next().unwrap_or(method)
}

/// Whether a method is a baseline rather than a hard clustering method.
fn is_baseline(method: &str) -> bool {
    matches!(base(method), "none" | "learned")
}

/// Position of a method in the canonical order (unknown methods last).
fn method_rank(method: &str) -> usize {
    let b = base(method);
    HARD_ORDER
        .iter()
        .position(|m| *m == b)
        .or(match b {
            "learned" => Some(HARD_ORDER.len() + 1),
            "none" => Some(HARD_ORDER.len() + 2),
            _ => None,
        })
        .unwrap_or(HARD_ORDER.len())
}

/// Distinct method names in canonical order, ties by first appearance.
fn ordered_methods<'a>(methods: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for m in methods {
        if !seen.iter().any(|s| s == m) {
            seen.push(m.to_string());
        }
    }
    // A stable sort keeps first-appearance order among equal ranks.
    seen.sort_by_key(|m| method_rank(m));
    seen
}

/// Fixed colour of a method (the same in every plot); unknown methods take `unknown_slot`.
fn method_color(method: &str, unknown_slot: usize) -> RGBColor {
    match base(method) {
        "kmeans" => PALETTE[0],
        "agglomerative" => PALETTE[1],
        "spectral" => PALETTE[2],
        "gmm" => PALETTE[3],
        "dbscan" => PALETTE[4],
        "learned" => PALETTE[5],
        "none" => PALETTE[7],
        _ => [PALETTE[6], PALETTE[8], PALETTE[9]][unknown_slot % 3],
    }
}

/// Colour of cluster id `id` (noise grey; ids past the palette wrap around).
fn cluster_color(id: u32) -> RGBColor {
    if id == NOISE {
        RGBColor(200, 200, 200)
    } else {
        PALETTE[id as usize % PALETTE.len()]
    }
}

/// Sequential colour for `t` in 0..=1.
fn sequential(t: f64) -> RGBColor {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let f = t * (SEQUENTIAL.len() - 1) as f64;
    let i = (f.floor() as usize).min(SEQUENTIAL.len() - 2);
    let u = f - i as f64;
    let (a, b) = (SEQUENTIAL[i], SEQUENTIAL[i + 1]);
    let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * u).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Near-black or white, whichever reads better on `bg`.
fn ink_on(bg: RGBColor) -> RGBColor {
    let lum = 0.299 * bg.0 as f64 + 0.587 * bg.1 as f64 + 0.114 * bg.2 as f64;
    if lum > 140.0 { INK } else { WHITE }
}

/// Padded axis range around `lo..hi`, clamped to `clamp`.
fn padded(lo: f64, hi: f64, frac: f64, min_pad: f64, clamp: (f64, f64)) -> (f64, f64) {
    let pad = ((hi - lo) * frac).max(min_pad);
    ((lo - pad).max(clamp.0), (hi + pad).min(clamp.1))
}

/// Draws a filled marker with a thin outline.
fn marker(area: &Area<'_>, (x, y): (i32, i32), r: i32, color: RGBColor) -> Result<()> {
    area.draw(&Circle::new((x, y), r, color.filled())).map_err(de)?;
    area.draw(&Circle::new((x, y), r, INK.mix(0.85).stroke_width(1)))
        .map_err(de)
}

// ---------------------------------------------------------------------------------------------
// Accuracy heat-map
// ---------------------------------------------------------------------------------------------

/// Heat-map geometry (pixels).
const HM_LEFT: i32 = 260;
const HM_TOP: i32 = 122;
const HM_CELL_W: i32 = 120;
const HM_CELL_H: i32 = 58;
const HM_GAP: i32 = 30;
const HM_BAR: i32 = 150;
const HM_BOTTOM: i32 = 100;
const HM_MIN_W: i32 = 780;

/// Writes a method × k heat-map of accuracy (value printed per cell) to `path` as a PNG and
/// returns its size in pixels; `learned`/`none` cells go in labelled baseline rows below.
pub fn accuracy_heatmap(cells: &[CellResult], path: &Path) -> Result<(u32, u32)> {
    at_path("accuracy heat-map", path, heatmap_inner(cells, path))
}

fn heatmap_inner(cells: &[CellResult], path: &Path) -> Result<(u32, u32)> {
    let cells: Vec<&CellResult> = cells.iter().filter(|c| c.accuracy.is_finite()).collect();
    ensure!(!cells.is_empty(), "no cells with a finite accuracy to plot");
    let rows_where = |keep: &dyn Fn(&str) -> bool| {
        ordered_methods(cells.iter().map(|c| c.method.as_str()).filter(|m| keep(m)))
    };
    let hard_rows = rows_where(&|m| !is_baseline(m));
    let learned_rows = rows_where(&|m| base(m) == "learned");
    let none_rows = rows_where(&|m| base(m) == "none");
    let ks: Vec<usize> = cells
        .iter()
        .filter(|c| base(&c.method) != "none")
        .map(|c| c.k)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // A later cell with the same (method, k) replaces an earlier one; `none` ignores k.
    let mut value: BTreeMap<(&str, usize), f64> = BTreeMap::new();
    for c in &cells {
        let k = if base(&c.method) == "none" { 0 } else { c.k };
        value.insert((c.method.as_str(), k), c.accuracy);
    }
    let lo = value.values().copied().fold(f64::INFINITY, f64::min);
    let hi = value.values().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi - lo < 1e-6 {
        (lo - 0.005, hi + 0.005)
    } else {
        (lo, hi)
    };
    let best = value
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(key, _)| *key);

    let ncols = ks.len().max(1) as i32;
    let baseline_rows = (learned_rows.len() + none_rows.len()) as i32;
    let gap = if baseline_rows > 0 && !hard_rows.is_empty() {
        HM_GAP
    } else {
        0
    };
    let grid_w = ncols * HM_CELL_W;
    let grid_h = (hard_rows.len() as i32 + baseline_rows) * HM_CELL_H + gap;
    let w = (HM_LEFT + grid_w + HM_BAR).max(HM_MIN_W);
    let h = HM_TOP + grid_h + HM_BOTTOM;
    // Centre the grid when the minimum width leaves room.
    let x0 = HM_LEFT + (w - (HM_LEFT + grid_w + HM_BAR)) / 2;

    render(path, (w as u32, h as u32), |root| {
        root.fill(&WHITE).map_err(de)?;
        let mid = |size, color| Txt::new(size, color).at(HA::Center, VA::Middle);
        draw_text(
            root,
            "Accuracy by clustering method and k",
            (w / 2, 36),
            mid(28.0, INK),
        )?;
        draw_text(
            root,
            "evaluation accuracy per trained cell; outlined: highest",
            (w / 2, 70),
            mid(17.0, MUTED),
        )?;

        let row_label = Txt::new(18.0, INK).at(HA::Right, VA::Middle);
        let draw_cell = |x: i32, y: i32, cw: i32, key: (&str, usize), suffix: &str| -> Result<()> {
            let v = value.get(&key).copied();
            let (bg, label, color) = match v {
                Some(v) => {
                    let bg = sequential((v - lo) / (hi - lo));
                    (bg, format!("{:.1} %{suffix}", v * 100.0), ink_on(bg))
                }
                None => (RGBColor(238, 238, 238), "–".to_string(), RGBColor(150, 150, 150)),
            };
            root.draw(&Rectangle::new(
                [(x + 2, y + 2), (x + cw - 2, y + HM_CELL_H - 2)],
                bg.filled(),
            ))
            .map_err(de)?;
            if v.is_some() && best == Some(key) {
                for d in 0..3 {
                    root.draw(&Rectangle::new(
                        [(x + 2 + d, y + 2 + d), (x + cw - 2 - d, y + HM_CELL_H - 2 - d)],
                        INK.stroke_width(1),
                    ))
                    .map_err(de)?;
                }
            }
            draw_text(root, &label, (x + cw / 2, y + HM_CELL_H / 2), mid(19.0, color))
        };
        let grid_row = |y: i32, m: &str| -> Result<()> {
            for (j, &k) in ks.iter().enumerate() {
                draw_cell(x0 + j as i32 * HM_CELL_W, y, HM_CELL_W, (m, k), "")?;
            }
            Ok(())
        };

        let mut y = HM_TOP;
        for m in &hard_rows {
            draw_text(root, m, (x0 - 14, y + HM_CELL_H / 2), row_label)?;
            grid_row(y, m)?;
            y += HM_CELL_H;
        }
        if gap > 0 {
            let ly = y + gap / 2;
            root.draw(&PathElement::new(
                vec![(x0 - HM_LEFT + 40, ly), (x0 + grid_w, ly)],
                RGBColor(175, 175, 175).stroke_width(1),
            ))
            .map_err(de)?;
            y += gap;
        }
        for m in &learned_rows {
            let label = if m == "learned" {
                "learned (soft, baseline)".to_string()
            } else {
                format!("{m} (baseline)")
            };
            draw_text(root, &label, (x0 - 14, y + HM_CELL_H / 2), row_label)?;
            grid_row(y, m)?;
            y += HM_CELL_H;
        }
        for m in &none_rows {
            let label = if m == "none" {
                "none (patch-to-patch)".to_string()
            } else {
                format!("{m} (baseline)")
            };
            draw_text(root, &label, (x0 - 14, y + HM_CELL_H / 2), row_label)?;
            let suffix = if ncols > 1 {
                "   (no clustering, any k)"
            } else {
                ""
            };
            draw_cell(x0, y, grid_w, (m.as_str(), 0), suffix)?;
            y += HM_CELL_H;
        }

        // Column labels and axis titles.
        for (j, k) in ks.iter().enumerate() {
            let x = x0 + j as i32 * HM_CELL_W + HM_CELL_W / 2;
            draw_text(
                root,
                &k.to_string(),
                (x, y + 10),
                Txt::new(18.0, INK).at(HA::Center, VA::Top),
            )?;
        }
        if !ks.is_empty() {
            draw_text(
                root,
                "k (clusters per image)",
                (x0 + grid_w / 2, y + 48),
                Txt::new(19.0, INK).at(HA::Center, VA::Top),
            )?;
        }
        // Header of the row labels, like a table's.
        draw_text(
            root,
            "method",
            (x0 - 14, HM_TOP - 16),
            Txt::new(19.0, INK).at(HA::Right, VA::Middle),
        )?;

        // Colour bar.
        let bx = x0 + grid_w + 36;
        let (by0, by1) = (HM_TOP + 2, HM_TOP + grid_h - 2);
        for py in by0..=by1 {
            let t = 1.0 - (py - by0) as f64 / (by1 - by0).max(1) as f64;
            root.draw(&PathElement::new(
                vec![(bx, py), (bx + 22, py)],
                sequential(t).stroke_width(1),
            ))
            .map_err(de)?;
        }
        root.draw(&Rectangle::new([(bx, by0), (bx + 22, by1)], INK.stroke_width(1)))
            .map_err(de)?;
        let (ticks, dec) = nice_ticks(lo * 100.0, hi * 100.0, ((by1 - by0) / 34).clamp(2, 6) as usize);
        for v in ticks {
            let py = by1 - ((v / 100.0 - lo) / (hi - lo) * (by1 - by0) as f64).round() as i32;
            root.draw(&PathElement::new(
                vec![(bx + 22, py), (bx + 28, py)],
                INK.stroke_width(1),
            ))
            .map_err(de)?;
            draw_text(root, &format!("{v:.dec$} %"), (bx + 32, py), Txt::new(15.0, INK))?;
        }
        draw_text(root, "accuracy", (bx + 11, by0 - 20), mid(15.0, INK))?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Pareto plot
// ---------------------------------------------------------------------------------------------

/// Per-frame runtime of a cell in milliseconds: clustering (µs → ms) plus ViT inference.
pub fn frame_ms(cell: &CellResult) -> f64 {
    cell.cluster_us_per_image / 1000.0 + cell.model_ms_per_image
}

/// Indices of the non-dominated cells (no other cell is at least as fast and at least as
/// accurate, and strictly better in one), sorted by runtime; exact duplicates are all kept and
/// cells with a non-finite accuracy or runtime are never on the front.
pub fn pareto_front(cells: &[CellResult]) -> Vec<usize> {
    let mut order: Vec<(usize, f64, f64)> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| (i, frame_ms(c), c.accuracy))
        .filter(|(_, t, a)| t.is_finite() && a.is_finite())
        .collect();
    // Fastest first; among equal runtimes the most accurate first, then by index.
    order.sort_by(|a, b| a.1.total_cmp(&b.1).then(b.2.total_cmp(&a.2)).then(a.0.cmp(&b.0)));
    let mut front = Vec::new();
    let mut best: Option<(f64, f64)> = None;
    for (i, t, a) in order {
        let on_front = match best {
            None => true,
            Some((bt, ba)) => a > ba || (a == ba && t == bt),
        };
        if on_front {
            front.push(i);
            best = Some((t, a));
        }
    }
    front
}

/// Point label: "spectral k2", or just the method for `none` (k does not apply).
fn point_label(c: &CellResult) -> String {
    if base(&c.method) == "none" {
        c.method.clone()
    } else {
        format!("{} k{}", c.method, c.k)
    }
}

/// Legend text of a method.
fn method_legend(method: &str) -> String {
    match method {
        "none" => "none (patch-to-patch)".into(),
        "learned" => "learned (soft)".into(),
        m => m.to_string(),
    }
}

/// Pareto plot size in pixels.
const PARETO_SIZE: (u32, u32) = (1200, 760);
/// Width of the legend column on the right of the Pareto plot.
const PARETO_LEGEND_W: u32 = 250;

/// Writes accuracy (%) against per-frame runtime (ms) for every cell, each point labelled
/// ("spectral k2"), with the Pareto front as a step line, to `path` as a PNG; returns its size.
pub fn pareto_plot(cells: &[CellResult], path: &Path) -> Result<(u32, u32)> {
    at_path("Pareto plot", path, pareto_inner(cells, path))
}

fn pareto_inner(cells: &[CellResult], path: &Path) -> Result<(u32, u32)> {
    let valid: Vec<usize> = (0..cells.len())
        .filter(|&i| frame_ms(&cells[i]).is_finite() && cells[i].accuracy.is_finite())
        .collect();
    ensure!(
        !valid.is_empty(),
        "no cells with a finite accuracy and runtime to plot"
    );
    let front = pareto_front(cells);
    let xy = |i: usize| (frame_ms(&cells[i]), cells[i].accuracy * 100.0);
    let fold = |f: &dyn Fn(usize) -> f64| {
        valid
            .iter()
            .map(|&i| f(i))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(v), h.max(v))
            })
    };
    let (xmin, xmax) = fold(&|i| xy(i).0);
    let (ymin, ymax) = fold(&|i| xy(i).1);
    let x = padded(
        xmin,
        xmax,
        0.1,
        (xmax.abs() * 0.05).max(1e-3),
        (xmin.min(0.0), f64::INFINITY),
    );
    // Clamped to 0..100 % unless a (malformed) value lies outside.
    let y = padded(ymin, ymax, 0.12, 1.0, (ymin.min(0.0), ymax.max(100.0)));
    let methods = ordered_methods(valid.iter().map(|&i| cells[i].method.as_str()));
    let unknown: Vec<&String> = methods
        .iter()
        .filter(|m| method_rank(m) == HARD_ORDER.len())
        .collect();
    let color_of = |m: &str| method_color(m, unknown.iter().position(|u| *u == m).unwrap_or(0));

    render(path, PARETO_SIZE, |root| {
        root.fill(&WHITE).map_err(de)?;
        let (plot_w, full_h) = (PARETO_SIZE.0 - PARETO_LEGEND_W, PARETO_SIZE.1 as i32);
        draw_text(
            root,
            "Accuracy vs per-frame runtime",
            (plot_w as i32 / 2 + 50, 34),
            Txt::new(28.0, INK).at(HA::Center, VA::Middle),
        )?;
        let (plot_area, _) = root.split_horizontally(plot_w);
        let chart = ChartBuilder::on(&plot_area)
            .margin_top(70)
            .margin_right(20)
            .x_label_area_size(80)
            .y_label_area_size(100)
            .build_cartesian_2d(x.0..x.1, y.0..y.1)
            .map_err(de)?;
        draw_axes(
            root,
            &chart,
            x,
            y,
            &Axes {
                x_title: "per-frame runtime (ms) = clustering + ViT inference",
                y_title: "accuracy (%)",
                max_ticks: (10, 8),
                tick_size: 16.0,
                title_size: 19.0,
                suffix_y: "",
            },
        )?;
        let (prx, pry) = chart.plotting_area().get_pixel_range();

        // Pareto front as a step line: the best accuracy reachable within a given runtime.
        let front_color = RGBColor(60, 60, 60);
        let mut steps: Vec<(i32, i32)> = Vec::new();
        for &i in &front {
            let p = chart.backend_coord(&xy(i));
            if let Some(&(_, prev)) = steps.last() {
                steps.push((p.0, prev));
            }
            steps.push(p);
        }
        if let Some(&(_, last)) = steps.last() {
            steps.push((prx.end - 2, last));
        }
        // The step line's segments, as boxes that labels should avoid.
        let segments: Vec<[i32; 4]> = steps
            .windows(2)
            .map(|s| {
                let (a, b) = (s[0], s[1]);
                [
                    a.0.min(b.0) - 2,
                    a.1.min(b.1) - 2,
                    a.0.max(b.0) + 2,
                    a.1.max(b.1) + 2,
                ]
            })
            .collect();
        root.draw(&DashedPathElement::new(steps, 9, 5, front_color.stroke_width(2)))
            .map_err(de)?;

        // Points; the front's points get a ring.
        let points: Vec<(i32, i32)> = valid.iter().map(|&i| chart.backend_coord(&xy(i))).collect();
        for (&i, &p) in valid.iter().zip(&points) {
            if front.contains(&i) {
                root.draw(&Circle::new(p, 11, front_color.stroke_width(2)))
                    .map_err(de)?;
            }
            marker(root, p, 7, color_of(&cells[i].method))?;
        }

        // Labels, placed greedily where they overlap neither earlier labels nor points.
        let size = 15.0;
        let th = text_height(size)?;
        let mut placed: Vec<[i32; 4]> = Vec::new();
        for (n, &i) in valid.iter().enumerate() {
            let label = point_label(&cells[i]);
            let tw = text_width(&label, size)?;
            let (px, py) = points[n];
            let candidates = [
                (px + 14, py - th / 2),
                (px - 14 - tw, py - th / 2),
                (px - tw / 2, py - 14 - th),
                (px - tw / 2, py + 14),
                (px + 10, py - 10 - th),
                (px + 10, py + 10),
                (px - 10 - tw, py - 10 - th),
                (px - 10 - tw, py + 10),
            ];
            let mut best: Option<([i32; 4], i64)> = None;
            for (cx, cy) in candidates {
                let bx = [cx - 2, cy - 1, cx + tw + 2, cy + th + 1];
                let outside = bx[0] < prx.start || bx[2] >= prx.end || bx[1] < pry.start || bx[3] >= pry.end;
                let mut cost: i64 = if outside { 1_000_000 } else { 0 };
                cost += placed.iter().map(|b| overlap(&bx, b)).sum::<i64>();
                cost += points
                    .iter()
                    .enumerate()
                    .filter(|(m, _)| *m != n)
                    .map(|(_, &(qx, qy))| 4 * overlap(&bx, &[qx - 12, qy - 12, qx + 12, qy + 12]))
                    .sum::<i64>();
                cost += segments.iter().map(|sg| 2 * overlap(&bx, sg)).sum::<i64>();
                if best.is_none_or(|(_, c)| cost < c) {
                    best = Some((bx, cost));
                }
                if cost == 0 {
                    break;
                }
            }
            if let Some((bx, _)) = best {
                root.draw(&Rectangle::new(
                    [(bx[0], bx[1]), (bx[2], bx[3])],
                    WHITE.mix(0.8).filled(),
                ))
                .map_err(de)?;
                draw_text(
                    root,
                    &label,
                    (bx[0] + 2, bx[1] + 1),
                    Txt::new(size, INK).at(HA::Left, VA::Top),
                )?;
                placed.push(bx);
            }
        }

        // Legend column.
        let lx = plot_w as i32 + 10;
        let mut ly = pry.start + 12;
        let entry = Txt::new(17.0, INK);
        let rows = methods.len() as i32 + 3;
        root.draw(&Rectangle::new(
            [
                (lx - 10, ly - 22),
                (PARETO_SIZE.0 as i32 - 14, (ly + rows * 30 + 2).min(full_h - 10)),
            ],
            RGBColor(200, 200, 200).stroke_width(1),
        ))
        .map_err(de)?;
        draw_text(root, "method", (lx, ly), Txt::new(18.0, MUTED))?;
        ly += 32;
        for m in &methods {
            marker(root, (lx + 11, ly), 7, color_of(m))?;
            draw_text(root, &method_legend(m), (lx + 30, ly), entry)?;
            ly += 30;
        }
        ly += 6;
        root.draw(&DashedPathElement::new(
            vec![(lx, ly), (lx + 22, ly)],
            9,
            5,
            front_color.stroke_width(2),
        ))
        .map_err(de)?;
        draw_text(root, "Pareto front", (lx + 30, ly), entry)?;
        ly += 30;
        root.draw(&Circle::new((lx + 11, ly), 11, front_color.stroke_width(2)))
            .map_err(de)?;
        draw_text(root, "on the front", (lx + 30, ly), entry)?;
        Ok(())
    })
}

/// Overlap area of two `[x0, y0, x1, y1]` boxes.
fn overlap(a: &[i32; 4], b: &[i32; 4]) -> i64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0) as i64;
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0) as i64;
    w * h
}

// ---------------------------------------------------------------------------------------------
// PCA and the cluster scatter (figure 4)
// ---------------------------------------------------------------------------------------------

/// The first two principal components of a set of points.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca2 {
    /// Each point's coordinates on (PC1, PC2), in input order.
    pub scores: Vec<[f64; 2]>,
    /// Unit principal directions (length `dim`); zero where the data has no such variance.
    pub components: [Vec<f64>; 2],
    /// Fraction of the total variance each component explains (0 when the data are constant).
    pub explained: [f64; 2],
}

/// PCA of `features` (row-major, `dim` values per point) to two components, in f64: centres the
/// points, eigen-decomposes the smaller of the Gram and covariance matrices (cyclic Jacobi), and
/// signs each direction so that its largest-magnitude entry (the first, on a tie) is positive.
pub fn pca_2d(features: &[f32], dim: usize) -> Result<Pca2> {
    ensure!(dim > 0, "feature dimension is 0");
    ensure!(
        features.len().is_multiple_of(dim),
        "{} feature values are not a whole number of {dim}-d points",
        features.len()
    );
    let n = features.len() / dim;
    ensure!(n >= 2, "PCA needs at least 2 points, got {n}");
    ensure!(
        features.iter().all(|v| v.is_finite()),
        "features contain a non-finite value"
    );
    let mut mean = vec![0f64; dim];
    for row in features.chunks_exact(dim) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    let x: Vec<f64> = features
        .chunks_exact(dim)
        .flat_map(|row| row.iter().zip(&mean).map(|(&v, m)| v as f64 - m))
        .collect();
    let row = |i: usize| &x[i * dim..(i + 1) * dim];

    let (scores, mut components, vals, total) = if n <= dim {
        // Gram matrix G = X Xᵀ (n × n): G u = λ u, score = √λ u, direction = Xᵀ u / √λ.
        let mut g = vec![0f64; n * n];
        for i in 0..n {
            for j in i..n {
                let d: f64 = row(i).iter().zip(row(j)).map(|(a, b)| a * b).sum();
                g[i * n + j] = d;
                g[j * n + i] = d;
            }
        }
        let total: f64 = (0..n).map(|i| g[i * n + i]).sum();
        let (vals, vecs) = top2_eigen(g, n);
        let mut scores = vec![[0f64; 2]; n];
        let mut comps = [vec![0f64; dim], vec![0f64; dim]];
        for c in 0..2 {
            let lam = vals[c];
            if lam <= total * 1e-12 || lam <= 0.0 {
                continue;
            }
            let s = lam.sqrt();
            for i in 0..n {
                let u = vecs[c][i];
                scores[i][c] = u * s;
                for (d, &xv) in comps[c].iter_mut().zip(row(i)) {
                    *d += xv * u / s;
                }
            }
        }
        (scores, comps, vals, total)
    } else {
        // Covariance-like matrix C = Xᵀ X (dim × dim): C v = λ v, score = X v.
        let mut c = vec![0f64; dim * dim];
        for i in 0..n {
            let r = row(i);
            for a in 0..dim {
                for b in a..dim {
                    c[a * dim + b] += r[a] * r[b];
                }
            }
        }
        for a in 0..dim {
            for b in 0..a {
                c[a * dim + b] = c[b * dim + a];
            }
        }
        let total: f64 = (0..dim).map(|a| c[a * dim + a]).sum();
        let (vals, vecs) = top2_eigen(c, dim);
        let mut comps = [vec![0f64; dim], vec![0f64; dim]];
        for k in 0..2 {
            if vals[k] > total * 1e-12 && vals[k] > 0.0 {
                comps[k].clone_from(&vecs[k]);
            }
        }
        let scores = (0..n)
            .map(|i| {
                let r = row(i);
                let dot = |v: &[f64]| r.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
                [dot(&comps[0]), dot(&comps[1])]
            })
            .collect();
        (scores, comps, vals, total)
    };
    let mut scores: Vec<[f64; 2]> = scores;
    // Deterministic signs: each direction's largest-magnitude entry positive (the first of
    // entries within 1e-9 of the largest, so that rounding cannot flip a tie).
    for k in 0..2 {
        let top = components[k].iter().fold(0f64, |m, v| m.max(v.abs()));
        let pivot = components[k]
            .iter()
            .copied()
            .find(|v| v.abs() >= top * (1.0 - 1e-9))
            .unwrap_or(0.0);
        if pivot < 0.0 {
            components[k].iter_mut().for_each(|v| *v = -*v);
            scores.iter_mut().for_each(|s| s[k] = -s[k]);
        }
    }
    let explained = if total > 0.0 {
        [
            (vals[0].max(0.0) / total).min(1.0),
            (vals[1].max(0.0) / total).min(1.0),
        ]
    } else {
        [0.0, 0.0]
    };
    Ok(Pca2 {
        scores,
        components,
        explained,
    })
}

/// The two largest eigenvalues of the symmetric `m × m` matrix `a` (row-major) and their unit
/// eigenvectors, by cyclic Jacobi rotations. With `m == 1` the second pair is zero.
fn top2_eigen(mut a: Vec<f64>, m: usize) -> ([f64; 2], [Vec<f64>; 2]) {
    let mut v = vec![0f64; m * m];
    for i in 0..m {
        v[i * m + i] = 1.0;
    }
    let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        for _sweep in 0..100 {
            let off: f64 = (0..m)
                .flat_map(|p| ((p + 1)..m).map(move |q| (p, q)))
                .map(|(p, q)| a[p * m + q] * a[p * m + q])
                .sum::<f64>()
                .sqrt();
            if off <= norm * 1e-15 {
                break;
            }
            for p in 0..m {
                for q in (p + 1)..m {
                    let apq = a[p * m + q];
                    if apq.abs() <= norm * 1e-300 {
                        continue;
                    }
                    let theta = (a[q * m + q] - a[p * m + p]) / (2.0 * apq);
                    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                    let c = 1.0 / (t * t + 1.0).sqrt();
                    let s = t * c;
                    // A ← Jᵀ A J with J the rotation by (c, s) in the (p, q) plane.
                    for k in 0..m {
                        let (akp, akq) = (a[k * m + p], a[k * m + q]);
                        a[k * m + p] = c * akp - s * akq;
                        a[k * m + q] = s * akp + c * akq;
                    }
                    for k in 0..m {
                        let (apk, aqk) = (a[p * m + k], a[q * m + k]);
                        a[p * m + k] = c * apk - s * aqk;
                        a[q * m + k] = s * apk + c * aqk;
                    }
                    for k in 0..m {
                        let (vkp, vkq) = (v[k * m + p], v[k * m + q]);
                        v[k * m + p] = c * vkp - s * vkq;
                        v[k * m + q] = s * vkp + c * vkq;
                    }
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| a[j * m + j].total_cmp(&a[i * m + i]).then(i.cmp(&j)));
    let column = |j: usize| (0..m).map(|k| v[k * m + j]).collect::<Vec<f64>>();
    let pick = |r: usize| match order.get(r) {
        Some(&j) => (a[j * m + j], column(j)),
        None => (0.0, vec![0.0; m]),
    };
    let (l0, v0) = pick(0);
    let (l1, v1) = pick(1);
    ([l0, l1], [v0, v1])
}

/// Scatter panel size in pixels.
const PANEL: (u32, u32) = (380, 370);
/// Height of the scatter figure's title strip.
const SCATTER_TITLE_H: u32 = 92;
/// Height of the scatter figure's legend strip.
const SCATTER_LEGEND_H: u32 = 60;
/// Most cluster ids the scatter legend lists.
const LEGEND_IDS: usize = 12;
/// Most panels (labelings) one scatter figure shows.
const MAX_PANELS: usize = 32;
/// Least width of the scatter figure.
const SCATTER_MIN_W: u32 = 900;

/// Writes the study's figure 4 to `path` as a PNG and returns its size: the patch embeddings of
/// one face (`features`, row-major, `dim` per patch) projected to 2-D by PCA, one panel per
/// `(method, labels)` labelling with points coloured by cluster id (`u32::MAX` = noise).
pub fn cluster_scatter(
    features: &[f32],
    dim: usize,
    labelings: &[(String, Vec<u32>)],
    path: &Path,
) -> Result<(u32, u32)> {
    at_path(
        "cluster scatter",
        path,
        scatter_inner(features, dim, labelings, path),
    )
}

fn scatter_inner(
    features: &[f32],
    dim: usize,
    labelings: &[(String, Vec<u32>)],
    path: &Path,
) -> Result<(u32, u32)> {
    ensure!(!features.is_empty(), "no features to plot");
    ensure!(!labelings.is_empty(), "no labelings to plot");
    ensure!(
        labelings.len() <= MAX_PANELS,
        "{} labelings are more than the {MAX_PANELS} panels one figure shows",
        labelings.len()
    );
    let pca = pca_2d(features, dim)?;
    let n = pca.scores.len();
    for (name, labels) in labelings {
        if labels.len() != n {
            bail!("labeling '{name}' has {} labels for {n} points", labels.len());
        }
    }
    let panels = labelings.len() as u32;
    let cols = panels.min(4);
    let rows = panels.div_ceil(cols);
    let w = (cols * PANEL.0 + 40).max(SCATTER_MIN_W);
    let h = SCATTER_TITLE_H + rows * PANEL.1 + SCATTER_LEGEND_H;

    let fold = |k: usize| {
        pca.scores
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), s| {
                (l.min(s[k]), h.max(s[k]))
            })
    };
    let ((xmin, xmax), (ymin, ymax)) = (fold(0), fold(1));
    let span = (xmax - xmin).max(ymax - ymin);
    let min_pad = if span > 0.0 { span * 0.03 } else { 1.0 };
    let unbounded = (f64::NEG_INFINITY, f64::INFINITY);
    let x = padded(xmin, xmax, 0.08, min_pad, unbounded);
    let y = padded(ymin, ymax, 0.08, min_pad, unbounded);
    let ids: BTreeSet<u32> = labelings.iter().flat_map(|(_, l)| l.iter().copied()).collect();

    render(path, (w, h), |root| {
        root.fill(&WHITE).map_err(de)?;
        let mid = |size, color| Txt::new(size, color).at(HA::Center, VA::Middle);
        draw_text(
            root,
            &format!("Patch embeddings of one face, PCA to 2-D ({n} patches)"),
            (w as i32 / 2, 32),
            mid(27.0, INK),
        )?;
        draw_text(
            root,
            &format!(
                "one panel per clustering method, colour = cluster id; PC1 explains {:.1} %, PC2 {:.1} % of the variance",
                pca.explained[0] * 100.0,
                pca.explained[1] * 100.0
            ),
            (w as i32 / 2, 66),
            mid(16.0, MUTED),
        )?;
        let grid_w = cols * PANEL.0;
        let left = (w - grid_w) / 2;
        let body = root.margin(SCATTER_TITLE_H, SCATTER_LEGEND_H, left, w - grid_w - left);
        for ((name, labels), area) in labelings
            .iter()
            .zip(body.split_evenly((rows as usize, cols as usize)))
        {
            let clusters = labels
                .iter()
                .filter(|&&l| l != NOISE)
                .collect::<BTreeSet<_>>()
                .len();
            let noise = labels.iter().filter(|&&l| l == NOISE).count();
            let caption = match noise {
                0 => format!("{name} ({clusters} clusters)"),
                _ => format!("{name} ({clusters} clusters, {noise} noise)"),
            };
            let chart = ChartBuilder::on(&area)
                .margin_top(34)
                .margin_right(14)
                .margin_bottom(6)
                .x_label_area_size(50)
                .y_label_area_size(62)
                .build_cartesian_2d(x.0..x.1, y.0..y.1)
                .map_err(de)?;
            draw_axes(
                root,
                &chart,
                x,
                y,
                &Axes {
                    x_title: "PC1",
                    y_title: "PC2",
                    max_ticks: (5, 5),
                    tick_size: 13.0,
                    title_size: 15.0,
                    suffix_y: "",
                },
            )?;
            let (prx, pry) = chart.plotting_area().get_pixel_range();
            draw_text(
                root,
                &caption,
                ((prx.start + prx.end) / 2, pry.start - 16),
                mid(18.0, INK),
            )?;
            for (s, &l) in pca.scores.iter().zip(labels) {
                marker(root, chart.backend_coord(&(s[0], s[1])), 6, cluster_color(l))?;
            }
        }

        // Shared legend of cluster ids.
        let ly = (h - SCATTER_LEGEND_H / 2) as i32;
        let size = 16.0;
        let real: Vec<u32> = ids.iter().copied().filter(|&id| id != NOISE).collect();
        let mut items: Vec<(String, RGBColor)> = real
            .iter()
            .take(LEGEND_IDS)
            .map(|&id| (id.to_string(), cluster_color(id)))
            .collect();
        if ids.contains(&NOISE) {
            items.push(("noise".into(), cluster_color(NOISE)));
        }
        let head = "cluster id:";
        let tail = if real.len() > LEGEND_IDS {
            format!(
                "… up to {} (colours repeat after {})",
                real.last().copied().unwrap_or(0),
                PALETTE.len()
            )
        } else if real.iter().any(|&id| id as usize >= PALETTE.len()) {
            format!("(colours repeat after {})", PALETTE.len())
        } else {
            String::new()
        };
        let widths = items
            .iter()
            .map(|(l, _)| text_width(l, size))
            .collect::<Result<Vec<_>>>()?;
        let head_w = text_width(head, size)?;
        let total =
            head_w + 12 + widths.iter().map(|tw| 20 + tw + 16).sum::<i32>() + text_width(&tail, size)?;
        let mut lx = (w as i32 - total) / 2;
        let entry = Txt::new(size, INK);
        draw_text(root, head, (lx, ly), entry)?;
        lx += head_w + 12;
        for ((label, color), tw) in items.iter().zip(widths) {
            marker(root, (lx + 7, ly), 7, *color)?;
            draw_text(root, label, (lx + 20, ly), entry)?;
            lx += 20 + tw + 16;
        }
        draw_text(root, &tail, (lx, ly), Txt::new(size, MUTED))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(method: &str, k: usize, accuracy: f64, cluster_us: f64, model_ms: f64) -> CellResult {
        CellResult {
            method: method.into(),
            k,
            clusters: k,
            accuracy,
            macro_f1: accuracy * 0.9,
            per_class: BTreeMap::new(),
            confusion: vec![vec![0; 8]; 8],
            cluster_seconds: 1.0,
            cluster_us_per_image: cluster_us,
            model_ms_per_image: model_ms,
            train_images_per_s: 100.0,
            train_seconds: 10.0,
            params: 1000,
            epochs: 1,
            train_images: 100,
            eval_images: 10,
            model_dir: "models/x".into(),
        }
    }

    /// A sweep like the shipped one: the 3 × 3 study grid plus the extras.
    fn sweep() -> Vec<CellResult> {
        let mut v = Vec::new();
        let grid = [
            ("kmeans", [0.612, 0.634, 0.641], 120.0),
            ("agglomerative", [0.598, 0.627, 0.619], 900.0),
            ("spectral", [0.655, 0.648, 0.601], 2600.0),
        ];
        for (m, accs, us) in grid {
            for (j, k) in [2usize, 4, 8].into_iter().enumerate() {
                v.push(cell(m, k, accs[j], us * (1.0 + j as f64 * 0.4), 4.1));
            }
        }
        v.push(cell("none", 36, 0.603, 0.0, 5.2));
        v.push(cell("learned", 4, 0.629, 0.0, 4.6));
        v.push(cell("gmm", 4, 0.622, 1500.0, 4.1));
        v.push(cell("dbscan", 8, 0.588, 700.0, 4.1));
        v
    }

    /// Decodes a written PNG and checks size and that it is not blank.
    fn check_png(path: &Path, size: (u32, u32)) {
        let img = image::open(path).expect("decodes").to_rgb8();
        assert_eq!(img.dimensions(), size);
        let colours: BTreeSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert!(colours.len() > 20, "only {} colours", colours.len());
        let non_white = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(non_white > 1000, "only {non_white} non-white pixels");
    }

    #[test]
    fn pareto_front_excludes_dominated_cells() {
        let cells = vec![
            cell("a", 2, 0.60, 0.0, 1.0),    // fastest
            cell("b", 2, 0.55, 0.0, 2.0),    // slower and worse than a: dominated
            cell("c", 2, 0.70, 0.0, 3.0),    // better, slower
            cell("d", 2, 0.70, 500.0, 3.0),  // same accuracy as c, slower: dominated
            cell("e", 2, 0.80, 1000.0, 4.0), // best
        ];
        assert_eq!(pareto_front(&cells), vec![0, 2, 4]);
    }

    #[test]
    fn pareto_front_ties() {
        let cells = vec![
            cell("slow", 2, 0.70, 0.0, 2.0),
            cell("dup1", 2, 0.70, 0.0, 1.0),
            cell("dup2", 2, 0.70, 0.0, 1.0), // exact duplicate of dup1: both kept
            cell("same_t", 2, 0.65, 0.0, 1.0), // same runtime, less accurate: dominated
        ];
        assert_eq!(pareto_front(&cells), vec![1, 2]);
        assert!(pareto_front(&[]).is_empty());
        let nan = vec![cell("x", 2, f64::NAN, 0.0, 1.0), cell("y", 2, 0.5, 0.0, 2.0)];
        assert_eq!(pareto_front(&nan), vec![1]);
    }

    #[test]
    fn pareto_front_runtime_includes_clustering() {
        // 2000 µs of clustering makes b slower than a although its model is faster.
        let cells = vec![cell("a", 2, 0.60, 0.0, 2.0), cell("b", 2, 0.65, 2000.0, 1.0)];
        assert_eq!(frame_ms(&cells[1]), 3.0);
        assert_eq!(pareto_front(&cells), vec![0, 1]);
    }

    #[test]
    fn jacobi_recovers_eigenpairs() {
        // Symmetric 4 × 4 with known spectrum from Q diag(5, 3, 1, 0.5) Qᵀ.
        let m = 4;
        let lam = [5.0, 3.0, 1.0, 0.5];
        let (c, s) = (0.6f64, 0.8f64);
        let q = [
            [c, -s, 0.0, 0.0],
            [s, c, 0.0, 0.0],
            [0.0, 0.0, c, s],
            [0.0, 0.0, -s, c],
        ];
        let mut a = vec![0.0; 16];
        for i in 0..m {
            for j in 0..m {
                a[i * m + j] = (0..m).map(|k| q[i][k] * lam[k] * q[j][k]).sum();
            }
        }
        let (vals, vecs) = top2_eigen(a.clone(), m);
        assert!(
            (vals[0] - 5.0).abs() < 1e-12 && (vals[1] - 3.0).abs() < 1e-12,
            "{vals:?}"
        );
        for k in 0..2 {
            for i in 0..m {
                let av: f64 = (0..m).map(|j| a[i * m + j] * vecs[k][j]).sum();
                assert!((av - vals[k] * vecs[k][i]).abs() < 1e-12);
            }
        }
    }

    /// Deterministic pseudo-random numbers in -0.5..0.5.
    fn noise(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    }

    /// Points along `dir` in `dim` dimensions plus a little noise (and an offset).
    fn line_data(n: usize, dim: usize, dir: &[f64], noise_amp: f64) -> Vec<f32> {
        let mut seed = 7;
        let mut out = Vec::with_capacity(n * dim);
        for i in 0..n {
            let t = i as f64 - n as f64 / 2.0;
            for &u in &dir[..dim] {
                out.push((3.0 + t * u + noise_amp * noise(&mut seed)) as f32);
            }
        }
        out
    }

    fn unit_dir(dim: usize) -> Vec<f64> {
        let raw: Vec<f64> = (0..dim).map(|d| ((d * 7 + 3) % 11) as f64 - 5.0).collect();
        let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
        raw.iter().map(|x| x / norm).collect()
    }

    fn check_line_pca(n: usize, dim: usize) {
        let dir = unit_dir(dim);
        let data = line_data(n, dim, &dir, 0.01);
        let pca = pca_2d(&data, dim).unwrap();
        assert!(pca.explained[0] >= 0.99, "{:?}", pca.explained);
        assert!(pca.explained[0] + pca.explained[1] <= 1.0 + 1e-12);
        let cos: f64 = pca.components[0].iter().zip(&dir).map(|(a, b)| a * b).sum();
        assert!(cos.abs() > 0.9999, "cos = {cos}");
        let norm: f64 = pca.components[0].iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-9);
        let dot: f64 = pca.components[0]
            .iter()
            .zip(&pca.components[1])
            .map(|(a, b)| a * b)
            .sum();
        assert!(dot.abs() < 1e-9, "components not orthogonal: {dot}");
        // Scores are the centred points projected on the components.
        let mean: Vec<f64> = (0..dim)
            .map(|d| (0..n).map(|i| data[i * dim + d] as f64).sum::<f64>() / n as f64)
            .collect();
        for i in [0, n / 2, n - 1] {
            let s: f64 = (0..dim)
                .map(|d| (data[i * dim + d] as f64 - mean[d]) * pca.components[0][d])
                .sum();
            assert!((s - pca.scores[i][0]).abs() < 1e-6, "{s} vs {}", pca.scores[i][0]);
        }
    }

    #[test]
    fn pca_finds_a_line_in_50d_gram_path() {
        check_line_pca(36, 50); // n ≤ dim: Gram matrix
    }

    #[test]
    fn pca_finds_a_line_in_low_d_covariance_path() {
        check_line_pca(36, 5); // n > dim: covariance matrix
    }

    /// Compares `pca_2d` with numpy's values from `scripts/pca_fixture.py`.
    fn check_numpy(x: &[f32], dim: usize, explained: [f64; 2], pcs: [&[f64]; 2]) {
        let pca = pca_2d(x, dim).unwrap();
        for k in 0..2 {
            assert!(
                (pca.explained[k] - explained[k]).abs() < 1e-9,
                "{:?}",
                pca.explained
            );
            for (got, want) in pca.components[k].iter().zip(pcs[k]) {
                assert!((got - want).abs() < 1e-9, "PC{}: {:?}", k + 1, pca.components[k]);
            }
        }
    }

    #[test]
    fn pca_matches_numpy_covariance_path() {
        // Fixture "tall": 6 points in 4-d.
        #[rustfmt::skip]
        let x = [
            1.0, 2.0, 0.5, -1.0,
            2.0, 1.0, 0.0, 0.5,
            3.0, 4.0, 1.5, -0.5,
            -1.0, 0.0, 2.0, 1.0,
            0.5, -2.0, 1.0, 2.0,
            4.0, 3.0, -1.0, 0.0,
        ];
        check_numpy(
            &x,
            4,
            [0.7737520428839489, 0.1754049721935163],
            [
                &[
                    0.569844551234572,
                    0.7348554945548638,
                    -0.20065878149201577,
                    -0.3082217431670503,
                ],
                &[
                    -0.5663455035215773,
                    0.4520366325271212,
                    0.5911573727703492,
                    -0.35418725854227173,
                ],
            ],
        );
    }

    #[test]
    fn pca_matches_numpy_gram_path() {
        // Fixture "wide": 4 points in 6-d.
        #[rustfmt::skip]
        let x = [
            1.0, 0.0, 2.0, -1.0, 0.5, 3.0,
            0.0, 1.0, -1.0, 2.0, 1.5, 0.0,
            2.0, 2.0, 0.0, 1.0, -0.5, 1.0,
            -1.0, 0.5, 1.0, 0.0, 2.0, -2.0,
        ];
        check_numpy(
            &x,
            6,
            [0.5922597156209167, 0.3297410650543631],
            [
                &[
                    0.40130231993591137,
                    -0.0260231002153677,
                    0.2460445999253466,
                    -0.2460445999253466,
                    -0.33482292119961526,
                    0.7778797898157174,
                ],
                &[
                    -0.3641066375525953,
                    -0.3962985232302173,
                    0.5589080804158799,
                    -0.5589080804158799,
                    0.2873294258654662,
                    -0.055309613081152176,
                ],
            ],
        );
    }

    #[test]
    fn pca_rejects_bad_input_and_handles_constant_data() {
        assert!(pca_2d(&[1.0, 2.0, 3.0], 2).is_err());
        assert!(pca_2d(&[1.0, 2.0], 2).is_err());
        assert!(pca_2d(&[1.0, 2.0], 0).is_err());
        assert!(pca_2d(&[1.0, f32::NAN, 3.0, 4.0], 2).is_err());
        let c = pca_2d(&[1.0; 12], 3).unwrap();
        assert_eq!(c.explained, [0.0, 0.0]);
        assert!(c.scores.iter().all(|s| s == &[0.0, 0.0]));
    }

    #[test]
    fn heatmap_writes_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("heatmap.png");
        let size = accuracy_heatmap(&sweep(), &p).unwrap();
        check_png(&p, size);
        // 5 method rows, a 30 px gap, the learned and none rows, 3 k columns (2, 4, 8):
        // 122 + 7 × 58 + 30 + 100 = 658 px high; 260 + 3 × 120 + 150 = 770 px is under the 780 px
        // minimum width, so the grid sits 5 px right of x = 260.
        assert_eq!(size, (780, 658));
        let img = image::open(&p).unwrap().to_rgb8();
        // Each cell's background, read from the written file just inside the cell's top-left
        // corner (clear of the centred label and of the best cell's outline).
        let rgb = |c: RGBColor| [c.0, c.1, c.2];
        let (lo, hi) = (0.588, 0.655);
        let shade = |acc: f64| rgb(sequential((acc - lo) / (hi - lo)));
        let background = |row: u32, col: u32| {
            let y = 122 + row * 58 + if row >= 5 { 30 } else { 0 };
            img.get_pixel(265 + col * 120 + 8, y + 8).0
        };
        let expected: [[Option<f64>; 3]; 7] = [
            [Some(0.612), Some(0.634), Some(0.641)], // kmeans
            [Some(0.598), Some(0.627), Some(0.619)], // agglomerative
            [Some(0.655), Some(0.648), Some(0.601)], // spectral
            [None, Some(0.622), None],               // gmm
            [None, None, Some(0.588)],               // dbscan
            [None, Some(0.629), None],               // learned
            [Some(0.603); 3],                        // none: one cell across every k
        ];
        for (row, accs) in expected.iter().enumerate() {
            for (col, acc) in accs.iter().enumerate() {
                let want = acc.map_or([238, 238, 238], shade);
                assert_eq!(
                    background(row as u32, col as u32),
                    want,
                    "row {row}, column {col}"
                );
            }
        }
        // The scale runs over the whole palette: best and worst cells take its two ends.
        let end = |(r, g, b): (u8, u8, u8)| [r, g, b];
        assert_eq!(background(2, 0), end(SEQUENTIAL[SEQUENTIAL.len() - 1]));
        assert_eq!(background(4, 2), end(SEQUENTIAL[0]));
        // White in the gap above the baselines and below the last row.
        assert_eq!(img.get_pixel(273, 122 + 5 * 58 + 4).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(273, 122 + 7 * 58 + 30 + 3).0, [255, 255, 255]);
    }

    #[test]
    fn heatmap_of_baselines_only_and_single_cell() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.png");
        let s = accuracy_heatmap(&[cell("none", 36, 0.6, 0.0, 5.0)], &p).unwrap();
        check_png(&p, s);
        let s = accuracy_heatmap(&[cell("kmeans", 2, 0.6, 1.0, 5.0)], &p).unwrap();
        check_png(&p, s);
    }

    #[test]
    fn pareto_writes_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pareto.png");
        let size = pareto_plot(&sweep(), &p).unwrap();
        assert_eq!(size, PARETO_SIZE);
        check_png(&p, size);
        // One point, and identical points, still plot.
        let s = pareto_plot(&[cell("kmeans", 2, 0.6, 100.0, 4.0)], &p).unwrap();
        check_png(&p, s);
        let same = vec![cell("kmeans", 2, 0.6, 100.0, 4.0); 3];
        check_png(&p, pareto_plot(&same, &p).unwrap());
    }

    /// Named cluster labelings, as `cluster_scatter` takes them.
    type Labelings = Vec<(String, Vec<u32>)>;

    /// 36 patches in three blobs of a 64-d space, and labelings of them.
    fn face() -> (Vec<f32>, usize, Labelings) {
        let dim = 64;
        let mut seed = 3;
        let mut f = Vec::new();
        for i in 0..36 {
            let blob = i % 3;
            for d in 0..dim {
                let centre = if d % 3 == blob { 2.0 } else { 0.0 } + if d < 8 { blob as f64 } else { 0.0 };
                f.push((centre + 0.6 * noise(&mut seed)) as f32);
            }
        }
        let truth: Vec<u32> = (0..36).map(|i| i % 3).collect();
        let halves: Vec<u32> = (0..36).map(|i| u32::from(i >= 18)).collect();
        let mut dbscan = truth.clone();
        dbscan[5] = NOISE;
        dbscan[17] = NOISE;
        let each: Vec<u32> = (0..36).collect();
        let labelings = vec![
            ("kmeans".to_string(), truth.clone()),
            ("agglomerative".to_string(), truth),
            ("spectral".to_string(), halves),
            ("dbscan".to_string(), dbscan),
            ("none".to_string(), each),
        ];
        (f, dim, labelings)
    }

    #[test]
    fn scatter_writes_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("scatter.png");
        let (f, dim, labelings) = face();
        let size = cluster_scatter(&f, dim, &labelings, &p).unwrap();
        // 5 panels of 380 × 370 px: 4 columns (+ 40 px) by 2 rows, a 92 px title and a 60 px legend.
        assert_eq!(size, (1560, 892));
        check_png(&p, size);
        // The written panels: row 1 holds the fifth labelling in its first column only.
        let img = image::open(&p).unwrap().to_rgb8();
        let inked = |row: u32, col: u32| {
            let (x0, y0) = (20 + col * 380, 92 + row * 370);
            (x0..x0 + 380)
                .flat_map(|x| (y0..y0 + 370).map(move |y| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0 != [255, 255, 255])
                .count()
        };
        for col in 0..4 {
            assert!(inked(0, col) > 2000, "panel (0, {col}) is empty");
        }
        assert!(inked(1, 0) > 2000, "panel (1, 0) is empty");
        for col in 1..4 {
            assert_eq!(inked(1, col), 0, "panel (1, {col}) should be blank");
        }
        let one = cluster_scatter(&f, dim, &labelings[..1], &p).unwrap();
        // One 380 px panel, widened to the 900 px minimum.
        assert_eq!(one, (900, 522));
        check_png(&p, one);
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        let shown = |e: anyhow::Error| format!("{e}");
        for e in [
            accuracy_heatmap(&[], &p).unwrap_err(),
            pareto_plot(&[], &p).unwrap_err(),
            cluster_scatter(&[], 4, &[("k".into(), vec![])], &p).unwrap_err(),
            cluster_scatter(&[1.0; 8], 4, &[], &p).unwrap_err(),
            cluster_scatter(&[1.0; 8], 4, &[("kmeans".into(), vec![0])], &p).unwrap_err(),
        ] {
            let s = shown(e);
            assert!(s.contains("x.png"), "{s}");
        }
        assert!(!p.exists());
        // An unwritable path: a directory that does not exist.
        let bad = dir.path().join("missing").join("h.png");
        let e = shown(accuracy_heatmap(&sweep(), &bad).unwrap_err());
        assert!(e.contains("h.png") && e.contains("missing"), "{e}");
        let e = shown(pareto_plot(&sweep(), &bad).unwrap_err());
        assert!(e.contains("h.png"), "{e}");
        let (f, dim, l) = face();
        let e = shown(cluster_scatter(&f, dim, &l, &bad).unwrap_err());
        assert!(e.contains("h.png"), "{e}");
    }
}
