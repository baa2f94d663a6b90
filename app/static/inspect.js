// The gate inspector: fetches /v1/trace, /v1/trace/saliency, the corpus index's /v1/inspect/*
// routes and, when the server has a language model, /v1/lm/*, and draws them. Needs common.js.
"use strict";

const state = {
  trace: null, saliency: null, lm: null, gate: null, span: null, unit: null,
  index: null, lmInfo: null, matchUnits: [],
};

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

// white -> purple for a surprisal in bits (16 bits, P = 1/65536, is the darkest)
function surprisalColour(bits) {
  const t = Math.max(0, Math.min(1, bits / 16));
  return `rgb(${Math.round(255 - 120 * t)},${Math.round(255 - 200 * t)},${Math.round(255 - 60 * t)})`;
}

const BOUNDED = new Set(["input", "forget", "output", "reset", "update"]); // sigmoid gates: [0, 1]

function scaleFor(gate, matrix) {
  if (BOUNDED.has(gate)) return { min: 0, max: 1, colour: sequentialColour };
  let top = 1e-6;
  for (const row of matrix) for (const v of row) top = Math.max(top, Math.abs(v));
  return { min: -top, max: top, colour: (v) => divergingColour(v / top) };
}

// The inspector's requests carry the key typed in its form
const call = (method, path, body) => request(method, path, body, $("api-key").value);

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

async function analyze(event) {
  if (event) event.preventDefault();
  $("error").hidden = true;
  $("status").textContent = "reading…";
  const body = { text: $("text").value, max_tokens: Number($("max-tokens").value) || undefined };
  try {
    // the three requests run at once; the language model's view is extra: a failure there
    // leaves the rest of the page standing
    const [trace, saliency, lm] = await Promise.all([
      call("POST", "/v1/trace", body),
      call("POST", "/v1/trace/saliency", body),
      state.lmInfo && state.lmInfo.loaded
        ? call("POST", "/v1/lm/score", { text: body.text, top_k: 5 }).catch(() => null)
        : null,
    ]);
    Object.assign(state, { trace, saliency, lm, span: null, unit: null, matchUnits: [] });
    render();
    $("results").dataset.text = body.text; // which text is shown, for a reader (or a test) to wait on
    $("status").textContent = "";
  } catch (error) {
    $("status").textContent = "";
    showError(`The server could not analyze this review. ${error.message}`);
  }
}

function render() {
  const { trace } = state;
  const p = trace.prediction;
  $("results").hidden = false;
  $("label").textContent = p.label;
  $("confidence").textContent = `(${(100 * Math.max(p.score, 1 - p.score)).toFixed(1)} % confident, P(positive) = ${p.score.toFixed(4)})`;
  $("cap-note").textContent = trace.prediction.truncated
    ? `The review is longer than the cap: only its first ${trace.tokens.length} tokens are shown and read here.`
    : `${trace.tokens.length} tokens.`;
  const bidirectional = trace.layers[0].backward !== undefined;
  $("running-note").textContent = "The curve under the tokens is the running sentiment: P(positive) of the model reading the review only up to each token (top: 1, dashed: 0.5, bottom: 0). "
    + (bidirectional
      ? "The model is bidirectional, so for each prefix its backward direction also starts at that token: the curve is what the model would say had the review ended there."
      : "It is the classifier applied to the state after that token.")
    + " Hover over a token for its figures.";
  fillSelect($("layer"), trace.layers.map((_, i) => String(i)));
  fillSelect($("direction"), Object.keys(trace.layers[0]));
  const surprisal = document.querySelector("input[name=colour-by][value=surprisal]");
  surprisal.disabled = !state.lm;
  if (!state.lm && surprisal.checked) document.querySelector("input[name=colour-by][value=running]").checked = true;
  $("units").innerHTML = "";
  $("unit-chart").hidden = true;
  $("span-label").textContent = "no span selected";
  renderTokens();
  renderTabs();
  renderMatchUnits();
  renderSaturation();
}

const SVG = "http://www.w3.org/2000/svg";

