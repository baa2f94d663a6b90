// The contrast view: two texts traced side by side (/v1/trace and /v1/trace/saliency for each),
// their tokens aligned, and where their running sentiment and gates diverge. Needs common.js.
"use strict";

const DIVERGED = 0.1; // a running-sentiment gap at least this large marks a row
const contrast = { a: null, b: null, rows: null };

// Rows of a longest-common-subsequence alignment: {a, b} token indices, null where a text has
// no token (a diff's deletion or insertion). Ties go to the shared token, then to A's token.
function align(left, right) {
  const n = left.length, m = right.length;
  const longest = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      longest[i][j] = left[i] === right[j] ? longest[i + 1][j + 1] + 1 : Math.max(longest[i + 1][j], longest[i][j + 1]);
    }
  }
  const rows = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && left[i] === right[j]) rows.push({ a: i++, b: j++ });
    else if (i < n && (j === m || longest[i + 1][j] >= longest[i][j + 1])) rows.push({ a: i++, b: null });
    else rows.push({ a: null, b: j++ });
  }
  return rows;
}

async function trace(text, maxTokens, key) {
  const body = { text, max_tokens: maxTokens };
  const [gates, saliency] = await Promise.all([
    request("POST", "/v1/trace", { ...body, decimals: 5 }, key),
    request("POST", "/v1/trace/saliency", body, key),
  ]);
  return { gates, saliency };
}

async function compare(event) {
  event.preventDefault();
  $("contrast-error").hidden = true;
  $("contrast-status").textContent = "reading both…";
  const maxTokens = Number($("contrast-max-tokens").value) || undefined;
  const key = $("contrast-api-key").value;
  try {
    // one text after the other: four traces at once could exceed the server's trace pool
    const a = await trace($("text-a").value, maxTokens, key);
    const b = await trace($("text-b").value, maxTokens, key);
    Object.assign(contrast, { a, b, rows: align(a.gates.tokens, b.gates.tokens) });
    fillSelect($("contrast-layer"), a.gates.layers.map((_, i) => String(i)));
    fillSelect($("contrast-direction"), Object.keys(a.gates.layers[0]));
    fillSelect($("contrast-gate"), Object.keys(a.gates.layers[0].forward.gates));
    render();
    $("contrast-status").textContent = "";
  } catch (error) {
    $("contrast-status").textContent = "";
    $("contrast-error").textContent = `The server could not compare these texts. ${error.message}`;
    $("contrast-error").hidden = false;
  }
}

// Mean absolute difference of the chosen gate's units at token i of A and token j of B
function divergence(i, j) {
  const layer = Number($("contrast-layer").value), direction = $("contrast-direction").value, gate = $("contrast-gate").value;
  const left = contrast.a.gates.layers[layer][direction].gates[gate][i];
  const right = contrast.b.gates.layers[layer][direction].gates[gate][j];
  let sum = 0;
  for (let u = 0; u < left.length; u++) sum += Math.abs(left[u] - right[u]);
  return sum / left.length;
}

function render() {
  const { a, b, rows } = contrast;
  const runningA = a.saliency.running, runningB = b.saliency.running;
  $("contrast-results").hidden = false;
  const verdict = (side, name) => `${name}: ${side.gates.prediction.label} (P(positive) = ${side.gates.prediction.score.toFixed(4)})`;
  $("verdicts").textContent = `${verdict(a, "A")} · ${verdict(b, "B")}`;
  // running values carried over edits, so a row always has both curves' latest value
  let lastA = null, lastB = null;
  const drawn = rows.map((row) => {
    if (row.a !== null) lastA = runningA[row.a];
    if (row.b !== null) lastB = runningB[row.b];
    const shared = row.a !== null && row.b !== null;
    return { ...row, runA: lastA, runB: lastB, gap: lastA === null || lastB === null ? null : lastB - lastA,
             divergence: shared ? divergence(row.a, row.b) : null };
  });
  renderRows(drawn);
  summarise(drawn);
  drawChart(drawn);
}

function cell(tr, text, className, colour) {
  const td = tr.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  if (colour) td.style.background = colour;
  return td;
}

