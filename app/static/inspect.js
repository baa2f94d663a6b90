// The gate inspector: fetches /v1/trace and /v1/trace/saliency and draws them. No dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { trace: null, saliency: null, gate: null, span: null, unit: null };

// red (negative) -> white -> green (positive) for a probability
function sentimentColour(p) {
  const t = Math.max(0, Math.min(1, p));
  const [r, g, b] = t < 0.5 ? [255, 255 * t * 2, 255 * t * 2] : [255 * (1 - t) * 2, 255, 255 * (1 - t) * 2];
  return `rgb(${Math.round(r)},${Math.round(g)},${Math.round(b)})`;
}

// blue (negative) -> white -> orange (positive) for a value scaled to [-1, 1]
function divergingColour(v) {
  const t = Math.max(-1, Math.min(1, v));
  return t < 0
    ? `rgb(${Math.round(255 * (1 + t))},${Math.round(255 * (1 + t * 0.5))},255)`
    : `rgb(255,${Math.round(255 * (1 - t * 0.45))},${Math.round(255 * (1 - t))})`;
}

// white -> dark blue for a gate value in [0, 1]
function sequentialColour(v) {
  const t = Math.max(0, Math.min(1, v));
  return `rgb(${Math.round(255 - 225 * t)},${Math.round(255 - 170 * t)},${Math.round(255 - 40 * t)})`;
}

const BOUNDED = new Set(["input", "forget", "output", "reset", "update"]); // sigmoid gates: [0, 1]

function scaleFor(gate, matrix) {
  if (BOUNDED.has(gate)) return { min: 0, max: 1, colour: sequentialColour };
  let top = 1e-6;
  for (const row of matrix) for (const v of row) top = Math.max(top, Math.abs(v));
  return { min: -top, max: top, colour: (v) => divergingColour(v / top) };
}

async function post(path, body, key) {
  const headers = { "content-type": "application/json" };
  if (key) headers["X-API-Key"] = key;
  const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    const message = payload && payload.error ? payload.error.message || payload.error : response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return payload;
}

async function analyze(event) {
  event.preventDefault();
  $("error").hidden = true;
  $("status").textContent = "reading…";
  const body = { text: $("text").value, max_tokens: Number($("max-tokens").value) || undefined };
  try {
    const key = $("api-key").value;
    const [trace, saliency] = await Promise.all([post("/v1/trace", body, key), post("/v1/trace/saliency", body, key)]);
    Object.assign(state, { trace, saliency, span: null, unit: null });
    render();
    $("status").textContent = "";
  } catch (error) {
    $("status").textContent = "";
    $("error").textContent = `The server could not analyze this review. ${error.message}`;
    $("error").hidden = false;
  }
}

function render() {
  const { trace, saliency } = state;
  const p = trace.prediction;
  $("results").hidden = false;
  $("label").textContent = p.label;
  $("confidence").textContent = `(${(100 * Math.max(p.score, 1 - p.score)).toFixed(1)} % confident, P(positive) = ${p.score.toFixed(4)})`;
  $("cap-note").textContent = trace.prediction.truncated
    ? `The review is longer than the cap: only its first ${trace.tokens.length} tokens are shown and read here.`
    : `${trace.tokens.length} tokens.`;
  const bidirectional = trace.layers[0].backward !== undefined;
  $("running-note").textContent = bidirectional
    ? "Running sentiment: P(positive) of the model reading the review only up to each token. The model is bidirectional, so for each prefix its backward direction also starts at that token: the curve is what the model would say had the review ended there."
    : "Running sentiment: P(positive) of the model reading the review only up to each token, i.e. the classifier applied to the state after that token.";
  fillSelect($("layer"), trace.layers.map((_, i) => String(i)));
  fillSelect($("direction"), Object.keys(trace.layers[0]));
  renderTokens();
  drawLine($("running-chart"), saliency.running, { min: 0, max: 1, label: "running P(positive)", midline: 0.5 });
  renderTabs();
  renderSaturation();
}

function fillSelect(select, values) {
  select.innerHTML = "";
  for (const v of values) select.add(new Option(v, v));
}

