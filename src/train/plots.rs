//! Result plots of a sweep, written as PNG files:
//!
//! * [`accuracy_heatmap`]: accuracy per clustering method (rows) and k (columns), the baselines
//!   (`learned` soft assignment, `none` = patch-to-patch) in clearly labelled extra rows;
//! * [`pareto_plot`]: accuracy against per-frame runtime (clustering + ViT inference) for every
//!   cell, with the Pareto front ([`pareto_front`]) drawn as a step line;
//! * [`cluster_scatter`]: the study's figure 4, one face's patch embeddings projected to 2-D by
//!   PCA ([`pca_2d`]), one panel per clustering method, points coloured by cluster id.
//!
//! Rendering is pure Rust: plotters draws shapes, axes and text into an RGB buffer (text through
//! its `ab_glyph` backend with the embedded DejaVu Sans subset of `models/fonts/`, so no system
//! font or fontconfig is needed), and `image` encodes the PNG. Every function returns an error
//! naming the output path instead of panicking.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Result, anyhow, bail, ensure};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::{ComposedElement, DashedPathElement};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::cluster::linalg::sym_eigen;
use crate::sweep_results::CellResult;

/// DejaVu Sans, subset to Latin-1 and a few symbols (see `models/fonts/README.md`).
const FONT_BYTES: &[u8] = include_bytes!("../../models/fonts/DejaVuSans.ttf");
/// Family the embedded font is registered under: plotters' default, so every text uses it.
const FONT: &str = "sans-serif";

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

/// Near-black for text and lines.
const INK: RGBColor = RGBColor(30, 30, 30);
/// Grey for secondary text.
const MUTED: RGBColor = RGBColor(95, 95, 95);
/// Grey of grid lines and legend frames.
const GRID: RGBColor = RGBColor(225, 225, 225);
/// Background of a heat-map cell without a value.
const MISSING: RGBColor = RGBColor(238, 238, 238);
/// Label id the scatter treats as noise (drawn grey).
const NOISE: u32 = u32::MAX;
/// How far (× font size) plotters' `VPos::Center` sets text above its anchor; centred labels and
/// y tick labels are drawn that much lower so that they sit on their marker, cell or tick.
const CENTRE_SINK: f64 = 0.18;

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
/// A marker: filled circle plus outline, placed at a data coordinate `C`.
type Marker<C, DB> = ComposedElement<C, DB, Circle<(i32, i32), i32>, Circle<(i32, i32), i32>>;

// ---------------------------------------------------------------------------------------------
// Shared plumbing: rendering, text, methods, colours
// ---------------------------------------------------------------------------------------------

/// Turns a plotters error into an `anyhow` one.
fn de<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}

/// Registers the embedded font with plotters under [`FONT`], once per process.
fn register_font() -> Result<()> {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    ensure!(ok, "the embedded plot font does not parse");
    Ok(())
}

/// Runs `write` with the font registered; its error becomes one flat message naming `path`,
/// whether `{}` or `{:#}` prints it.
fn output<T>(what: &str, path: &Path, write: impl FnOnce() -> Result<T>) -> Result<T> {
    register_font()
        .and_then(|()| write())
        .map_err(|e| anyhow!("cannot write {what} {}: {e:#}", path.display()))
}

/// Renders `(w, h)` pixels with `draw` on a white background and writes them as a PNG.
fn render(path: &Path, (w, h): (u32, u32), draw: impl FnOnce(&Area<'_>) -> Result<()>) -> Result<(u32, u32)> {
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

/// Text of `px` pixels in the embedded font.
fn text(px: u32, color: RGBColor) -> TextStyle<'static> {
    (FONT, px).into_font().color(&color)
}

/// Pixels that text of `px` pixels anchored at its middle is moved down by (see [`CENTRE_SINK`]).
fn sink(px: u32) -> i32 {
    (px as f64 * CENTRE_SINK).round() as i32
}

/// `s` in `style` centred on its anchor (moved down by [`sink`] to look centred).
fn centred(s: String, style: &TextStyle<'static>) -> Text<'static, (i32, i32), String> {
    let down = sink(style.font.get_size() as u32);
    Text::new(s, (0, down), style.pos(Pos::new(HPos::Center, VPos::Center)))
}

/// Width and height of `s` in `style`, in pixels.
fn text_size(s: &str, style: &TextStyle<'_>) -> Result<(i32, i32)> {
    let (w, h) = style.font.box_size(s).map_err(de)?;
    Ok((w as i32, h as i32))
}

/// Splits `height` pixels off the top of `root`, centres `title` and a grey `subtitle` in them
/// and returns the rest.
fn header<'a>(root: &Area<'a>, height: u32, title: &str, subtitle: &str) -> Result<Area<'a>> {
    let (top, rest) = root.split_vertically(height);
    top.margin(14, 0, 0, 0)
        .titled(title, text(28, INK))
        .map_err(de)?
        .titled(subtitle, text(17, MUTED))
        .map_err(de)?;
    Ok(rest)
}

