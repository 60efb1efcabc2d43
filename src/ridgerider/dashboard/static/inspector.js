// The node inspector: what a node is, how its ride went, its problem metrics and its parameters.
import { API, download } from "./api.js";
import { barChart } from "./charts.js";
import { edgeLabel } from "./tree.js";
import { el, fmt } from "./util.js";

const METRIC_TITLES = {
  policy_1: "Player 1 policy (probability per lever)",
  policy_2: "Player 2 policy (probability per lever)",
  per_class_accuracy: "Per-class test accuracy",
};

function row(name, value, attrs = {}) {
  return el("tr", attrs, el("th", {}, name), el("td", {}, value));
}

function metricBars(key, values) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.classList.add("chart", "mini");
  svg.dataset.metric = key;
  const probabilities = /policy|accuracy/.test(key);
  barChart(
    svg,
    values.map((v, i) => ({ value: v ?? 0, label: String(i), title: `${key}[${i}] = ${fmt(v)}` })),
    { lo: probabilities ? 0 : null, hi: probabilities ? 1 : null, h: 150 },
  );
  return el("div", { class: "metric-chart" }, el("h4", {}, METRIC_TITLES[key] || key), svg);
}

// node: the API's node (detail when available, else the /tree entry); job: the job record.
export function renderInspector(aside, node, job, { onToggle, collapsed, hasChildren } = {}) {
  aside.replaceChildren();
  if (!node) {
    aside.append(el("p", { class: "muted" }, "Click a node to inspect it."));
    return;
  }
  const key = node.key ?? "";
  const title = node.parent_id == null ? "Root (MIS)" : `Node ${node.id}`;
  aside.append(el("h3", {}, title, " ", node.is_solution ? el("span", { class: "tag solution" }, "solution") : null));
  const m = node.metrics || {};
  const table = el("table", { class: "kv", id: "inspector-table" },
    row("fingerprint", el("code", { "data-field": "fingerprint" }, key || "(root)")),
    row("ridge", node.parent_id == null ? "–" : edgeLabel(key)),
    row("depth", fmt(node.depth ?? (key ? key.split(".").length : 0))),
    row("status", node.status ?? "–"),
    row("eigenvalue followed", el("span", { "data-field": "eigenvalue" }, fmt(node.eigenvalue))),
    row("eigenvalue at end", fmt(node.eigenvalue_end)),
    row("loss before", el("span", { "data-field": "loss_start" }, fmt(node.loss_start))),
    row("loss after", el("span", { "data-field": "loss" }, fmt(node.loss))),
    row("steps", el("span", { "data-field": "steps" }, fmt(node.steps))),
    row("ride ended by", el("span", { "data-field": "end_reason" }, node.end_reason ?? "–")),
    row("leaf", node.is_leaf ? `yes (${node.leaf_reason ?? "?"})` : node.is_leaf === false ? `no (${fmt(node.n_children)} children)` : "–"),
    node.solution_key != null ? row("solution", node.solution_key) : null,
    node.crossings ? row("eigen-crossings", fmt(node.crossings)) : null,
  );
  aside.append(table);

  const metricsBox = el("div", { class: "metrics", id: "inspector-metrics" });
  if ("leaf" in m) {
    metricsBox.append(el("p", { class: "headline", "data-field": "leaf" },
      `Leaf reached: ${m.leaf}`, "reward" in m ? ` (reward ${fmt(m.reward)})` : ""));
  }
  const scalars = el("table", { class: "kv" });
  for (const [k, v] of Object.entries(m)) {
    const numeric = Array.isArray(v) && v.length && v.every((x) => x == null || typeof x === "number");
    if (numeric && (v.length > 2 || /policy|accuracy|prob/.test(k))) {
      metricsBox.append(metricBars(k, v));
    } else if (k !== "leaf") {
      scalars.append(row(k, Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : fmt(v)));
    }
  }
  if (scalars.children.length) metricsBox.prepend(scalars);
  if (Object.keys(m).length) aside.append(el("h4", {}, "Metrics"), metricsBox);

  const actions = el("div", { class: "actions" });
  if (node.status == null || node.status === "done") {
    const href = `${API}/jobs/${job.id ?? job.job_id}/nodes/${node.id}/params`;
    const link = el("a", { href, id: "params-link", class: "button", download: `job${job.id ?? job.job_id}-node${node.id}-params` }, "Download parameters");
    link.addEventListener("click", (e) => {
      e.preventDefault();
      download(href.slice(API.length), link.getAttribute("download")).catch((err) => alert(err.message));
    });
    actions.append(link);
  }
  if (hasChildren) {
    actions.append(el("button", { type: "button", onclick: () => onToggle(node.id) }, collapsed ? "Expand subtree" : "Collapse subtree"));
  }
  aside.append(actions);
  if (node.last_error) aside.append(el("pre", { class: "error" }, node.last_error));
}
