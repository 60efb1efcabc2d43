// Managing jobs from the page: Cancel (queued or running) and Delete, the latter behind an
// in-page confirmation dialog (a <dialog>, not window.confirm, so it can be styled and driven).
import { AuthError, HttpError, request } from "./api.js";
import { $, fail } from "./ui.js";
import { el } from "./util.js";

export const CANCELLABLE = new Set(["queued", "running"]);

// Resolves true once the user confirms, false on Cancel, Escape or a click outside the box.
export function confirmDialog(message, okLabel = "OK") {
  const dlg = $("#confirm");
  $("#confirm-text").textContent = message;
  $("#confirm-ok").textContent = okLabel;
  dlg.returnValue = "";
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.showModal();
  });
}

// Run one action; a failure is shown (named after the action), never swallowed.
async function act(what, fn) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AuthError) return fail(err);
    // The API's reason ("job 5 is succeeded: nothing to cancel") rather than its JSON.
    const detail = err instanceof HttpError && typeof err.body?.detail === "string"
      ? `HTTP ${err.status}: ${err.body.detail}` : err.message || String(err);
    fail(new Error(`${what} failed: ${detail}`));
    return undefined;
  }
}

export const cancelJob = (id) => act(`Cancelling job #${id}`, async () => {
  await request(`/jobs/${id}/cancel`, { method: "POST" });
  return true;
});

// Asks first; true once the API deleted the job.
export async function deleteJob(id, status = null) {
  const running = CANCELLABLE.has(status) ? ` It is ${status}: it is cancelled first.` : "";
  const ok = await confirmDialog(`Delete job #${id}? Its nodes, solutions, parameters and events are removed.${running} This cannot be undone.`, "Delete");
  if (!ok) return false;
  return (await act(`Deleting job #${id}`, async () => {
    await request(`/jobs/${id}`, { method: "DELETE" });
    return true;
  })) === true;
}

// The Cancel (while it can run) and Delete buttons of one job; the callbacks run after success.
export function actionButtons(job, { onCancelled, onDeleted }) {
  const id = job.id;
  const busy = (fn) => async (e) => {
    const b = e.currentTarget;
    b.disabled = true;
    try { await fn(); } finally { b.disabled = false; }
  };
  return [
    CANCELLABLE.has(job.status) ? el("button", {
      type: "button", class: "small", "data-action": "cancel", title: `Cancel job #${id}`,
      onclick: busy(async () => { if (await cancelJob(id)) await onCancelled(id); }),
    }, "Cancel") : null,
    el("button", {
      type: "button", class: "small danger", "data-action": "delete", title: `Delete job #${id}`,
      onclick: busy(async () => { if (await deleteJob(id, job.status)) await onDeleted(id); }),
    }, "Delete"),
  ].filter(Boolean);
}