function renderRows(drawn) {
  const body = $("contrast-rows");
  body.innerHTML = "";
  const top = Math.max(1e-6, ...drawn.map((r) => r.divergence || 0));
  drawn.forEach((row, k) => {
    const tr = body.insertRow();
    const tokenA = row.a === null ? "−" : contrast.a.gates.tokens[row.a];
    const tokenB = row.b === null ? "+" : contrast.b.gates.tokens[row.b];
    tr.className = [row.a === null || row.b === null ? "edit" : "", row.gap !== null && Math.abs(row.gap) >= DIVERGED ? "diverged" : ""].join(" ").trim();
    Object.assign(tr.dataset, { a: row.a ?? "", b: row.b ?? "", gap: row.gap ?? "", divergence: row.divergence ?? "" });
    cell(tr, String(k + 1), "num");
    cell(tr, tokenA, "", row.a === null ? null : sentimentColour(row.runA));
    cell(tr, row.a === null ? "" : row.runA.toFixed(3), "num");
    cell(tr, row.b === null ? "" : row.runB.toFixed(3), "num");
    cell(tr, tokenB, "", row.b === null ? null : sentimentColour(row.runB));
    cell(tr, row.gap === null ? "" : (row.gap >= 0 ? "+" : "") + row.gap.toFixed(3), "num delta");
    const td = cell(tr, "", "num");
    if (row.divergence !== null) {
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.round((60 * row.divergence) / top)}px`;
      td.append(bar, row.divergence.toFixed(3));
    } else {
      td.textContent = "edit";
    }
  });
  $("contrast").dataset.rendered = "true";
}

function summarise(drawn) {
  const first = drawn.findIndex((r) => r.gap !== null && Math.abs(r.gap) >= DIVERGED);
  const edits = drawn.filter((r) => r.a === null || r.b === null).length;
  let peak = -1;
  drawn.forEach((r, k) => { if (r.divergence !== null && (peak < 0 || r.divergence > drawn[peak].divergence)) peak = k; });
  const token = (r) => (r.b !== null ? contrast.b.gates.tokens[r.b] : contrast.a.gates.tokens[r.a]);
  const parts = [`${edits} token${edits === 1 ? "" : "s"} differ.`];
  parts.push(first < 0
    ? `The running sentiments never differ by ${DIVERGED} or more.`
    : `The running sentiments first differ by ${DIVERGED} or more at row ${first + 1} ("${token(drawn[first])}").`);
  if (peak >= 0) parts.push(`The ${$("contrast-gate").value} gates differ most at row ${peak + 1} ("${token(drawn[peak])}", ${drawn[peak].divergence.toFixed(3)}).`);
  $("divergence-summary").textContent = parts.join(" ");
  $("divergence-summary").dataset.first = String(first + 1);
}

function drawChart(drawn) {
  const canvas = $("contrast-chart");
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height, pad = 20;
  ctx.clearRect(0, 0, w, h);
  const x = (k) => pad + (drawn.length < 2 ? 0 : (k * (w - 2 * pad)) / (drawn.length - 1));
  const y = (v) => h - pad - v * (h - 2 * pad);
  const top = Math.max(1e-6, ...drawn.map((r) => r.divergence || 0));
  ctx.fillStyle = "rgba(26,86,219,0.18)"; // gate divergence as bars, scaled to the largest
  drawn.forEach((r, k) => { if (r.divergence !== null) ctx.fillRect(x(k) - 2, y((0.9 * r.divergence) / top), 4, y(0) - y((0.9 * r.divergence) / top)); });
  ctx.strokeStyle = "#999";
  ctx.strokeRect(pad, pad, w - 2 * pad, h - 2 * pad);
  ctx.setLineDash([4, 4]);
  ctx.beginPath(); ctx.moveTo(pad, y(0.5)); ctx.lineTo(w - pad, y(0.5)); ctx.stroke();
  ctx.setLineDash([]);
  for (const [key, colour] of [["runA", "#1a56db"], ["runB", "#d9480f"]]) {
    ctx.strokeStyle = colour;
    ctx.beginPath();
    let started = false;
    drawn.forEach((r, k) => { if (r[key] === null) return; started ? ctx.lineTo(x(k), y(r[key])) : ctx.moveTo(x(k), y(r[key])); started = true; });
    ctx.stroke();
  }
  ctx.fillStyle = "#333";
  ctx.fillText("running P(positive): A blue, B orange; bars: gate divergence", pad, 12);
  canvas.dataset.rendered = "true";
}

$("contrast-form").addEventListener("submit", compare);
for (const id of ["contrast-layer", "contrast-direction", "contrast-gate"]) {
  $(id).addEventListener("change", () => contrast.rows && render());
}
