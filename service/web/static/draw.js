// Draw a digit (white on black, as MNIST), shrink it to 28×28 and ask a job's model.

const $ = (id) => document.getElementById(id);
const SIDE = 28;

// MNIST digits sit in a 20×20 box centred by mass in 28×28: do the same before shrinking.
function toImage(canvas) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  const pixels = ctx.getImageData(0, 0, width, height).data;
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    if (pixels[(y * width + x) * 4] > 20) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  }
  const small = document.createElement("canvas");
  small.width = small.height = SIDE;
  const out = small.getContext("2d");
  out.fillStyle = "#000";
  out.fillRect(0, 0, SIDE, SIDE);
  if (x1 >= 0) {
    const box = Math.max(x1 - x0, y1 - y0) + 1;
    const scale = 20 / box;
    const w = (x1 - x0 + 1) * scale, h = (y1 - y0 + 1) * scale;
    out.imageSmoothingQuality = "high";
    out.drawImage(canvas, x0, y0, x1 - x0 + 1, y1 - y0 + 1, (SIDE - w) / 2, (SIDE - h) / 2, w, h);
  }
  const data = out.getImageData(0, 0, SIDE, SIDE).data;
  return Array.from({ length: SIDE }, (_, y) => Array.from({ length: SIDE }, (_, x) => +(data[(y * SIDE + x) * 4] / 255).toFixed(4)));
}

function showProbabilities(answer) {
  const list = $("probabilities");
  list.replaceChildren();
  const probabilities = answer.probabilities[0];
  probabilities.forEach((p, digit) => {
    const item = document.createElement("li");
    item.dataset.probability = String(p);
    if (digit === answer.classes[0]) item.className = "top";
    item.textContent = `${answer.labels ? "" : digit} ${p.toFixed(3)}`;
    const bar = document.createElement("span");
    bar.style.width = `${Math.round(p * 120)}px`;
    item.append(bar);
    list.append(item);
  });
  list.dataset.predicted = String(answer.classes[0]);
}

export function initDrawing(jobId, onError, post) {
  const canvas = $("digit");
  const ctx = canvas.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); $("probabilities").replaceChildren(); };
  clear();
  let drawing = false;
  const at = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [((event.clientX - rect.left) * canvas.width) / rect.width, ((event.clientY - rect.top) * canvas.height) / rect.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    drawing = true;
    canvas.setPointerCapture(event.pointerId);
    ctx.beginPath();
    ctx.moveTo(...at(event));
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    ctx.lineTo(...at(event));
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 22;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.stroke();
  });
  for (const name of ["pointerup", "pointercancel"]) canvas.addEventListener(name, () => { drawing = false; });
  $("digit-clear").addEventListener("click", clear);
  $("predict").addEventListener("click", async () => {
    const id = jobId();
    if (!id) { onError(new Error("no job with a trained model yet: start one first")); return; }
    try {
      showProbabilities(await post(`/v1/jobs/${id}/predict`, { images: [toImage(canvas)] }));
    } catch (error) {
      onError(error);
    }
  });
}
