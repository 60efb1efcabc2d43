// One cross-play run (/crossplay/{id}): its progress while it runs (polled every second), then
// the paper's Fig. 6 of its report (GET /api/v1/crossplay/{id}/result, drawn by crossplay.js).
import { getJSON } from "./api.js";
import { renderCrossplay } from "./crossplay.js";
import { $, show, signedIn, state } from "./ui.js";
import { age, el, fmt } from "./util.js";

function drawRun(run) {
  $("#xp-title").textContent = `Cross-play #${run.id}: ${run.problem}`;
  $("#xp-status").textContent = run.status;
  $("#xp-status").className = `status ${run.status}`;
  $("#xp-progress").textContent = `${run.done} of ${run.replicates} replicates, seed ${run.seed}`;
  $("#xp-error").textContent = run.error || "";
  $("#xp-error").hidden = !run.error;
}

function drawReport(report) {
  const c = report.chosen;
  const sp = report.baselines?.self_play;
  $("#xp-chosen").textContent = `Chosen fingerprint ${c.fingerprint}: cross-play ${fmt(c.xp)}` +
    ` (self-play ${fmt(c.sp)}); self-play agents' cross-play ${fmt(sp?.xp)}.`;
  return renderCrossplay($("#xp-run"), report);
}

export async function crossplayView(id) {
  $("#crumbs").textContent = "";
  let run = await getJSON(`/crossplay/${id}`);
  signedIn();
  $("#xp-run").hidden = true;
  $("#xp-chosen").textContent = "";
  show("#crossplay-view");
  drawRun(run);
  let timer = null;
  const finish = async () => {
    if (run.status === "succeeded") drawReport(await getJSON(`/crossplay/${id}/result`));
  };
  if (run.status === "succeeded" || run.status === "failed") return finish();
  timer = setInterval(async () => {
    run = await getJSON(`/crossplay/${id}`);
    drawRun(run);
    if (run.status === "succeeded" || run.status === "failed") {
      clearInterval(timer);
      await finish();
    }
  }, 1000);
  state.stop = () => clearInterval(timer);
}

// The jobs page's list of the caller's cross-play runs (hidden while there are none).
export async function drawCrossplayList() {
  const runs = (await getJSON("/crossplay?limit=50")).items;
  $("#xp-list").hidden = runs.length === 0;
  $("#xp-list tbody").replaceChildren(...runs.map((r) => el("tr", { "data-crossplay-id": r.id },
    el("td", {}, el("a", { href: `/crossplay/${r.id}`, "data-nav": true }, `#${r.id}`)),
    el("td", {}, r.problem),
    el("td", {}, el("span", { class: `status ${r.status}` }, r.status)),
    el("td", { class: "num" }, `${r.done} / ${r.replicates}`),
    el("td", { title: r.created_at || "" }, age(r.created_at)))));
}
