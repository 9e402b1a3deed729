// The page's entry: the API key field, the three views by URL fragment.

import { apiKey, setApiKey, showProblem } from "./api.js";
import { drawCurves, initCurves } from "./curves.js";
import { initJobs } from "./jobs.js";
import { initLosses } from "./losses.js";

const VIEWS = ["losses", "curves", "jobs"];
let curvesDrawn = false;

function show() {
  const wanted = window.location.hash.replace(/^#\//, "");
  const view = VIEWS.includes(wanted) ? wanted : "losses";
  for (const name of VIEWS) document.getElementById(`view-${name}`).hidden = name !== view;
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (view === "curves" && !curvesDrawn) { curvesDrawn = true; drawCurves(); }
}

async function main() {
  const key = document.getElementById("api-key");
  key.value = apiKey();
  key.addEventListener("change", () => { setApiKey(key.value.trim()); window.location.reload(); });
  window.addEventListener("hashchange", show);
  show();
  initCurves();
  try {
    const openapi = await initLosses();
    await initJobs(openapi);
    document.body.dataset.ready = "true";
  } catch (error) {
    showProblem(document.getElementById("loss-error"), error);
    document.body.dataset.ready = "error";
  }
}

main();