function renderTokens() {
  const by = document.querySelector("input[name=colour-by]:checked").value;
  const { tokens } = state.trace;
  const { running, occlusion } = state.saliency;
  const top = Math.max(1e-6, ...occlusion.map(Math.abs));
  const box = $("tokens");
  box.innerHTML = "";
  tokens.forEach((token, i) => {
    const span = document.createElement("span");
    span.className = "tok";
    span.textContent = token;
    span.dataset.index = i;
    span.dataset.running = running[i];
    span.dataset.occlusion = occlusion[i];
    span.style.background = by === "running" ? sentimentColour(running[i]) : sentimentColour(0.5 + occlusion[i] / top / 2);
    span.title = `#${i} running P(positive) ${running[i].toFixed(3)}, occlusion ${occlusion[i] >= 0 ? "+" : ""}${occlusion[i].toFixed(4)}`;
    if (state.span && i >= state.span[0] && i <= state.span[1]) span.classList.add("in-span");
    span.addEventListener("click", (e) => selectToken(i, e.shiftKey));
    box.appendChild(span);
  });
}

function selectToken(i, extend) {
  state.span = extend && state.span ? [Math.min(state.span[0], i), Math.max(state.span[0], i)] : [i, i];
  const [a, b] = state.span;
  $("span-label").textContent = `span: tokens ${a}–${b} (“${state.trace.tokens.slice(a, b + 1).join(" ")}”)`;
  renderTokens();
}

function currentMatrix() {
  const layer = state.trace.layers[Number($("layer").value)];
  return layer[$("direction").value].gates[state.gate];
}

function renderTabs() {
  const gates = Object.keys(state.trace.layers[0][$("direction").value || "forward"].gates);
  if (!gates.includes(state.gate)) state.gate = gates[0];
  const tabs = $("tabs");
  tabs.innerHTML = "";
  for (const gate of gates) {
    const button = document.createElement("button");
    button.type = "button";
    button.role = "tab";
    button.textContent = gate.replace("_", " ");
    button.dataset.gate = gate;
    button.setAttribute("aria-selected", String(gate === state.gate));
    button.addEventListener("click", () => { state.gate = gate; renderTabs(); });
    tabs.appendChild(button);
  }
  drawHeatmap();
}

function drawHeatmap() {
  const matrix = currentMatrix(); // [tokens][units]
  const tokens = matrix.length, units = matrix[0].length;
  const cell = Math.max(4, Math.min(14, Math.floor(880 / tokens)));
  const canvas = $("heatmap");
  canvas.width = tokens * cell;
  canvas.height = units * 6;
  const ctx = canvas.getContext("2d");
  const scale = scaleFor(state.gate, matrix);
  for (let t = 0; t < tokens; t++) {
    for (let u = 0; u < units; u++) {
      ctx.fillStyle = scale.colour(matrix[t][u]);
      ctx.fillRect(t * cell, u * 6, cell, 6);
    }
  }
  canvas.dataset.gate = state.gate;
  canvas.dataset.rendered = "true";
  canvas.onmousemove = (e) => {
    const t = Math.floor(e.offsetX / cell), u = Math.floor(e.offsetY / 6);
    if (t < tokens && u < units) {
      $("hover").textContent = `${state.gate}, unit ${u}, token #${t} “${state.trace.tokens[t]}”: ${matrix[t][u].toFixed(4)}`;
    }
  };
  drawLegend(scale);
}

function drawLegend(scale) {
  const canvas = $("legend"), ctx = canvas.getContext("2d");
  for (let x = 0; x < canvas.width; x++) {
    ctx.fillStyle = scale.colour(scale.min + (scale.max - scale.min) * (x / (canvas.width - 1)));
    ctx.fillRect(x, 0, 1, canvas.height);
  }
  $("legend-labels").textContent = `${scale.min.toFixed(2)} … ${scale.max.toFixed(2)}`;
}

