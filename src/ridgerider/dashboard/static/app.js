// The dashboard: sign-in, routing and the jobs list (/); one job (/jobs/{id}) is in job.js,
// one cross-play run (/crossplay/{id}) in xpview.js.
import { getAll, getJSON, token } from "./api.js";
import { jobView } from "./job.js";
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
    else await jobsView();
  } catch (err) {
    fail(err);
  }
}

// ---- jobs list --------------------------------------------------------------------------

const progress = (j) => {
  const n = jobField.nodes(j);
  const max = jobField.maxNodes(j);
  if (FINAL.has(j.status)) return 1; // a finished job has done what it will do
  return n != null && max ? Math.min(1, n / max) : 0;
};

const SORTS = {
  id: (j) => jobField.id(j),
  problem: (j) => j.problem,
  status: (j) => j.status,
  progress,
  nodes: (j) => jobField.nodes(j) ?? -1,
  solutions: (j) => jobField.solutions(j) ?? -1,
  created_at: (j) => -Date.parse(j.created_at || 0),
};

function drawJobs() {
  const status = $("#filter-status").value;
  const text = $("#filter-text").value.trim().toLowerCase();
  const { key, dir } = state.sort;
  const rows = state.jobs
    .filter((j) => (!status || j.status === status) && (!text || `${j.problem} ${jobField.id(j)}`.toLowerCase().includes(text)))
    .sort((a, b) => {
      const x = SORTS[key](a);
      const y = SORTS[key](b);
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
  $("#jobs-table tbody").replaceChildren(...rows.map((j) => {
    const id = jobField.id(j);
    const p = progress(j);
    const max = jobField.maxNodes(j);
    return el("tr", { "data-job-id": id, class: `job ${j.status}` },
      el("td", {}, el("a", { href: `/jobs/${id}`, "data-nav": true }, `#${id}`)),
      el("td", {}, j.problem),
      el("td", {}, el("span", { class: `status ${j.status}` }, j.status)),
      el("td", { title: `${jobField.nodes(j) ?? "?"} of ${max ?? "?"} nodes` },
        el("span", { class: "progress" }, el("span", { style: `width:${(p * 100).toFixed(1)}%` })), ` ${Math.round(p * 100)}%`),
      el("td", { class: "num", "data-field": "nodes" }, fmt(jobField.nodes(j))),
      el("td", { class: "num", "data-field": "solutions" }, fmt(jobField.solutions(j))),
      el("td", { title: j.created_at || "" }, age(j.created_at)));
  }));
  $("#jobs-empty").hidden = state.jobs.length > 0;
  $("#jobs-count").textContent = `${rows.length} of ${state.jobs.length}`;
  for (const th of document.querySelectorAll("#jobs-table th")) {
    th.classList.toggle("sorted", th.dataset.sort === key);
    th.dataset.dir = th.dataset.sort === key ? (dir > 0 ? "asc" : "desc") : "";
  }
}

document.querySelectorAll("#jobs-table th").forEach((th) => th.addEventListener("click", () => {
  const key = th.dataset.sort;
  state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : -1 };
  drawJobs();
}));
$("#filter-status").addEventListener("change", drawJobs);
$("#filter-text").addEventListener("input", drawJobs);

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
  await load();
  const timer = setInterval(() => load().catch(fail), 5000);
  state.stop = () => clearInterval(timer);
}


route();
