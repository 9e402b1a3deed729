// The losses view: a form built from the catalogue, the answer with gradients and heat maps.

import { get, post, hideProblem, showProblem } from "./api.js";
import { heatMap } from "./charts.js";

const $ = (id) => document.getElementById(id);
let catalogue = [];
let examples = {};

function byName(name) {
  return catalogue.find((loss) => loss.name === name);
}

function control(param) {
  const label = document.createElement("label");
  label.textContent = param.name;
  label.title = param.description || "";
  let input;
  if (param.choices) {
    input = document.createElement("select");
    for (const choice of param.choices) input.append(new Option(String(choice), String(choice)));
    input.value = String(param.default);
  } else if (param.type === "bool") {
    input = document.createElement("select");
    for (const choice of ["false", "true"]) input.append(new Option(choice, choice));
    input.value = String(Boolean(param.default));
  } else if (param.type === "float" || param.type === "int") {
    input = document.createElement("input");
    input.type = "number";
    input.step = param.type === "int" ? "1" : "any";
    if (param.minimum !== null && param.minimum !== undefined) input.min = String(param.minimum);
    input.placeholder = param.default === null ? "none" : String(param.default);
  } else {
    input = document.createElement(param.type === "tensor" ? "textarea" : "input");
    if (param.type !== "tensor") input.type = "text";
    input.placeholder = param.default === null ? "none (JSON tensor)" : String(param.default);
  }
  input.dataset.field = `params.${param.name}`;
  input.dataset.type = param.type;
  input.dataset.default = JSON.stringify(param.default);
  label.append(input);
  return label;
}

function render(name) {
  const loss = byName(name);
  $("loss-summary").textContent = loss.summary || "";
  $("loss-formula").textContent = loss.formula || "";
  const inputs = $("loss-inputs");
  inputs.replaceChildren();
  for (const spec of loss.inputs) {
    const label = document.createElement("label");
    label.textContent = `${spec.name} (${spec.role}${spec.required ? ", required" : ", optional"}${spec.differentiable ? ", differentiable" : ""})`;
    label.title = spec.description || spec.role_description || "";
    const area = document.createElement("textarea");
    area.dataset.field = spec.name;
    area.placeholder = "JSON: a number, nested arrays, or {shape, dtype, data}";
    label.append(area);
    inputs.append(label);
  }
  const params = $("loss-params");
  params.replaceChildren(...loss.params.map(control));
  fillExample(name);
}

function fillExample(name) {
  const example = examples[name] || {};
  for (const area of $("loss-inputs").querySelectorAll("textarea")) {
    const value = example[area.dataset.field];
    area.value = value === undefined ? "" : JSON.stringify(value);
  }
  for (const input of $("loss-params").querySelectorAll("[data-field]")) {
    const key = input.dataset.field.slice("params.".length);
    const given = (example.params || {})[key];
    if (given === undefined) {
      if (input.tagName === "SELECT") input.value = String(JSON.parse(input.dataset.default));
      else input.value = "";
    } else input.value = typeof given === "object" ? JSON.stringify(given) : String(given);
  }
}

function readJson(text, field) {
  try {
    return JSON.parse(text);
  } catch {
    const error = new Error(`${field}: not valid JSON`);
    error.field = field;
    throw error;
  }
}

function buildRequest() {
  const body = {};
  for (const area of $("loss-inputs").querySelectorAll("textarea")) {
    if (area.value.trim()) body[area.dataset.field] = readJson(area.value, area.dataset.field);
  }
  const params = {};
  for (const input of $("loss-params").querySelectorAll("[data-field]")) {
    const key = input.dataset.field.slice("params.".length);
    const fallback = JSON.parse(input.dataset.default);
    const text = input.value.trim();
    if (!text) continue;
    let value;
    if (input.dataset.type === "bool") value = text === "true";
    else if (input.dataset.type === "float" || input.dataset.type === "int") value = Number(text);
    else if (input.dataset.type === "tensor") value = readJson(text, input.dataset.field);
    else value = text;
    if (JSON.stringify(value) !== JSON.stringify(fallback)) params[key] = value;
  }
  if (Object.keys(params).length) body.params = params;
  if ($("loss-grad").checked) body.grad = true;
  if ($("loss-dtype").value !== "float32") body.dtype = $("loss-dtype").value;
  return body;
}

function markFields(locs) {
  for (const node of document.querySelectorAll("#loss-form [aria-invalid]")) node.removeAttribute("aria-invalid");
  for (const loc of locs) {
    const path = loc[0] === "body" ? loc.slice(1) : loc;
    const field = path[0] === "params" ? `params.${path[1]}` : String(path[0]);
    const node = document.querySelector(`#loss-form [data-field="${CSS.escape(field)}"]`);
    if (node) node.setAttribute("aria-invalid", "true");
  }
}

function shapeOf(value) {
  const shape = [];
  while (Array.isArray(value)) { shape.push(value.length); value = value[0]; }
  return shape;
}

function showAnswer(name, body, answer) {
  $("loss-value").textContent = JSON.stringify(answer.loss);
  const grads = $("loss-grads");
  grads.replaceChildren();
  for (const [input, grad] of Object.entries(answer.grad || {})) {
    const box = document.createElement("div");
    box.className = "grad";
    const title = document.createElement("h3");
    title.textContent = `Gradient with respect to ${input}`;
    const numbers = document.createElement("pre");
    numbers.className = "grad-values";
    numbers.dataset.input = input;
    numbers.textContent = JSON.stringify(grad);
    box.append(title, numbers);
    if (shapeOf(grad).length === 2 && shapeOf(grad).every((n) => n > 0)) box.append(heatMap(grad));
    grads.append(box);
  }
  const origin = window.location.origin;
  $("loss-curl").textContent = `curl -s ${origin}/v1/losses/${name} -H 'content-type: application/json' -d '${JSON.stringify(body)}'`;
  $("loss-answer").textContent = JSON.stringify(answer);
  $("loss-result").hidden = false;
}

async function compute(event) {
  event.preventDefault();
  const name = $("loss-name").value;
  hideProblem($("loss-error"));
  markFields([]);
  let body;
  try {
    body = buildRequest();
  } catch (error) {
    showProblem($("loss-error"), error);
    if (error.field) markFields([[error.field.startsWith("params.") ? "params" : error.field, error.field.split(".")[1]]]);
    return;
  }
  try {
    const answer = await post(`/v1/losses/${name}`, body);
    showAnswer(name, body, answer);
  } catch (error) {
    $("loss-result").hidden = true;
    markFields(showProblem($("loss-error"), error));
  }
}

export async function initLosses() {
  const [list, openapi] = await Promise.all([get("/v1/losses"), get("/openapi.json")]);
  catalogue = list.losses;
  for (const loss of catalogue) {
    const operation = openapi.paths[`/v1/losses/${loss.name}`];
    const content = operation && operation.post.requestBody.content["application/json"];
    if (content && content.example) examples[loss.name] = content.example;
  }
  const select = $("loss-name");
  for (const loss of catalogue) select.append(new Option(loss.name, loss.name));
  select.value = byName("mse_loss") ? "mse_loss" : catalogue[0].name;
  select.addEventListener("change", () => { render(select.value); hideProblem($("loss-error")); $("loss-result").hidden = true; });
  $("loss-example").addEventListener("click", () => fillExample(select.value));
  $("loss-form").addEventListener("submit", compute);
  render(select.value);
  return openapi;
}
