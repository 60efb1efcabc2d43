// SVG charts: bars (spectrum, policies, per-class accuracy, cross-play), a line (loss per
// ride step) and a heatmap (cross-play matrix). Each draws into a fixed viewBox.
import { esc, fmt, ramp } from "./util.js";

const W = 480;
const H = 220;
const M = { l: 48, r: 10, t: 12, b: 30 };

function frame(svg, w = W, h = H) {
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
}

function yAxis(lo, hi, y, x0, x1) {
  let s = "";
  // The middle tick is 0 when the range spans it, unless 0 sits too close to an end to read.
  const zero = lo < 0 && hi > 0 && Math.min(Math.abs(y(0) - y(lo)), Math.abs(y(0) - y(hi))) >= 14;
  for (const v of [lo, zero ? 0 : (lo + hi) / 2, hi]) {
    s += `<line class="grid" x1="${x0}" x2="${x1}" y1="${y(v)}" y2="${y(v)}"></line>`;
    s += `<text class="tick" x="${x0 - 4}" y="${y(v) + 3}" text-anchor="end">${esc(fmt(v, 3))}</text>`;
  }
  return s;
}

// bars: [{value, label, cls, mark, err, dot, title}]; mark draws a ▲ above the bar, dot a short
// black marker at that value (self-play), err a ±err error bar clipped to the axis range.
// lo/hi fix the axis; hlines: [{value, cls, label}] dashed lines across; legend: [{cls, label}]
// drawn as a row of keys above the plot; xLabel under the tick labels.
export function barChart(svg, bars, { yLabel = "", xLabel = "", lo = null, hi = null, w = W, h = H, hlines = [], legend = [] } = {}) {
  frame(svg, w, h);
  if (!bars.length) {
    svg.innerHTML = `<text class="tick" x="${w / 2}" y="${h / 2}" text-anchor="middle">no data</text>`;
    return;
  }
  const m = { ...M, l: M.l + (yLabel ? 10 : 0), t: M.t + (legend.length ? 14 * Math.ceil(legend.length / 2) : 0), b: M.b + (xLabel ? 12 : 0) };
  const vals = bars.flatMap((b) => [b.value, b.value + (b.err || 0), b.value - (b.err || 0), ...(b.dot != null ? [b.dot] : [])])
    .concat(hlines.map((l) => l.value)).filter(Number.isFinite);
  let min = lo ?? Math.min(0, ...vals);
  let max = hi ?? Math.max(0, ...vals);
  if (max === min) { max += 1; min -= lo == null ? 1 : 0; }
  const clip = (v) => Math.min(max, Math.max(min, v));
  const y = (v) => m.t + ((max - clip(v)) / (max - min)) * (h - m.t - m.b);
  const bw = (w - m.l - M.r) / bars.length;
  let s = yAxis(min, max, y, m.l, w - M.r);
  s += `<line class="axis" x1="${m.l}" x2="${w - M.r}" y1="${y(0)}" y2="${y(0)}"></line>`;
  const every = Math.ceil(bars.length / 24);
  bars.forEach((b, i) => {
    const x = m.l + i * bw;
    const cx = x + bw / 2;
    const top = Math.min(y(b.value), y(0));
    const hgt = Math.max(Math.abs(y(b.value) - y(0)), 0.5);
    s += `<rect class="bar ${b.cls || ""}" x="${x + bw * 0.1}" y="${top}" width="${bw * 0.8}" height="${hgt}"` +
      `${b.fill ? ` fill="${b.fill}"` : ""}><title>${esc(b.title || `${b.label}: ${fmt(b.value)}`)}</title></rect>`;
    if (b.err) {
      const [e0, e1] = [b.value - b.err, b.value + b.err];
      s += `<line class="err" data-lo="${clip(e0)}" x1="${cx}" x2="${cx}" y1="${y(e0)}" y2="${y(e1)}"></line>`;
      const cap = Math.min(6, bw * 0.2);
      for (const e of [e0, e1]) {
        if (e >= min && e <= max) s += `<line class="err-cap" x1="${cx - cap}" x2="${cx + cap}" y1="${y(e)}" y2="${y(e)}"></line>`;
      }
    }
    if (b.dot != null && Number.isFinite(b.dot)) {
      s += `<line class="dot" data-value="${b.dot}" x1="${x + bw * 0.2}" x2="${x + bw * 0.8}" y1="${y(b.dot)}" y2="${y(b.dot)}"></line>`;
    }
    if (b.mark) s += `<text class="mark" x="${cx}" y="${Math.min(top, y(0)) - 3}" text-anchor="middle">▲</text>`;
    if (i % every === 0) {
      s += `<text class="tick" x="${cx}" y="${h - m.b + 12}" text-anchor="middle">${esc(b.label)}</text>`;
    }
  });
  for (const l of hlines) {
    s += `<line class="hline ${l.cls || ""}" data-value="${l.value}" x1="${m.l}" x2="${w - M.r}" y1="${y(l.value)}" y2="${y(l.value)}"><title>${esc(l.label || fmt(l.value))}</title></line>`;
  }
  legend.forEach((k, i) => {
    const lx = m.l + (i % 2) * ((w - m.l - M.r) / 2);
    const ly = 10 + 14 * Math.floor(i / 2);
    s += `<g class="legend-key ${k.cls || ""}"><rect class="key" x="${lx}" y="${ly - 7}" width="14" height="8"></rect>` +
      `<line class="key" x1="${lx}" x2="${lx + 14}" y1="${ly - 3}" y2="${ly - 3}"></line>` +
      `<text class="tick legend" x="${lx + 18}" y="${ly}">${esc(k.label)}</text></g>`;
  });
  if (yLabel) s += `<text class="tick axis-label" transform="translate(10,${(m.t + h - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`;
  if (xLabel) s += `<text class="tick axis-label" x="${(m.l + w - M.r) / 2}" y="${h - 3}" text-anchor="middle">${esc(xLabel)}</text>`;
  svg.innerHTML = s;
}

