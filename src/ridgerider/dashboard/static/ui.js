// What every view shares: element lookup, the app state, which section shows, errors, sign-in.
import { AuthError, HttpError, token } from "./api.js";
import { renderCrossplay } from "./crossplay.js";

export const $ = (sel) => document.querySelector(sel);
export const FINAL = new Set(["succeeded", "failed", "cancelled"]);

export const state = { view: null, stop: () => {}, sort: { key: "id", dir: -1 }, jobs: [], solutions: new Map() };
window.ridgerider = { state, renderCrossplay: (data) => renderCrossplay($("#crossplay"), data) };

// Fields read tolerantly: the job record's names for ids, counts and budgets.
export const jobField = {
  id: (j) => j.id ?? j.job_id,
  nodes: (j) => j.nodes ?? j.node_count ?? j.n_nodes ?? null,
  solutions: (j) => j.solutions ?? j.solution_count ?? state.solutions.get(j.id ?? j.job_id)?.count ?? null,
  maxNodes: (j) => j.max_nodes ?? j.settings?.max_nodes ?? j.budgets?.max_nodes ?? null,
};

export function show(id) {
  for (const s of ["#login", "#jobs-view", "#job-view", "#crossplay-view", "#compare-view"]) $(s).hidden = s !== id;
}

export function fail(err) {
  if (err instanceof AuthError) return signIn(token.get() ? "That token was refused." : "");
  if (err && err.name === "AbortError") return;
  const box = $("#error");
  box.textContent = err instanceof HttpError && err.status === 404 ? "Not found." : String(err.message || err);
  box.hidden = false;
  console.error(err);
}

// ---- auth -------------------------------------------------------------------------------

export function signIn(message) {
  state.stop();
  token.clear();
  show("#login");
  $("#signout").hidden = true;
  $("#mode").textContent = "";
  $("#login-error").textContent = message || "";
  $("#token").focus();
}

// Called once an authenticated call succeeded: the API accepts this token (or needs none).
export function signedIn() {
  $("#signout").hidden = !token.get();
  $("#mode").textContent = token.get() ? "" : "development mode (no token)";
}

