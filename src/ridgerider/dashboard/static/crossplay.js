// Cross-play (the paper's Fig. 6): a heatmap of every solution against every other and the
// bar chart of each solution's average cross-play score.
//
// Input shape (GET /api/v1/jobs/{id}/crossplay, or window.ridgerider.renderCrossplay(data)):
//   {"fingerprints": [{"fingerprint": "0+.3-", "xp": 0.12, "xp_std": 0.03, "sp": 1.0}, ...],
//    "matrix": [[...], ...]}
// matrix[i][j] is the score of fingerprints[i]'s agent paired with fingerprints[j]'s (the diagonal
// is self-play); xp is the average over j ≠ i, xp_std its standard deviation, sp self-play.
import { barChart, heatmap } from "./charts.js";
import { fingerprintKey } from "./tree.js";
import { fmt } from "./util.js";

export function validCrossplay(data) {
  if (!data || !Array.isArray(data.fingerprints) || !Array.isArray(data.matrix)) return false;
  const n = data.fingerprints.length;
  return n > 0 && data.matrix.length === n && data.matrix.every((r) => Array.isArray(r) && r.length === n);
}

export function renderCrossplay(section, data) {
  if (!validCrossplay(data)) {
    section.hidden = true;
    return false;
  }
  const labels = data.fingerprints.map((f) => fingerprintKey(f.fingerprint) || "root");
  heatmap(section.querySelector("#xp-heatmap"), data.matrix, labels);
  barChart(section.querySelector("#xp-bars"), data.fingerprints.map((f, i) => ({
    value: f.xp,
    err: f.xp_std || 0,
    label: labels[i],
    cls: "xp",
    title: `${labels[i]}: cross-play ${fmt(f.xp)} ± ${fmt(f.xp_std)}, self-play ${fmt(f.sp)}`,
  })), { yLabel: "average cross-play" });
  section.hidden = false;
  return true;
}
