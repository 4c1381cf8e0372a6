// The item list: filters, search, sorting, and a virtual list that keeps only the visible rows in the DOM.

const ROW = 28; // px, fixed row height: row i sits at i * ROW
const OVERSCAN = 8;
const state = {
  q: "", deep: true, verdict: new Array(NR).fill(""), subset: "", level: "", min: null, max: null,
  compare: "", sort: "order", selected: -1,
};
let shown = new Int32Array(0); // item indices passing the filters, in display order
let idOrder = null; // item indices in natural id order, built on first use
const controls = {};

function distinct(key) {
  const seen = new Set();
  for (const p of PROBLEMS) if (p[key]) seen.add(p[key]);
  return [...seen].sort(new Intl.Collator(undefined, { numeric: true }).compare);
}

function select(id, name, pairs, key) {
  const s = el("select");
  s.id = id;
  for (const [v, l] of pairs) s.append(option(v, l));
  s.addEventListener("change", () => { setState(key, s.value); });
  controls[id] = s;
  return labelled(name, s);
}

function numberInput(id, name, key) {
  const i = el("input");
  i.id = id;
  i.type = "number";
  i.min = "0";
  i.addEventListener("input", () => { setState(key, i.value === "" ? null : Number(i.value)); });
  controls[id] = i;
  return labelled(name, i);
}

function buildFilters() {
  const box = $("filters");
  const search = el("input");
  search.id = "f-search";
  search.type = "search";
  search.placeholder = "search id, question, answers, thoughts…";
  let timer = 0;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => setState("q", search.value), 120);
  });
  controls["f-search"] = search;
  const deep = el("input");
  deep.id = "f-deep";
  deep.type = "checkbox";
  deep.checked = true;
  deep.addEventListener("change", () => setState("deep", deep.checked));
  controls["f-deep"] = deep;
  const row1 = el("div", "ctl-row");
  row1.append(search, labelled("in thoughts", deep));
  const row2 = el("div", "ctl-row");
  for (let r = 0; r < NR; r++) {
    const pairs = [["", "any"], ...VERDICTS.slice(0, NR > 1 ? 6 : 5).map((v) => [v, v.replace("_", " ")])];
    row2.append(select("f-verdict-" + r, NR > 1 ? "verdict " + RUNS[r].label : "verdict", pairs, "verdict" + r));
  }
  if (NR > 1) {
    const a = RUNS[0].label, b = RUNS[1].label;
    row2.append(select("f-compare", "runs", [["", "all items"], ["differ", "verdicts differ"],
      ["a_only", a + " right, " + b + " not"], ["b_only", b + " right, " + a + " not"]], "compare"));
  }
  const row3 = el("div", "ctl-row");
  row3.append(select("f-subset", "subset", [["", "all"], ...distinct("sub").map((v) => [v, v])], "subset"));
  row3.append(select("f-level", "level", [["", "all"], ...distinct("lvl").map((v) => [v, v])], "level"));
  row3.append(numberInput("f-len-min", "length ≥", "min"), numberInput("f-len-max", "≤", "max"));
  const sorts = [["order", "run order"], ["id", "id"]];
  for (let r = 0; r < NR; r++) {
    const who = NR > 1 ? " " + RUNS[r].label : "";
    sorts.push(["len" + r + "-desc", "longest thought" + who], ["len" + r + "-asc", "shortest thought" + who]);
  }
  row3.append(select("f-sort", "sort", sorts, "sort"));
  box.append(row1, row2, row3);
}

function setState(key, value) {
  if (key.startsWith("verdict")) state.verdict[Number(key.slice(7))] = value;
  else state[key] = value;
  applyFilters();
}

function inRange(it) {
  if (state.min === null && state.max === null) return true;
  for (let r = 0; r < NR; r++) {
    const side = it.r[r];
    if (!side) continue;
    const n = side.n === null ? 0 : side.n;
    if ((state.min === null || n >= state.min) && (state.max === null || n <= state.max)) return true;
  }
  return false;
}

function compareOk(it) {
  if (NR < 2 || !state.compare) return true;
  const a = it.r[0], b = it.r[1];
  if (!a || !b) return false;
  if (state.compare === "differ") return a.v !== b.v;
  if (state.compare === "a_only") return a.v === "correct" && b.v !== "correct";
  return b.v === "correct" && a.v !== "correct";
}

function searchOk(k, re) {
  const it = ITEMS[k], p = PROBLEMS[it.p];
  if (re.test(p.id) || (p.q && re.test(p.q)) || (p.gold && re.test(p.gold))) return true;
  for (const side of it.r) if (side && side.x && re.test(side.x)) return true;
  if (!state.deep) return false;
  for (const t of texts(k)) {
    if (t && ((t.t && re.test(t.t)) || (t.s && re.test(t.s)) || (t.raw && re.test(t.raw)))) return true;
  }
  return false;
}

function matches(k, re) {
  const it = ITEMS[k], p = PROBLEMS[it.p];
  if (state.subset && p.sub !== state.subset) return false;
  if (state.level && p.lvl !== state.level) return false;
  for (let r = 0; r < NR; r++) if (state.verdict[r] && verdictOf(it, r) !== state.verdict[r]) return false;
  return inRange(it) && compareOk(it) && (re === null || searchOk(k, re));
}