// groups: [{label, points: [{value, title}]}]: each group's values as dots in its own column,
// its best (lowest) value with a short bar; for comparing the solutions of several jobs.
export function stripChart(svg, groups, { yLabel = "", xLabel = "" } = {}) {
  frame(svg);
  const vals = groups.flatMap((g) => g.points.map((p) => p.value)).filter(Number.isFinite);
  if (!vals.length) {
    svg.innerHTML = `<text class="tick" x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text>`;
    return;
  }
  let lo = Math.min(...vals);
  let hi = Math.max(...vals);
  const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.05 || 1;
  lo -= pad;
  hi += pad;
  const m = { ...M, l: M.l + 10, b: M.b + (xLabel ? 12 : 0) };
  const y = (v) => m.t + ((hi - v) / (hi - lo)) * (H - m.t - m.b);
  const gw = (W - m.l - m.r) / groups.length;
  let s = yAxis(lo, hi, y, m.l, W - m.r);
  groups.forEach((g, i) => {
    const x0 = m.l + i * gw;
    const n = g.points.length;
    g.points.forEach((p, j) => {
      const cx = x0 + gw * (0.25 + (n > 1 ? (0.5 * j) / (n - 1) : 0.25));
      s += `<circle class="dot-point" data-group="${i}" cx="${cx}" cy="${y(p.value)}" r="3.5"><title>${esc(p.title || fmt(p.value))}</title></circle>`;
    });
    if (n) {
      const best = Math.min(...g.points.map((p) => p.value));
      s += `<line class="best" x1="${x0 + gw * 0.15}" x2="${x0 + gw * 0.85}" y1="${y(best)}" y2="${y(best)}"></line>`;
    }
    s += `<text class="tick" x="${x0 + gw / 2}" y="${H - m.b + 12}" text-anchor="middle">${esc(g.label)} (${n})</text>`;
  });
  if (yLabel) s += `<text class="tick axis-label" transform="translate(10,${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`;
  if (xLabel) s += `<text class="tick axis-label" x="${(m.l + W - m.r) / 2}" y="${H - 3}" text-anchor="middle">${esc(xLabel)}</text>`;
  svg.innerHTML = s;
}

