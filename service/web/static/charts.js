// Small SVG line charts and canvas heat maps: no library, nothing fetched.

export const COLORS = ["#0b5cad", "#d1495b", "#2a9d8f", "#e9a03b", "#6a4c93", "#3d405b", "#8ab17d", "#c1666b"];
const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function extent(values) {
  const finite = values.filter(Number.isFinite);
  if (!finite.length) return [0, 1];
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (lo === hi) { lo -= 0.5; hi += 0.5; }
  return [lo, hi];
}

function fmt(value) {
  const abs = Math.abs(value);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e5) ? value.toExponential(1) : String(+value.toPrecision(3));
}

// series: [{label, color?, points: [[x, y], ...]}]; the SVG is redrawn from scratch.
export function lineChart(svg, series, { yRange } = {}) {
  const width = 480, height = 240, left = 48, right = 8, top = 8, bottom = 24;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const [x0, x1] = extent(xs);
  const [y0, y1] = yRange || extent(ys);
  const sx = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const sy = (y) => top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom);
  svg.append(el("line", { x1: left, y1: sy(y0), x2: width - right, y2: sy(y0), stroke: "#d0d7de" }));
  svg.append(el("line", { x1: left, y1: top, x2: left, y2: height - bottom, stroke: "#d0d7de" }));
  for (const [y, anchor] of [[y0, "end"], [y1, "end"]]) svg.append(el("text", { x: left - 4, y: sy(y) + 4, "text-anchor": anchor }, fmt(y)));
  for (const x of [x0, x1]) svg.append(el("text", { x: sx(x), y: height - bottom + 14, "text-anchor": "middle" }, fmt(x)));
  if (y0 < 0 && y1 > 0) svg.append(el("line", { x1: left, y1: sy(0), x2: width - right, y2: sy(0), stroke: "#eaeef2" }));
  series.forEach((s, i) => {
    const color = s.color || COLORS[i % COLORS.length];
    const path = s.points.filter((p) => Number.isFinite(p[1])).map((p, j) => `${j ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(Math.max(y0, Math.min(y1, p[1]))).toFixed(1)}`).join("");
    if (path) svg.append(el("path", { d: path, fill: "none", stroke: color, "stroke-width": 2, "data-series": s.label }));
    const lx = left + 8, ly = top + 12 + i * 14;
    svg.append(el("rect", { x: lx, y: ly - 6, width: 10, height: 3, fill: color }));
    svg.append(el("text", { x: lx + 14, y: ly - 2 }, s.label));
  });
  svg.dataset.series = String(series.length);
  svg.dataset.points = String(series.reduce((n, s) => n + s.points.length, 0));
}

// A 2-D array as a diverging heat map (blue negative, red positive), one cell per element.
export function heatMap(rows, cell = 14) {
  const canvas = document.createElement("canvas");
  const height = rows.length, width = rows[0].length;
  canvas.width = width * cell;
  canvas.height = height * cell;
  canvas.className = "heatmap";
  const scale = Math.max(1e-30, ...rows.flat().filter(Number.isFinite).map(Math.abs));
  const ctx = canvas.getContext("2d");
  rows.forEach((row, i) => row.forEach((value, j) => {
    const t = Number.isFinite(value) ? value / scale : 0;
    const a = Math.round(255 * (1 - Math.abs(t)));
    ctx.fillStyle = t >= 0 ? `rgb(255,${a},${a})` : `rgb(${a},${a},255)`;
    ctx.fillRect(j * cell, i * cell, cell, cell);
  }));
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `heat map ${height}×${width}, largest magnitude ${scale.toPrecision(3)}`);
  return canvas;
}
