// One item: its images, question and gold, and each run's verdict, thought (marked) and solution, side by side.

const IV_LABEL = { budget: "⏹ budget reached", wait: "↻ forced Wait", guess: "↻ forced Wait?" };
const IV_TEXT = {
  budget: "The thinking budget was reached here: the end of the thought was forced.",
  wait: "The model ended its thought here; budget forcing replaced the end by “Wait” and it went on.",
  guess: "This run forced “Wait” but did not record where: it is here, or at another marked “Wait” (the model " +
    "may also have written some of them itself).",
};

// The thought as text nodes, with <mark> around reflection phrases and a marker element at each intervention.
function markedText(text, marks) {
  const frag = document.createDocumentFragment();
  const events = [];
  for (const [s, e] of marks.r || []) events.push([s, 1, e]);
  for (const [at, kind, exact] of marks.iv || []) events.push([at, 0, kind === "wait" && !exact ? "guess" : kind]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let pos = 0;
  for (const [at, isSpan, what] of events) {
    if (at < pos) continue; // a marker inside a highlighted phrase is shown after it
    if (at > pos) frag.append(document.createTextNode(text.slice(pos, at)));
    if (isSpan) {
      frag.append(el("mark", "refl", text.slice(at, what)));
      pos = what;
    } else {
      const m = el("span", "iv iv-" + what, IV_LABEL[what]);
      m.title = IV_TEXT[what];
      frag.append(m);
      pos = at;
    }
  }
  if (pos < text.length) frag.append(document.createTextNode(text.slice(pos)));
  return frag;
}

function field(name, value, cls) {
  const d = el("div", "field " + (cls || ""));
  d.append(el("span", "f-name", name), el("span", "f-value", value === null || value === undefined ? "—" : value));
  return d;
}

function images(p) {
  const box = el("div", "images");
  if (!META.images) {
    box.append(el("span", "missing-img", p.img.length + " image(s), left out of this page"));
    return box;
  }
  p.img.forEach((n, i) => {
    const src = imageSrc(n);
    if (src) {
      const img = el("img");
      img.alt = "image " + (i + 1) + " of " + p.id;
      img.src = src;
      box.append(img);
    } else {
      box.append(el("span", "missing-img", "image " + (i + 1) + " not available"));
    }
  });
  return box;
}

function problemPart(k) {
  const it = ITEMS[k], p = PROBLEMS[it.p];
  const box = el("div", "problem");
  const h = el("h2", null, itemName(k));
  box.append(h);
  const tags = el("div", "tags");
  for (const [name, v] of [["set", p.set], ["subset", p.sub], ["level", p.lvl], ["subject", p.subj],
    ["type", p.type]]) {
    if (v) tags.append(el("span", "tag", name + ": " + v));
  }
  box.append(tags);
  if (p.img.length) box.append(images(p));
  box.append(el("div", "question", p.q === null ? "(question not available: give the problems file)" : p.q));
  if (p.ch && p.ch.length) {
    const ol = el("ol", "choices");
    ol.type = "A";
    for (const c of p.ch) ol.append(el("li", null, c));
    box.append(ol);
  }
  box.append(field("gold", p.gold, "gold"));
  return box;
}

function thoughtPart(side, t, r) {
  const d = el("details", "thought");
  d.open = true;
  const bits = ["thought", fmtLength(side.n) + " " + unitLabel(r), side.rc + " reflection phrases"];
  if (side.w) bits.push(side.w + " forced Wait" + (side.w > 1 ? "s" : ""));
  if (side.bf) bits.push("budget reached");
  d.append(el("summary", null, bits.join(" · ")));
  if ((t.iv || []).some((iv) => iv[1] === "wait" && !iv[2])) d.append(el("p", "iv-note", IV_TEXT.guess));
  const body = el("div", "thought-text");
  body.append(markedText(t.t, t));
  d.append(body);
  return d;
}

function runPart(k, r) {
  const side = ITEMS[k].r[r];
  const col = el("div", "run-col");
  col.append(el("h3", null, RUNS[r].label));
  if (!side) {
    col.append(el("p", "hint", "no generation for this item in this run"));
    return col;
  }
  const t = texts(k)[r] || {};
  const verdict = el("div", "verdict");
  verdict.append(badge(side.v));
  if (side.b) verdict.append(el("span", "rule", "decided by " + side.b + (side.e ? ", answer found by " + side.e : "")));
  col.append(verdict, field("extracted", t.x === undefined ? side.x : t.x, "extracted"));
  if (t.d) col.append(field("why", t.d, "detail"));
  col.append(field("output", (side.st || "?") + ", finish: " + side.f, "status"));
  if (t.t !== null && t.t !== undefined) col.append(thoughtPart(side, t, r));
  if (t.s !== null && t.s !== undefined) {
    col.append(el("h4", null, "solution"), el("div", "solution", t.s));
  }
  if (t.raw !== null && t.raw !== undefined) {
    col.append(el("h4", null, t.t ? "raw output" : "output (no thought section)"), el("div", "raw", t.raw));
  }
  return col;
}

function renderItem(k) {
  const pane = $("item-pane");
  const runs = el("div", "runs-grid runs-" + NR);
  for (let r = 0; r < NR; r++) runs.append(runPart(k, r));
  pane.replaceChildren(problemPart(k), runs);
  pane.scrollTop = 0;
  pane.dataset.item = String(k);
}

// Opens item k: at once when its texts are read, else when they arrive (unless another item was opened meanwhile).
function openItem(k) {
  const pane = $("item-pane");
  const t0 = performance.now();
  const done = () => { document.body.dataset.itemMs = (performance.now() - t0).toFixed(1); };
  pane.dataset.want = String(k);
  if (textChunks.has(Math.floor(k / META.chunk)) || META.layout !== "folder") {
    loadTexts([k]);
    renderItem(k);
    done();
    return;
  }
  loadTexts([k]).catch((e) => showError(e.message)).then(() => {
    if (pane.dataset.want === String(k)) {
      renderItem(k);
      done();
    }
  });
}