// series: [{points: [[x, y], ...], cls}]; vlines: x positions (ride boundaries).
export function lineChart(svg, series, { vlines = [], xLabel = "", yLabel = "" } = {}) {
  frame(svg);
  const pts = series.flatMap((s) => s.points).filter(([, v]) => Number.isFinite(v));
  if (!pts.length) {
    svg.innerHTML = `<text class="tick" x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text>`;
    return;
  }
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  let lo = Math.min(...ys);
  let hi = Math.max(...ys);
  if (hi === lo) { hi += 1e-9 + Math.abs(hi) * 0.01; lo -= 1e-9 + Math.abs(lo) * 0.01; }
  const x = (v) => M.l + ((v - x0) / (x1 - x0)) * (W - M.l - M.r);
  const y = (v) => M.t + ((hi - v) / (hi - lo)) * (H - M.t - M.b);
  let s = yAxis(lo, hi, y, M.l, W - M.r);
  for (const v of vlines) s += `<line class="ride" x1="${x(v)}" x2="${x(v)}" y1="${M.t}" y2="${H - M.b}"></line>`;
  for (const ser of series) {
    const d = ser.points.filter(([, v]) => Number.isFinite(v)).map(([a, b], i) => `${i ? "L" : "M"}${x(a)},${y(b)}`).join("");
    s += `<path class="line ${ser.cls || ""}" d="${d}"></path>`;
  }
  s += `<text class="tick" x="${W - M.r}" y="${H - 4}" text-anchor="end">${esc(xLabel)} (${fmt(x0)}–${fmt(x1)})</text>`;
  if (yLabel) s += `<text class="tick" x="${M.l + 4}" y="${M.t - 3}">${esc(yLabel)}</text>`;
  svg.innerHTML = s;
}

// matrix[i][j]: row i's agent with column j's; labels per row/column. The colour scale runs
// from `lo` (default: the smallest value) to the largest, shown as a bar under the matrix;
// rowLabel / colLabel name the axes (player 1 down the left, player 2 across the top).
export function heatmap(svg, matrix, labels, { lo: floor = null, rowLabel = "", colLabel = "" } = {}) {
  const n = matrix.length;
  const size = 360;
  const m = 84; // room for the labels and the axis titles
  const bar = 34; // the colour bar under the matrix
  frame(svg, size + m + 10, size + m + 10 + bar);
  const vals = matrix.flat().filter((v) => Number.isFinite(v));
  const lo = floor ?? Math.min(...vals);
  const hi = Math.max(...vals, lo);
  const c = size / Math.max(n, 1);
  let s = "";
  matrix.forEach((row, i) => row.forEach((v, j) => {
    const t = hi > lo ? (v - lo) / (hi - lo) : 1;
    s += `<rect class="cell" data-row="${i}" data-col="${j}" x="${m + j * c}" y="${m + i * c}" width="${c}" height="${c}" fill="${Number.isFinite(v) ? ramp(t) : "#ccc"}">` +
      `<title>${esc(labels[i])} × ${esc(labels[j])}: ${fmt(v)}</title></rect>`;
  }));
  if (n <= 30) {
    labels.forEach((lab, i) => {
      s += `<text class="tick" x="${m - 4}" y="${m + (i + 0.5) * c + 3}" text-anchor="end">${esc(lab)}</text>`;
      s += `<text class="tick" transform="translate(${m + (i + 0.5) * c},${m - 4}) rotate(-60)">${esc(lab)}</text>`;
    });
  }
  if (colLabel) s += `<text class="tick axis-label col-label" x="${m + size / 2}" y="10" text-anchor="middle">${esc(colLabel)}</text>`;
  if (rowLabel) s += `<text class="tick axis-label row-label" transform="translate(10,${m + size / 2}) rotate(-90)" text-anchor="middle">${esc(rowLabel)}</text>`;
  const by = m + size + 10;
  const steps = 20;
  for (let k = 0; k < steps; k += 1) {
    s += `<rect x="${m + (k * size) / steps}" y="${by}" width="${size / steps + 0.5}" height="10" fill="${ramp(k / (steps - 1))}"></rect>`;
  }
  s += `<text class="tick" x="${m}" y="${by + 22}">${esc(fmt(lo, 3))}</text>`;
  s += `<text class="tick" x="${m + size}" y="${by + 22}" text-anchor="end">${esc(fmt(hi, 3))}</text>`;
  svg.innerHTML = s;
}
