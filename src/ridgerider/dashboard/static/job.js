// One job (/jobs/{id}): its tree, the inspector, the spectrum and loss charts, live updates.
import { AuthError, HttpError, getJSON, streamEvents } from "./api.js";
import { barChart, lineChart } from "./charts.js";
import { renderCrossplay } from "./crossplay.js";
import { renderInspector } from "./inspector.js";
import { LAYOUTS } from "./layout.js";
import { actionButtons } from "./manage.js";
import { TreeView } from "./tree.js";
import { $, FINAL, fail, jobField, show, signedIn, state } from "./ui.js";
import { age, el, fmt } from "./util.js";

const PAGE = 10000; // nodes per request (the compact form's largest page)
const FIRST_PAGE = 500; // the first request of a job: drawn as soon as it arrives
// The columns of GET /tree/compact, turned back into one object per node for the tree view.
const COLUMNS = ["id", "parent_id", "key", "depth", "rank", "status", "eigenvalue", "loss", "steps", "end_reason", "is_leaf", "is_solution", "metrics"];

// Node objects from a compact page (parallel arrays); `fingerprint` is the key in text form,
// which the tree view reads as it is. The inspector asks the per-node route for the rest.
function compactNodes(page) {
  const out = new Array(page.count);
  for (let i = 0; i < page.count; i++) {
    const n = {};
    for (const c of COLUMNS) n[c] = page[c][i];
    n.fingerprint = n.key;
    out[i] = n;
  }
  return out;
}
const treeView = new TreeView($("#tree"));

export async function jobView(id) {
  $("#crumbs").replaceChildren(el("a", { href: "/", "data-nav": true }, "jobs"), ` / #${id}`);
  const v = new JobView(id);
  state.view = v;
  state.stop = () => v.close();
  const job = await v.refresh();
  signedIn();
  v.loadCrossplay();
  if (!FINAL.has(job.status)) v.live();
}

// A performance mark once the frame drawn now is on screen (read by the render benchmark).
function paintedMark(name) {
  requestAnimationFrame(() => requestAnimationFrame(() => performance.mark(name)));
}

class JobView {
  constructor(id) {
    this.id = id;
    this.job = null;
    this.nodes = [];
    this.nextRank = 0; // the finished tree only grows: its nodes come by rank, a page at a time
    this.details = new Map();
    this.detailRoute = true;
    this.abort = new AbortController();
    this.closed = false;
    this.tree = treeView;
    treeView.reset({
      onSelect: (n) => this.select(n),
      onToggle: (n) => { this.summary(); if (n === this.selected) this.select(n); },
    });
    $("#colour-by").onchange = (e) => { this.tree.colourBy = e.target.value; this.tree.render(); this.legend(); };
    $("#layout").value = this.tree.layoutMode;
    $("#layout").onchange = (e) => { this.tree.setLayout(e.target.value); this.summary(); };
    $("#fit").onclick = () => this.tree.fit();
    $("#expand-all").onclick = () => { this.tree.expandAll(); this.summary(); };
    $("#collapse-depth").onclick = () => {
      const n = this.tree.byId.get(this.selected);
      this.tree.collapseLevel(n ? this.tree.depth(n) : 1);
      this.summary();
    };
    $("#inspector").replaceChildren(el("p", { class: "muted" }, "Click a node to inspect it; double-click to collapse or expand its subtree."));
    $("#loss-chart").innerHTML = "";
    $("#loss-note").textContent = "Select a node.";
    $("#crossplay").hidden = true;
    $("#job-riding").hidden = true;
    delete document.body.dataset.treeFirst;
    delete document.body.dataset.treeReady;
  }

  close() {
    this.closed = true;
    this.abort.abort();
    clearTimeout(this.pending);
    clearInterval(this.poll);
  }

  // Fetch the job and the tree's new nodes (compact pages: parallel arrays of what is drawn);
  // draw after the first page and when all are in. Done nodes never change and every node's
  // parent has a lower rank, so the nodes loaded so far always form a connected tree from the
  // root, and later calls fetch only new ones.
  refresh() {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = this._load().finally(() => {
      this.loading = null;
      if (this.again && !this.closed) {
        this.again = false;
        this.refresh().catch(fail);
      }
    });
    return this.loading;
  }

