// Tree layouts. `tidy` packs the tree once (breadth in sibling gaps, depth in levels); `place`
// turns that into pixel positions for one of three drawings, spaced to fill a canvas:
// "tidy" (top-down), "radial" (the root in the centre, one ring per level) and "lr" (left to
// right). Breadth and depth are scaled separately, so a wide shallow tree uses the height too.
import { esc } from "./util.js";

export const LAYOUTS = { tidy: "top-down", radial: "radial", lr: "left-right" };

const GAP = { tidy: [90, 220], lr: [260, 60], radial: [220, 220] }; // most px per unit (u, v)
const RADIAL_ASPECT = 1.8; // the radial drawing may be an ellipse up to this ratio

// A tidy (contour-packed, Reingold–Tilford style) tree: each subtree is pushed right against
// its left sibling's right contour, a parent centred over its first and last child.
// `kids(n)` gives a node's drawn children. Returns [{ n, b, d }] in preorder.
export function tidy(roots, kids) {
  const pre = [];
  const stack = roots.slice().reverse();
  while (stack.length) {
    const n = stack.pop();
    pre.push(n);
    const ks = kids(n);
    for (let i = ks.length - 1; i >= 0; i--) stack.push(ks[i]);
  }
  const off = new Map(); // offset from the parent
  const cont = new Map(); // left and right contours, relative to the node, one entry a level
  const merge = (ks, gap) => {
    const first = cont.get(ks[0].id);
    const L = first.L;
    const R = first.R;
    const pos = [0];
    for (let i = 1; i < ks.length; i++) {
      const c = cont.get(ks[i].id);
      let s = -Infinity;
      const m = Math.min(R.length, c.L.length);
      for (let j = 0; j < m; j++) s = Math.max(s, R[j] - c.L[j] + gap);
      pos.push(s);
      for (let j = 0; j < c.R.length; j++) R[j] = c.R[j] + s;
      for (let j = L.length; j < c.L.length; j++) L.push(c.L[j] + s);
      cont.delete(ks[i].id);
    }
    cont.delete(ks[0].id);
    const mid = (pos[0] + pos[pos.length - 1]) / 2;
    ks.forEach((c, i) => off.set(c.id, pos[i] - mid));
    for (let j = 0; j < L.length; j++) {
      L[j] -= mid;
      R[j] -= mid;
    }
    L.unshift(0);
    R.unshift(0);
    return { L, R };
  };
  for (let i = pre.length - 1; i >= 0; i--) {
    const ks = kids(pre[i]);
    cont.set(pre[i].id, ks.length ? merge(ks, 1) : { L: [0], R: [0] });
  }
  if (roots.length) merge(roots, 2);
  const at = new Map();
  const out = [];
  for (const n of pre) {
    const p = at.get(n.parent_id);
    const u = { n, b: (p ? p.b : 0) + off.get(n.id), d: p ? p.d + 1 : 0 };
    at.set(n.id, u);
    out.push(u);
  }
  return out;
}

// The extent of a tidy tree: breadth span (in gaps) and depth (in levels).
export function extent(units) {
  let b0 = Infinity, b1 = -Infinity, depth = 0;
  for (const { b, d } of units) {
    if (b < b0) b0 = b;
    if (b > b1) b1 = b;
    if (d > depth) depth = d;
  }
  return { b0: units.length ? b0 : 0, span: units.length ? b1 - b0 : 0, depth };
}

// Unit coordinates (u, v) of a node: scaled separately by the spacing.
function unit(mode, { b, d }, ext) {
  if (mode === "lr") return [d, b - ext.b0];
  if (mode === "tidy") return [b - ext.b0, d];
  const a = ext.span ? (2 * Math.PI * (b - ext.b0)) / (ext.span + 1) : 0;
  return [d * Math.sin(a), -d * Math.cos(a)];
}

// The margin kept free around the drawing, in px.
export function margin(w, h) {
  return Math.max(14, Math.min(30, 0.05 * Math.min(w, h)));
}

// Px per unit (su, sv) filling a w×h canvas, and the on-screen gap between neighbours at zoom 1.
export function spacing(mode, units, ext, w, h) {
  const m = margin(w, h);
  const iw = Math.max(w - 2 * m, 40);
  const ih = Math.max(h - 2 * m, 40);
  let u0 = 0, u1 = 0, v0 = 0, v1 = 0;
  if (mode === "radial") {
    for (const x of units) {
      const [u, v] = unit(mode, x, ext);
      if (u < u0) u0 = u;
      if (u > u1) u1 = u;
      if (v < v0) v0 = v;
      if (v > v1) v1 = v;
    }
  } else {
    [u1, v1] = unit(mode, { b: ext.b0 + ext.span, d: ext.depth }, ext);
  }
  const [cu, cv] = GAP[mode];
  let su = u1 > u0 ? Math.min(iw / (u1 - u0), cu) : cu;
  let sv = v1 > v0 ? Math.min(ih / (v1 - v0), cv) : cv;
  if (mode === "radial") {
    su = Math.min(su, sv * RADIAL_ASPECT);
    sv = Math.min(sv, su * RADIAL_ASPECT);
  }
  // The gap between neighbouring nodes across the breadth (radial: on the outer ring).
  const gap = mode === "tidy" ? su : mode === "lr" ? sv
    : (2 * Math.PI * Math.min(su, sv) * Math.max(ext.depth, 1)) / (ext.span + 1);
  return { mode, su, sv, gap: ext.span ? gap : Math.max(su, sv), w, h };
}

