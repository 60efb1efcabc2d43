// Cross-play (the paper's Fig. 6): a heatmap of every fingerprint against every other and the
// bar chart of each fingerprint's average cross-play score.
//
// Input (GET /api/v1/crossplay/{id}/result for the page /crossplay/{id}; GET
// /api/v1/jobs/{id}/crossplay when the API has it; or
// window.ridgerider.renderCrossplay(data) from the console or a test):
//   {"fingerprints": [{"fingerprint": "0+", "xp": 0.12, "xp_std": 0.03, "sp": 1.0}, ...],
//    "matrix": [[...], ...]}
// matrix[i][j]: mean score of fingerprint i's agents (player 1) with fingerprint j's (player 2)
// over independent replicates; xp is fingerprint i's average cross-play, xp_std its standard
// deviation and sp its self-play score. The report of `ridgerider crossplay --json` (and of
// GET /crossplay/{id}/result), whose matrix is {"labels": [...], "values": [[...]]}, is accepted
// as it is; its `chosen` fingerprint and `baselines.self_play.xp` are drawn when present.
//
// Like the CLI's figure (plot_crossplay): the chosen fingerprint's bar highlighted, self-play as
// a marker on each bar, the self-play agents' cross-play as a dashed line named in the legend,
// and, when every payoff is ≥ 0, the axis starting at 0 with error bars clipped there.
import { barChart, heatmap } from "./charts.js";
import { fingerprintKey } from "./tree.js";
import { fmt } from "./util.js";

// {labels, rows, bars} from either shape, or null when the data is not a cross-play result.
export function crossplayData(data) {
  if (!data || !Array.isArray(data.fingerprints) || !data.matrix) return null;
  const rows = Array.isArray(data.matrix) ? data.matrix : data.matrix.values;
  const n = data.fingerprints.length;
  if (!n || !Array.isArray(rows) || rows.length !== n) return null;
  if (!rows.every((r) => Array.isArray(r) && r.length === n)) return null;
  const labels = data.fingerprints.map((f) => fingerprintKey(f.fingerprint) || "root");
  return { labels, rows, bars: data.fingerprints };
}

// A round number at or above v > 0 (0.999 -> 1, 0.62 -> 0.65, 3.2 -> 3.5).
function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  return Number(((Math.ceil((v / p) * 2 - 1e-9) / 2) * p).toPrecision(12));
}

export function renderCrossplay(section, data) {
  const xp = crossplayData(data);
  if (!xp) {
    section.hidden = true;
    return false;
  }
  const chosen = data.chosen?.fingerprint == null ? null : fingerprintKey(data.chosen.fingerprint) || "root";
  const base = data.baselines?.self_play?.xp;
  const payoffs = [...xp.rows.flat(), ...xp.bars.flatMap((f) => [f.xp, f.sp])].filter(Number.isFinite);
  const lo = payoffs.every((v) => v >= 0) ? 0 : null;
  const top = Math.max(...xp.bars.flatMap((f) => [f.xp + (f.xp_std || 0), f.sp]), base ?? -Infinity);
  heatmap(section.querySelector("#xp-heatmap, .xp-heatmap"), xp.rows, xp.labels,
    { lo, rowLabel: "player 1's fingerprint", colLabel: "player 2's fingerprint" });
  const hlines = Number.isFinite(base) ? [{ value: base, cls: "baseline", label: `self-play agents' cross-play (${fmt(base, 3)})` }] : [];
  barChart(section.querySelector("#xp-bars, .xp-bars"), xp.bars.map((f, i) => ({
    value: f.xp,
    err: f.xp_std || 0,
    dot: Number.isFinite(f.sp) ? f.sp : null,
    label: xp.labels[i],
    cls: xp.labels[i] === chosen ? "xp chosen" : "xp",
    title: `${xp.labels[i]}: cross-play ${fmt(f.xp)} ± ${fmt(f.xp_std)}, self-play ${fmt(f.sp)}` +
      (xp.labels[i] === chosen ? " (chosen)" : ""),
  })), {
    lo,
    hi: Number.isFinite(top) && top > 0 ? niceCeil(top) : null,
    yLabel: "average payoff",
    xLabel: "fingerprint (eigen-index, sign)",
    hlines,
    legend: [
      { cls: "xp", label: "cross-play (RR replicates)" },
      ...(chosen != null ? [{ cls: "chosen", label: `chosen (${chosen})` }] : []),
      { cls: "dot", label: "self-play" },
      ...hlines.map((l) => ({ cls: "baseline", label: l.label })),
    ],
  });
  section.hidden = false;
  return true;
}
