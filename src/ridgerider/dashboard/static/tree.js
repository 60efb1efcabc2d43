// The solution tree drawn as SVG (layouts in layout.js, pan and zoom in zoom.js), one <circle>
// per drawn node carrying data-node-id and data-fingerprint; collapsed subtrees are drawn as one
// node with a "+N" badge. Positions are pixels at zoom 1 (the fitted view); node radii and label
// text are counter-scaled (CSS variables --nr and --fs), so they keep their on-screen size.
import {
  LAYOUTS, bounds, choose, edgeLabels, edgePath, extent, place, spacing, tidy, visibleLabels,
} from "./layout.js";
import { colourScale, esc } from "./util.js";
import { bindPanZoom } from "./zoom.js";

export const DRAW_LIMIT = 12000; // above this many nodes, deep levels start collapsed
const FONT = 10; // edge label size, on-screen px

// "0+.3-" for any of the fingerprint shapes the API may send (string key or [[i, s], ...]).
export function fingerprintKey(fp) {
  if (fp == null) return "";
  if (typeof fp === "string") return fp;
  return fp.map(([i, s]) => `${i}${s > 0 ? "+" : "-"}`).join(".");
}

// The ridge that led to a node: "3+" → "3 +" (eigen-index and sign), "" for the root.
export function edgeLabel(key) {
  if (!key) return "";
  const last = key.split(".").pop();
  return `${last.slice(0, -1)}${last.endsWith("+") ? "+" : "−"}`;
}

export class TreeView {
  constructor(svg, { onSelect, onToggle } = {}) {
    this.svg = svg;
    this.onSelect = onSelect || (() => {});
    this.onToggle = onToggle || (() => {});
    this.nodes = [];
    this.byId = new Map();
    this.collapsed = new Set();
    this.userCollapsed = false;
    this.colourBy = "loss";
    this.selected = null;
    this.view = { k: 1, x: 20, y: 20 };
    this.fitted = false;
    this.pos = new Map();
    this.layoutMode = "auto"; // or one of LAYOUTS; kept from one job to the next
    bindPanZoom(this);
  }

  // Forget the previous job: data, collapsed nodes, selection and view.
  reset({ onSelect, onToggle } = {}) {
    this.onSelect = onSelect || (() => {});
    this.onToggle = onToggle || (() => {});
    this.setData([]);
    this.collapsed.clear();
    this.userCollapsed = false;
    this.selected = null;
    this.fitted = false;
    this.moved = false;
    this.colourBy = "loss";
    this.svg.replaceChildren();
    this.g = null;
    this.packed = this.spacing = this.drawnSpacing = this.labelEls = this.sizedK = null;
  }

