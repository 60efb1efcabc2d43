// Two to eight jobs side by side (/compare?jobs=3,5,8): their records with the settings that
// differ highlighted, each job's solutions, a chart of the solutions' loss (or a metric) per
// job, and the solution fingerprints the jobs share. Everything comes from GET /jobs/{id} and
// GET /jobs/{id}/solutions.
import { HttpError, getJSON } from "./api.js";
import { stripChart } from "./charts.js";
import { $, show, signedIn } from "./ui.js";
import { el, fmt } from "./util.js";

export const MAX_COMPARE = 8;

// Job ids from the address's ?jobs= (comma-separated), or an error message.
export function parseIds(text) {
  const parts = (text || "").split(",").map((s) => s.trim()).filter(Boolean);
  if (parts.some((p) => !/^\d{1,15}$/.test(p))) return { error: `Not a list of job ids: "${text}" (use /compare?jobs=3,5,8).` };
  const ids = [...new Set(parts.map(Number))];
  if (ids.length < 2) return { error: "Pick two to eight jobs to compare (/compare?jobs=3,5,8)." };
  if (ids.length > MAX_COMPARE) return { error: `At most ${MAX_COMPARE} jobs can be compared at once (${ids.length} given).` };
  return { ids };
}

const text = (v) => (v == null ? "–" : typeof v === "object" ? JSON.stringify(v) : fmt(v));
const same = (values) => values.every((v) => JSON.stringify(v ?? null) === JSON.stringify(values[0] ?? null));
const scalar = (v) => typeof v === "number" || typeof v === "boolean" || (typeof v === "string" && v.length <= 40);

// The settings that describe how a job searched, flattened: seed, params.*, settings.*.
function settingsOf(job) {
  const out = { seed: job.seed, accelerator: job.accelerator };
  for (const [k, v] of Object.entries(job.params || {})) out[`params.${k}`] = v;
  for (const [k, v] of Object.entries(job.settings || {})) out[`settings.${k}`] = v;
  return out;
}

const bestLoss = (sols) => {
  const ls = sols.map((s) => s.loss).filter(Number.isFinite);
  return ls.length ? Math.min(...ls) : null;
};

function jobsTable(jobs) {
  const head = el("tr", {}, el("th", {}, ""), ...jobs.map(({ job }) => el("th", { "data-job-id": job.id },
    el("a", { href: `/jobs/${job.id}`, "data-nav": true }, `#${job.id}`))));
  const row = (key, label, values, cls = "") => el("tr", { "data-key": key, class: cls },
    el("th", {}, label), ...values.map((v) => el("td", {}, v)));
  const rows = [
    row("problem", "problem", jobs.map(({ job }) => job.problem)),
    row("status", "status", jobs.map(({ job }) => el("span", { class: `status ${job.status}` }, job.status))),
    row("name", "name", jobs.map(({ job }) => job.name || "–")),
    row("tags", "tags", jobs.map(({ job }) => (job.tags || []).join(", ") || "–")),
    row("nodes", "nodes", jobs.map(({ job }) => fmt(job.nodes))),
    row("solutions", "solutions", jobs.map(({ sols }) => String(sols.length))),
    row("best_loss", "best loss", jobs.map(({ sols }) => fmt(bestLoss(sols)))),
    row("stopped_by", "stopped by", jobs.map(({ job }) => job.stopped_by || "–")),
  ];
  const settings = jobs.map(({ job }) => settingsOf(job));
  const keys = [...new Set(settings.flatMap((s) => Object.keys(s)))];
  let differ = 0;
  for (const k of keys) {
    const values = settings.map((s) => s[k]);
    const d = !same(values);
    differ += d;
    const r = row(k, k, values.map(text), d ? "setting differs" : "setting");
    if (d) r.dataset.differs = "";
    rows.push(r);
  }
  $("#cmp-jobs").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
  $("#cmp-jobs").classList.toggle("only-diff", $("#cmp-only-diff").checked);
  $("#cmp-only-diff").onchange = (e) => $("#cmp-jobs").classList.toggle("only-diff", e.target.checked);
  $("#cmp-diff-count").textContent = `${differ} setting${differ === 1 ? "" : "s"} differ${differ === 1 ? "s" : ""}`;
}

