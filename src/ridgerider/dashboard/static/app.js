// The dashboard: sign-in, routing and the jobs list (/); one job (/jobs/{id}) is in job.js,
// one cross-play run (/crossplay/{id}) in xpview.js, the comparison of jobs (/compare?jobs=)
// in compare.js, and the Cancel / Delete actions in manage.js.
import { getAll, getJSON, token } from "./api.js";
import { MAX_COMPARE, compareView } from "./compare.js";
import { jobView } from "./job.js";
import { actionButtons } from "./manage.js";
import { crossplayView, drawCrossplayList } from "./xpview.js";
import { $, FINAL, fail, jobField, show, signIn, signedIn, state } from "./ui.js";
import { age, el, fmt } from "./util.js";

$("#login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  token.set($("#token").value.trim());
  $("#token").value = "";
  route();
});
$("#signout").addEventListener("click", () => signIn(""));

// ---- routing ----------------------------------------------------------------------------

document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-nav]");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  history.pushState({}, "", a.getAttribute("href"));
  route();
});
window.addEventListener("popstate", () => route());

async function route() {
  state.stop();
  state.stop = () => {};
  $("#error").hidden = true;
  show(null);
  try {
    // Each view shows itself only after its first API call succeeded (see signedIn).
    const m = location.pathname.match(/^\/jobs\/(\d+)\/?$/);
    const xp = location.pathname.match(/^\/crossplay\/(\d+)\/?$/);
    if (m) await jobView(Number(m[1]));
    else if (xp) await crossplayView(Number(xp[1]));
    else if (/^\/compare\/?$/.test(location.pathname)) await compareView(new URLSearchParams(location.search).get("jobs"));
    else await jobsView();
  } catch (err) {
    fail(err);
  }
}

// ---- jobs list --------------------------------------------------------------------------

const progress = (j) => {
  const n = jobField.nodes(j);
  const max = jobField.maxNodes(j);
  if (j.status === "succeeded") return 1; // it has done what it will do (a budget or the tree ran out)
  return n != null && max ? Math.min(1, n / max) : 0;
};

const SORTS = {
  id: (j) => jobField.id(j),
  problem: (j) => j.problem,
  name: (j) => (j.name || "").toLowerCase(),
  status: (j) => j.status,
  progress,
  nodes: (j) => jobField.nodes(j) ?? -1,
  solutions: (j) => jobField.solutions(j) ?? -1,
  created_at: (j) => -Date.parse(j.created_at || 0),
};

// The filters mean what the API's do (GET /jobs?name=&tag=&problem=&status=): name matches any
// part of the name, ignoring case; tag, problem and status match exactly. They apply at once to
// the jobs loaded (the newest 5,000).
function filters() {
  return {
    status: $("#filter-status").value,
    problem: $("#filter-problem").value,
    tag: $("#filter-tag").value,
    name: $("#filter-name").value.trim().toLowerCase(),
  };
}

const matches = (j, f) => (!f.status || j.status === f.status) && (!f.problem || j.problem === f.problem) &&
  (!f.tag || (j.tags || []).includes(f.tag)) && (!f.name || (j.name || "").toLowerCase().includes(f.name));

// A select's options: "all" and every value seen, keeping the current choice.
function options(sel, values) {
  const keep = sel.value;
  const all = [...new Set([...values, ...(keep ? [keep] : [])])].sort();
  if ([...sel.options].slice(1).map((o) => o.value).join() === all.join()) return;
  sel.replaceChildren(el("option", { value: "" }, "all"), ...all.map((v) => el("option", { value: v }, v)));
  sel.value = keep;
}

const picked = new Set(); // job ids ticked for comparison

function drawCompare() {
  for (const id of picked) if (!state.jobs.some((j) => jobField.id(j) === id)) picked.delete(id);
  const b = $("#compare-button");
  b.disabled = picked.size < 2 || picked.size > MAX_COMPARE;
  b.textContent = picked.size ? `Compare ${picked.size}` : "Compare";
  b.title = picked.size > MAX_COMPARE ? `At most ${MAX_COMPARE} jobs` : "Tick two to eight jobs";
}

const reload = () => jobsLoad?.().catch(fail);