/// Grid, axes, ticks, tick labels (about `ticks` per axis) and the axis titles of `chart`.
fn mesh(
    chart: &mut Chart<'_, '_>,
    (x_desc, y_desc): (&str, &str),
    px: u32,
    ticks: (usize, usize),
) -> Result<()> {
    chart
        .configure_mesh()
        .x_labels(ticks.0)
        .y_labels(ticks.1)
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(INK)
        .label_style(text(px, INK))
        .y_label_offset(sink(px))
        .axis_desc_style(text(px + 3, INK))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(de)
}

/// A filled circle of radius `r` with a thin dark outline at `at`.
fn marker<C, DB: DrawingBackend>(at: C, r: i32, color: RGBColor) -> Marker<C, DB> {
    EmptyElement::at(at)
        + Circle::new((0, 0), r, color.filled())
        + Circle::new((0, 0), r, INK.mix(0.85).stroke_width(1))
}

/// The method of a cell as the plots name it (`kmeans`, `spectral:rbf`, `none`, `learned`).
fn method_name(c: &CellResult) -> String {
    c.method.to_string()
}

/// Where a method goes in the plots: hard methods first, by rank in [`HARD_ORDER`] (unknown
/// ones after the known), then the two baselines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    /// A hard clustering method and its rank.
    Hard(usize),
    /// The learned soft assignment (baseline).
    Learned,
    /// Patch-to-patch attention, no clustering (baseline; k does not apply).
    PatchToPatch,
}

/// The [`Role`] of a method name (a `:option` suffix is ignored).
fn role(name: &str) -> Role {
    match name.split(':').next().unwrap_or(name) {
        "learned" => Role::Learned,
        "none" => Role::PatchToPatch,
        base => Role::Hard(
            HARD_ORDER
                .iter()
                .position(|m| *m == base)
                .unwrap_or(HARD_ORDER.len()),
        ),
    }
}

/// How rows and legends name a method: the baselines say what they are.
fn method_label(name: &str) -> String {
    match role(name) {
        Role::Learned => format!("{name} (soft, baseline)"),
        Role::PatchToPatch => format!("{name} (patch-to-patch)"),
        Role::Hard(_) => name.to_string(),
    }
}

