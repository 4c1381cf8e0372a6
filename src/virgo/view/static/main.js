// Start-up: header, filters, the first rows; the URL fragment can preset filters and open an item
// (#compare=b_only&sort=len1-desc&open=0 — used for screenshots and links).

function header() {
  $("title").textContent = META.title;
  const box = $("runs");
  RUNS.forEach((run, r) => {
    const d = el("span", "run-tag");
    const acc = typeof run.accuracy === "number" ? " · accuracy " + pct(run.accuracy) :
      Object.entries(run.acc_by_set || {}).map(([s, a]) => " · " + s + " " + pct(a)).join("");
    d.append(el("b", null, (NR > 1 ? "ABCD"[r] + ": " : "") + run.label),
      el("span", null, " " + [run.benchmark, run.split].filter(Boolean).join(" / ") + acc + " · " + run.n +
        " generations"));
    d.title = run.path + (run.unit === "tokens" ? "" : "\nthought length: " + run.unit);
    box.append(d);
  });
}

function fromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const set = (id, key, value) => {
    const c = controls[id];
    if (!c || value === null) return;
    c.value = value;
    if (key === "min" || key === "max") state[key] = value === "" ? null : Number(value);
    else if (key.startsWith("verdict")) state.verdict[Number(key.slice(7))] = value;
    else state[key] = value;
  };
  set("f-search", "q", params.get("q"));
  for (let r = 0; r < NR; r++) set("f-verdict-" + r, "verdict" + r, params.get("verdict" + r));
  set("f-compare", "compare", params.get("compare"));
  set("f-subset", "subset", params.get("subset"));
  set("f-level", "level", params.get("level"));
  set("f-len-min", "min", params.get("min"));
  set("f-len-max", "max", params.get("max"));
  set("f-sort", "sort", params.get("sort"));
  return params.get("open");
}

function start() {
  header();
  buildFilters();
  listHead();
  const open = fromHash();
  applyFilters();
  const list = $("list");
  let pending = false;
  list.addEventListener("scroll", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; drawRows(); });
  });
  window.addEventListener("resize", drawRows);
  list.addEventListener("keydown", (e) => {
    const step = { ArrowDown: 1, ArrowUp: -1, PageDown: 20, PageUp: -20 }[e.key];
    if (step) { e.preventDefault(); moveSelection(step); }
  });
  if (open !== null && shown.length) select_(shown[Math.min(shown.length - 1, Math.max(0, Number(open) || 0))]);
  document.body.dataset.readyMs = performance.now().toFixed(1);
  document.body.dataset.ready = "1";
}

start();
