// The OmniMemory dashboard: a customer's usage (API key) or every key (admin key), drawn from
// the service's JSON endpoints. Rules this file keeps:
// - the key lives in this tab's sessionStorage and travels only in a request header
//   (Authorization: Bearer, or X-Admin-Key), never in a URL or a cookie;
// - every value from the service is written with textContent, never as markup;
// - paths are relative to /dashboard, so the page works behind a prefix too.
"use strict";

(function () {
  const STORE = "omnimemory.dashboard";
  const $ = (id) => document.getElementById(id);
  const numberFormat = new Intl.NumberFormat("en-US");
  const fmt = (n) => (n === null || n === undefined ? "unlimited" : numberFormat.format(n));
  const pct = (x) => (x * 100).toFixed(1) + "%";
  const utc = (ts) => (ts ? ts.replace("T", " ").slice(0, 19) : "never");
  const COLORS = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#9ca3af"];

  let session = null; // {role: "customer"|"operator", key}
  let days = 30;
  let daily = null;
  let stats = null;
  let tagGroups = [];
  let recentRecords = [];
  let keyId = "";
  const charts = {};
  let keys = [];
  let sort = { column: "key_id", ascending: true };

  class ApiFailure extends Error {
    constructor(status, detail, code) {
      super(detail);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, method) {
    const headers = { Accept: "application/json" };
    if (session.role === "operator") headers["X-Admin-Key"] = session.key;
    else headers.Authorization = "Bearer " + session.key;
    const response = await fetch(path, {
      method: method || "GET",
      headers,
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ApiFailure(response.status, (body && body.detail) || response.statusText, body && body.code);
    }
    return body;
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  // Each cell is labelled with its column's heading (the phone layout shows the label).
  function fillTable(table, rows) {
    const headings = [...table.tHead.rows[0].cells].map((th) => th.textContent);
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const cells of rows) {
      const tr = document.createElement("tr");
      cells.forEach((cell, i) => {
        let td;
        if (cell instanceof Node) {
          td = document.createElement("td");
          td.appendChild(cell);
        } else {
          const [text, className] = Array.isArray(cell) ? cell : [cell, ""];
          td = element("td", text, className);
        }
        td.dataset.label = headings[i] || "";
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
  }

  function setStatus(text) {
    $("status").textContent = text;
  }

  // ---- signing in and out ----

  function show(view) {
    for (const id of ["signin", "customer", "operator"]) $(id).hidden = id !== view;
    $("who").hidden = view === "signin";
  }

  function signOut() {
    sessionStorage.removeItem(STORE);
    session = null;
    for (const name of Object.keys(charts)) {
      charts[name].destroy();
      delete charts[name];
    }
    $("key-input").value = "";
    setStatus("");
    // No view is shown until the next sign-in has loaded its own numbers.
    delete document.body.dataset.view;
    show("signin");
  }

  async function signIn(candidate) {
    session = candidate;
    const started = performance.now();
    try {
      if (session.role === "operator") await loadOperator();
      else await loadCustomer();
    } catch (e) {
      const failed = session;
      session = null;
      sessionStorage.removeItem(STORE);
      show("signin");
      let message = e.message;
      if (e.status === 403 && failed.role === "operator") message = "That is not the admin key (" + e.message + ").";
      else if (e.status === 401) message = "That key was refused: " + e.message;
      $("signin-error").textContent = message;
      return;
    }
    sessionStorage.setItem(STORE, JSON.stringify(session));
    $("signin-error").textContent = "";
    reportTime(started);
  }

  function reportTime(started) {
    const ms = Math.round(performance.now() - started);
    document.body.dataset.loadMs = String(ms);
    setStatus("Loaded in " + ms + " ms.");
  }

  // ---- the customer's view ----

  async function loadCustomer() {
    const [quota] = await Promise.all([api("usage/quota"), loadRange()]);
    keyId = quota.key_id;
    renderQuota(quota);
    $("who-text").textContent = quota.user_id + " · " + quota.key_id;
    show("customer");
    drawRange();
    document.body.dataset.view = "customer";
  }

  function renderQuota(q) {
    const usage = q.quota.usage;
    const rate = q.quota.rate_limit;
    $("quota-period").textContent = usage.period;
    $("quota-used").textContent = fmt(usage.current_usage);
    $("quota-reserved").textContent = fmt(usage.reserved);
    $("quota-remaining").textContent = fmt(usage.remaining);
    $("quota-limit").textContent = fmt(usage.monthly_limit);
    $("quota-resets").textContent = utc(usage.resets_at) + " UTC";
    const limit = usage.monthly_limit;
    // Any use at all shows as a sliver, however small its share.
    const share = (n) => (limit && n > 0 ? Math.max(0.5, Math.min(100, (n * 100) / limit)) : 0);
    $("gauge-used").style.width = share(usage.current_usage) + "%";
    $("gauge-reserved").style.width = Math.min(100 - share(usage.current_usage), share(usage.reserved)) + "%";
    const caption = limit === null ? "No monthly limit" : usage.usage_percent.toFixed(1) + "% of the monthly limit used";
    $("quota-percent").textContent = caption;
    $("quota-gauge").setAttribute("aria-label", caption);
    $("tier").textContent = q.tier;
    $("requests-available").textContent = fmt(rate.requests_available) + " of " + fmt(rate.burst);
    $("requests-rate").textContent = rate.requests_per_second + " per second";
    $("tokens-available").textContent = rate.unlimited
      ? "unlimited"
      : fmt(rate.tokens_available) + " of " + fmt(rate.tokens_capacity);
    $("tokens-rate").textContent = rate.unlimited ? "unlimited" : rate.refill_rate + " per second";
  }

  // Fetches the range's figures; drawRange shows them (once the view is visible, so the
  // charts get their size). The days first: they name the tags, and one /usage/stats with
  // group_by then answers both the totals by model and the chosen tag's breakdown.
  async function loadRange() {
    const [d, recent] = await Promise.all([api("usage/daily?days=" + days), api("usage/recent?limit=20")]);
    const select = $("tag-select");
    const previous = select.value;
    select.replaceChildren();
    for (const tag of d.tags) select.appendChild(element("option", tag.name));
    if (d.tags.some((t) => t.name === previous)) select.value = previous;
    const s = await api(statsPath());
    daily = d;
    stats = s;
    recentRecords = recent.requests;
    tagGroups = s.groups || [];
  }

  function statsPath() {
    const tag = $("tag-select").value;
    return "usage/stats?days=" + days + (tag ? "&group_by=" + encodeURIComponent(tag) : "");
  }

  function drawRange() {
    for (const button of document.querySelectorAll(".range-button")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.days) === days));
    }
    $("range-text").textContent = "last " + days + " days";
    const t = daily.totals;
    $("total-requests").textContent = fmt(t.requests);
    $("total-in").textContent = fmt(t.original_tokens);
    $("total-out").textContent = fmt(t.compressed_tokens);
    $("total-saved").textContent = fmt(t.tokens_saved);
    $("avg-ratio").textContent = pct(stats.stats.avg_compression_ratio);
    $("avg-quality").textContent = stats.stats.avg_quality_score.toFixed(3);

    const labels = daily.daily.map((d) => d.date);
    chart("tokens", "line", labels, [
      { label: "Tokens in", data: daily.daily.map((d) => d.original_tokens), borderColor: COLORS[0], backgroundColor: COLORS[0] },
      { label: "Tokens out", data: daily.daily.map((d) => d.compressed_tokens), borderColor: COLORS[2], backgroundColor: COLORS[2] },
      { label: "Tokens saved", data: daily.daily.map((d) => d.tokens_saved), borderColor: COLORS[1], backgroundColor: COLORS[1] },
    ]);
    chart("requests", "bar", labels, [
      { label: "Requests", data: daily.daily.map((d) => d.requests), backgroundColor: COLORS[0] },
    ]);

    const models = stats.stats.by_model;
    chart("models", "doughnut", models.map((m) => m.model_id), [
      { label: "Requests", data: models.map((m) => m.count), backgroundColor: models.map((_, i) => COLORS[i % COLORS.length]) },
    ]);
    fillTable($("models-table"), models.map((m) => [m.model_id, [fmt(m.count), "num"], [fmt(m.tokens_saved), "num"]]));
    $("no-tags").hidden = daily.tags.length > 0;
    $("tag-select").hidden = daily.tags.length === 0;
    renderTags(tagGroups);
    renderRecent(recentRecords);
  }

  function renderTags(groups) {
    const label = (g) => (g.value === null ? "(untagged)" : g.value);
    chart("tags", "bar", groups.map(label), [
      { label: "Tokens in", data: groups.map((g) => g.original_tokens), backgroundColor: COLORS[0] },
      { label: "Tokens saved", data: groups.map((g) => g.tokens_saved), backgroundColor: COLORS[1] },
    ], { indexAxis: "y" });
    fillTable($("tags-table"), groups.map((g) => [
      label(g), [fmt(g.count), "num"], [fmt(g.original_tokens), "num"], [fmt(g.tokens_saved), "num"],
    ]));
  }

  function renderRecent(records) {
    fillTable($("recent-table"), records.map((r) => [
      utc(r.timestamp),
      r.model_id,
      [fmt(r.original_tokens), "num"],
      [fmt(r.compressed_tokens), "num"],
      [pct(r.compression_ratio), "num"],
      [r.quality_score === null ? "–" : r.quality_score.toFixed(3), "num"],
      Object.entries(r.metadata).map(([k, v]) => k + "=" + v).join(", "),
    ]));
  }

  // Charts are made once and then given new data; Chart.js writes labels onto the canvas,
  // never into the document, so a tag value stays text.
  function chart(name, type, labels, datasets, extra) {
    const existing = charts[name];
    if (existing) {
      existing.data.labels = labels;
      existing.data.datasets = datasets;
      existing.update("none");
      return;
    }
    const options = Object.assign(
      {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { position: "bottom" } },
      },
      extra || {},
    );
    if (type !== "doughnut") options.scales = { y: { beginAtZero: true }, x: { beginAtZero: true } };
    charts[name] = new Chart($("chart-" + name), { type, data: { labels, datasets }, options });
  }

  function downloadCsv() {
    const lines = ["date,requests,tokens_in,tokens_out,tokens_saved"];
    for (const d of daily.daily) {
      lines.push([d.date, d.requests, d.original_tokens, d.compressed_tokens, d.tokens_saved].join(","));
    }
    const blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "omnimemory-usage-" + keyId + "-" + days + "d.csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  // ---- the operator's view ----

  async function loadOperator() {
    const answer = await api("admin/keys");
    keys = answer.keys;
    $("keys-period").textContent = answer.period + " · " + answer.count + " keys";
    $("who-text").textContent = "operator";
    show("operator");
    renderKeys();
    document.body.dataset.view = "operator";
  }

  function compare(a, b) {
    const x = a[sort.column];
    const y = b[sort.column];
    // Unlimited and never-used sort after every figure.
    if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
    if (y === null || y === undefined) return -1;
    const order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
    return sort.ascending ? order : -order;
  }

  function renderKeys() {
    for (const th of document.querySelectorAll("#keys-table th[data-sort]")) {
      const active = th.dataset.sort === sort.column;
      th.setAttribute("aria-sort", active ? (sort.ascending ? "ascending" : "descending") : "none");
    }
    const sorted = keys.slice().sort(compare);
    fillTable($("keys-table"), sorted.map((k) => {
      const action = element("button", k.active ? "Deactivate" : "Activate", k.active ? "danger small" : "small");
      action.type = "button";
      action.addEventListener("click", () => confirmToggle(k));
      return [
        k.key_id,
        k.user_id,
        k.tier,
        [k.status, "status-" + k.status],
        [fmt(k.used), "num"],
        [fmt(k.monthly_limit), "num"],
        [k.usage_percent === null ? "–" : k.usage_percent.toFixed(1) + "%", "num"],
        utc(k.last_used_at),
        action,
      ];
    }));
  }

  function confirmToggle(k) {
    const verb = k.active ? "Deactivate" : "Activate";
    const dialog = $("confirm");
    $("confirm-text").textContent = k.active
      ? "Deactivate " + k.key_id + " (user " + k.user_id + ")? Requests with this key are refused from now on."
      : "Activate " + k.key_id + " (user " + k.user_id + ") again?";
    $("confirm-ok").textContent = verb;
    $("confirm-ok").onclick = async () => {
      dialog.close();
      try {
        const updated = await api("admin/keys/" + encodeURIComponent(k.key_id) + "/" + verb.toLowerCase(), "POST");
        keys = keys.map((old) => (old.key_id === updated.key_id ? updated : old));
        renderKeys();
        setStatus(updated.key_id + " is " + updated.status + ".");
      } catch (e) {
        setStatus(verb + " failed: " + e.message);
      }
    };
    $("confirm-cancel").onclick = () => dialog.close();
    dialog.showModal();
  }

  // ---- wiring ----

  function wire() {
    $("signin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const role = document.querySelector("input[name=role]:checked").value;
      const key = $("key-input").value.trim();
      $("key-input").value = "";
      if (key) signIn({ role, key });
    });
    for (const radio of document.querySelectorAll("input[name=role]")) {
      radio.addEventListener("change", () => {
        const operator = document.querySelector("input[name=role]:checked").value === "operator";
        $("key-label").textContent = operator ? "Admin key" : "API key";
        $("key-input").placeholder = operator ? "OMNIMEMORY_ADMIN_KEY" : "om_pro_…";
      });
    }
    $("sign-out").addEventListener("click", signOut);
    for (const button of document.querySelectorAll(".range-button")) {
      button.addEventListener("click", async () => {
        days = Number(button.dataset.days);
        const started = performance.now();
        try {
          await loadRange();
          drawRange();
          reportTime(started);
        } catch (e) {
          setStatus("Could not load the range: " + e.message);
        }
      });
    }
    $("tag-select").addEventListener("change", async () => {
      try {
        tagGroups = (await api(statsPath())).groups || [];
        renderTags(tagGroups);
      } catch (e) {
        setStatus("Could not load the tag: " + e.message);
      }
    });
    $("csv").addEventListener("click", downloadCsv);
    for (const th of document.querySelectorAll("#keys-table th[data-sort]")) {
      th.querySelector("button").addEventListener("click", () => {
        sort = { column: th.dataset.sort, ascending: sort.column === th.dataset.sort ? !sort.ascending : true };
        renderKeys();
      });
    }
  }

  wire();
  const saved = sessionStorage.getItem(STORE);
  let restored = null;
  try {
    restored = saved ? JSON.parse(saved) : null;
  } catch (_) {
    restored = null;
  }
  if (restored && restored.key) signIn(restored);
  else show("signin");
})();
