// What the gate inspector and the contrast view share: element lookup, the sentiment colour
// scale, option lists and JSON requests. Loaded before each page's own script. No dependencies.
"use strict";

const $ = (id) => document.getElementById(id);

// red (negative) -> white -> green (positive) for a probability
function sentimentColour(p) {
  const t = Math.max(0, Math.min(1, p));
  const [r, g, b] = t < 0.5 ? [255, 255 * t * 2, 255 * t * 2] : [255 * (1 - t) * 2, 255, 255 * (1 - t) * 2];
  return `rgb(${Math.round(r)},${Math.round(g)},${Math.round(b)})`;
}

// Replace a select's options, keeping the chosen one when it is still offered
function fillSelect(select, values) {
  const kept = select.value;
  select.innerHTML = "";
  for (const v of values) select.add(new Option(v, v));
  if (values.includes(kept)) select.value = kept;
}

// One JSON request (with the API key, when one is given); an error status becomes an Error
// carrying the status, the server's error code and its words.
async function request(method, path, body, key) {
  const headers = { "content-type": "application/json" };
  if (key) headers["X-API-Key"] = key;
  const init = { method, headers };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    const message = payload && payload.error ? payload.error.message || payload.error : response.statusText;
    const error = new Error(`${response.status}: ${message}`);
    error.status = response.status;
    error.code = payload && payload.error ? payload.error.code : undefined;
    error.detail = message;
    throw error;
  }
  return payload;
}
