// The jobs view: start (a form from the JobConfig schema), list, follow live, compare, cancel,
// download the model, and classify a drawn digit with it.

import { del, download, followEvents, get, hideProblem, post, showProblem } from "./api.js";
import { lineChart } from "./charts.js";
import { initDrawing } from "./draw.js";

const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(["queued", "running"]);
const jobs = new Map(); // id -> the job record, as last read
const live = new Map(); // id -> {loss: [[step, loss]], acc: [[epoch, acc]]} from the event stream
const following = new Set();
const compared = new Set();
let schema = null;

function fieldControl(name, spec) {
  const label = document.createElement("label");
  label.textContent = name;
  label.title = spec.description || "";
  const options = spec.anyOf ? spec.anyOf.find((s) => s.type !== "null") : spec;
  let input;
  if (options.enum) {
    input = document.createElement("select");
    for (const value of options.enum) input.append(new Option(value, value));
    input.value = spec.default;
  } else {
    input = document.createElement("input");
    input.type = options.type === "integer" || options.type === "number" ? "number" : "text";
    if (options.type === "integer") input.step = "1";
    if (options.type === "number") input.step = "any";
    if (options.minimum !== undefined) input.min = String(options.minimum);
    if (options.maximum !== undefined && options.maximum < 1e15) input.max = String(options.maximum);
    input.placeholder = spec.default === undefined || spec.default === null ? "default" : String(spec.default);
  }
  input.name = name;
  input.dataset.type = options.type;
  label.append(input);
  return label;
}

function readConfig() {
  const config = {};
  for (const input of $("job-fields").querySelectorAll("[name]")) {
    const spec = schema.properties[input.name];
    const text = input.value.trim();
    if (!text || (input.tagName === "SELECT" && text === String(spec.default))) continue;
    config[input.name] = input.dataset.type === "integer" || input.dataset.type === "number" ? Number(text) : text;
  }
  return config;
}

function lossSeries(id) {
  const job = jobs.get(id);
  const stream = live.get(id) || { loss: [], acc: [] };
  const recorded = job ? job.train_loss_series.points.map((p) => [p.step, p.loss]) : [];
  const accuracy = job ? job.metrics.map((m) => [m.epoch, m.test_accuracy]) : [];
  return {
    loss: recorded.length >= stream.loss.length ? recorded : stream.loss,
    acc: accuracy.length >= stream.acc.length ? accuracy : stream.acc,
  };
}

function label(id) {
  const job = jobs.get(id);
  return job ? `${id.slice(0, 6)} ${job.config.loss} lr=${job.config.learning_rate}` : id.slice(0, 6);
}

function drawCharts() {
  const ids = [...compared];
  lineChart($("chart-job-loss"), ids.map((id) => ({ label: label(id), points: lossSeries(id).loss })));
  lineChart($("chart-job-acc"), ids.map((id) => ({ label: label(id), points: lossSeries(id).acc })), { yRange: [0, 1] });
}

function button(text, action, job) {
  const node = document.createElement("button");
  node.type = "button";
  node.textContent = text;
  node.dataset.action = action;
  node.setAttribute("aria-label", `${text} job ${job.id}`);
  return node;
}

// Rows are updated in place, never rebuilt: a job sends several events a second, and a button
// replaced that often could not be clicked.
function newRow(job) {
  const row = document.createElement("tr");
  row.dataset.job = job.id;
  const check = document.createElement("input");
  check.type = "checkbox";
  check.dataset.action = "compare";
  check.setAttribute("aria-label", `compare job ${job.id}`);
  for (const cell of [check, "", "", "", "", "", "", ""]) {
    const td = document.createElement("td");
    td.append(cell);
    row.append(td);
  }
  return row;
}

function updateRow(row, job) {
  row.dataset.status = job.status;
  const tds = row.children;
  tds[0].firstChild.checked = compared.has(job.id);
  const progress = job.progress && job.progress.fraction !== null && job.progress.fraction !== undefined
    ? `${Math.round(job.progress.fraction * 100)}%` : job.progress ? job.progress.phase : "";
  const last = job.metrics.length ? job.metrics[job.metrics.length - 1].test_accuracy : null;
  const texts = [job.id.slice(0, 8), job.status, job.config.loss, String(job.config.learning_rate),
    progress, last === null ? "" : last.toFixed(4)];
  texts.forEach((text, i) => {
    if (tds[i + 1].textContent !== text) tds[i + 1].textContent = text;
  });
  const actions = tds[7];
  const key = `${ACTIVE.has(job.status)} ${Boolean(job.model)}`;
  if (actions.dataset.key !== key) {
    actions.dataset.key = key;
    actions.replaceChildren();
    if (ACTIVE.has(job.status)) actions.append(button("Cancel", "cancel", job));
    if (job.model) actions.append(button("Model", "model", job));
  }
}