// The layout that gives the roomiest drawing on a w×h canvas: the smaller of the gap across
// (wants ≥ 14 px for a node) and the gap between levels (wants ≥ 48 px for an edge label),
// slightly favouring top-down, then left-right.
export function choose(units, ext, w, h) {
  let best = null;
  for (const [mode, bias] of [["tidy", 1], ["lr", 0.95], ["radial", 0.9]]) {
    const s = spacing(mode, units, ext, w, h);
    const level = mode === "tidy" ? s.sv : mode === "lr" ? s.su : Math.min(s.su, s.sv);
    const q = bias * Math.min(s.gap / 14, ext.depth ? level / 48 : Infinity);
    if (!best || q > best.q) best = { mode, q };
  }
  return best.mode;
}

// Pixel positions (at zoom 1) of every unit: Map id → { x, y, n, d }.
export function place(units, ext, s) {
  const pos = new Map();
  for (const x of units) {
    const [u, v] = unit(s.mode, x, ext);
    pos.set(x.n.id, { x: round(u * s.su), y: round(v * s.sv), n: x.n, d: x.d });
  }
  return pos;
}

function round(v) {
  return Math.round(v * 100) / 100;
}

// The SVG path of the edge from a (parent) to b (child).
export function edgePath(mode, a, b) {
  if (mode === "radial") return `M${a.x},${a.y}L${b.x},${b.y}`;
  if (mode === "tidy") {
    const my = round((a.y + b.y) / 2);
    return `M${a.x},${a.y}C${a.x},${my} ${b.x},${my} ${b.x},${b.y}`;
  }
  const mx = round((a.x + b.x) / 2);
  return `M${a.x},${a.y}C${mx},${a.y} ${mx},${b.y} ${b.x},${b.y}`;
}

// The box [x0, y0, x1, y1] of the positions.
export function bounds(pos) {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const { x, y } of pos) {
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  return [x0, y0, x1, y1];
}

// Edge labels at the middle of their edge, the shallowest first (they are shown greedily in
// this order): their boxes for visibleLabels and their SVG, every one hidden ("off") at first.
export function edgeLabels(pos, textOf, font) {
  const items = [];
  let html = "";
  for (const q of [...pos.values()].sort((a, b) => a.d - b.d)) {
    const p = q.n.parent_id != null ? pos.get(q.n.parent_id) : null;
    if (!p) continue;
    const text = textOf(q.n);
    const x = round((p.x + q.x) / 2), y = round((p.y + q.y) / 2);
    items.push({ x, y, w: text.length * font * 0.7 + 4, h: font * 1.25 });
    html += `<text class="elabel off" x="${x}" y="${y}">${esc(text)}</text>`;
  }
  return { items, html };
}

// Which labels to show at zoom k: greedily (in the given order) every label whose box, in
// screen px, overlaps no node and no label already shown. items: [{ x, y, w, h }] centred
// boxes in layout px; nodes: [{ x, y }] with on-screen radius r. Returns a Uint8Array of 0/1.
export function visibleLabels(items, nodes, k, r) {
  const C = 32;
  const grid = new Map();
  const key = (i, j) => i * 1048576 + j;
  const add = (x0, y0, x1, y1) => {
    const box = [x0, y0, x1, y1];
    for (let i = Math.floor(x0 / C); i <= Math.floor(x1 / C); i++) {
      for (let j = Math.floor(y0 / C); j <= Math.floor(y1 / C); j++) {
        const c = grid.get(key(i, j));
        if (c) c.push(box);
        else grid.set(key(i, j), [box]);
      }
    }
  };
  const hits = (x0, y0, x1, y1) => {
    for (let i = Math.floor(x0 / C); i <= Math.floor(x1 / C); i++) {
      for (let j = Math.floor(y0 / C); j <= Math.floor(y1 / C); j++) {
        for (const b of grid.get(key(i, j)) || []) {
          if (b[0] < x1 && x0 < b[2] && b[1] < y1 && y0 < b[3]) return true;
        }
      }
    }
    return false;
  };
  for (const { x, y } of nodes) add(x * k - r, y * k - r, x * k + r, y * k + r);
  const out = new Uint8Array(items.length);
  items.forEach(({ x, y, w, h }, i) => {
    const x0 = x * k - w / 2, y0 = y * k - h / 2, x1 = x0 + w, y1 = y0 + h;
    if (hits(x0, y0, x1, y1)) return;
    add(x0, y0, x1, y1);
    out[i] = 1;
  });
  return out;
}