/// Distinct names in `names` ordered by [`Role`], ties by first appearance.
fn ordered(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for m in names {
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    // A stable sort keeps first-appearance order among equal roles.
    seen.sort_by_key(|m| role(m));
    seen
}

/// Fixed colour of a method (the same in every plot); unknown methods take the palette's spare
/// slots in turn by their place in `methods`.
fn method_color(name: &str, methods: &[String]) -> RGBColor {
    let unknown = Role::Hard(HARD_ORDER.len());
    match role(name) {
        Role::Learned => PALETTE[5],
        Role::PatchToPatch => PALETTE[7],
        // Unknown methods sort next to each other, so neighbours differ.
        r if r == unknown => {
            [PALETTE[6], PALETTE[8], PALETTE[9]][methods.iter().position(|m| m == name).unwrap_or(0) % 3]
        }
        Role::Hard(rank) => PALETTE[rank],
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

/// Near-black or white, whichever reads better on `bg`.
fn ink_on(bg: RGBColor) -> RGBColor {
    let lum = 0.299 * bg.0 as f64 + 0.587 * bg.1 as f64 + 0.114 * bg.2 as f64;
    if lum > 140.0 { INK } else { WHITE }
}

/// Least and greatest of `values`.
fn extent(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    })
}

/// Padded axis range around `lo..hi`, clamped to `clamp`.
fn padded((lo, hi): (f64, f64), frac: f64, min_pad: f64, clamp: (f64, f64)) -> (f64, f64) {
    let pad = ((hi - lo) * frac).max(min_pad);
    ((lo - pad).max(clamp.0), (hi + pad).min(clamp.1))
}

// ---------------------------------------------------------------------------------------------
// Accuracy heat-map
// ---------------------------------------------------------------------------------------------

/// Height of the heat-map's title strip (pixels).
const HM_HEAD: u32 = 84;
/// Heat-map cell size (pixels).
const HM_CELL: (u32, u32) = (120, 58);
/// Width of the colour-bar column (pixels).
const HM_BAR: u32 = 150;
/// Height of the k labels and axis title under the grid (pixels).
const HM_X_AREA: u32 = 64;
/// Margin above and left of the grid (pixels).
const HM_MARGIN: u32 = 20;
/// Least heat-map width (pixels).
const HM_MIN_W: u32 = 780;
/// Grid coordinate units per cell (the baseline rows sit half a cell below the others).
const UNIT: i32 = 100;
/// Blank between neighbouring cells, in grid units across and along a row.
const HM_INSET: (i32, i32) = (2, 4);

/// Writes a method × k heat-map of accuracy (value printed per cell) to `path` as a PNG and
/// returns its size in pixels; `learned`/`none` cells go in labelled baseline rows below.
pub fn accuracy_heatmap(cells: &[CellResult], path: &Path) -> Result<(u32, u32)> {
    output("accuracy heat-map", path, || heatmap_inner(cells, path))
}

fn heatmap_inner(cells: &[CellResult], path: &Path) -> Result<(u32, u32)> {
    // (method, k) → accuracy, a later cell replacing an earlier one; `none` ignores k (key 0)
    // and spans every column.
    let mut acc: BTreeMap<(String, usize), f64> = BTreeMap::new();
    let mut ks = BTreeSet::new();
    for c in cells.iter().filter(|c| c.accuracy.is_finite()) {
        let name = method_name(c);
        let k = if role(&name) == Role::PatchToPatch { 0 } else { c.k };
        if k > 0 {
            ks.insert(k);
        }
        acc.insert((name, k), c.accuracy);
    }
    ensure!(!acc.is_empty(), "no cells with a finite accuracy to plot");
    let ks: Vec<usize> = ks.into_iter().collect();
    let rows = ordered(cells.iter().filter(|c| c.accuracy.is_finite()).map(method_name));
    let labels: Vec<String> = rows.iter().map(|m| method_label(m)).collect();
    let hard = rows.iter().filter(|m| matches!(role(m), Role::Hard(_))).count();
    let (lo, hi) = extent(acc.values().copied());
    let (lo, hi) = if hi - lo < 1e-6 {
        (lo - 0.005, hi + 0.005)
    } else {
        (lo, hi)
    };
    let best = acc.iter().max_by(|a, b| a.1.total_cmp(b.1)).map(|(key, _)| key);

    // Grid coordinates: x = column × UNIT; y counts up from the bottom row, rows from the top.
    let gap = if hard > 0 && hard < rows.len() {
        UNIT / 2
    } else {
        0
    };
    let total = rows.len() as i32 * UNIT + gap;
    let top = |r: usize| total - r as i32 * UNIT - if r >= hard { gap } else { 0 };
    let ncols = ks.len().max(1) as u32;
    let label_w = labels
        .iter()
        .map(|l| text_size(l, &text(18, INK)).map(|s| s.0 as u32))
        .try_fold(0, |m, w| w.map(|w| m.max(w)))?;
    let y_area = label_w + 48;
    let w = (HM_MARGIN + y_area + ncols * HM_CELL.0 + HM_BAR).max(HM_MIN_W);
    let h = HM_HEAD + HM_MARGIN + (total as u32 * HM_CELL.1).div_ceil(UNIT as u32) + HM_X_AREA;

    render(path, (w, h), |root| {
        let body = header(
            root,
            HM_HEAD,
            "Accuracy by clustering method and k",
            "evaluation accuracy per trained cell; outlined: highest",
        )?;
        let (grid_area, bar_area) = body.split_horizontally(w - HM_BAR);
        let mut chart = ChartBuilder::on(&grid_area)
            .margin_top(HM_MARGIN)
            .margin_left(HM_MARGIN)
            .x_label_area_size(HM_X_AREA)
            .y_label_area_size(y_area)
            .build_cartesian_2d(
                (0..ncols as i32 * UNIT)
                    .with_key_points((0..ks.len() as i32).map(|j| j * UNIT + UNIT / 2).collect()),
                (0..total).with_key_points((0..rows.len()).map(|r| top(r) - UNIT / 2).collect()),
            )
            .map_err(de)?;
        let column = |v: &i32| {
            ks.get((v / UNIT) as usize)
                .map_or(String::new(), |k| k.to_string())
        };
        let row = |v: &i32| {
            (0..rows.len())
                .find(|&r| top(r) - UNIT / 2 == *v)
                .map_or(String::new(), |r| labels[r].clone())
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_label_formatter(&column)
            .y_label_formatter(&row)
            .axis_style(INK)
            .label_style(text(18, INK))
            .y_label_offset(sink(18))
            .axis_desc_style(text(19, INK))
            .x_desc(if ks.is_empty() {
                ""
            } else {
                "k (clusters per image)"
            })
            .y_desc("method")
            .draw()
            .map_err(de)?;

        let plot = chart.plotting_area();
        for (r, m) in rows.iter().enumerate() {
            // Columns as (first, past the last, k); `none` takes one cell across them all.
            let spans: Vec<(i32, i32, usize)> = if role(m) == Role::PatchToPatch {
                vec![(0, ncols as i32, 0)]
            } else {
                ks.iter()
                    .enumerate()
                    .map(|(j, &k)| (j as i32, j as i32 + 1, k))
                    .collect()
            };
            for (c0, c1, k) in spans {
                let key = (m.clone(), k);
                let value = acc.get(&key).copied();
                let corners = [
                    (c0 * UNIT + HM_INSET.0, top(r) - HM_INSET.1),
                    (c1 * UNIT - HM_INSET.0, top(r) - UNIT + HM_INSET.1),
                ];
                let (bg, label, ink) = match value {
                    Some(v) => {
                        let bg = ViridisRGB::get_color_normalized(v, lo, hi);
                        let note = if k == 0 && ncols > 1 {
                            "   (no clustering, any k)"
                        } else {
                            ""
                        };
                        (bg, format!("{:.1} %{note}", v * 100.0), ink_on(bg))
                    }
                    None => (MISSING, "–".to_string(), RGBColor(150, 150, 150)),
                };
                plot.draw(&Rectangle::new(corners, bg.filled())).map_err(de)?;
                if value.is_some() && best == Some(&key) {
                    plot.draw(&Rectangle::new(corners, INK.stroke_width(3)))
                        .map_err(de)?;
                }
                let centre = ((c0 + c1) * UNIT / 2, top(r) - UNIT / 2);
                plot.draw(&(EmptyElement::at(centre) + centred(label, &text(19, ink))))
                    .map_err(de)?;
            }
        }

        // Colour bar (22 px wide), sharing the grid's vertical extent; its title reads down its
        // right side.
        let mut bar = ChartBuilder::on(&bar_area)
            .margin_top(HM_MARGIN)
            .margin_bottom(HM_X_AREA)
            .margin_left(30)
            .margin_right(24)
            .right_y_label_area_size(HM_BAR - 30 - 24 - 22)
            .build_cartesian_2d(0.0..1.0, lo * 100.0..hi * 100.0)
            .map_err(de)?;
        let steps = 256;
        bar.draw_series((0..steps).map(|s| {
            let at = |s: i32| lo * 100.0 + (hi - lo) * 100.0 * s as f64 / steps as f64;
            let color = ViridisRGB::get_color((s as f64 + 0.5) / steps as f64);
            Rectangle::new([(0.0, at(s)), (1.0, at(s + 1))], color.filled())
        }))
        .map_err(de)?;
        bar.configure_mesh()
            .disable_mesh()
            .y_labels(6)
            .set_all_tick_mark_size(5)
            .axis_style(INK)
            .label_style(text(15, INK))
            .y_label_offset(sink(15))
            .axis_desc_style(text(15, INK))
            .y_desc("accuracy (%)")
            .draw()
            .map_err(de)?;
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

/// Pareto plot size in pixels.
const PARETO_SIZE: (u32, u32) = (1200, 800);
/// Height of the Pareto plot's title strip (pixels).
const PARETO_HEAD: u32 = 80;
/// Width of the legend column right of the Pareto plot (pixels).
const PARETO_LEGEND_W: u32 = 280;
/// Colour of the Pareto front and its rings.
const FRONT: RGBColor = RGBColor(60, 60, 60);

/// The Pareto front's dashed line through `points`.
fn dashed<C: Clone>(points: Vec<C>) -> DashedPathElement<std::vec::IntoIter<C>, i32> {
    DashedPathElement::new(points, 9, 5, FRONT.stroke_width(2))
}

/// The ring around a point on the Pareto front.
fn ring<C>(at: C) -> Circle<C, i32> {
    Circle::new(at, 11, FRONT.stroke_width(2))
}

/// Writes accuracy (%) against per-frame runtime (ms) for every cell, each point labelled
/// ("spectral k2"), with the Pareto front as a step line, to `path` as a PNG; returns its size.
pub fn pareto_plot(cells: &[CellResult], path: &Path) -> Result<(u32, u32)> {
    output("Pareto plot", path, || pareto_inner(cells, path))
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
    let names: Vec<String> = cells.iter().map(method_name).collect();
    let xy = |i: usize| (frame_ms(&cells[i]), cells[i].accuracy * 100.0);
    let (xs, ys) = (
        extent(valid.iter().map(|&i| xy(i).0)),
        extent(valid.iter().map(|&i| xy(i).1)),
    );
    let x = padded(
        xs,
        0.1,
        (xs.1.abs() * 0.05).max(1e-3),
        (xs.0.min(0.0), f64::INFINITY),
    );
    // Clamped to 0..100 % unless a (malformed) value lies outside.
    let y = padded(ys, 0.12, 1.0, (ys.0.min(0.0), ys.1.max(100.0)));
    let methods = ordered(valid.iter().map(|&i| names[i].clone()));

    render(path, PARETO_SIZE, |root| {
        let body = header(
            root,
            PARETO_HEAD,
            "Accuracy vs per-frame runtime",
            "dashed: the Pareto front, the best accuracy reachable within a runtime",
        )?;
        let (plot_area, key_area) = body.split_horizontally(PARETO_SIZE.0 - PARETO_LEGEND_W);
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d(x.0..x.1, y.0..y.1)
            .map_err(de)?;
        mesh(
            &mut chart,
            (
                "per-frame runtime (ms) = clustering + ViT inference",
                "accuracy (%)",
            ),
            16,
            (10, 8),
        )?;

        // The front as a step line, then the points (the front's ringed), one series per method.
        let mut steps: Vec<(f64, f64)> = Vec::new();
        for &i in &front {
            let p = xy(i);
            if let Some(&(_, a)) = steps.last() {
                steps.push((p.0, a));
            }
            steps.push(p);
        }
        if let Some(&(_, a)) = steps.last() {
            steps.push((x.1, a));
        }
        // plotters' legend lists the labelled series of one chart, and draws inside its plotting
        // area: the legend column gets a chart without axes of its own, on which each series is
        // declared.
        let mut key = ChartBuilder::on(&key_area)
            .margin_top(20)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)
            .map_err(de)?;
        chart.draw_series([dashed(steps.clone())]).map_err(de)?;
        chart
            .draw_series(front.iter().map(|&i| ring(xy(i))))
            .map_err(de)?;
        for m in &methods {
            let color = method_color(m, &methods);
            let points = valid.iter().filter(|&&i| names[i] == *m);
            chart
                .draw_series(points.map(|&i| marker(xy(i), 7, color)))
                .map_err(de)?;
            key_entry(&mut key, method_label(m), move |(lx, ly)| {
                marker((lx + 11, ly), 7, color)
            })?;
        }
        key_entry(&mut key, "Pareto front".into(), |(lx, ly)| {
            dashed(vec![(lx, ly), (lx + 22, ly)])
        })?;
        key_entry(&mut key, "on the front".into(), |(lx, ly)| ring((lx + 11, ly)))?;

        // Point labels, where they cover the least of each other, the points and the front.
        let style = text(15, INK);
        let labels: Vec<String> = valid
            .iter()
            .map(|&i| match role(&names[i]) {
                Role::PatchToPatch => names[i].clone(),
                _ => format!("{} k{}", names[i], cells[i].k),
            })
            .collect();
        let sizes = labels
            .iter()
            .map(|l| text_size(l, &style))
            .collect::<Result<Vec<_>>>()?;
        let points: Vec<(i32, i32)> = valid.iter().map(|&i| chart.backend_coord(&xy(i))).collect();
        let lines: Vec<[i32; 4]> = steps
            .windows(2)
            .map(|s| {
                let (a, b) = (chart.backend_coord(&s[0]), chart.backend_coord(&s[1]));
                [
                    a.0.min(b.0) - 2,
                    a.1.min(b.1) - 2,
                    a.0.max(b.0) + 2,
                    a.1.max(b.1) + 2,
                ]
            })
            .collect();
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let offsets = place_labels(&points, &sizes, &lines, [xr.start, yr.start, xr.end, yr.end]);
        chart
            .draw_series(valid.iter().zip(labels).zip(offsets.into_iter().zip(sizes)).map(
                |((&i, label), ((dx, dy), (tw, th)))| {
                    let [x0, y0, x1, y1] = label_box((dx, dy), (tw, th));
                    EmptyElement::at(xy(i))
                        + Rectangle::new([(x0, y0), (x1, y1)], WHITE.mix(0.8).filled())
                        + Text::new(label, (dx, dy), style.clone())
                },
            ))
            .map_err(de)?;

        key.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(text(17, INK))
            .legend_area_size(32)
            .margin(12)
            .background_style(WHITE)
            .border_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(de)
    })
}

/// Declares a series named `label`, drawn as `legend` in the legend, on the legend-only chart `key`.
fn key_entry<'a, 'b, E, F>(key: &mut Chart<'a, 'b>, label: String, legend: F) -> Result<()>
where
    E: IntoDynElement<'a, BitMapBackend<'b>, (i32, i32)>,
    F: Fn((i32, i32)) -> E + 'a,
{
    key.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
        .map_err(de)?
        .label(label)
        .legend(legend);
    Ok(())
}

/// The white box behind a label of `(tw, th)` pixels whose text starts at `(x, y)`, as
/// `[x0, y0, x1, y1]` (a little wider than the text, which plotters draws slightly above its box).
fn label_box((x, y): (i32, i32), (tw, th): (i32, i32)) -> [i32; 4] {
    [x - 3, y - 3, x + tw + 3, y + th + 1]
}

/// Top-left offsets (pixels, from each of `points`) for label boxes of `sizes`: each label takes
/// the first of eight spots around its point that stays inside `bounds` (`[x0, y0, x1, y1]`) and
/// clear of earlier labels, other points and the `lines` boxes, else the least covering one.
fn place_labels(
    points: &[(i32, i32)],
    sizes: &[(i32, i32)],
    lines: &[[i32; 4]],
    bounds: [i32; 4],
) -> Vec<(i32, i32)> {
    let overlap = |a: &[i32; 4], b: &[i32; 4]| {
        let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0) as i64;
        let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0) as i64;
        w * h
    };
    let mut placed: Vec<[i32; 4]> = Vec::new();
    let mut offsets = Vec::with_capacity(points.len());
    for (n, (&(px, py), &(tw, th))) in points.iter().zip(sizes).enumerate() {
        let spots = [
            (14, -th / 2),
            (-14 - tw, -th / 2),
            (-tw / 2, -14 - th),
            (-tw / 2, 14),
            (10, -10 - th),
            (10, 10),
            (-10 - tw, -10 - th),
            (-10 - tw, 10),
        ];
        let cost = |&(dx, dy): &(i32, i32)| {
            let b = label_box((px + dx, py + dy), (tw, th));
            let outside = b[0] < bounds[0] || b[1] < bounds[1] || b[2] >= bounds[2] || b[3] >= bounds[3];
            let others = points
                .iter()
                .enumerate()
                .filter(|(m, _)| *m != n)
                .map(|(_, &(qx, qy))| 4 * overlap(&b, &[qx - 12, qy - 12, qx + 12, qy + 12]));
            i64::from(outside) * 1_000_000
                + placed.iter().map(|p| overlap(&b, p)).sum::<i64>()
                + others.sum::<i64>()
                + lines.iter().map(|l| 2 * overlap(&b, l)).sum::<i64>()
        };
        // `min_by_key` keeps the first of equal costs, so a clear spot wins in the listed order.
        let (dx, dy) = spots.iter().copied().min_by_key(|s| cost(s)).unwrap_or(spots[0]);
        placed.push(label_box((px + dx, py + dy), (tw, th)));
        offsets.push((dx, dy));
    }
    offsets
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
/// points, eigen-decomposes the smaller of the Gram and covariance matrices
/// ([`crate::cluster::linalg::sym_eigen`]), and signs each direction so that its
/// largest-magnitude entry (the first, on a tie) is positive.
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
    mean.iter_mut().for_each(|m| *m /= n as f64);
    // Centred points, row-major (n × dim).
    let x: Vec<f64> = features
        .chunks_exact(dim)
        .flat_map(|row| row.iter().zip(&mean).map(|(&v, m)| v as f64 - m))
        .collect();
    let total: f64 = x.iter().map(|v| v * v).sum();
    let gram = n <= dim;
    // Gram matrix X Xᵀ (n × n) when there are fewer points than dimensions, else Xᵀ X (dim × dim):
    // the dot products of the rows, or of the columns.
    let (m, len) = if gram { (n, dim) } else { (dim, n) };
    let vector = |i: usize, t: usize| if gram { x[i * dim + t] } else { x[t * dim + i] };
    let mut a = vec![0f64; m * m];
    for i in 0..m {
        for j in i..m {
            let d: f64 = (0..len).map(|t| vector(i, t) * vector(j, t)).sum();
            a[i * m + j] = d;
            a[j * m + i] = d;
        }
    }
    let (vals, vecs) = top2(&a, m)?;
    let mut components = [vec![0f64; dim], vec![0f64; dim]];
    for k in 0..2 {
        if vals[k] <= total * 1e-12 || vals[k] <= 0.0 {
            continue;
        }
        // X Xᵀ u = λ u makes Xᵀ u / √λ the unit direction; Xᵀ X v = λ v makes v it.
        components[k] = if gram {
            (0..dim)
                .map(|d| (0..n).map(|i| x[i * dim + d] * vecs[k][i]).sum::<f64>() / vals[k].sqrt())
                .collect()
        } else {
            vecs[k].clone()
        };
        // Deterministic sign: the largest-magnitude entry positive (the first of entries within
        // 1e-9 of the largest, so that rounding cannot flip a tie).
        let top = components[k].iter().fold(0f64, |mx, v| mx.max(v.abs()));
        let pivot = components[k]
            .iter()
            .copied()
            .find(|v| v.abs() >= top * (1.0 - 1e-9));
        if pivot.is_some_and(|p| p < 0.0) {
            components[k].iter_mut().for_each(|v| *v = -*v);
        }
    }
    let scores = x
        .chunks_exact(dim)
        .map(|r| {
            let dot = |c: &[f64]| r.iter().zip(c).map(|(a, b)| a * b).sum::<f64>();
            [dot(&components[0]), dot(&components[1])]
        })
        .collect();
    let explained = if total > 0.0 {
        vals.map(|v| (v.max(0.0) / total).min(1.0))
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
/// eigenvectors; with `m == 1` the second pair is zero.
fn top2(a: &[f64], m: usize) -> Result<([f64; 2], [Vec<f64>; 2])> {
    let eig = sym_eigen(a, m).ok_or_else(|| anyhow!("the PCA eigen-decomposition did not converge"))?;
    // Ascending eigenvalues: the largest are the last rows.
    let pair = |r: usize| match m.checked_sub(r + 1) {
        Some(i) => (eig.values[i], eig.vectors[i * m..(i + 1) * m].to_vec()),
        None => (0.0, vec![0.0; m]),
    };
    let ((l0, v0), (l1, v1)) = (pair(0), pair(1));
    Ok(([l0, l1], [v0, v1]))
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
    output("cluster scatter", path, || {
        scatter_inner(features, dim, labelings, path)
    })
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
    let (xs, ys) = (
        extent(pca.scores.iter().map(|s| s[0])),
        extent(pca.scores.iter().map(|s| s[1])),
    );
    let span = (xs.1 - xs.0).max(ys.1 - ys.0);
    let min_pad = if span > 0.0 { span * 0.03 } else { 1.0 };
    let unbounded = (f64::NEG_INFINITY, f64::INFINITY);
    let (x, y) = (
        padded(xs, 0.08, min_pad, unbounded),
        padded(ys, 0.08, min_pad, unbounded),
    );
    let title = format!("Patch embeddings of one face, PCA to 2-D ({n} patches)");
    let subtitle = format!(
        "one panel per clustering method, colour = cluster id; PC1 explains {:.1} %, PC2 {:.1} % of the variance",
        pca.explained[0] * 100.0,
        pca.explained[1] * 100.0
    );

    render(path, (w, h), |root| {
        let rest = header(root, SCATTER_TITLE_H, &title, &subtitle)?;
        let (body, legend) = rest.split_vertically(rows * PANEL.1);
        let left = (w - cols * PANEL.0) / 2;
        let body = body.margin(0, 0, left, w - cols * PANEL.0 - left);
        for ((name, labels), area) in labelings
            .iter()
            .zip(body.split_evenly((rows as usize, cols as usize)))
        {
            let clusters = labels
                .iter()
                .filter(|&&l| l != NOISE)
                .collect::<BTreeSet<_>>()
                .len();
            let caption = match labels.iter().filter(|&&l| l == NOISE).count() {
                0 => format!("{name} ({clusters} clusters)"),
                noise => format!("{name} ({clusters} clusters, {noise} noise)"),
            };
            let mut chart = ChartBuilder::on(&area)
                .caption(caption, text(18, INK))
                .margin(8)
                .margin_right(16)
                .x_label_area_size(46)
                .y_label_area_size(56)
                .build_cartesian_2d(x.0..x.1, y.0..y.1)
                .map_err(de)?;
            mesh(&mut chart, ("PC1", "PC2"), 13, (5, 5))?;
            chart
                .draw_series(
                    pca.scores
                        .iter()
                        .zip(labels)
                        .map(|(s, &l)| marker((s[0], s[1]), 6, cluster_color(l))),
                )
                .map_err(de)?;
        }
        scatter_legend(&legend, labelings)
    })
}

/// The scatter's shared legend, one centred row in `area`: the cluster ids' colours (at most
/// [`LEGEND_IDS`]) and noise.
fn scatter_legend(area: &Area<'_>, labelings: &[(String, Vec<u32>)]) -> Result<()> {
    let ids: BTreeSet<u32> = labelings.iter().flat_map(|(_, l)| l.iter().copied()).collect();
    let real: Vec<u32> = ids.iter().copied().filter(|&id| id != NOISE).collect();
    let mut items: Vec<(String, RGBColor)> = real
        .iter()
        .take(LEGEND_IDS)
        .map(|&id| (id.to_string(), cluster_color(id)))
        .collect();
    if ids.contains(&NOISE) {
        items.push(("noise".into(), cluster_color(NOISE)));
    }
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
    let (style, grey) = (text(17, INK), text(17, MUTED));
    let head = "cluster id:";
    let widths = items
        .iter()
        .map(|(l, _)| text_size(l, &style).map(|s| s.0))
        .collect::<Result<Vec<_>>>()?;
    let (head_w, tail_w) = (text_size(head, &style)?.0, text_size(&tail, &grey)?.0);
    let total = head_w + 12 + widths.iter().map(|tw| 20 + tw + 16).sum::<i32>() + tail_w;
    let (aw, ah) = area.dim_in_pixel();
    let (mut x, y) = ((aw as i32 - total) / 2, ah as i32 / 2);
    // Texts are anchored at their left middle: `centred` shifted by half their width.
    let draw_text = |s: &str, x: i32, w: i32, style: &TextStyle<'static>| {
        area.draw(&(EmptyElement::at((x + w / 2, y)) + centred(s.to_string(), style)))
            .map_err(de)
    };
    draw_text(head, x, head_w, &style)?;
    x += head_w + 12;
    for ((label, color), tw) in items.iter().zip(widths) {
        area.draw(&marker((x + 7, y), 7, *color)).map_err(de)?;
        draw_text(label, x + 20, tw, &style)?;
        x += 20 + tw + 16;
    }
    draw_text(&tail, x, tail_w, &grey)
}
#[cfg(test)]
mod tests {
    use super::*;

    fn cell(method: &str, k: usize, accuracy: f64, cluster_us: f64, model_ms: f64) -> CellResult {
        CellResult {
            method: method.parse().unwrap(),
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
            cell("kmeans", 2, 0.60, 0.0, 1.0),        // fastest
            cell("agglomerative", 2, 0.55, 0.0, 2.0), // slower and worse than a: dominated
            cell("spectral", 2, 0.70, 0.0, 3.0),      // better, slower
            cell("gmm", 2, 0.70, 500.0, 3.0),         // same accuracy as c, slower: dominated
            cell("dbscan", 2, 0.80, 1000.0, 4.0),     // best
        ];
        assert_eq!(pareto_front(&cells), vec![0, 2, 4]);
    }

    #[test]
    fn pareto_front_ties() {
        let cells = vec![
            cell("kmeans", 2, 0.70, 0.0, 2.0),
            cell("agglomerative", 2, 0.70, 0.0, 1.0),
            cell("spectral", 2, 0.70, 0.0, 1.0), // exact duplicate of dup1: both kept
            cell("gmm", 2, 0.65, 0.0, 1.0),      // same runtime, less accurate: dominated
        ];
        assert_eq!(pareto_front(&cells), vec![1, 2]);
        assert!(pareto_front(&[]).is_empty());
        let nan = vec![
            cell("kmeans", 2, f64::NAN, 0.0, 1.0),
            cell("agglomerative", 2, 0.5, 0.0, 2.0),
        ];
        assert_eq!(pareto_front(&nan), vec![1]);
    }

    #[test]
    fn pareto_front_runtime_includes_clustering() {
        // 2000 µs of clustering makes the second cell slower than the first although its model is faster.
        let cells = vec![
            cell("kmeans", 2, 0.60, 0.0, 2.0),
            cell("agglomerative", 2, 0.65, 2000.0, 1.0),
        ];
        assert_eq!(frame_ms(&cells[1]), 3.0);
        assert_eq!(pareto_front(&cells), vec![0, 1]);
    }

    #[test]
    fn top2_takes_the_largest_eigenpairs() {
        // Symmetric 4 × 4 with known spectrum from Q diag(5, 0.5, 3, 1) Qᵀ: the largest two are
        // neither first nor last in the input's order.
        let m = 4;
        let lam = [5.0, 0.5, 3.0, 1.0];
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
        let (vals, vecs) = top2(&a, m).unwrap();
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
        // A 1 × 1 matrix has no second pair.
        assert_eq!(top2(&[2.0], 1).unwrap(), ([2.0, 0.0], [vec![1.0], vec![0.0]]));
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
        // Each cell is filled with the viridis colour of its accuracy, scaled over the values'
        // range (0.588 to 0.655); counting a colour's pixels in the written file finds its cells
        // wherever the layout puts them (the colour bar holds any one colour in a thin strip).
        let img = image::open(&p).unwrap().to_rgb8();
        let count = |c: RGBColor| img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count();
        let shade = |acc: f64| ViridisRGB::get_color_normalized(acc, 0.588, 0.655);
        let single = [
            0.612, 0.634, 0.641, // kmeans
            0.598, 0.627, 0.619, // agglomerative
            0.655, 0.648, 0.601, // spectral (k = 2 outlined as the best)
            0.622, 0.588, 0.629, // gmm, dbscan, learned: one k each
        ];
        let counts: Vec<usize> = single.iter().map(|&a| count(shade(a))).collect();
        for (a, n) in single.iter().zip(&counts) {
            assert!(*n > 2000, "the {a} cell has {n} pixels of its colour");
        }
        let largest = *counts.iter().max().unwrap();
        // `none` is one cell across the three k columns.
        let none = count(shade(0.603));
        assert!(
            none > 2 * largest,
            "none: {none} pixels, a single cell up to {largest}"
        );
        // Six cells have no value: gmm and dbscan at two k each, learned at two.
        let missing = count(MISSING);
        assert!(
            missing > 6 * 2000 && missing < 7 * largest,
            "{missing} blank-cell pixels"
        );
        // The best cell is outlined, so it keeps fewer pixels of its colour than its neighbour.
        assert!(counts[6] < counts[7], "{counts:?}");
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
        // Every method's points (and legend marker) in its own colour.
        let img = image::open(&p).unwrap().to_rgb8();
        let methods = ordered(sweep().iter().map(method_name));
        for m in &methods {
            let c = method_color(m, &methods);
            let n = img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count();
            assert!(n > 100, "{m}: {n} pixels of its colour");
        }
        // One point, and identical points, still plot.
        let s = pareto_plot(&[cell("kmeans", 2, 0.6, 100.0, 4.0)], &p).unwrap();
        check_png(&p, s);
        let same = vec![cell("kmeans", 2, 0.6, 100.0, 4.0); 3];
        check_png(&p, pareto_plot(&same, &p).unwrap());
    }

    #[test]
    fn labels_avoid_each_other_and_the_points() {
        // Five points in a tight row, labels 90 × 14 px: no spot clears everything, but no two
        // labels may share pixels and each keeps off its neighbours' markers where it can.
        let points: Vec<(i32, i32)> = (0..5).map(|i| (300 + 30 * i, 300)).collect();
        let sizes = vec![(90, 14); 5];
        let offsets = place_labels(&points, &sizes, &[], [0, 0, 1000, 1000]);
        let boxes: Vec<[i32; 4]> = points
            .iter()
            .zip(&offsets)
            .map(|(&(x, y), &(dx, dy))| [x + dx, y + dy, x + dx + 90, y + dy + 14])
            .collect();
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                let apart = a[2] <= b[0] || b[2] <= a[0] || a[3] <= b[1] || b[3] <= a[1];
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
        // A lone point takes the first spot (right of it); at the right edge, the left one.
        assert_eq!(
            place_labels(&[(100, 100)], &[(90, 14)], &[], [0, 0, 1000, 1000]),
            [(14, -7)]
        );
        assert_eq!(
            place_labels(&[(950, 100)], &[(90, 14)], &[], [0, 0, 1000, 1000]),
            [(-104, -7)]
        );
        // A line through the right spot pushes the label off it.
        let line = [[100, 80, 400, 120]];
        assert_ne!(
            place_labels(&[(100, 100)], &[(90, 14)], &line, [0, 0, 1000, 1000]),
            [(14, -7)]
        );
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
            let (x0, y0) = (20 + col * PANEL.0, SCATTER_TITLE_H + row * PANEL.1);
            (x0..x0 + PANEL.0)
                .flat_map(|x| (y0..y0 + PANEL.1).map(move |y| (x, y)))
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