// A token strip that wraps: each token's box holds its word and, under it, its stretch of the
// running-sentiment curve (from the midpoint with the token before to the midpoint with the token
// after), so the curve lines up with the words on every line.
function renderStrip(box, items) {
  box.innerHTML = "";
  const y = (v) => 2 + (1 - Math.max(0, Math.min(1, v))) * 22; // viewBox 0 0 100 26
  items.forEach((item, i) => {
    const previous = i > 0 ? items[i - 1].running : item.running;
    const next = i < items.length - 1 ? items[i + 1].running : item.running;
    const token = document.createElement("span");
    token.className = "tok" + (item.className ? ` ${item.className}` : "");
    Object.assign(token.dataset, item.data);
    const word = document.createElement("span");
    word.className = "word";
    word.textContent = item.token;
    word.style.background = item.colour;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 100 26");
    svg.setAttribute("preserveAspectRatio", "none");
    const mid = document.createElementNS(SVG, "line");
    for (const [k, v] of Object.entries({ x1: 0, x2: 100, y1: y(0.5), y2: y(0.5), class: "mid" })) mid.setAttribute(k, v);
    const curve = document.createElementNS(SVG, "polyline");
    curve.setAttribute("class", "curve");
    curve.setAttribute("vector-effect", "non-scaling-stroke");
    curve.setAttribute("points", `0,${(y(previous) + y(item.running)) / 2} 50,${y(item.running)} 100,${(y(item.running) + y(next)) / 2}`);
    svg.append(mid, curve);
    token.append(word, svg);
    if (item.onClick) token.addEventListener("click", item.onClick);
    token.addEventListener("mouseenter", () => showTooltip(token, item.tooltip()));
    token.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
    box.appendChild(token);
  });
}

function showTooltip(anchor, rows) {
  const tip = $("tooltip");
  tip.innerHTML = "";
  for (const row of rows) {
    const line = document.createElement("div");
    if (Array.isArray(row)) { // a table of guesses
      const table = document.createElement("table");
      for (const [a, b] of row) {
        const tr = table.insertRow();
        tr.insertCell().textContent = a;
        tr.insertCell().textContent = b;
      }
      line.appendChild(table);
    } else line.textContent = row;
    tip.appendChild(line);
  }
  const rect = anchor.getBoundingClientRect();
  tip.style.left = `${Math.min(rect.left, window.innerWidth - 260)}px`;
  tip.style.top = `${rect.bottom + 4}px`;
  tip.hidden = false;
}

// The language model's figures for token i of the analysed text, when it read the same token.
function lmToken(i) {
  const scored = state.lm && state.lm.tokens[i];
  return scored && scored.token === state.trace.tokens[i] ? scored : null;
}

function renderTokens() {
  const by = document.querySelector("input[name=colour-by]:checked").value;
  const { tokens } = state.trace;
  const { running, occlusion } = state.saliency;
  const top = Math.max(1e-6, ...occlusion.map(Math.abs));
  const colour = (i) => {
    if (by === "occlusion") return sentimentColour(0.5 + occlusion[i] / top / 2);
    if (by === "surprisal") return lmToken(i) ? surprisalColour(lmToken(i).surprisal) : "#eee";
    return sentimentColour(running[i]);
  };
  renderStrip($("tokens"), tokens.map((token, i) => {
    const scored = lmToken(i);
    const data = { index: i, running: running[i], occlusion: occlusion[i] };
    if (scored) data.surprisal = scored.surprisal;
    return {
      token, running: running[i], colour: colour(i), data,
      className: state.span && i >= state.span[0] && i <= state.span[1] ? "in-span" : "",
      onClick: (e) => selectToken(i, e.shiftKey),
      tooltip: () => [
        `#${i} “${token}”`,
        `running P(positive) ${running[i].toFixed(3)}`,
        `occlusion ${occlusion[i] >= 0 ? "+" : ""}${occlusion[i].toFixed(4)}`,
        ...(scored ? [
          `surprisal ${scored.surprisal.toFixed(2)} bits (P = ${Math.exp(scored.log_prob).toPrecision(2)})`,
          "the language model's guesses here:",
          (scored.top || []).map((g) => [g.token, g.probability.toFixed(3)]),
        ] : []),
      ],
    };
  }));
}