  async _load() {
    const jobP = getJSON(`/jobs/${this.id}`);
    let first = true;
    for (;;) {
      const limit = first && this.nextRank === 0 ? FIRST_PAGE : PAGE;
      const page = await getJSON(`/jobs/${this.id}/tree/compact?limit=${limit}&after=${this.nextRank}`);
      if (this.closed) return this.job;
      const items = compactNodes(page);
      this.nodes.push(...items);
      if (items.length) this.nextRank = items[items.length - 1].rank + 1;
      const more = page.next_after != null && items.length > 0;
      if (first || !more) {
        this.job = await jobP;
        if (!more) await this.loadChosen();
        if (first) show("#job-view");
        if (this.closed) return this.job;
        this.draw(!more);
        if (first) document.body.dataset.treeFirst = String(this.nodes.length);
        paintedMark(first ? "tree-first" : "tree-ready");
        if (first && !more) paintedMark("tree-ready");
        first = false;
      }
      if (!more) return this.job;
    }
  }

  draw(complete) {
    const nodes = this.nodes;
    this.tree.setData(nodes);
    const sel = $("#colour-by");
    const keys = this.tree.colourKeys();
    if ([...sel.options].map((o) => o.value).join() !== keys.join()) {
      sel.replaceChildren(...keys.map((k) => el("option", { value: k, selected: k === this.tree.colourBy }, k)));
    }
    this.tree.render();
    this.header();
    this.summary();
    this.legend();
    this.spectrum();
    if (this.selected != null && this.tree.byId.has(this.selected)) this.tree.select(this.selected);
    if (complete) {
      if (!this.tree.moved) this.tree.fit(); // the whole tree in view, unless the user moved it
      document.body.dataset.treeReady = String(nodes.length);
    }
  }

  header() {
    const j = this.job;
    $("#job-title").textContent = `Job #${this.id} · ${j.problem}`;
    const st = $("#job-status");
    st.textContent = j.status + (j.stopped_by ? ` (${j.stopped_by})` : "") +
      (j.phase === "mis" ? " · finding the MIS" : "");
    st.className = `status ${j.status}`;
    if ($("#job-actions").dataset.status !== `${this.id}:${j.status}`) {
      $("#job-actions").dataset.status = `${this.id}:${j.status}`;
      $("#job-actions").replaceChildren(...actionButtons(j, {
        onCancelled: async () => {
          await this.refresh();
          if (FINAL.has(this.job.status) && !$("#live").hidden) this.done(); // stop following it
        },
        // Deleted: back to the jobs list (app.js routes on popstate).
        onDeleted: () => { history.pushState({}, "", "/"); dispatchEvent(new PopStateEvent("popstate")); },
      }));
    }
    const sols = this.tree.nodes.filter((n) => n.is_solution).length;
    const max = jobField.maxNodes(j);
    this.chosenLine();
    $("#job-counts").textContent = `${this.tree.nodes.length} nodes${max ? ` of ${max}` : ""} · ${jobField.solutions(j) ?? sols} solutions · seed ${j.seed ?? "?"} · ${age(j.created_at)} old`;
  }

  // The solution held-out data choose (GET /jobs/{id}/chosen): shown where the problem holds
  // data out; a server without the route shows nothing.
  async loadChosen() {
    try {
      this.chosen = (await getJSON(`/jobs/${this.id}/chosen`)).chosen;
    } catch (err) {
      if (!(err instanceof HttpError) || ![404, 405].includes(err.status)) throw err;
      this.chosen = null;
    }
  }

  chosenLine() {
    const c = this.chosen;
    const span = $("#job-chosen");
    span.hidden = !c;
    if (!c) return;
    const acc = ["train", "validation", "test"]
      .filter((k) => typeof c.metrics[`${k}_accuracy`] === "number")
      .map((k) => `${k} ${fmt(c.metrics[`${k}_accuracy`], 3)}`);
    span.replaceChildren(
      "chosen by validation: ",
      el("a", { href: "#", "data-node": String(c.node_id), onclick: (e) => { e.preventDefault(); this.select(c.node_id); } }, c.key || "(root)"),
      ` (${acc.join(" · ")})`,
    );
  }