function baseOrder() {
  if (state.sort !== "id") return null;
  if (!idOrder) {
    const coll = new Intl.Collator(undefined, { numeric: true });
    idOrder = Int32Array.from(ITEMS.keys()).sort((x, y) => {
      const a = PROBLEMS[ITEMS[x].p], b = PROBLEMS[ITEMS[y].p];
      return coll.compare(a.set, b.set) || coll.compare(a.id, b.id) || ITEMS[x].s - ITEMS[y].s;
    });
  }
  return idOrder;
}

function applyFilters() {
  const t0 = performance.now();
  const q = state.q.trim();
  if (q && state.deep && !allTextsLoaded()) { // searching the thoughts needs all of them: read them first
    const loaded = loadAllTexts();
    if (!allTextsLoaded()) { // files beside the page: they arrive asynchronously
      $("count").textContent = "reading the thoughts…";
      loaded.catch((e) => showError(e.message)).then(() => {
        document.body.dataset.loadMs = (performance.now() - t0).toFixed(1);
        applyFilters();
      });
      return;
    }
  }
  const re = q ? new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "i") : null;
  const order = baseOrder();
  const out = [];
  for (let i = 0; i < ITEMS.length; i++) {
    const k = order ? order[i] : i;
    if (matches(k, re)) out.push(k);
  }
  const m = /^len(\d)-(asc|desc)$/.exec(state.sort);
  if (m) {
    const r = Number(m[1]), sign = m[2] === "asc" ? 1 : -1;
    const len = (k) => { const s = ITEMS[k].r[r]; return s && s.n !== null ? s.n : -1; };
    out.sort((x, y) => sign * (len(x) - len(y)) || x - y);
  }
  shown = Int32Array.from(out);
  $("count").textContent = shown.length + " of " + ITEMS.length + " items";
  $("list-spacer").style.height = shown.length * ROW + "px";
  $("list").scrollTop = 0;
  drawRows();
  document.body.dataset.filterMs = (performance.now() - t0).toFixed(1);
}

function cells(row, k) {
  const it = ITEMS[k], p = PROBLEMS[it.p];
  const cell = (cls, text) => { const c = el("span", cls, text); c.title = text; return c; };
  row.replaceChildren(cell("c-id", itemName(k)), cell("c-sub", p.sub), cell("c-lvl", p.lvl), cell("c-subj", p.subj));
  for (let r = 0; r < NR; r++) {
    const side = it.r[r];
    const v = side ? side.v : "missing";
    row.append(badge(v), cell("c-by", side ? side.b : ""), el("span", "c-len", fmtLength(side && side.n)));
  }
  row.dataset.item = String(k);
  row.classList.toggle("selected", k === state.selected);
}

const pool = [];

function drawRows() {
  const list = $("list");
  const first = Math.max(0, Math.floor(list.scrollTop / ROW) - OVERSCAN);
  const last = Math.min(shown.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW) + OVERSCAN);
  while (pool.length < last - first) {
    const row = el("div", "row item");
    row.addEventListener("click", () => select_(Number(row.dataset.item)));
    list.append(row);
    pool.push(row);
  }
  for (let j = 0; j < pool.length; j++) {
    const i = first + j, row = pool[j];
    if (i < last) {
      row.hidden = false;
      row.style.top = i * ROW + "px";
      cells(row, shown[i]);
    } else {
      row.hidden = true;
    }
  }
}

function listHead() {
  const head = $("list-head");
  const cell = (cls, text, title) => { const c = el("span", cls, text); c.title = title; return c; };
  head.append(cell("c-id", "id", "problem id (#sample)"), cell("c-sub", "subset", "benchmark subset or set"),
    cell("c-lvl", "lvl", "level or difficulty"), cell("c-subj", "subject", "subject"));
  for (let r = 0; r < NR; r++) {
    const who = RUNS[r].label;
    head.append(cell("c-v", NR > 1 ? who : "verdict", "verdict of " + who),
      cell("c-by", "rule", "the grading rule that decided the verdict"),
      cell("c-len", "len", "thought length in " + (RUNS[r].unit === "tokens" ? "model tokens" : RUNS[r].unit)));
  }
  for (const e of [head, $("list")]) e.classList.add("runs-" + NR);
}

function select_(k) {
  state.selected = k;
  for (const row of pool) row.classList.toggle("selected", Number(row.dataset.item) === k);
  openItem(k);
}

function moveSelection(step) {
  if (!shown.length) return;
  let at = shown.indexOf(state.selected);
  at = at < 0 ? 0 : Math.min(shown.length - 1, Math.max(0, at + step));
  const list = $("list");
  if (at * ROW < list.scrollTop) list.scrollTop = at * ROW;
  else if ((at + 1) * ROW > list.scrollTop + list.clientHeight) list.scrollTop = (at + 1) * ROW - list.clientHeight;
  drawRows();
  select_(shown[at]);
}