function renderTable() {
  const body = $("jobs-table").querySelector("tbody");
  const rows = new Map([...body.rows].map((row) => [row.dataset.job, row]));
  let index = 0;
  for (const job of jobs.values()) {
    const row = rows.get(job.id) || newRow(job);
    rows.delete(job.id);
    updateRow(row, job);
    if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
    index += 1;
  }
  for (const row of rows.values()) row.remove();
  const select = $("predict-job");
  const models = [...jobs.values()].filter((j) => j.model);
  const key = models.map((j) => j.id).join(" ");
  if (select.dataset.key !== key) {
    select.dataset.key = key;
    const current = select.value;
    select.replaceChildren(...models.map((j) => new Option(label(j.id), j.id)));
    if (current && [...select.options].some((o) => o.value === current)) select.value = current;
  }
}

async function refresh() {
  const list = await get("/v1/jobs?limit=20");
  jobs.clear();
  for (const job of list.jobs) jobs.set(job.id, job);
  renderTable();
  drawCharts();
}

async function follow(id) {
  if (following.has(id)) return;
  following.add(id);
  compared.add(id);
  live.set(id, { loss: [], acc: [] });
  try {
    await followEvents(`/v1/jobs/${id}/events`, (name, data) => {
      const stream = live.get(id);
      if (name === "progress" && data.loss !== undefined && data.loss !== null && data.global_step) {
        stream.loss.push([data.global_step, data.loss]);
      } else if (name === "epoch") {
        stream.acc.push([data.epoch, data.test_accuracy]);
      } else if (name === "done") {
        jobs.set(id, data);
      }
      if (name !== "progress" || stream.loss.length % 2 === 0) drawCharts();
      if (name === "status" || name === "done" || name === "epoch") refresh().catch(() => {});
    });
  } catch (error) {
    showProblem($("jobs-error"), error);
  } finally {
    following.delete(id);
    await refresh().catch(() => {});
  }
}

async function onTableClick(event) {
  const target = event.target;
  const row = target.closest("tr[data-job]");
  if (!row || !target.dataset.action) return;
  const id = row.dataset.job;
  hideProblem($("jobs-error"));
  try {
    if (target.dataset.action === "compare") {
      if (target.checked) compared.add(id); else compared.delete(id);
      drawCharts();
    } else if (target.dataset.action === "cancel") {
      jobs.set(id, await del(`/v1/jobs/${id}`));
      renderTable();
    } else if (target.dataset.action === "model") {
      const blob = await download(`/v1/jobs/${id}/model`);
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `${id}.safetensors`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    }
  } catch (error) {
    showProblem($("jobs-error"), error);
  }
}

async function start(event) {
  event.preventDefault();
  hideProblem($("jobs-error"));
  for (const node of $("job-fields").querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  try {
    const job = await post("/v1/jobs/mnist", readConfig());
    jobs.set(job.id, job);
    await refresh();
    follow(job.id);
  } catch (error) {
    for (const loc of showProblem($("jobs-error"), error)) {
      const input = $("job-fields").querySelector(`[name="${CSS.escape(String(loc[loc.length - 1]))}"]`);
      if (input) input.setAttribute("aria-invalid", "true");
    }
  }
}

export async function initJobs(openapi) {
  schema = openapi.components.schemas.JobConfig;
  $("job-fields").replaceChildren(...Object.entries(schema.properties).map(([name, spec]) => fieldControl(name, spec)));
  $("job-form").addEventListener("submit", start);
  $("jobs-table").addEventListener("click", onTableClick);
  initDrawing(() => $("predict-job").value, (error) => showProblem($("jobs-error"), error), post);
  await refresh();
  for (const job of jobs.values()) if (ACTIVE.has(job.status)) follow(job.id);
  setInterval(() => {
    if (!document.getElementById("view-jobs").hidden && [...jobs.values()].some((j) => ACTIVE.has(j.status))) refresh().catch(() => {});
  }, 2000);
}
