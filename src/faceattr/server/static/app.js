// The faceattr page: upload a photo (boxes, attribute bars, numeric estimates and classes),
// search the index (a gallery).
"use strict";

const $ = (id) => document.getElementById(id);
const GALLERY_SIZE = 24;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// The server's reason for a refusal: {"detail": "..."} or FastAPI's list of field errors.
function reason(body) {
  if (!body) return "";
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) {
    return body.detail.map((d) => `${d.loc.slice(1).join(".")}: ${d.msg}`).join("; ");
  }
  return "";
}

async function request(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(reason(body) || `${response.status} ${response.statusText}`);
  return body;
}

async function loadHealth() {
  try {
    const health = await request("/health");
    const model = health.model
      ? `model ${health.model.name} (${health.model.attributes.length} attributes, ` +
        `${health.model.device})`
      : "no model: start the server with --model RUN to analyse photos";
    const index = health.index
      ? `index of ${health.index.faces} faces in ${health.index.files} files`
      : "no index: start the server with --db faces.db to search";
    $("status").textContent = `${model} · ${index}`;
    $("photo").disabled = !health.model;
    for (const input of $("search-form").elements) input.disabled = !health.index;
  } catch (error) {
    showError(`the server does not answer: ${error.message}`);
  }
}

function percent(value, total) {
  return `${(100 * value) / total}%`;
}

function drawBoxes(result) {
  const stage = $("stage");
  stage.querySelectorAll(".face-box, .landmark").forEach((node) => node.remove());
  result.faces.forEach((face, i) => {
    const box = element("div", "face-box");
    box.style.left = percent(face.box.x, result.width);
    box.style.top = percent(face.box.y, result.height);
    box.style.width = percent(face.box.width, result.width);
    box.style.height = percent(face.box.height, result.height);
    box.append(element("span", "face-number", String(i + 1)));
    stage.append(box);
    for (const point of face.landmarks) {
      const dot = element("div", "landmark");
      dot.style.left = percent(point.x, result.width);
      dot.style.top = percent(point.y, result.height);
      stage.append(dot);
    }
  });
}

function attributeBars(face) {
  const list = element("ol", "bars");
  const sorted = [...face.attributes].sort((a, b) => b.probability - a.probability);
  for (const attribute of sorted) {
    const state = attribute.unsure ? "unsure" : attribute.present ? "present" : "absent";
    const row = element("li", `bar ${state}`);
    row.title = `threshold ${attribute.threshold.toFixed(2)}${attribute.unsure ? " (unsure)" : ""}`;
    const track = element("span", "track");
    const fill = element("span", "fill");
    fill.style.width = `${100 * attribute.probability}%`;
    const threshold = element("span", "threshold");
    threshold.style.left = `${100 * attribute.threshold}%`;
    track.append(fill, threshold);
    row.append(
      element("span", "name", attribute.name.replaceAll("_", " ")),
      track,
      element("span", "value", attribute.probability.toFixed(2)),
    );
    list.append(row);
  }
  return list;
}

// A face's numeric attributes (estimate and unit) and categorical ones (the most probable class,
// its probability as a bar, every class's in the tooltip), in the model's order.
function valueRows(face) {
  const list = element("ol", "bars values");
  for (const attribute of face.numeric) {
    const row = element("li", "value-row numeric");
    const text = `${attribute.value.toFixed(1)} ${attribute.unit}`.trim();
    row.append(
      element("span", "name", attribute.name.replaceAll("_", " ")),
      element("span", "estimate", text),
    );
    list.append(row);
  }
  for (const attribute of face.categorical) {
    const row = element("li", "value-row categorical");
    row.title = Object.entries(attribute.probabilities)
      .map(([label, p]) => `${label} ${p.toFixed(2)}`)
      .join(", ");
    const track = element("span", "track");
    const fill = element("span", "fill");
    fill.style.width = `${100 * attribute.probability}%`;
    track.append(fill);
    row.append(
      element("span", "name", attribute.name.replaceAll("_", " ")),
      element("span", "estimate", attribute.label),
      track,
      element("span", "value", attribute.probability.toFixed(2)),
    );
    list.append(row);
  }
  return list;
}

function listFaces(result) {
  const faces = $("faces");
  faces.replaceChildren();
  if (result.faces.length === 0) {
    faces.append(element("p", "note", "No face found in this photo."));
    return;
  }
  result.faces.forEach((face, i) => {
    const card = element("article", "face");
    const title = element("h3", "", `Face ${i + 1} `);
    title.append(element("small", "", `detection ${face.detection_score.toFixed(2)}`));
    card.append(title);
    if (face.numeric.length || face.categorical.length) card.append(valueRows(face));
    card.append(attributeBars(face));
    faces.append(card);
  });
}

async function predict(file) {
  showError("");
  $("faces").replaceChildren(element("p", "note", "analysing…"));
  $("stage").querySelectorAll(".face-box, .landmark").forEach((node) => node.remove());
  const view = $("photo-view");
  if (view.src) URL.revokeObjectURL(view.src);
  view.src = URL.createObjectURL(file);
  $("stage").hidden = false;
  const form = new FormData();
  form.append("file", file);
  try {
    const result = await request("/predict", { method: "POST", body: form });
    drawBoxes(result);
    listFaces(result);
  } catch (error) {
    $("faces").replaceChildren();
    showError(error.message);
  }
}

function thumbnail(hit, query) {
  const figure = element("figure", "hit");
  const link = element("a");
  link.href = hit.image_url;
  link.target = "_blank";
  const image = element("img");
  image.src = hit.thumbnail_url;
  image.alt = hit.file_name;
  link.append(image);
  const caption = element("figcaption", "", `${hit.score.toFixed(3)} · ${hit.file_name} `);
  const similar = element("button", "similar", "similar");
  similar.type = "button";
  similar.addEventListener("click", () => search(query, hit.face_id));
  caption.append(similar);
  figure.append(link, caption);
  return figure;
}

async function search(query, like) {
  showError("");
  const parameters = new URLSearchParams({
    q: query,
    min_prob: $("min-prob").value || "0.5",
    limit: String(GALLERY_SIZE),
  });
  if (like !== undefined) parameters.set("like", String(like));
  try {
    const result = await request(`/search?${parameters}`);
    const what = like === undefined ? "" : ` ranked by similarity to face ${like}`;
    $("search-summary").textContent = result.hits.length
      ? `${result.hits.length} faces${what}`
      : "No face matches.";
    $("gallery").replaceChildren(...result.hits.map((hit) => thumbnail(hit, query)));
  } catch (error) {
    $("search-summary").textContent = "";
    $("gallery").replaceChildren();
    showError(error.message);
  }
}

$("photo").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) predict(file);
});
$("upload-form").addEventListener("submit", (event) => event.preventDefault());
$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  search($("query").value.trim());
});
loadHealth();