  summary() {
    const t = this.tree;
    const drawn = $("#tree").querySelectorAll("[data-node-id]").length;
    $("#tree-summary").textContent = `drawn ${drawn} of ${t.nodes.length} nodes` +
      (t.collapsed.size ? ` · ${t.collapsed.size} collapsed subtrees` : "") + ` · ${t.renderMs.toFixed(0)} ms`;
    $("#tree-summary").dataset.drawn = String(drawn);
    const used = t.drawnSpacing?.mode; // what "auto" chose for this tree on this canvas
    $("#layout").options[0].textContent = used ? `auto (${LAYOUTS[used]})` : "auto";
  }

  legend() {
    const s = this.tree.scale;
    const [left, right] = s.lowerBetter ? [s.hi, s.lo] : [s.lo, s.hi];
    $("#legend").replaceChildren(
      el("span", {}, `${s.key}: ${fmt(left, 3)}`), el("span", { class: "ramp" }), el("span", {}, fmt(right, 3)),
      el("span", { class: "key solution" }, "solution"), el("span", { class: "key leaf" }, "leaf (no solution)"),
      el("span", { class: "key collapsed" }, "collapsed (+hidden)"),
    );
  }

  // Bars of the MIS spectrum; ▲ on the eigen-indices the root's children followed.
  spectrum() {
    const root = this.tree.roots[0];
    const followed = new Map();
    for (const c of (root && this.tree.children.get(root.id)) || []) {
      followed.set(Number(c.key.split(".")[0].slice(0, -1)), c.eigenvalue);
    }
    let spec = this.job.mis?.spectrum;
    const note = $("#spectrum-note");
    if (Array.isArray(spec) && spec.length) {
      note.textContent = "Lowest Hessian eigenvalues at the MIS; red: negative, dark red with ▲: followed as a ridge.";
    } else {
      // The job record carries no spectrum: the eigenvalues of the ridges ridden from the MIS
      // (each child of the root records the one it followed) are all that can be drawn.
      const n = followed.size ? Math.max(...followed.keys()) + 1 : 0;
      spec = Array.from({ length: n }, (_, i) => followed.get(i) ?? 0);
      note.textContent = `The API gives no MIS spectrum (job.mis.spectrum): shown are the ${followed.size} eigenvalues followed from the MIS (${this.job.mis?.negative_eigenvalues ?? "?"} negative in all).`;
    }
    const zero = this.job.settings?.zero_tol ?? 0;
    barChart($("#spectrum"), spec.map((v, i) => ({
      value: v,
      label: String(i),
      cls: v < -zero ? (followed.has(i) ? "neg ridge" : "neg") : "pos",
      mark: followed.has(i),
      title: `λ${i} = ${fmt(v)}${followed.has(i) ? " (ridden)" : ""}`,
    })), { yLabel: "eigenvalue" });
  }

  async detail(id) {
    if (this.details.has(id)) return this.details.get(id);
    const base = this.tree.byId.get(id);
    let d = base;
    if (this.detailRoute) {
      try {
        d = { ...base, ...(await getJSON(`/jobs/${this.id}/nodes/${id}`)) };
      } catch (err) {
        if (!(err instanceof HttpError) || ![404, 405].includes(err.status)) throw err;
        if (!this.tree.byId.has(id)) throw err;
        this.detailRoute = false; // no per-node route: the /tree entry is all there is
      }
    }
    d.key = base.key;
    if (d.status === "done" || d.status == null) this.details.set(id, d);
    return d;
  }

  // A done node with its per-step losses (GET .../trace), or the node alone without that route.
  async trace(id) {
    const node = await this.detail(id);
    if (node.status && node.status !== "done") return node;
    this.traces ??= new Map();
    if (!this.traces.has(id)) {
      try {
        this.traces.set(id, await getJSON(`/jobs/${this.id}/nodes/${id}/trace`));
      } catch (err) {
        if (!(err instanceof HttpError) || err.status !== 404) throw err;
        return node;
      }
    }
    return { ...node, ...this.traces.get(id) };
  }