  // Replace the data (a fresh /tree answer); keeps the view, the selection and collapsed nodes.
  setData(nodes) {
    this.nodes = nodes;
    this.byId = new Map();
    this.children = new Map();
    for (const n of nodes) {
      n.key = fingerprintKey(n.fingerprint);
      this.byId.set(n.id, n);
    }
    this.roots = [];
    for (const n of nodes) {
      if (n.parent_id == null || !this.byId.has(n.parent_id)) this.roots.push(n);
      else {
        if (!this.children.has(n.parent_id)) this.children.set(n.parent_id, []);
        this.children.get(n.parent_id).push(n);
      }
    }
    for (const list of this.children.values()) list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const id of [...this.collapsed]) if (!this.byId.has(id)) this.collapsed.delete(id);
    this._sizes();
    if (!this.userCollapsed) this.autoCollapse();
  }

  _sizes() {
    // Descendant counts, children before parents (deepest first).
    this.size = new Map();
    const order = [...this.nodes].sort((a, b) => this.depth(b) - this.depth(a));
    for (const n of order) {
      const kids = this.children.get(n.id) || [];
      let s = 1;
      for (const c of kids) s += this.size.get(c.id) || 1;
      this.size.set(n.id, s);
    }
  }

  depth(n) {
    return n.depth ?? (n.key ? n.key.split(".").length : 0);
  }

  // Collapse the levels that would take the drawing past DRAW_LIMIT nodes.
  autoCollapse(limit = DRAW_LIMIT) {
    this.collapsed.clear();
    if (this.nodes.length <= limit) return;
    const perDepth = [];
    for (const n of this.nodes) {
      const d = this.depth(n);
      perDepth[d] = (perDepth[d] || 0) + 1;
    }
    let total = 0;
    let keep = 0;
    for (let d = 0; d < perDepth.length; d++) {
      total += perDepth[d] || 0;
      if (total > limit) break;
      keep = d;
    }
    for (const n of this.nodes) if (this.depth(n) === keep && this.children.has(n.id)) this.collapsed.add(n.id);
  }

  toggle(id) {
    if (!this.children.has(id)) return;
    if (this.collapsed.has(id)) this.collapsed.delete(id);
    else this.collapsed.add(id);
    this.userCollapsed = true;
    this.render(true);
    this.onToggle(id, this.collapsed.has(id));
  }

  expandAll() {
    this.collapsed.clear();
    this.userCollapsed = true;
    this.render(true);
  }

  collapseLevel(depth) {
    this.collapsed.clear();
    for (const n of this.nodes) if (this.depth(n) === depth && this.children.has(n.id)) this.collapsed.add(n.id);
    this.userCollapsed = true;
    this.render(true);
  }

  // The drawn nodes packed as a tidy tree (breadth, depth), collapsed subtrees as leaves.
  units() {
    const none = [];
    const kids = (n) => (this.collapsed.has(n.id) ? none : this.children.get(n.id) || none);
    const u = tidy(this.roots, kids);
    return { units: u, ext: extent(u) };
  }

  // The layout drawn now: the chosen one, or for "auto" the roomiest on this canvas.
  setLayout(mode) {
    this.layoutMode = mode in LAYOUTS ? mode : "auto";
    this.moved = false;
    this.spacing = null;
    this.render();
  }

  _size = () => [this.svg.clientWidth || 800, this.svg.clientHeight || 500];

  // Spacing that fills the canvas (and the layout, for "auto", unless `keep`: collapsing or
  // expanding keeps the layout drawn), from the tree's shape.
  _fitSpacing(packed, keep = false) {
    const [w, h] = this._size();
    const mode = this.layoutMode in LAYOUTS ? this.layoutMode
      : keep && this.drawnSpacing ? this.drawnSpacing.mode : choose(packed.units, packed.ext, w, h);
    return spacing(mode, packed.units, packed.ext, w, h);
  }

  metricOf(n, key) {
    if (key === "loss") return n.loss;
    if (key === "eigenvalue") return n.eigenvalue;
    const v = n.metrics ? n.metrics[key] : undefined;
    return typeof v === "number" ? v : null;
  }

  // Numeric keys worth colouring by: loss, then the problem's scalar metrics.
  colourKeys() {
    const keys = new Set(["loss"]);
    for (const n of this.nodes.slice(0, 200)) {
      for (const [k, v] of Object.entries(n.metrics || {})) if (typeof v === "number") keys.add(k);
    }
    return [...keys];
  }

  // Draw the tree; `keep`: in the layout drawn now (see _fitSpacing).
  render(keep = false) {
    const t0 = performance.now();
    this.packed = this.units();
    // Until the user pans or zooms, every drawing is fitted; afterwards the spacing stays.
    if (!this.spacing || !this.moved) this.spacing = this._fitSpacing(this.packed, keep);
    this._draw();
    if (!this.fitted || !this.moved) this._centre();
    else this._apply(true);
    this.renderMs = performance.now() - t0;
    return this.drawn;
  }

  _draw() {
    const s = this.spacing;
    const pos = place(this.packed.units, this.packed.ext, s);
    this.pos = pos;
    this.drawnSpacing = s;
    this.sizedK = null;
    this.gap = s.gap;
    const key = this.colourBy;
    const lowerBetter = /loss|error/i.test(key);
    const vals = [];
    for (const { n } of pos.values()) {
      const v = this.metricOf(n, key);
      if (v != null && Number.isFinite(v)) vals.push(v);
    }
    const scale = colourScale(vals, lowerBetter);
    this.scale = { ...scale, key, lowerBetter };
    let edges = "";
    let circles = "";
    let badges = "";
    const lab = edgeLabels(pos, (n) => edgeLabel(n.key), FONT);
    this.labelAt = lab.items;
    for (const { x, y, n } of pos.values()) {
      const p = n.parent_id != null ? pos.get(n.parent_id) : null;
      if (p) edges += edgePath(s.mode, p, { x, y });
      const v = this.metricOf(n, key);
      const cls = ["node"];
      if (n.is_solution) cls.push("solution");
      else if (n.is_leaf) cls.push("leaf");
      if (n.status && n.status !== "done") cls.push("pending");
      const hidden = this.collapsed.has(n.id);
      if (hidden) {
        cls.push("collapsed");
        badges += `<text class="badge" x="${x}" y="${y}">+${this.size.get(n.id) - 1}</text>`;
      }
      const fill = v == null || !Number.isFinite(v) ? "#999" : scale.colour(v);
      circles += `<circle class="${cls.join(" ")}" data-node-id="${n.id}" data-fingerprint="${esc(n.key)}" cx="${x}" cy="${y}" fill="${fill}"></circle>`;
    }
    this.svg.innerHTML =
      `<g class="viewport"><path class="edges" d="${edges}"></path><path class="sel-path" d=""></path>` +
      `<g class="elabels">${lab.html}</g><g class="nodes">${circles}</g><g class="badges">${badges}</g>` +
      `<circle class="sel-ring" cx="0" cy="0" visibility="hidden"></circle></g>`;
    this.g = this.svg.firstElementChild;
    this.svg.dataset.layout = s.mode;
    this.labelEls = this.g.querySelector(".elabels").children;
    this._highlight();
    this.drawn = pos.size;
  }

  select(id) {
    this.selected = id;
    this._highlight();
  }

  // Ring around the selected node, path from the root to it drawn bold.
  _highlight() {
    if (!this.g) return;
    const ring = this.g.querySelector(".sel-ring");
    const path = this.g.querySelector(".sel-path");
    let n = this.byId.get(this.selected);
    // A node inside a collapsed subtree is shown at its drawn ancestor.
    while (n && !this.pos.has(n.id)) n = this.byId.get(n.parent_id);
    if (!n) {
      ring.setAttribute("visibility", "hidden");
      path.setAttribute("d", "");
      return;
    }
    const p = this.pos.get(n.id);
    ring.setAttribute("cx", p.x);
    ring.setAttribute("cy", p.y);
    ring.setAttribute("visibility", "visible");
    let d = "";
    let cur = n;
    while (cur && cur.parent_id != null && this.pos.has(cur.parent_id)) {
      d += edgePath(this.drawnSpacing.mode, this.pos.get(cur.parent_id), this.pos.get(cur.id));
      cur = this.byId.get(cur.parent_id);
    }
    path.setAttribute("d", d);
  }

  // The root-to-node chain of a node (root first).
  lineage(id) {
    const out = [];
    let n = this.byId.get(id);
    while (n) {
      out.unshift(n);
      n = n.parent_id != null ? this.byId.get(n.parent_id) : null;
    }
    return out;
  }

  // The whole drawing in view: spacing refitted to the canvas (redrawn if it changed), zoom 1.
  fit(keep = true) {
    if (!this.packed || !this.packed.units.length) return;
    const s = this._fitSpacing(this.packed, keep);
    const d = this.drawnSpacing;
    if (!d || d.mode !== s.mode || d.su !== s.su || d.sv !== s.sv) {
      this.spacing = s;
      this._draw();
    }
    this._centre();
  }

  // Zoom 1 with the drawing's box centred on the canvas it was spaced for (no layout read:
  // the size was measured before drawing).
  _centre() {
    const [x0, y0, x1, y1] = bounds(this.pos.values());
    const { w, h } = this.drawnSpacing;
    const x = this.pos.size ? round2((w - x1 - x0) / 2) : 0;
    this.view = { k: 1, x, y: this.pos.size ? round2((h - y1 - y0) / 2) : 0 };
    this.fitted = true;
    this.moved = false;
    this._apply(true);
  }

  // The on-screen node radius at zoom k: 40 % of the gap between neighbours, 3.25 to 6 px.
  radius(k = this.view.k) {
    return Math.max(3.25, Math.min(6, 0.4 * this.gap * k));
  }

  // The view's transform at once; the sizes that depend on the zoom (node radius, label font,
  // which labels fit) restyle every node, so they follow on the next frame, or for a big
  // drawing once the zoom pauses. svg[data-k] is the zoom they were last set for.
  _apply(force = false) {
    const { k, x, y } = this.view;
    if (!this.g) return;
    this.g.setAttribute("transform", `translate(${x},${y}) scale(${k})`);
    if (force || k === this.sizedK) return force && this._sized();
    cancelAnimationFrame(this.sizeFrame);
    clearTimeout(this.sizeTimer);
    if (this.drawn > 2000) this.sizeTimer = setTimeout(() => this._sized(), 90);
    else this.sizeFrame = requestAnimationFrame(() => this._sized());
  }

  _sized() {
    if (!this.g) return; // reset since
    const k = (this.sizedK = this.view.k);
    // Set on the groups that use them: a change restyles only their elements.
    const q = (sel) => this.g.querySelector(sel).style;
    for (const st of [q(".nodes"), q(".badges"), q(".sel-ring")]) st.setProperty("--nr", `${this.radius(k) / k}px`);
    for (const st of [q(".elabels"), q(".badges")]) st.setProperty("--fs", `${FONT / k}px`);
    // Show the edge labels that overlap neither a node nor another label at this zoom.
    const show = visibleLabels(this.labelAt, this.pos.values(), k, this.radius(k) + 1);
    const els = this.labelEls;
    for (let i = 0; i < show.length; i++) {
      const off = !show[i];
      if (els[i].classList.contains("off") !== off) els[i].classList.toggle("off", off);
    }
    this.svg.dataset.k = String(k);
  }

  // The largest zoom: neighbours 80 px apart on screen.
  maxZoom() {
    return Math.max(8, 80 / Math.max(this.gap || 1, 1e-3));
  }
}

function round2(v) {
  return Math.round(v * 100) / 100;
}
