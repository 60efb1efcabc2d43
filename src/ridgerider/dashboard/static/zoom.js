// Pan (drag), zoom about the pointer (wheel; Shift+wheel stretches the breadth only), click to
// select, double-click to collapse or expand, and a refit of an untouched view when the canvas
// changes size.
export function bindPanZoom(tree) {
  const svg = tree.svg;
  let drag = null;
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = svg.getBoundingClientRect();
    const mx = e.clientX - r.left;
    const my = e.clientY - r.top;
    // Shift+wheel (browsers may turn it into a horizontal wheel) stretches the breadth only.
    const f = Math.exp(-(e.deltaY || (e.shiftKey ? e.deltaX : 0)) * 0.0015);
    if (e.shiftKey && spread(tree, f, mx, my)) return;
    const k = Math.min(tree.maxZoom(), Math.max(0.2, tree.view.k * f));
    const ratio = k / tree.view.k;
    tree.view = { k, x: mx - (mx - tree.view.x) * ratio, y: my - (my - tree.view.y) * ratio };
    tree.moved = true;
    tree._apply();
  }, { passive: false });
  svg.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, vx: tree.view.x, vy: tree.view.y, moved: false };
  });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    if (!drag.moved) svg.setPointerCapture(e.pointerId);
    drag.moved = true;
    tree.moved = true;
    tree.view = { ...tree.view, x: drag.vx + dx, y: drag.vy + dy };
    tree._apply();
  });
  const end = (e) => {
    if (drag && drag.moved) {
      tree._suppressClick = true;
      setTimeout(() => (tree._suppressClick = false), 0);
    }
    drag = null;
    if (svg.hasPointerCapture(e.pointerId)) svg.releasePointerCapture(e.pointerId);
  };
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointercancel", end);
  svg.addEventListener("click", (e) => {
    if (tree._suppressClick) return;
    const el = e.target.closest("[data-node-id]");
    if (el) tree.onSelect(Number(el.dataset.nodeId));
  });
  svg.addEventListener("dblclick", (e) => {
    const el = e.target.closest("[data-node-id]");
    if (el) tree.toggle(Number(el.dataset.nodeId));
  });
  // A new canvas size refits an untouched view (window resized, phone rotated).
  new ResizeObserver(() => {
    const d = tree.drawnSpacing;
    if (tree.moved || !d || tree.resizeFrame || !svg.clientWidth) return; // hidden: no refit
    tree.resizeFrame = requestAnimationFrame(() => {
      tree.resizeFrame = null;
      const [w, h] = tree._size();
      if (!tree.moved && (w !== d.w || h !== d.h)) tree.fit(false); // may change layout
    });
  }).observe(svg);
}

// Stretch (f > 1) or squeeze the breadth only, about the pointer (mx, my), between the fitted
// spacing and 90 px (top-down) or 60 px (left-right) between siblings: a redraw, at most one
// a frame. Wide trees need far more room across than between levels. Not for radial.
function spread(tree, f, mx, my) {
  if (!tree.g || !tree.spacing || tree.spacing.mode === "radial") return false;
  tree.spreadBy = { f: (tree.spreadBy?.f || 1) * f, mx, my };
  tree.spreadFrame ||= requestAnimationFrame(() => {
    const { f, mx, my } = tree.spreadBy;
    tree.spreadFrame = tree.spreadBy = null;
    const s = tree.spacing;
    if (!tree.g || !s) return; // reset since
    const a = s.mode === "tidy" ? "su" : "sv";
    const lo = tree._fitSpacing(tree.packed, true)[a];
    const r = Math.max(lo, Math.min(s[a] * f, Math.max(lo, a === "su" ? 90 : 60))) / s[a];
    if (Math.abs(r - 1) < 1e-9) return;
    const { k, x, y } = tree.view;
    tree.view = a === "su" ? { k, x: mx - (mx - x) * r, y } : { k, x, y: my - (my - y) * r };
    tree.spacing = { ...s, [a]: s[a] * r, gap: s.gap * r };
    tree.moved = true;
    tree._draw();
    tree._apply(true);
  });
  return true;
}
