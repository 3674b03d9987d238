// The answers grid of an llmcompare report: built from the JSON blob, no network, no library.
// Model output is hostile: it only ever reaches the page through textContent, never innerHTML.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var PAGE = 200;
  var state = { sort: null, desc: false, shown: PAGE, open: {} };
  var body = document.getElementById("grid-body");
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmt(v, d) { return v === null || v === undefined ? "-" : Number(v).toFixed(d === undefined ? 2 : d); }
  function badgeClass(v) { return v === null || v === undefined ? "none" : v >= 0.99 ? "good" : v > 0 ? "mid" : "bad"; }
  function failed(item, m) { return item.c[m].some(function (r) { return r.e !== undefined; }); }
  // A failure counts as 0 here: a model that failed an item another answered disagrees with it.
  function itemScore(item, m) { var v = item.m[m]; return v === null || v === undefined ? (failed(item, m) ? 0 : null) : v; }

  // Header: the item column, then one per model; a click sorts, a second click reverses.
  var head = $("grid-head");
  var cols = [{ key: "id", label: "item" }].concat(D.models.map(function (m, i) { return { key: i, label: m }; }));
  cols.forEach(function (c) {
    var th = el("th", null, c.label);
    th.dataset.col = String(c.key);
    th.title = c.key === "id" ? "sort by item id" : "sort by this model's score";
    th.addEventListener("click", function () {
      if (state.sort === c.key) state.desc = !state.desc; else { state.sort = c.key; state.desc = false; }
      state.shown = PAGE;
      draw();
    });
    head.appendChild(th);
  });
  D.tags.forEach(function (t) { var o = el("option", null, t); o.value = t; $("f-tag").appendChild(o); });
  D.scorers.forEach(function (s) { var o = el("option", null, s); o.value = s; $("f-scorer").appendChild(o); });
  ["f-disagree", "f-failure", "f-tag", "f-scorer", "f-threshold", "f-search"].forEach(function (id) {
    $(id).addEventListener("input", function () { state.shown = PAGE; draw(); });
  });
  $("more").addEventListener("click", function () { state.shown += PAGE; draw(); });

  function matches(item) {
    var n = D.models.length, m;
    if ($("f-disagree").checked) {
      var seen = {}, k = 0;
      for (m = 0; m < n; m++) { var v = itemScore(item, m); var key = v === null ? "none" : v.toFixed(6); if (!seen[key]) { seen[key] = 1; k++; } }
      if (k < 2) return false;
    }
    if ($("f-failure").checked) {
      var any = false;
      for (m = 0; m < n; m++) if (failed(item, m)) any = true;
      if (!any) return false;
    }
    var tag = $("f-tag").value;
    if (tag && item.t.indexOf(tag) < 0) return false;
    var scorer = $("f-scorer").value;
    if (scorer) {
      var limit = parseFloat($("f-threshold").value), below = false;
      item.c.forEach(function (rows) { rows.forEach(function (r) { var s = r.s && r.s[scorer]; if (s !== undefined && s !== null && s < limit) below = true; }); });
      if (!below) return false;
    }
    var q = $("f-search").value.trim().toLowerCase();
    if (q) {
      var hay = [item.id, item.p, item.r || ""];
      item.c.forEach(function (rows) { rows.forEach(function (r) { hay.push(r.a || r.e || ""); }); });
      if (hay.join("\n").toLowerCase().indexOf(q) < 0) return false;
    }
    return true;
  }

  function sorted(items) {
    if (state.sort === null) return items;
    var key = state.sort, sign = state.desc ? -1 : 1;
    return items.slice().sort(function (a, b) {
      if (key === "id") return sign * (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
      var x = itemScore(a, key), y = itemScore(b, key);
      if (x === null && y === null) return 0;
      if (x === null) return 1;  // unscored items last either way
      if (y === null) return -1;
      return sign * (x - y) || (a.id < b.id ? -1 : 1);
    });
  }

  function cell(item, m) {
    var td = el("td");
    var rows = item.c[m];
    var v = item.m[m];
    td.appendChild(el("span", "badge " + badgeClass(v), v === null || v === undefined ? "no score" : fmt(v)));
    rows.forEach(function (r) {
      if (r.s) Object.keys(r.s).forEach(function (k) {
        if (rows.length === 1 && D.scorers.length > 1) td.appendChild(el("span", "badge " + badgeClass(r.s[k]), k + " " + fmt(r.s[k])));
      });
    });
    judgedBadges(item, m).forEach(function (b) { td.appendChild(b); });
    var first = rows[0];
    if (!first) { td.appendChild(el("div", "dim", "not run")); return td; }
    td.appendChild(first.e !== undefined ? el("div", "ans err", first.e) : el("div", "ans", first.a));
    if (rows.length > 1) td.appendChild(el("div", "dim", rows.length + " samples"));
    return td;
  }

  // The judge's verdicts on an item, as this model's column sees them: won, lost, tied.
  function judgedBadges(item, m) {
    if (!item.v) return [];
    var won = 0, lost = 0, tied = 0, odd = 0;
    item.v.forEach(function (v) {
      if (v.a !== m && v.b !== m) return;
      if (v.i) odd++;
      if (v.w === "tie") tied++;
      else if ((v.w === "a") === (v.a === m) && v.w) won++;
      else if (v.w) lost++;
    });
    var out = [];
    if (D.models.length === 2) {
      if (won) out.push(el("span", "badge good judged", "judged better"));
      if (lost) out.push(el("span", "badge bad judged", "judged worse"));
      if (tied) out.push(el("span", "badge mid judged", "judged a tie"));
    } else if (won + lost + tied) {
      out.push(el("span", "badge none judged", "judge: " + won + " won, " + lost + " lost, " + tied + " tied"));
    }
    if (odd) out.push(el("span", "badge bad inconsistent", "inconsistent"));
    return out;
  }

  function verdicts(item) {
    var box = el("div", "verdicts");
    box.appendChild(el("h4", null, "Verdicts"));
    item.v.forEach(function (v) {
      var win = v.w === "a" ? D.models[v.a] + " better" : v.w === "b" ? D.models[v.b] + " better" : v.w === "tie" ? "tie" : "no verdict";
      var line = el("div", "verdict-line" + (v.i ? " inconsistent" : ""));
      line.appendChild(el("strong", null, D.models[v.a] + " vs " + D.models[v.b] + ": " + win));
      if (v.i) line.appendChild(el("span", "badge bad inconsistent", "inconsistent: the verdict flipped with the order"));
      box.appendChild(line);
      v.c.forEach(function (c) {
        var det = el("details");
        var what = c.e ? "no verdict" : c.g !== null && c.g !== undefined ? "grade " + c.g : "said " + c.d;
        var shown = c.f === null || c.f === undefined ? "" : (c.g !== null && c.g !== undefined ? ", graded " : ", shown first: ") + D.models[c.f];
        det.appendChild(el("summary", null, c.j + shown + ": " + what));
        det.appendChild(el("pre", c.e ? "err" : null, c.e || c.r));
        box.appendChild(det);
      });
    });
    return box;
  }

  function dl(pairs) {
    var d = el("dl");
    pairs.forEach(function (p) { if (p[1] === null || p[1] === undefined || p[1] === "") return; d.appendChild(el("dt", null, p[0])); d.appendChild(el("dd", null, p[1])); });
    return d;
  }

  function detail(item) {
    var tr = el("tr", "detail"), td = el("td");
    td.colSpan = D.models.length + 1;
    td.appendChild(el("h4", null, "Prompt"));
    td.appendChild(el("pre", null, item.p));
    if (item.r !== null && item.r !== undefined) { td.appendChild(el("h4", null, "Reference")); td.appendChild(el("pre", null, item.r)); }
    var grid = el("div", "answers");
    grid.style.gridTemplateColumns = "repeat(" + D.models.length + ", minmax(0, 1fr))";
    D.models.forEach(function (model, m) {
      var box = el("div");
      box.appendChild(el("h4", null, model));
      item.c[m].forEach(function (r) {
        if (item.c[m].length > 1) box.appendChild(el("div", "dim", "sample " + (r.sm || 0)));
        box.appendChild(r.e !== undefined ? el("pre", "err", r.e) : el("pre", null, r.a));
        var sent = r.sn === undefined ? null : D.sent[r.sn];
        var u = r.u;
        box.appendChild(dl([
          ["scores", r.s ? Object.keys(r.s).map(function (k) { return k + " = " + fmt(r.s[k]); }).join(", ") : null],
          ["finish", r.fr],
          ["usage", u ? u[0] + " in (" + u[2] + " cached), " + u[1] + " out (" + u[3] + " reasoning)" + (r.ue ? ", estimated" : "") : null],
          ["latency", r.l === undefined ? null : fmt(r.l, 3) + " s"],
          ["first token", r.f === undefined ? null : fmt(r.f, 3) + " s"],
          ["attempts", r.at],
          ["cost", r.c === undefined ? null : "$" + r.c + " (" + r.cs + ")" + (r.k !== undefined ? ", " + r.k + " kWh" : "")],
          ["assumptions", r.as === undefined ? null : D.assume[r.as]],
          ["cached", r.ch ? "from the response cache: nothing sent or spent" : null],
          ["request as sent", sent ? JSON.stringify(sent.params) : null],
          ["differences", sent && sent.notes.length ? sent.notes.join("; ") : null]
        ]));
      });
      grid.appendChild(box);
    });
    td.appendChild(grid);
    if (item.v && item.v.length) td.appendChild(verdicts(item));
    tr.appendChild(td);
    return tr;
  }

  function draw() {
    Array.prototype.forEach.call(head.children, function (th) {
      th.classList.remove("sorted-asc", "sorted-desc");
      if (String(state.sort) === th.dataset.col) th.classList.add(state.desc ? "sorted-desc" : "sorted-asc");
    });
    var shown = sorted(D.items.filter(matches));
    var frag = document.createDocumentFragment();
    shown.slice(0, state.shown).forEach(function (item) {
      var tr = el("tr", "item");
      tr.dataset.id = item.id;
      var first = el("td");
      first.appendChild(el("div", null, item.id));
      item.t.forEach(function (t) { first.appendChild(el("span", "tag", t)); });
      tr.appendChild(first);
      D.models.forEach(function (_, m) { tr.appendChild(cell(item, m)); });
      tr.addEventListener("click", function () { state.open[item.id] = !state.open[item.id]; draw(); });
      frag.appendChild(tr);
      if (state.open[item.id]) frag.appendChild(detail(item));
    });
    body.replaceChildren(frag);
    $("count").textContent = "showing " + Math.min(state.shown, shown.length) + " of " + shown.length + " items (" + D.items.length + " in all)";
    $("more").hidden = shown.length <= state.shown;
  }
  draw();
})();