  async select(id) {
    this.selected = id;
    this.tree.select(id);
    try {
      const d = await this.detail(id);
      if (this.selected !== id) return;
      renderInspector($("#inspector"), d, this.job, {
        onToggle: (n) => this.tree.toggle(n),
        collapsed: this.tree.collapsed.has(id),
        hasChildren: this.tree.children.has(id),
      });
      $("#inspector").dataset.nodeId = String(id);
      await this.lossChart(id);
    } catch (err) {
      fail(err);
    }
  }

  // Loss at every accepted step of every ride from the root to the node, rides separated.
  async lossChart(id) {
    const chain = this.tree.lineage(id);
    const details = await Promise.all(chain.map((n) => this.trace(n.id)));
    if (this.selected !== id) return;
    const points = [];
    const bounds = [];
    let step = 0;
    let missing = 0;
    for (const d of details) {
      const losses = d.losses;
      if (!Array.isArray(losses)) {
        // No per-step losses from the API: the ride's first and last loss only.
        missing += 1;
        if (d.loss_start != null) points.push([step, d.loss_start]);
        step += d.steps || 0;
        if (d.loss != null) points.push([step, d.loss]);
      } else {
        losses.forEach((v, i) => points.push([step + i, v]));
        step += Math.max(losses.length - 1, 0);
      }
      bounds.push(step);
    }
    lineChart($("#loss-chart"), [{ points }], { vlines: bounds.slice(0, -1), xLabel: "ride step", yLabel: "loss" });
    $("#loss-note").textContent = `${chain.length} rides from the MIS to ${chain[chain.length - 1].key || "the root"}; dashed lines: a new ridge.` +
      (missing ? ` ${missing} ride(s) without per-step losses from the API: first and last loss only.` : "");
  }

  // Server-sent events while the job runs; each event schedules a (throttled) refresh.
  async live() {
    const badge = $("#live");
    badge.hidden = false;
    badge.textContent = "live";
    const kick = () => {
      if (this.pending) return;
      this.pending = setTimeout(async () => {
        this.pending = null;
        try {
          await this.refresh();
          if (FINAL.has(this.job.status)) this.done();
        } catch (err) { fail(err); }
      }, 400);
    };
    // Resume after the nodes already drawn: an event id is "{nodes}-{event}" (api/eventlog.py).
    let last = `${this.nextRank}-0`;
    let failures = 0;
    while (!this.closed && !FINAL.has(this.job.status)) {
      try {
        last = await streamEvents(`/jobs/${this.id}/events`, (msg) => {
          failures = 0;
          badge.textContent = `live · ${msg.event}`;
          if (msg.event === "riding") return this.riding(msg.json); // the tree did not change
          kick();
        }, this.abort.signal, last);
        kick();
      } catch (err) {
        if (this.closed || err.name === "AbortError") return;
        if (err instanceof AuthError) return fail(err);
        failures += 1;
        if (failures >= 3) return this.polling();
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  // No event stream: poll every 2 s instead.
  polling() {
    $("#live").textContent = "live (polling)";
    this.poll = setInterval(async () => {
      try {
        await this.refresh();
        const rides = FINAL.has(this.job.status) ? [] : await getJSON(`/jobs/${this.id}/rides`);
        this.riding({ rides: rides.length, steps: rides.reduce((s, r) => s + r.steps, 0) });
        if (FINAL.has(this.job.status)) this.done();
      } catch (err) { fail(err); }
    }, 2000);
  }

  // Rides in flight (not in the tree yet) and their steps so far, as their workers report them.
  riding(r) {
    const box = $("#job-riding");
    box.hidden = !r || !r.rides;
    if (box.hidden) return;
    box.textContent = `· riding ${r.rides} branch${r.rides === 1 ? "" : "es"}: ${r.steps.toLocaleString("en")} steps so far`;
    box.dataset.steps = String(r.steps);
  }

  done() {
    this.riding(null);
    clearInterval(this.poll);
    this.abort.abort();
    $("#live").textContent = "finished";
    this.loadCrossplay();
  }

  // Cross-play results, when the API has them for this job (404: none, the panel stays hidden).
  async loadCrossplay() {
    try {
      const data = await getJSON(`/jobs/${this.id}/crossplay`);
      renderCrossplay($("#crossplay"), data);
    } catch (err) {
      if (!(err instanceof HttpError)) fail(err);
    }
  }
}
