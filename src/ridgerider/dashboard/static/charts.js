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
  for (const v of [lo, lo < 0 && hi > 0 ? 0 : (lo + hi) / 2, hi]) {
    s += `<line class="grid" x1="${x0}" x2="${x1}" y1="${y(v)}" y2="${y(v)}"></line>`;
    s += `<text class="tick" x="${x0 - 4}" y="${y(v) + 3}" text-anchor="end">${esc(fmt(v, 3))}</text>`;
  }
  return s;
}

// bars: [{value, label, cls, mark, err, title}]; marks draw a ▲ above the bar.
export function barChart(svg, bars, { yLabel = "", lo = null, hi = null, w = W, h = H } = {}) {
  frame(svg, w, h);
  if (!bars.length) {
    svg.innerHTML = `<text class="tick" x="${w / 2}" y="${h / 2}" text-anchor="middle">no data</text>`;
    return;
  }
  const vals = bars.flatMap((b) => [b.value, b.value + (b.err || 0), b.value - (b.err || 0)]);
  let min = lo ?? Math.min(0, ...vals);
  let max = hi ?? Math.max(0, ...vals);
  if (max === min) { max += 1; min -= lo == null ? 1 : 0; }
  const y = (v) => M.t + ((max - v) / (max - min)) * (h - M.t - M.b);
  const bw = (w - M.l - M.r) / bars.length;
  let s = yAxis(min, max, y, M.l, w - M.r);
  s += `<line class="axis" x1="${M.l}" x2="${w - M.r}" y1="${y(0)}" y2="${y(0)}"></line>`;
  const every = Math.ceil(bars.length / 24);
  bars.forEach((b, i) => {
    const x = M.l + i * bw;
    const top = Math.min(y(b.value), y(0));
    const hgt = Math.max(Math.abs(y(b.value) - y(0)), 0.5);
    s += `<rect class="bar ${b.cls || ""}" x="${x + bw * 0.1}" y="${top}" width="${bw * 0.8}" height="${hgt}"` +
      `${b.fill ? ` fill="${b.fill}"` : ""}><title>${esc(b.title || `${b.label}: ${fmt(b.value)}`)}</title></rect>`;
    if (b.err) {
      s += `<line class="err" x1="${x + bw / 2}" x2="${x + bw / 2}" y1="${y(b.value - b.err)}" y2="${y(b.value + b.err)}"></line>`;
    }
    if (b.mark) s += `<text class="mark" x="${x + bw / 2}" y="${Math.min(top, y(0)) - 3}" text-anchor="middle">▲</text>`;
    if (i % every === 0) {
      s += `<text class="tick" x="${x + bw / 2}" y="${h - M.b + 12}" text-anchor="middle">${esc(b.label)}</text>`;
    }
  });
  if (yLabel) s += `<text class="tick" x="${M.l + 4}" y="${M.t - 3}">${esc(yLabel)}</text>`;
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

// matrix[i][j]: row i's agent with column j's; labels per row/column.
export function heatmap(svg, matrix, labels) {
  const n = matrix.length;
  const size = 360;
  const m = 70;
  frame(svg, size + m + 10, size + m + 10);
  const vals = matrix.flat().filter((v) => Number.isFinite(v));
  const lo = Math.min(...vals);
  const hi = Math.max(...vals);
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
  s += `<text class="tick" x="4" y="12">${esc(`${fmt(lo, 3)} … ${fmt(hi, 3)}`)}</text>`;
  svg.innerHTML = s;
}