// LSTMVis' rule: on (>= threshold) over the whole span, off (< threshold) on the tokens around it
function findUnits() {
  const list = $("units");
  list.innerHTML = "";
  if (!state.span) {
    list.innerHTML = "<li>Select a span of tokens first.</li>";
    return;
  }
  const matrix = currentMatrix(), threshold = Number($("threshold").value);
  const [a, b] = state.span, around = 3;
  const outside = [];
  for (let t = Math.max(0, a - around); t < a; t++) outside.push(t);
  for (let t = b + 1; t <= Math.min(matrix.length - 1, b + around); t++) outside.push(t);
  const found = [];
  for (let u = 0; u < matrix[0].length; u++) {
    let on = true, off = true, inside = 0;
    for (let t = a; t <= b; t++) { on = on && matrix[t][u] >= threshold; inside += matrix[t][u]; }
    for (const t of outside) off = off && matrix[t][u] < threshold;
    if (on && off) found.push({ unit: u, mean: inside / (b - a + 1) });
  }
  found.sort((x, y) => y.mean - x.mean);
  list.dataset.units = found.map((f) => f.unit).join(",");
  if (!found.length) list.innerHTML = "<li>No unit matches; try a lower threshold or another gate.</li>";
  for (const f of found) {
    const item = document.createElement("li");
    item.textContent = `unit ${f.unit} (mean ${f.mean.toFixed(3)} over the span)`;
    item.dataset.unit = f.unit;
    item.addEventListener("click", () => plotUnit(f.unit));
    list.appendChild(item);
  }
}

function plotUnit(unit) {
  state.unit = unit;
  const values = currentMatrix().map((row) => row[unit]);
  const bounded = BOUNDED.has(state.gate);
  drawLine($("unit-chart"), values, {
    min: bounded ? 0 : Math.min(...values, -1e-6), max: bounded ? 1 : Math.max(...values, 1e-6),
    label: `${state.gate}, unit ${unit}`, span: state.span,
  });
}

function drawLine(canvas, values, { min, max, label, midline, span }) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height, pad = 20;
  ctx.clearRect(0, 0, w, h);
  const x = (i) => pad + (values.length < 2 ? 0 : (i * (w - 2 * pad)) / (values.length - 1));
  const y = (v) => h - pad - ((v - min) / (max - min || 1)) * (h - 2 * pad);
  if (span) {
    ctx.fillStyle = "rgba(26,86,219,0.12)";
    ctx.fillRect(x(span[0]) - 2, pad, x(span[1]) - x(span[0]) + 4, h - 2 * pad);
  }
  ctx.strokeStyle = "#999";
  ctx.strokeRect(pad, pad, w - 2 * pad, h - 2 * pad);
  if (midline !== undefined) {
    ctx.setLineDash([4, 4]);
    ctx.beginPath(); ctx.moveTo(pad, y(midline)); ctx.lineTo(w - pad, y(midline)); ctx.stroke();
    ctx.setLineDash([]);
  }
  ctx.strokeStyle = "#1a56db";
  ctx.beginPath();
  values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
  ctx.stroke();
  ctx.fillStyle = "#333";
  ctx.fillText(`${label}  (${min.toFixed(2)} … ${max.toFixed(2)})`, pad, 12);
  canvas.dataset.rendered = "true";
}

function renderSaturation() {
  const box = $("saturation");
  box.innerHTML = "";
  const gates = state.trace.layers[Number($("layer").value)][$("direction").value].gates;
  for (const gate of Object.keys(gates).filter((g) => BOUNDED.has(g))) {
    const matrix = gates[gate], tokens = matrix.length;
    const figure = document.createElement("figure");
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 180;
    canvas.dataset.gate = gate;
    const ctx = canvas.getContext("2d");
    ctx.strokeStyle = "#999";
    ctx.strokeRect(10, 10, 160, 160);
    ctx.beginPath(); ctx.moveTo(170, 10); ctx.lineTo(10, 170); ctx.stroke(); // x + y <= 1
    ctx.fillStyle = "rgba(26,86,219,0.6)";
    for (let u = 0; u < matrix[0].length; u++) {
      let low = 0, high = 0;
      for (let t = 0; t < tokens; t++) { low += matrix[t][u] < 0.1; high += matrix[t][u] > 0.9; }
      ctx.beginPath();
      ctx.arc(10 + (160 * low) / tokens, 170 - (160 * high) / tokens, 3, 0, 2 * Math.PI);
      ctx.fill();
    }
    const caption = document.createElement("figcaption");
    caption.textContent = `${gate} gate: x < 0.1, y > 0.9`;
    figure.append(canvas, caption);
    box.appendChild(figure);
  }
}

$("form").addEventListener("submit", analyze);
$("find-units").addEventListener("click", findUnits);
for (const radio of document.querySelectorAll("input[name=colour-by]")) radio.addEventListener("change", renderTokens);
for (const select of [$("layer"), $("direction")]) {
  select.addEventListener("change", () => { renderTabs(); renderSaturation(); });
}
