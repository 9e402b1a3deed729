// The curves view: several losses and their gradients over a grid, in one /v1/evaluate call.

import { post, hideProblem, showProblem } from "./api.js";
import { lineChart } from "./charts.js";

const $ = (id) => document.getElementById(id);
const REGRESSION = ["l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss"];
const BINARY = ["binary_cross_entropy", "binary_cross_entropy_with_logits"];
const POINTS = 121;

const grid = (lo, hi) => Array.from({ length: POINTS }, (_, i) => lo + ((hi - lo) * i) / (POINTS - 1));
const sigmoid = (z) => 1 / (1 + Math.exp(-z));

function item(loss, input, target, params = {}) {
  return { loss, input, target, dtype: "float64", grad: ["input"], params: { reduction: "none", ...params } };
}

function selected(names) {
  return names.filter((name) => $("curves-form").elements[name].checked);
}

export async function drawCurves() {
  const delta = Number($("curves-delta").value), beta = Number($("curves-beta").value);
  $("curves-delta-value").textContent = String(delta);
  $("curves-beta-value").textContent = String(beta);
  const xs = grid(-3, 3), zs = grid(-8, 8);
  const regression = selected(REGRESSION), binary = selected(BINARY);
  const requests = [
    ...regression.map((name) => item(name, xs, xs.map(() => 0),
      name === "huber_loss" ? { delta } : name === "smooth_l1_loss" ? { beta } : {})),
    ...binary.map((name) => name === "binary_cross_entropy"
      ? item(name, zs.map(sigmoid), zs.map(() => 1))
      : item(name, zs, zs.map(() => 1))),
  ];
  hideProblem($("curves-error"));
  let results = [];
  if (requests.length) {
    try {
      results = (await post("/v1/evaluate", { requests })).results;
    } catch (error) {
      showProblem($("curves-error"), error);
      return;
    }
  }
  const series = (names, offset, axis, what) => names.map((name, i) => {
    const result = results[offset + i];
    const label = name === "huber_loss" ? `huber δ=${delta}` : name === "smooth_l1_loss" ? `smooth_l1 β=${beta}` : name;
    const values = result.error ? [] : what === "loss" ? result.loss : result.grad.input;
    return { label, points: axis.map((x, j) => [x, values[j]]) };
  });
  lineChart($("chart-reg-loss"), series(regression, 0, xs, "loss"));
  lineChart($("chart-reg-grad"), series(regression, 0, xs, "grad"));
  lineChart($("chart-bin-loss"), series(binary, regression.length, zs, "loss"));
  lineChart($("chart-bin-grad"), series(binary, regression.length, zs, "grad"), { yRange: [-5, 1] });
}

export function initCurves() {
  let timer = null;
  const later = () => { clearTimeout(timer); timer = setTimeout(drawCurves, 120); };
  $("curves-form").addEventListener("input", later);
  $("curves-form").addEventListener("submit", (event) => event.preventDefault());
}
