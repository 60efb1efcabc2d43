// The solution tree: a left-to-right layout drawn as SVG, one <circle> per drawn node carrying
// data-node-id and data-fingerprint; collapsed subtrees are drawn as one node with a "+N" badge.
import { colourScale, esc } from "./util.js";

const DX = 150; // depth spacing
const DY = 18; // row spacing
export const DRAW_LIMIT = 3000; // above this many nodes, deep levels start collapsed

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
    this._bind();
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
    this.render();
    this.onToggle(id, this.collapsed.has(id));
  }

  expandAll() {
    this.collapsed.clear();
    this.userCollapsed = true;
    this.render();
  }

  collapseLevel(depth) {
    this.collapsed.clear();
    for (const n of this.nodes) if (this.depth(n) === depth && this.children.has(n.id)) this.collapsed.add(n.id);
    this.userCollapsed = true;
    this.render();
  }

  // Positions of the drawn nodes: x by depth, leaves on consecutive rows, parents centred.
  layout() {
    const pos = new Map();
    let row = 0;
    const place = (n, d) => {
      const kids = this.collapsed.has(n.id) ? [] : this.children.get(n.id) || [];
      let y;
      if (!kids.length) y = row++ * DY;
      else {
        const ys = kids.map((c) => place(c, d + 1));
        y = (ys[0] + ys[ys.length - 1]) / 2;
      }
      pos.set(n.id, { x: d * DX, y, n });
      return y;
    };
    for (const r of this.roots) {
      place(r, 0);
      row += 1;
    }
    return pos;
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

  render() {
    const t0 = performance.now();
    const pos = this.layout();
    this.pos = pos;
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
    let labels = "";
    let circles = "";
    let badges = "";
    for (const { x, y, n } of pos.values()) {
      const p = n.parent_id != null ? pos.get(n.parent_id) : null;
      if (p) {
        const mx = (p.x + x) / 2;
        edges += `M${p.x},${p.y}C${mx},${p.y} ${mx},${y} ${x},${y}`;
        labels += `<text class="elabel" x="${x - 8}" y="${y - 4}">${esc(edgeLabel(n.key))}</text>`;
      }
      const v = this.metricOf(n, key);
      const cls = ["node"];
      if (n.is_solution) cls.push("solution");
      else if (n.is_leaf) cls.push("leaf");
      if (n.status && n.status !== "done") cls.push("pending");
      const hidden = this.collapsed.has(n.id);
      if (hidden) {
        cls.push("collapsed");
        badges += `<text class="badge" x="${x + 9}" y="${y + 4}">+${this.size.get(n.id) - 1}</text>`;
      }
      const fill = v == null || !Number.isFinite(v) ? "#999" : scale.colour(v);
      circles += `<circle class="${cls.join(" ")}" data-node-id="${n.id}" data-fingerprint="${esc(n.key)}" cx="${x}" cy="${y}" r="${n.is_solution ? 6.5 : 5}" fill="${fill}"></circle>`;
    }
    this.svg.innerHTML =
      `<g class="viewport"><path class="edges" d="${edges}"></path><path class="sel-path" d=""></path>` +
      `<g class="elabels">${labels}</g><g class="nodes">${circles}</g><g class="badges">${badges}</g>` +
      `<circle class="sel-ring" r="10" cx="0" cy="0" visibility="hidden"></circle></g>`;
    this.g = this.svg.firstElementChild;
    if (!this.fitted) this.fit();
    else this._apply();
    this._highlight();
    this.drawn = pos.size;
    this.renderMs = performance.now() - t0;
    return pos.size;
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
      const a = this.pos.get(cur.id);
      const b = this.pos.get(cur.parent_id);
      const mx = (a.x + b.x) / 2;
      d += `M${b.x},${b.y}C${mx},${b.y} ${mx},${a.y} ${a.x},${a.y}`;
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

  fit() {
    if (!this.pos || !this.pos.size) return;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const { x, y } of this.pos.values()) {
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    }
    const w = this.svg.clientWidth || 800;
    const h = this.svg.clientHeight || 500;
    const k = Math.min(1.5, (w - 80) / Math.max(x1 - x0, 1), (h - 40) / Math.max(y1 - y0, 1));
    this.view = { k, x: 30 - x0 * k, y: (h - (y1 - y0) * k) / 2 - y0 * k };
    this.fitted = true;
    this._apply();
  }

  _apply() {
    const { k, x, y } = this.view;
    if (this.g) this.g.setAttribute("transform", `translate(${x},${y}) scale(${k})`);
    // Edge labels only when rows are far enough apart to read them.
    this.svg.classList.toggle("far", k * DY < 9);
  }

  _bind() {
    const svg = this.svg;
    let drag = null;
    svg.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = svg.getBoundingClientRect();
      const mx = e.clientX - r.left;
      const my = e.clientY - r.top;
      const f = Math.exp(-e.deltaY * 0.0015);
      const k = Math.min(20, Math.max(0.01, this.view.k * f));
      const ratio = k / this.view.k;
      this.view = { k, x: mx - (mx - this.view.x) * ratio, y: my - (my - this.view.y) * ratio };
      this.moved = true;
      this._apply();
    }, { passive: false });
    svg.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, vx: this.view.x, vy: this.view.y, moved: false };
    });
    svg.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      if (!drag.moved) svg.setPointerCapture(e.pointerId);
      drag.moved = true;
      this.moved = true;
      this.view = { ...this.view, x: drag.vx + dx, y: drag.vy + dy };
      this._apply();
    });
    const end = (e) => {
      if (drag && drag.moved) {
        this._suppressClick = true;
        setTimeout(() => (this._suppressClick = false), 0);
      }
      drag = null;
      if (svg.hasPointerCapture(e.pointerId)) svg.releasePointerCapture(e.pointerId);
    };
    svg.addEventListener("pointerup", end);
    svg.addEventListener("pointercancel", end);
    svg.addEventListener("click", (e) => {
      if (this._suppressClick) return;
      const el = e.target.closest("[data-node-id]");
      if (el) this.onSelect(Number(el.dataset.nodeId));
    });
    svg.addEventListener("dblclick", (e) => {
      const el = e.target.closest("[data-node-id]");
      if (el) this.toggle(Number(el.dataset.nodeId));
    });
  }
}
