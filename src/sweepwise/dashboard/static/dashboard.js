// sweepwise dashboard: draws the page's plots, and on an experiment page keeps the progress,
// the runs table and the plots current by polling (docs/dashboard.md). Every value from runs is
// put in the page with textContent or as a form value, never as markup.
(function () {
  "use strict";
  var PLOT_CONFIG = { responsive: true, displaylogo: false };

  function readJson(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  function drawFigures(figures) {
    var drawing = Object.keys(figures).map(function (id) {
      var element = document.getElementById(id);
      if (!element) return Promise.resolve();
      return Plotly.react(element, figures[id].data, figures[id].layout, PLOT_CONFIG);
    });
    return Promise.all(drawing).then(function () {
      document.body.dataset.plotsDrawn = String(Number(document.body.dataset.plotsDrawn || 0) + 1);
    });
  }

  function formatted(value) {
    if (value === null || value === undefined) return "-";
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function cell(row, text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function hidden(form, name, value) {
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }

  function experimentPage(page) {
    var query = Object.assign({}, page.query);
    var seq = page.seq;
    var body = document.getElementById("runs-body");
    var here = "/experiments/" + encodeURIComponent(page.experiment);

    function queryString() {
      var params = new URLSearchParams();
      Object.keys(query).forEach(function (key) { if (query[key] !== "" && query[key] !== null) params.set(key, query[key]); });
      return params.toString();
    }

    function renderTable(table) {
      var rows = document.createDocumentFragment();
      table.rows.forEach(function (run) {
        var tr = document.createElement("tr");
        tr.dataset.run = run.run_id;
        tr.dataset.status = run.status;
        var link = document.createElement("a");
        link.href = "/runs/" + encodeURIComponent(run.run_id);
        link.textContent = run.run_id;
        cell(tr, "").appendChild(link);
        cell(tr, run.status_label, "status status-" + run.status);
        cell(tr, run.train_state);
        cell(tr, run.eval_state);
        page.parameters.forEach(function (name) { cell(tr, formatted(run.suggestion[name])); });
        cell(tr, formatted(run.score));
        cell(tr, formatted(run.cost));
        cell(tr, formatted(run.runtime));
        var actions = cell(tr, "");
        if (!run.finished) {
          var form = document.createElement("form");
          form.method = "post";
          form.action = "/cancel";
          form.className = "cancel";
          hidden(form, "target", run.run_id);
          hidden(form, "kind", "run");
          hidden(form, "token", page.action_token);
          hidden(form, "next", here);
          var button = document.createElement("button");
          button.type = "submit";
          button.textContent = "Cancel";
          form.appendChild(button);
          actions.appendChild(form);
        }
        rows.appendChild(tr);
      });
      body.replaceChildren(rows);
      document.getElementById("page").textContent = table.page;
      document.getElementById("pages").textContent = table.pages;
      document.getElementById("matching").textContent = table.total;
      query.page = table.page;
      document.querySelectorAll("#runs th[data-sort]").forEach(function (th) {
        var label = th.querySelector("a");
        label.textContent = label.textContent.replace(/ [▲▼]$/, "") + (th.dataset.sort === table.sort ? (table.order === "desc" ? " ▼" : " ▲") : "");
      });
    }

    function loadTable() {
      history.replaceState(null, "", here + "?" + queryString());
      return fetch(here + "/runs?" + queryString(), { headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (table) { if (table.rows) renderTable(table); });
    }

    var polling = false;

    function poll() {
      if (polling) return;  // a large experiment's plots may take longer than one interval
      polling = true;
      fetch(here + "/live?seq=" + encodeURIComponent(seq) + "&" + queryString(), { headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (live) {
          if (!live) return;
          document.getElementById("finished").textContent = live.progress.finished;
          document.getElementById("total").textContent = live.progress.total;
          document.getElementById("running").textContent = live.progress.running;
          document.getElementById("failed").textContent = live.progress.failed;
          document.getElementById("best").textContent = formatted(live.best_score);
          document.getElementById("cost").textContent = formatted(live.total_cost);
          var status = document.getElementById("experiment-status");
          status.textContent = live.status;
          status.className = "status status-" + live.status;
          renderTable(live.table);
          if (live.figures) { seq = live.seq; drawFigures(live.figures); }
          document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
        })
        .catch(function () { /* the next poll tries again */ })
        .then(function () { polling = false; });
    }

    document.querySelectorAll("#runs th[data-sort] a").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        var key = link.parentElement.dataset.sort;
        query.order = query.sort === key && query.order === "desc" ? "asc" : "desc";
        query.sort = key;
        query.page = 1;
        loadTable();
      });
    });
    document.getElementById("table-controls").addEventListener("submit", function (event) {
      event.preventDefault();
      var form = event.target;
      query.status = form.elements.status.value;
      query.q = form.elements.q.value;
      query.per_page = form.elements.per_page.value;
      query.page = 1;
      loadTable();
    });
    document.getElementById("prev").addEventListener("click", function () { if (query.page > 1) { query.page -= 1; loadTable(); } });
    document.getElementById("next").addEventListener("click", function () { query.page = Number(query.page) + 1; loadTable(); });
    poll();  // brings the plots at once
    window.setInterval(poll, page.poll_ms);
  }

  var figures = readJson("figures");
  if (figures) drawFigures(figures);
  var page = readJson("page-data");
  if (page) experimentPage(page);
})();