function jobRow(j) {
  const id = jobField.id(j);
  const p = progress(j);
  const max = jobField.maxNodes(j);
  const tick = el("input", {
    type: "checkbox", class: "pick", "aria-label": `compare job #${id}`, checked: picked.has(id),
    onchange: (e) => { if (e.target.checked) picked.add(id); else picked.delete(id); drawCompare(); },
  });
  return el("tr", { "data-job-id": id, class: `job ${j.status}` },
    el("td", { class: "nowrap" }, tick, " ", el("a", { href: `/jobs/${id}`, "data-nav": true }, `#${id}`)),
    el("td", {}, j.problem),
    el("td", { "data-field": "name" }, j.name ? el("span", { class: "name" }, j.name) : null,
      ...(j.tags || []).map((t) => el("button", {
        type: "button", class: "tag", "data-tag": t, title: `Only jobs tagged ${t}`,
        onclick: () => { options($("#filter-tag"), [t]); $("#filter-tag").value = t; drawJobs(); },
      }, t))),
    el("td", {}, el("span", { class: `status ${j.status}` }, j.status)),
    el("td", { class: "nowrap", title: `${jobField.nodes(j) ?? "?"} of ${max ?? "?"} nodes` },
      el("span", { class: "progress" }, el("span", { style: `width:${(p * 100).toFixed(1)}%` })), ` ${Math.round(p * 100)}%`),
    el("td", { class: "num", "data-field": "nodes" }, fmt(jobField.nodes(j))),
    el("td", { class: "num", "data-field": "solutions" }, fmt(jobField.solutions(j))),
    el("td", { class: "nowrap", title: j.created_at || "" }, age(j.created_at)),
    el("td", { class: "row-actions" }, ...actionButtons({ id, status: j.status }, {
      onCancelled: reload,
      onDeleted: async (gone) => {
        state.jobs = state.jobs.filter((x) => jobField.id(x) !== gone);
        drawJobs();
        await reload();
      },
    })));
}

function drawJobs() {
  options($("#filter-problem"), state.jobs.map((j) => j.problem));
  options($("#filter-tag"), state.jobs.flatMap((j) => j.tags || []));
  const f = filters();
  const { key, dir } = state.sort;
  const rows = state.jobs
    .filter((j) => matches(j, f))
    .sort((a, b) => {
      const x = SORTS[key](a);
      const y = SORTS[key](b);
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
  $("#jobs-table tbody").replaceChildren(...rows.map(jobRow));
  $("#jobs-empty").hidden = state.jobs.length > 0;
  $("#jobs-count").textContent = `${rows.length} of ${state.jobs.length}`;
  for (const th of document.querySelectorAll("#jobs-table th[data-sort]")) {
    th.classList.toggle("sorted", th.dataset.sort === key);
    th.dataset.dir = th.dataset.sort === key ? (dir > 0 ? "asc" : "desc") : "";
  }
  drawCompare();
}

document.querySelectorAll("#jobs-table th[data-sort]").forEach((th) => th.addEventListener("click", () => {
  const key = th.dataset.sort;
  state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : -1 };
  drawJobs();
}));
for (const id of ["#filter-status", "#filter-problem", "#filter-tag"]) $(id).addEventListener("change", drawJobs);
$("#filter-name").addEventListener("input", drawJobs);
$("#compare-button").addEventListener("click", () => {
  const ids = [...picked].sort((a, b) => a - b);
  history.pushState({}, "", `/compare?jobs=${ids.join(",")}`);
  route();
});

// The job record has no solution count: read /solutions per job (once for a finished job).
async function countSolutions(jobs) {
  const todo = jobs.filter((j) => {
    if (j.solutions != null) return false;
    const known = state.solutions.get(jobField.id(j));
    return !known || !known.final;
  });
  for (let i = 0; i < todo.length; i += 8) {
    await Promise.all(todo.slice(i, i + 8).map(async (j) => {
      const id = jobField.id(j);
      const sols = await getJSON(`/jobs/${id}/solutions`);
      state.solutions.set(id, { count: sols.length, final: FINAL.has(j.status) });
    }));
  }
}

let jobsLoad = null;

async function jobsView() {
  $("#crumbs").textContent = "";
  const load = async () => {
    state.jobs = await getAll("/jobs?limit=200", "items", 5000);
    signedIn();
    show("#jobs-view");
    drawJobs();
    await drawCrossplayList();
    await countSolutions(state.jobs);
    drawJobs();
  };
  jobsLoad = load;
  await load();
  const timer = setInterval(() => load().catch(fail), 5000);
  state.stop = () => { clearInterval(timer); jobsLoad = null; };
}


route();