// A card per job: its solutions with fingerprint, loss and the problem's scalar metrics.
function solutionCards(jobs, shared) {
  $("#cmp-solutions").replaceChildren(...jobs.map(({ job, sols }) => {
    const metrics = [...new Set(sols.flatMap((s) => Object.keys(s.metrics || {}).filter((k) => scalar(s.metrics[k]))))];
    const table = el("table", { class: "compare solutions" },
      el("thead", {}, el("tr", {}, el("th", {}, "fingerprint"), el("th", {}, "loss"), ...metrics.map((m) => el("th", {}, m)))),
      el("tbody", {}, ...sols.map((s) => el("tr", { "data-fingerprint": s.key, class: shared.has(s.key) ? "shared" : "" },
        el("td", { "data-field": "fingerprint" }, s.key || "root"),
        el("td", { class: "num", "data-field": "loss" }, fmt(s.loss)),
        ...metrics.map((m) => el("td", { class: "num", "data-field": m }, text(s.metrics?.[m])))))));
    return el("div", { class: "card", "data-job-id": job.id },
      el("h3", {}, el("a", { href: `/jobs/${job.id}`, "data-nav": true }, `#${job.id}`), ` ${job.name || job.problem}: ${sols.length} solutions`),
      sols.length ? el("div", { class: "scroll" }, table) : el("p", { class: "muted" }, "No solutions."));
  }));
}

function sharedTable(jobs) {
  const where = new Map(); // fingerprint -> per job: its solution or undefined
  jobs.forEach(({ sols }, i) => {
    for (const s of sols) {
      if (!where.has(s.key)) where.set(s.key, new Array(jobs.length));
      where.get(s.key)[i] ??= s;
    }
  });
  const shared = [...where].filter(([, per]) => per.filter(Boolean).length >= 2);
  const inAll = shared.filter(([, per]) => per.filter(Boolean).length === jobs.length).length;
  $("#cmp-shared-note").textContent = shared.length
    ? `${shared.length} fingerprint${shared.length === 1 ? "" : "s"} found by two jobs or more, ${inAll} by all ${jobs.length}; each cell: that job's loss there.`
    : "No solution fingerprint is shared by two of these jobs.";
  $("#cmp-shared").replaceChildren(
    el("thead", {}, el("tr", {}, el("th", {}, "fingerprint"), ...jobs.map(({ job }) => el("th", {}, `#${job.id}`)))),
    el("tbody", {}, ...shared.map(([key, per]) => el("tr", { "data-fingerprint": key },
      el("th", {}, key || "root"),
      ...per.map((s) => el("td", { class: s ? "num has" : "num" }, s ? `✓ ${fmt(s.loss, 3)}` : "–"))))));
  return new Set(shared.map(([k]) => k));
}

// The loss (or the chosen scalar metric) of every solution, one column per job.
function chart(jobs) {
  const sel = $("#cmp-metric");
  const numeric = new Set(["loss"]);
  for (const { sols } of jobs) for (const s of sols) for (const [k, v] of Object.entries(s.metrics || {})) if (typeof v === "number") numeric.add(k);
  const keep = sel.value || "loss";
  sel.replaceChildren(...[...numeric].map((k) => el("option", { value: k }, k)));
  sel.value = numeric.has(keep) ? keep : "loss";
  const draw = () => {
    const m = sel.value;
    const value = (s) => (m === "loss" ? s.loss : s.metrics?.[m]);
    stripChart($("#cmp-chart"), jobs.map(({ job, sols }) => ({
      label: `#${job.id}`,
      points: sols.filter((s) => Number.isFinite(value(s))).map((s) => ({
        value: value(s), title: `#${job.id} ${s.key || "root"}: ${m} ${fmt(value(s))}`,
      })),
    })), { yLabel: m, xLabel: "job" });
  };
  sel.onchange = draw;
  draw();
}

export async function compareView(param) {
  $("#crumbs").replaceChildren(el("a", { href: "/", "data-nav": true }, "jobs"), " / compare");
  const err = $("#cmp-error");
  const { ids, error } = parseIds(param);
  const problems = [];
  const jobs = [];
  if (error) problems.push(error);
  else {
    const got = await Promise.allSettled(ids.map(async (id) => {
      const [job, sols] = await Promise.all([getJSON(`/jobs/${id}`), getJSON(`/jobs/${id}/solutions`)]);
      return { job, sols };
    }));
    got.forEach((r, i) => {
      if (r.status === "fulfilled") jobs.push(r.value);
      else if (r.reason instanceof HttpError && r.reason.status === 404) problems.push(`Job #${ids[i]} was not found (deleted, or not yours).`);
      else throw r.reason;
    });
  }
  signedIn();
  $("#cmp-title").textContent = jobs.length ? `Compare jobs ${jobs.map(({ job }) => `#${job.id}`).join(", ")}` : "Compare jobs";
  err.textContent = problems.join("\n");
  err.hidden = !problems.length;
  $("#cmp-body").hidden = jobs.length < 2;
  $("#cmp-diff-count").textContent = "";
  show("#compare-view");
  if (jobs.length < 2) return;
  jobsTable(jobs);
  const shared = sharedTable(jobs);
  solutionCards(jobs, shared);
  chart(jobs);
}