function selectToken(i, extend) {
  state.span = extend && state.span ? [Math.min(state.span[0], i), Math.max(state.span[0], i)] : [i, i];
  const [a, b] = state.span;
  $("span-label").textContent = `span: tokens ${a}–${b} (“${state.trace.tokens.slice(a, b + 1).join(" ")}”)`;
  renderTokens();
  renderMatchUnits();
}

function gatesOf(layer, direction) {
  return state.trace.layers[layer][direction].gates;
}

function currentMatrix() {
  return gatesOf(Number($("layer").value), $("direction").value)[state.gate];
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

// Tokens across (labelled on top), units down (labelled every 8 on the left), filling the box's
// width; a long review keeps cells of at least 4 px and scrolls sideways instead.
function drawHeatmap() {
  const matrix = currentMatrix(); // [tokens][units]
  const tokens = matrix.length, units = matrix[0].length;
  const left = 48, top = 86;
  const box = $("heatmap-box");
  const cell = Math.max(4, (box.clientWidth - left - 2) / tokens);
  const row = Math.max(3, Math.min(12, Math.floor(640 / units)));
  const canvas = $("heatmap");
  canvas.width = Math.floor(left + tokens * cell);
  canvas.height = top + units * row + 2;
  const ctx = canvas.getContext("2d");
  const scale = scaleFor(state.gate, matrix);
  for (let t = 0; t < tokens; t++) {
    for (let u = 0; u < units; u++) {
      ctx.fillStyle = scale.colour(matrix[t][u]);
      ctx.fillRect(left + t * cell, top + u * row, cell + 0.5, row); // + 0.5: no seams between cells
    }
  }
  ctx.fillStyle = "#333";
  ctx.font = "11px system-ui, sans-serif";
  const every = Math.ceil(12 / cell); // a label per token when there is room, else every few
  let tokenLabels = 0;
  for (let t = 0; t < tokens; t += every) {
    const word = state.trace.tokens[t];
    ctx.save();
    ctx.translate(left + (t + 0.5) * cell + 3, top - 4);
    ctx.rotate(-Math.PI / 3);
    ctx.fillText(word.length > 12 ? `${word.slice(0, 11)}…` : word, 0, 0);
    ctx.restore();
    tokenLabels++;
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  let unitLabels = 0;
  for (let u = 0; u < units; u += 8) {
    ctx.fillText(String(u), left - 4, top + (u + 0.5) * row);
    unitLabels++;
  }
  ctx.textAlign = "left";
  ctx.fillText("unit ↓", 2, top - 8);
  Object.assign(canvas.dataset, { gate: state.gate, rendered: "true", tokenLabels, unitLabels, cell: cell.toFixed(3) });
  canvas.onmousemove = (e) => {
    const t = Math.floor((e.offsetX - left) / cell), u = Math.floor((e.offsetY - top) / row);
    if (t >= 0 && u >= 0 && t < tokens && u < units) {
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

// LSTMVis' rule: on (>= threshold) over the whole span, off (< threshold) on the `around` tokens
// each side of it (0: on over the span only); the units found, strongest first.
function unitsMarking(matrix, span, threshold, around = 3) {
  const [a, b] = span;
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
  return found.sort((x, y) => y.mean - x.mean);
}

function findUnits() {
  const list = $("units");
  list.innerHTML = "";
  if (!state.span) {
    list.innerHTML = "<li>Select a span of tokens first.</li>";
    return;
  }
  const found = unitsMarking(currentMatrix(), state.span, Number($("threshold").value));
  list.dataset.units = found.map((f) => f.unit).join(",");
  if (!found.length) list.innerHTML = "<li>No unit matches; try a lower threshold or another gate.</li>";
  for (const f of found) {
    const item = document.createElement("li");
    item.textContent = `unit ${f.unit} (mean ${f.mean.toFixed(3)} over the span)`;
    item.dataset.unit = f.unit;
    item.addEventListener("click", () => {
      plotUnit(f.unit);
      showContextsOf(Number($("layer").value), $("direction").value, f.unit);
    });
    list.appendChild(item);
  }
}

function plotUnit(unit) {
  state.unit = unit;
  const values = currentMatrix().map((row) => row[unit]);
  const bounded = BOUNDED.has(state.gate);
  $("unit-chart").hidden = false;
  drawLine($("unit-chart"), values, {
    min: bounded ? 0 : Math.min(...values, -1e-6), max: bounded ? 1 : Math.max(...values, 1e-6),
    label: `${state.gate}, unit ${unit}`, span: state.span,
  });
}

function drawLine(canvas, values, { min, max, label, span }) {
  canvas.width = $("heatmap-box").clientWidth;
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
  ctx.strokeStyle = "#1a56db";
  ctx.beginPath();
  values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
  ctx.stroke();
  ctx.fillStyle = "#333";
  ctx.fillText(`${label}  (${min.toFixed(2)} … ${max.toFixed(2)}), one point per token`, pad, 12);
  canvas.dataset.rendered = "true";
}

// ---- the corpus index: Match View and unit contexts ----

async function loadIndexInfo() {
  try {
    state.index = await call("GET", "/v1/inspect/index");
    const i = state.index;
    $("index-note").textContent = `Corpus index: ${i.reviews.toLocaleString("en")} ${i.source} reviews (${i.tokens.toLocaleString("en")} tokens, the first ${i.max_tokens} of each), a unit on where h ≥ ${i.threshold}.`;
  } catch (error) {
    state.index = null;
    $("index-note").textContent = error.status === 404
      ? `No corpus index on this server, so no Match View or unit contexts: ${error.detail}`
      : `The corpus index cannot be used: ${error.message}`;
  }
  $("show-contexts").disabled = !state.index;
  if (state.trace) renderMatchUnits();
}

// The units of h (the chosen layer and direction) that mark the span at the index's threshold;
// when none does, the three strongest units on over the whole span.
function renderMatchUnits() {
  const box = $("match-units");
  box.innerHTML = "";
  state.matchUnits = [];
  $("matches").innerHTML = "";
  if (!state.span || !state.index) {
    box.textContent = state.index ? "select a span first" : "no corpus index";
    $("find-matches").disabled = true;
    return;
  }
  const layer = Number($("layer").value), direction = $("direction").value;
  const hidden = gatesOf(layer, direction).hidden;
  let found = unitsMarking(hidden, state.span, state.index.threshold), rule = "on over the span and off around it";
  if (!found.length) {
    found = unitsMarking(hidden, state.span, state.index.threshold, 0).slice(0, 3);
    rule = "none is off around the span: the strongest on over it";
  }
  state.matchUnits = found.map((f) => ({ layer, direction, unit: f.unit }));
  box.dataset.units = found.map((f) => f.unit).join(",");
  if (!found.length) {
    box.textContent = `no unit of h is on over this span at h ≥ ${state.index.threshold}; select another span`;
    $("find-matches").disabled = true;
    return;
  }
  box.append(`${direction} units (${rule}): `);
  for (const f of found) {
    const chip = document.createElement("span");
    chip.className = "unit-chip";
    chip.textContent = String(f.unit);
    chip.title = `mean h ${f.mean.toFixed(3)} over the span; click for its top contexts`;
    chip.addEventListener("click", () => showContextsOf(layer, direction, f.unit));
    box.appendChild(chip);
  }
  $("find-matches").disabled = false;
}

// One place in the corpus: the words before, the span highlighted, the words after, and whose.
function contextItem(context, meta) {
  const item = document.createElement("li");
  const hit = document.createElement("span");
  hit.className = "hit";
  hit.textContent = context.tokens.join(" ");
  const info = document.createElement("span");
  info.className = "meta";
  info.textContent = `review ${context.review} (${context.label}), token ${context.position}; ${meta}`;
  item.append(`${context.before.length ? "… " : ""}${context.before.join(" ")} `, hit, ` ${context.after.join(" ")} …`, info);
  return item;
}

async function findMatches() {
  const list = $("matches");
  list.innerHTML = "<li>searching…</li>";
  const [a, b] = state.span;
  try {
    const found = await call("POST", "/v1/inspect/match", { units: state.matchUnits, length: b - a + 1, k: 15 });
    list.innerHTML = "";
    list.dataset.total = found.total;
    if (!found.matches.length) list.innerHTML = "<li>These units are never all on together in the corpus.</li>";
    for (const match of found.matches) list.appendChild(contextItem(match, `score ${match.score.toFixed(3)}`));
  } catch (error) {
    list.innerHTML = "";
    showError(`The server could not search the corpus. ${error.message}`);
  }
}

function showContextsOf(layer, direction, unit) {
  if (!state.index) return;
  $("ctx-layer").value = layer;
  $("ctx-direction").value = direction;
  $("ctx-unit").value = unit;
  showContexts();
}

async function showContexts() {
  const path = `/v1/inspect/units/${Number($("ctx-layer").value)}/${$("ctx-direction").value}/${Number($("ctx-unit").value)}`;
  try {
    const found = await call("GET", `${path}?k=${Number($("ctx-k").value) || 8}`);
    for (const side of ["highest", "lowest"]) {
      const list = $(`contexts-${side}`);
      list.innerHTML = "";
      for (const context of found[side]) list.appendChild(contextItem(context, `h = ${context.value.toFixed(3)}`));
    }
    const u = found.unit;
    $("contexts").dataset.unit = `${u.layer}/${u.direction}/${u.unit}`;
  } catch (error) {
    showError(`The server could not show this unit's contexts. ${error.message}`);
  }
}

// ---- the language model ----

async function loadLmInfo() {
  try {
    state.lmInfo = await call("GET", "/v1/lm");
  } catch (error) {
    state.lmInfo = { loaded: false, reason: error.status === 404 ? "this server has no language-model routes" : error.message };
  }
  const info = state.lmInfo;
  $("lm-tools").hidden = !info.loaded;
  $("lm-note").dataset.loaded = String(Boolean(info.loaded));
  $("lm-note").textContent = info.loaded
    ? `Language model ${info.model.name} ${info.model.version}` + (info.perplexity && info.perplexity.test != null ? `, test perplexity ${info.perplexity.test}` : "") + "."
    : `The language model is not loaded (${info.reason}): no surprisal colouring, guesses or continuations. The views above do not need it.`;
}

async function continueReview() {
  const prompt = $("text").value;
  $("lm-summary").textContent = "writing…";
  try {
    const generated = await call("POST", "/v1/lm/generate", {
      prompt, max_new_tokens: Number($("lm-new-tokens").value) || 30,
      temperature: Number($("lm-temperature").value) || 1, seed: Number($("lm-seed").value),
    });
    const whole = await call("POST", "/v1/trace/saliency", { text: prompt + generated.text });
    const first = state.saliency.tokens.length; // the review's own tokens come first
    const from = Math.max(0, first - 8);
    const { tokens, running } = whole;
    renderStrip($("continuation"), tokens.slice(from).map((token, j) => {
      const i = from + j;
      return {
        token, running: running[i], colour: sentimentColour(running[i]),
        className: i >= first ? "generated" : "", data: { index: i, running: running[i] },
        tooltip: () => [`#${i} “${token}”${i >= first ? " (generated)" : ""}`, `running P(positive) ${running[i].toFixed(3)}`],
      };
    }));
    const before = state.saliency.running[first - 1], after = running[running.length - 1];
    $("lm-summary").textContent = `Continuation (seed ${generated.seed}, ${generated.tokens.length} tokens, in italics): P(positive) ${before.toFixed(3)} at the end of the review, ${after.toFixed(3)} at the end of the continuation.`;
    $("continuation").dataset.text = generated.text;
  } catch (error) {
    $("lm-summary").textContent = "";
    showError(`The server could not continue the review. ${error.message}`);
  }
}

function renderSaturation() {
  const box = $("saturation");
  box.innerHTML = "";
  const gates = gatesOf(Number($("layer").value), $("direction").value);
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
$("find-matches").addEventListener("click", findMatches);
$("show-contexts").addEventListener("click", showContexts);
$("lm-continue").addEventListener("click", continueReview);
for (const radio of document.querySelectorAll("input[name=colour-by]")) radio.addEventListener("change", renderTokens);
for (const select of [$("layer"), $("direction")]) {
  select.addEventListener("change", () => { renderTabs(); renderSaturation(); renderMatchUnits(); });
}
window.addEventListener("resize", () => { if (state.trace) drawHeatmap(); });
// open on the example, analysed: what the server has (corpus index, language model) first
Promise.all([loadIndexInfo(), loadLmInfo()]).then(() => analyze());
