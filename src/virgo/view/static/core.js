// virgo view: the data embedded in the page, and small DOM helpers.
// Every piece of model output or dataset text reaches the DOM through textContent or a text node, never as HTML:
// el() below is the only way this script makes elements with text; no markup string is ever parsed.

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function readJSON(id) {
  const block = document.getElementById(id);
  return block ? JSON.parse(block.textContent) : null;
}

const INDEX = readJSON("virgo-index");
const META = INDEX.meta;
const PROBLEMS = INDEX.problems;
const ITEMS = INDEX.items;
const RUNS = META.runs;
const NR = RUNS.length;
const VERDICTS = ["correct", "wrong", "no_answer", "truncated", "ungraded", "missing"];

// The long texts come in chunks of META.chunk items: JSON blocks in the page (file layout), or files beside it
// (folder layout) that hand their data to the <script> element loading them. Either way a chunk is read the first
// time one of its items is needed; texts(k) is then synchronous.
const textChunks = new Map();
const loading = new Map();
const imageChunks = new Map();

function loadChunk(c) {
  if (textChunks.has(c)) return Promise.resolve();
  if (META.layout !== "folder") {
    textChunks.set(c, readJSON("virgo-t-" + c) || []);
    return Promise.resolve();
  }
  if (!loading.has(c)) {
    loading.set(c, new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = META.files + "/t-" + c + ".js";
      s.addEventListener("virgo-data", (e) => { textChunks.set(c, e.detail); resolve(); });
      s.addEventListener("error", () => {
        textChunks.set(c, []);
        reject(new Error("cannot read " + s.src + " (keep the page's _files folder beside it)"));
      });
      document.head.append(s);
    }));
  }
  return loading.get(c);
}

function loadTexts(ks) {
  const chunks = new Set(ks.map((k) => Math.floor(k / META.chunk)));
  return Promise.all([...chunks].map(loadChunk));
}

function loadAllTexts() {
  const all = [];
  for (let k = 0; k < ITEMS.length; k += META.chunk) all.push(k);
  return loadTexts(all);
}

function texts(k) {
  const chunk = textChunks.get(Math.floor(k / META.chunk));
  return (chunk && chunk[k % META.chunk]) || [];
}

function allTextsLoaded() {
  return textChunks.size * META.chunk >= ITEMS.length;
}

function imageSrc(n) {
  if (META.layout === "folder") return INDEX.imgsrc[n];
  const c = Math.floor(n / META.img_chunk);
  if (!imageChunks.has(c)) imageChunks.set(c, readJSON("virgo-i-" + c) || []);
  return imageChunks.get(c)[n % META.img_chunk] || null;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function verdictOf(item, r) {
  const side = item.r[r];
  return side ? side.v : "missing";
}

function itemName(k) {
  const it = ITEMS[k];
  const p = PROBLEMS[it.p];
  return META.samples > 1 ? p.id + " #" + it.s : p.id;
}

function fmtLength(n) {
  return n === null || n === undefined ? "—" : String(n);
}

function unitLabel(r) {
  return RUNS[r].unit === "tokens" ? "tokens" : "≈words";
}

function pct(x) {
  return typeof x === "number" ? (100 * x).toFixed(1) + "%" : "";
}

function badge(verdict) {
  return el("span", "badge v-" + verdict, verdict.replace("_", " "));
}

function option(value, label) {
  const o = el("option", null, label);
  o.value = value;
  return o;
}

function labelled(text, control) {
  const l = el("label", "ctl");
  l.append(el("span", "ctl-name", text), control);
  return l;
}
