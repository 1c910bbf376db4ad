// Tollgate operator console: a page over the admin API (/admin/api/v1/). It holds no rule
// of its own: every figure, check and change is the API's (the control layer's, as the
// CLI's). The admin credential is held by this page (sessionStorage, this tab only) and
// sent as a Bearer token; the API never reads cookies, so another site cannot make the
// browser act for the operator. Every text is set as text, never parsed as HTML.
"use strict";

// The API beside this page, under whatever prefix serves it (`/admin/`, or `/prod/admin/`
// behind API Gateway's stage).
const API = location.pathname.replace(/admin\/[^/]*$/, "admin/api/v1");
const TOKEN_KEY = "tollgate.console.credential";
const SVG_NS = "http://www.w3.org/2000/svg";

const state = { token: sessionStorage.getItem(TOKEN_KEY), session: null, route: null };

// ---- DOM helpers ---------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attrs);
  append(element, children);
  return element;
}

function s(tag, attrs, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  setAttributes(element, attrs);
  append(element, children);
  return element;
}

function setAttributes(element, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "text") element.textContent = String(value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function main() {
  return document.getElementById("main");
}

function say(message) {
  const status = document.getElementById("status");
  status.textContent = message;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { status.textContent = ""; }, 6000);
}

// ---- formatting (presentation only) ----------------------------------------------------

const integer = new Intl.NumberFormat("en-US");

function count(value) {
  return integer.format(value || 0);
}

function compact(value) {
  const units = [[1e9, "B"], [1e6, "M"], [1e3, "k"]];
  for (const [size, suffix] of units) {
    if (Math.abs(value) >= size) return `${+(value / size).toFixed(1)}${suffix}`;
  }
  return `${+value.toFixed(2)}`;
}

function money(amount) {
  return amount ? `${amount.amount} ${amount.currency}` : "—";
}

function moneyList(list) {
  return list && list.length ? list.map(money).join(" + ") : "—";
}

function when(text) {
  return text ? text.replace("T", " ").replace(/(\.\d+)?Z$/, " UTC") : "—";
}

function hourLabel(iso) {
  return iso.slice(11, 16);
}

function dayLabel(iso) {
  return iso.slice(5, 10);
}

// ---- the API -------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `the admin API answered ${status}`);
    this.status = status;
    this.code = error.code;
    this.field = error.field;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method === "POST") headers["Idempotency-Key"] = crypto.randomUUID();
  const response = await fetch(`${API}${path}`, init);
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch (_) { parsed = null; }
  if (!response.ok) {
    const failure = new ApiFailure(response.status, parsed);
    if (response.status === 401 && path !== "/session") signOut(failure.message);
    throw failure;
  }
  return parsed;
}

function mayWrite() {
  return Boolean(state.session && state.session.may_write);
}

// ---- sign in -------------------------------------------------------------------------

function signOut(message) {
  state.token = null;
  state.session = null;
  sessionStorage.removeItem(TOKEN_KEY);
  renderSignIn(message);
}

function renderSignIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  const input = h("input", { type: "password", id: "credential", name: "credential",
    autocomplete: "off", required: true, "aria-describedby": "credential-hint" });
  const error = h("p", { class: "error", id: "signin-error", role: "alert", text: message || "" });
  const form = h("form", { class: "panel signin", id: "signin", onsubmit: async (event) => {
    event.preventDefault();
    state.token = input.value.trim();
    try {
      state.session = await api("GET", "/session");
      sessionStorage.setItem(TOKEN_KEY, state.token);
      route();
    } catch (failure) {
      state.token = null;
      error.textContent = failure.message;
      input.focus();
    }
  } },
  h("h1", { text: "Sign in" }),
  h("label", { for: "credential" }, "Admin credential",
    h("span", { class: "hint", id: "credential-hint",
      text: "A token from `tollgate admin-token --name NAME` (role admin or viewer). It stays in this tab only." })),
  input, error,
  h("div", { class: "actions" }, h("button", { type: "submit", text: "Sign in" })));
  main().replaceChildren(form);
  input.focus();
}

// ---- routing -------------------------------------------------------------------------

const routes = [
  [/^#?\/?$/, "overview", viewOverview],
  [/^#\/customers$/, "customers", viewCustomers],
  [/^#\/customers\/([A-Za-z0-9_.-]+)$/, "customers", viewCustomer],
  [/^#\/new$/, "new", viewCreate],
  [/^#\/alerts$/, "alerts", viewAlerts],
  [/^#\/quarantine$/, "quarantine", viewQuarantine],
];

async function route() {
  if (!state.token) return renderSignIn();
  if (!state.session) {
    try { state.session = await api("GET", "/session"); } catch (failure) { return signOut(failure.message); }
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("who").hidden = false;
  document.getElementById("who-name").textContent =
    `${state.session.name} (${state.session.role})`;
  for (const item of document.querySelectorAll("[data-write]")) item.hidden = !mayWrite();
  const hash = location.hash || "#/";
  const match = routes.map(([pattern, nav, view]) => [hash.match(pattern), nav, view])
    .find(([found]) => found);
  const [found, nav, view] = match || [null, "overview", viewNotFound];
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const target = main();
  target.replaceChildren(h("p", { text: "Loading…" }));
  try {
    await view(target, ...(found ? found.slice(1) : []));
  } catch (failure) {
    target.replaceChildren(h("h1", { text: "Something went wrong" }),
      h("p", { class: "error", role: "alert", text: failure.message }));
  }
  document.body.dataset.view = nav;
  document.body.dataset.ready = String(Date.now());
}

function viewNotFound(target) {
  target.replaceChildren(h("h1", { text: "Not found" }),
    h("p", {}, "There is no such page. ", h("a", { href: "#/", text: "Back to the overview" })));
}

// ---- charts: our own small SVG line chart --------------------------------------------

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const steps = [1, 2, 2.5, 5, 10].map((step) => step * power);
  return steps.find((step) => step >= value) || value;
}

function lineChart({ id, title, points, lines, label, format }) {
  const width = 480, height = 210, left = 48, right = 22, top = 10, bottom = 26;
  const plotWidth = width - left - right, plotHeight = height - top - bottom;
  const values = points.flatMap((point) => lines.map((line) => Number(point[line.key]) || 0));
  const max = niceMax(Math.max(0, ...values));
  const x = (index) => left + (points.length <= 1 ? plotWidth / 2 : (index * plotWidth) / (points.length - 1));
  const y = (value) => top + plotHeight - (value / max) * plotHeight;
  const svg = s("svg", { class: "plot", viewBox: `0 0 ${width} ${height}`, role: "img",
    tabindex: 0, "aria-label": `${title}: use the arrow keys to read each point`, id });
  const grid = s("g", { class: "grid" });
  for (let tick = 0; tick <= 4; tick += 1) {
    const value = (max * tick) / 4;
    grid.append(s("line", { x1: left, x2: width - right, y1: y(value), y2: y(value) }),
      s("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end", text: format(value) }));
  }
  svg.append(grid);
  const every = Math.max(1, Math.ceil(points.length / 8));
  points.forEach((point, index) => {
    const last = index === points.length - 1 && index % every >= every * 0.75;
    if (index % every === 0 || last) {
      svg.append(s("text", { x: x(index), y: height - 8, "text-anchor": "middle", text: label(point.at) }));
    }
  });
  lines.forEach((line, order) => {
    const path = points.map((point, index) =>
      `${index ? "L" : "M"}${x(index).toFixed(1)},${y(Number(point[line.key]) || 0).toFixed(1)}`).join(" ");
    svg.append(s("path", { class: `line s${order + 1}`, d: path, "data-series": line.key }));
  });
  const cursor = s("line", { class: "cursor", y1: top, y2: top + plotHeight, visibility: "hidden" });
  svg.append(cursor);
  const tip = h("p", { class: "tip", "aria-live": "polite", id: `${id}-tip` });
  const describe = (index) => {
    const point = points[index];
    return `${label(point.at, true)}: ${lines.map((line) => `${line.label} ${line.show ? line.show(point[line.key]) : count(point[line.key])}`).join(", ")}`;
  };
  let current = points.length - 1;
  const show = (index) => {
    current = Math.max(0, Math.min(points.length - 1, index));
    cursor.setAttribute("x1", x(current));
    cursor.setAttribute("x2", x(current));
    cursor.setAttribute("visibility", "visible");
    tip.textContent = describe(current);
  };
  const slot = points.length > 1 ? plotWidth / (points.length - 1) : plotWidth;
  points.forEach((point, index) => {
    const hover = s("rect", { class: "hover", x: x(index) - slot / 2, y: top, width: slot,
      height: plotHeight, onmouseenter: () => show(index) }, s("title", { text: describe(index) }));
    svg.append(hover);
  });
  svg.addEventListener("keydown", (event) => {
    if (event.key === "ArrowLeft") { show(current - 1); event.preventDefault(); }
    if (event.key === "ArrowRight") { show(current + 1); event.preventDefault(); }
  });
  svg.addEventListener("focus", () => show(current));
  const legend = lines.map((line, order) => h("span", { class: "legend" },
    s("svg", { class: "swatch", viewBox: "0 0 10 10", "aria-hidden": "true" },
      s("rect", { class: `swatch s${order + 1}`, width: 10, height: 10 })), line.label));
  return h("figure", { class: "chart" }, h("figcaption", {}, h("strong", { text: title }), legend), svg, tip);
}

function chartPanel(points, granularity, currency, unpriced) {
  const label = granularity === "hour"
    ? (iso, long) => (long ? when(iso).replace(":00 UTC", ":00 UTC") : hourLabel(iso))
    : (iso, long) => (long ? iso.slice(0, 10) : dayLabel(iso));
  const charts = [
    lineChart({ id: "chart-calls", title: "Calls", points, label, format: compact,
      lines: [{ key: "calls", label: "Calls" }, { key: "errors", label: "Errors" },
        { key: "rejected", label: "Limit rejections" }] }),
    lineChart({ id: "chart-tokens", title: "Tokens (input + output)", points, label, format: compact,
      lines: [{ key: "tokens", label: "Tokens" }] }),
  ];
  if (granularity === "day" && currency) {
    charts.push(lineChart({ id: "chart-cost", title: `Bedrock cost per day (${currency})`, points, label,
      format: (value) => value.toFixed(2),
      lines: [{ key: "cost", label: "Cost", show: (value) => `${value} ${currency}` }] }));
    if (unpriced.length) {
      charts.push(h("p", { class: "note", text: `Unpriced models, left out of the cost: ${unpriced.join(", ")}` }));
    }
  } else if (granularity === "hour") {
    charts.push(h("p", { class: "note", text: "Cost is shown per day: hourly counters do not keep the model." }));
  }
  return charts;
}

function rangeQuery(range, today) {
  if (range === "24h") return "granularity=hour&hours=24";
  const days = Number(range.replace("d", ""));
  const start = new Date(`${today}T00:00:00Z`);
  start.setUTCDate(start.getUTCDate() - (days - 1));
  return `granularity=day&start_date=${start.toISOString().slice(0, 10)}&end_date=${today}`;
}

function rangePicker(onChange, initial) {
  const select = h("select", { id: "range", onchange: () => onChange(select.value) },
    [["24h", "Last 24 hours (hourly)"], ["7d", "Last 7 days"], ["30d", "Last 30 days"], ["90d", "Last 90 days"]]
      .map(([value, text]) => h("option", { value, text, selected: value === initial })));
  return h("div", { class: "toolbar" }, h("label", { for: "range", text: "Range" }), select);
}

async function chartsInto(holder, range, today, customerId) {
  const who = customerId ? `&customer_id=${encodeURIComponent(customerId)}` : "";
  const series = await api("GET", `/series?${rangeQuery(range, today)}${who}`);
  holder.replaceChildren(...chartPanel(series.points, series.granularity, series.currency, series.unpriced_models));
}

// ---- overview ------------------------------------------------------------------------

function figureRow(key, name, today, month, show) {
  return h("tr", { "data-figure": key }, h("th", { scope: "row", text: name }),
    h("td", { class: "num", "data-range": "today", "data-value": JSON.stringify(today[key]), text: show(today[key]) }),
    h("td", { class: "num", "data-range": "month", "data-value": JSON.stringify(month[key]), text: show(month[key]) }));
}

function topTable(id, title, column, rows, value, show) {
  const ranked = rows.filter((row) => value(row) !== null).sort((a, b) => value(b) - value(a)).slice(0, 5);
  return h("section", { class: "panel", id }, h("h2", { text: title }),
    ranked.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", { text: "Customer" }), h("th", { class: "num", text: column }))),
      h("tbody", {}, ranked.map((row) => h("tr", {},
        h("td", {}, h("a", { href: `#/customers/${row.customer_id}`, text: row.name })),
        h("td", { class: "num", text: show(row) })))))
      : h("p", { class: "muted", text: "No customer this month yet." }));
}

async function viewOverview(target) {
  const overview = await api("GET", "/overview");
  const today = overview.today_figures, month = overview.month_to_date;
  const rate = (value) => (value === null || value === undefined ? "—" : `${value}%`);
  const figures = h("table", { class: "figures", id: "figures" },
    h("caption", { class: "note", text: `As of ${when(overview.as_of)}; usage counted through ${when(overview.complete_through)}.` }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Figure" }),
      h("th", { scope: "col", class: "num", text: `Today (${overview.today})` }),
      h("th", { scope: "col", class: "num", text: `Month to date (from ${overview.month_start})` }))),
    h("tbody", {},
      figureRow("calls", "Calls", today, month, count),
      figureRow("tokens", "Tokens", today, month, count),
      figureRow("revenue", "Revenue under plans", today, month, moneyList),
      figureRow("cost", "Bedrock cost", today, month, money),
      figureRow("gross_margin", "Gross margin", today, month, money),
      figureRow("active_customers", "Active customers", today, month, count),
      figureRow("error_rate_percent", "Error rate", today, month, rate),
      figureRow("rejected", "Limit rejections", today, month, count)));
  const notes = [];
  if (!overview.prices_configured) notes.push("Bedrock cost and margin need the price table: start the server with --model-prices FILE (docs/model-prices.toml).");
  else if (month.margin_note) notes.push(month.margin_note);
  for (const problem of month.revenue_errors) notes.push(`Revenue left out: ${problem}`);
  if (month.unpriced_models.length) notes.push(`Unpriced models (shown as unpriced, never free): ${month.unpriced_models.join(", ")}.`);
  const holder = h("div", { id: "charts", class: "charts" });
  const rows = overview.customers;
  const amount = (field) => (row) => (row[field] ? Number(row[field].amount) : null);
  target.replaceChildren(
    h("h1", { text: "Overview" }),
    h("section", { class: "panel" }, figures, notes.map((note) => h("p", { class: "note", text: note }))),
    h("section", { class: "panel" }, h("h2", { text: "Usage over time" }),
      rangePicker((range) => chartsInto(holder, range, overview.today), "24h"), holder),
    h("div", { class: "grid" },
      topTable("top-calls", "Top customers by calls", "Calls", rows, (row) => row.calls, (row) => count(row.calls)),
      topTable("top-revenue", "Top customers by revenue", "Revenue", rows, amount("revenue"), (row) => money(row.revenue)),
      topTable("top-margin", "Top customers by margin", "Gross margin", rows, amount("gross_margin"), (row) => money(row.gross_margin))));
  await chartsInto(holder, "24h", overview.today);
}

// ---- customers -----------------------------------------------------------------------

const LIMIT_NAMES = {
  daily_requests: "Daily requests", monthly_requests: "Monthly requests",
  daily_tokens: "Daily tokens", monthly_tokens: "Monthly tokens",
};

function usageBars(statuses) {
  if (!statuses || !statuses.length) return h("span", { class: "muted", text: "no daily or monthly cap" });
  return h("div", { class: "bars" }, statuses.map((status) => {
    const text = `${LIMIT_NAMES[status.limit] || status.limit}: ${count(status.used)} of ${count(status.limit_value)}`;
    return h("div", { class: "bar", "data-limit": status.limit, "data-used": status.used },
      h("span", { text: LIMIT_NAMES[status.limit] || status.limit }),
      h("meter", { min: 0, max: status.limit_value, value: Math.min(status.used, status.limit_value),
        low: status.limit_value * 0.8, high: status.limit_value * 0.95, optimum: 0, title: text, "aria-label": text }),
      h("span", { class: "num", text: `${compact(status.used)} / ${compact(status.limit_value)}` }));
  }));
}

function usedShare(statuses) {
  return Math.max(0, ...(statuses || []).map((status) => status.used / Math.max(1, status.limit_value)));
}

async function viewCustomers(target) {
  const search = h("input", { type: "search", id: "search", placeholder: "name, email or id" });
  const sortBy = { key: "created_at", direction: "descending" };
  const body = h("tbody");
  const more = h("button", { type: "button", class: "secondary", hidden: true, text: "Load more" });
  const summary = h("p", { class: "note", "aria-live": "polite" });
  let loaded = [], usage = {}, next = null;
  const sorters = {
    name: (row) => row.name.toLowerCase(),
    status: (row) => row.status,
    created_at: (row) => row.created_at,
    usage: (row) => usedShare(usage[row.customer_id]),
  };
  const header = (key, text) => h("th", { scope: "col", "aria-sort": sortBy.key === key ? sortBy.direction : "none", "data-sort": key },
    h("button", { type: "button", class: "sort", text, onclick: () => {
      sortBy.direction = sortBy.key === key && sortBy.direction === "ascending" ? "descending" : "ascending";
      sortBy.key = key;
      for (const th of target.querySelectorAll("th[data-sort]")) th.setAttribute("aria-sort", th.dataset.sort === key ? sortBy.direction : "none");
      draw();
    } }));
  const draw = () => {
    const key = sorters[sortBy.key];
    const sign = sortBy.direction === "ascending" ? 1 : -1;
    const rows = [...loaded].sort((a, b) => (key(a) < key(b) ? -sign : key(a) > key(b) ? sign : 0));
    body.replaceChildren(...rows.map((row) => h("tr", { "data-customer": row.customer_id },
      h("td", {}, h("a", { href: `#/customers/${row.customer_id}`, text: row.name })),
      h("td", { text: row.email }),
      h("td", {}, h("span", { class: `badge ${row.status}`, text: row.status })),
      h("td", {}, usageBars(usage[row.customer_id])),
      h("td", { text: when(row.created_at).slice(0, 10) }))));
    summary.textContent = `${count(loaded.length)} customer${loaded.length === 1 ? "" : "s"}${next ? " shown; more to load" : ""}.`;
    more.hidden = !next;
  };
  const load = async (reset) => {
    const params = new URLSearchParams({ include: "limit_usage", limit: "1000" });
    if (search.value.trim()) params.set("q", search.value.trim());
    if (!reset && next) params.set("next_token", next);
    const page = await api("GET", `/customers?${params}`);
    loaded = reset ? page.customers : loaded.concat(page.customers);
    usage = reset ? page.limit_usage : { ...usage, ...page.limit_usage };
    next = page.next_token;
    draw();
  };
  let pending = null;
  search.addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(() => load(true).catch((failure) => say(failure.message)), 250);
  });
  more.addEventListener("click", () => load(false).catch((failure) => say(failure.message)));
  target.replaceChildren(h("h1", { text: "Customers" }),
    h("div", { class: "toolbar" }, h("label", { for: "search", text: "Search" }), search,
      mayWrite() ? h("a", { href: "#/new", text: "New customer" }) : null),
    h("section", { class: "panel" }, summary,
      h("table", { id: "customers" }, h("thead", {}, h("tr", {},
        header("name", "Name"), h("th", { scope: "col", text: "Email" }), header("status", "Status"),
        header("usage", "Usage against limits"), header("created_at", "Created"))), body), more));
  await load(true);
}

// ---- one customer --------------------------------------------------------------------

function secretBox(token, note) {
  const output = h("output", { id: "new-token", text: token });
  return h("div", { class: "secret", role: "alert" }, h("strong", { text: note }), output,
    h("button", { type: "button", class: "secondary", id: "copy-token", text: "Copy", onclick: async (event) => {
      try { await navigator.clipboard.writeText(token); event.target.textContent = "Copied"; }
      catch (_) { getSelection().selectAllChildren(output); event.target.textContent = "Selected: copy with Ctrl+C"; }
    } }));
}

const LIMIT_FIELDS = [
  ["daily_limit", "daily_request_limit", "Daily requests"],
  ["monthly_limit", "monthly_request_limit", "Monthly requests"],
  ["daily_token_limit", "daily_token_limit", "Daily tokens"],
  ["monthly_token_limit", "monthly_token_limit", "Monthly tokens"],
  ["rpm", "requests_per_minute", "Requests per minute"],
];

function limitInputs(limits, prefix) {
  const fields = LIMIT_FIELDS.map(([field, key, label]) => h("div", {},
    h("label", { for: `${prefix}-${field}`, text: label }, h("span", { class: "hint", text: "blank for no limit" })),
    h("input", { type: "number", min: 0, step: 1, id: `${prefix}-${field}`, name: field,
      value: limits && limits[key] !== null && limits[key] !== undefined ? limits[key] : "" })));
  fields.push(h("div", {},
    h("label", { for: `${prefix}-allowed_models`, text: "Allowed models" }, h("span", { class: "hint", text: "comma-separated ids or * patterns; blank for every model" })),
    h("input", { type: "text", id: `${prefix}-allowed_models`, name: "allowed_models",
      value: limits && limits.allowed_models ? limits.allowed_models.join(", ") : "" })));
  fields.push(h("div", {},
    h("label", { for: `${prefix}-enforcement`, text: "Enforcement" }),
    h("select", { id: `${prefix}-enforcement`, name: "enforcement" },
      [["", "deployment default"], ["eventual", "eventual"], ["strict", "strict"]].map(([value, text]) =>
        h("option", { value, text, selected: (limits && limits.enforcement || "") === value })))));
  return h("div", { class: "fields" }, fields);
}

function limitsBody(form) {
  const body = {};
  for (const [field] of LIMIT_FIELDS) {
    const text = form.elements[field].value.trim();
    body[field] = text === "" ? null : Number(text);
  }
  const models = form.elements.allowed_models.value.split(",").map((model) => model.trim()).filter(Boolean);
  body.allowed_models = models.length ? models : null;
  body.enforcement = form.elements.enforcement.value || null;
  return body;
}

function failureInto(element) {
  return (failure) => { element.textContent = failure.field ? `${failure.field}: ${failure.message}` : failure.message; };
}

function keysPanel(id, keys, reload) {
  const error = h("p", { class: "error", role: "alert" });
  const revealed = h("div", { id: "revealed" });
  const rows = keys.map((key) => h("tr", { "data-key": key.key_id },
    h("td", { text: key.key_id }), h("td", { text: key.state }), h("td", { text: when(key.created_at) }),
    h("td", { text: when(key.expires_at) }), h("td", { text: when(key.last_used_at) }),
    h("td", {}, mayWrite() && key.state === "active" ? h("button", { type: "button", class: "danger", text: "Revoke",
      "aria-label": `Revoke key ${key.key_id}`, onclick: async () => {
        if (!confirm(`Revoke key ${key.key_id}? Calls with it are refused at once.`)) return;
        try { await api("DELETE", `/customers/${id}/keys/${key.key_id}`); say(`Key ${key.key_id} revoked.`); await reload(); }
        catch (failure) { failureInto(error)(failure); }
      } }) : null)));
  const grace = h("input", { type: "text", id: "grace", name: "grace_period", value: "24h" });
  const rotate = mayWrite() ? h("form", { id: "rotate", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const issued = await api("POST", `/customers/${id}/keys`, { grace_period: grace.value.trim() || "0s" });
      await reload();
      document.getElementById("revealed").replaceChildren(secretBox(issued.token,
        `New key ${issued.key_id}: shown once. The old key keeps working for ${grace.value.trim() || "0s"}.`));
    } catch (failure) { failureInto(error)(failure); }
  } }, h("div", { class: "toolbar" },
    h("label", { for: "grace" }, "Grace period for the current keys", h("span", { class: "hint", text: "for example 24h, 30m, 0s" })),
    grace, h("button", { type: "submit", text: "Rotate key" }))) : null;
  return h("section", { class: "panel", id: "keys" }, h("h2", { text: "Keys" }),
    h("table", {}, h("thead", {}, h("tr", {}, ["Key", "State", "Created", "Expires", "Last used", ""].map((text) => h("th", { scope: "col", text })))),
      h("tbody", {}, rows)), rotate, revealed, error);
}

function limitsPanel(id, customer, reload) {
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { id: "limits-form", onsubmit: async (event) => {
    event.preventDefault();
    try { await api("PATCH", `/customers/${id}/limits`, limitsBody(form)); say("Limits saved."); await reload(); }
    catch (failure) { failureInto(error)(failure); }
  } }, limitInputs(customer.limits, "limit"),
  mayWrite() ? h("div", { class: "actions" }, h("button", { type: "submit", text: "Save limits" })) : null, error);
  if (!mayWrite()) for (const input of form.querySelectorAll("input, select")) input.disabled = true;
  return h("section", { class: "panel", id: "limits" }, h("h2", { text: "Limits" }), form);
}

function assignForm(id, plans, reload) {
  if (!mayWrite() || !plans || !plans.length) return null;
  const error = h("p", { class: "error", role: "alert" });
  const choice = h("select", { id: "assign-plan", name: "plan" }, plans.map((plan) =>
    h("option", { value: JSON.stringify([plan.id, plan.version]), text: `${plan.name} (${plan.id} v${plan.version}, ${plan.currency})` })));
  const from = h("input", { type: "date", id: "assign-from", name: "effective_from", required: true,
    value: `${new Date().toISOString().slice(0, 7)}-01` });
  return h("form", { id: "assign-form", onsubmit: async (event) => {
    event.preventDefault();
    const [planId, version] = JSON.parse(choice.value);
    try {
      await api("PUT", `/customers/${id}/plan`, { plan_id: planId, plan_version: version, effective_from: from.value });
      say(`Plan ${planId} v${version} assigned.`);
      await reload();
    } catch (failure) { failureInto(error)(failure); }
  } }, h("div", { class: "toolbar" },
    h("label", { for: "assign-plan", text: "Plan" }), choice,
    h("label", { for: "assign-from" }, "From", h("span", { class: "hint", text: "the first day of a month" })), from,
    h("button", { type: "submit", text: "Assign plan" })), error);
}

function invoicePanel(invoice, failure, plan, assign) {
  const heading = h("h2", { text: "Plan and invoice preview (this month)" });
  const planText = plan ? `Plan ${plan.plan_id} version ${plan.plan_version}, from ${plan.effective_from}.` : "No plan assigned.";
  if (!invoice) {
    return h("section", { class: "panel", id: "invoice" }, heading, h("p", { id: "plan-text", text: planText }),
      failure ? h("p", { class: "muted", text: failure.message }) : null, assign);
  }
  return h("section", { class: "panel", id: "invoice" }, heading, h("p", { id: "plan-text", text: planText }), assign,
    h("dl", { class: "facts" }, h("dt", { text: "Invoice" }), h("dd", { text: `${invoice.invoice_number} (${invoice.status})` }),
      h("dt", { text: "Period" }), h("dd", { text: `${invoice.period_start} to ${invoice.period_end}` }),
      h("dt", { text: "Due" }), h("dd", { text: invoice.due_date })),
    h("table", {}, h("thead", {}, h("tr", {}, ["Line", "Quantity", "Unit price", "Amount"].map((text, index) => h("th", { scope: "col", class: index ? "num" : null, text })))),
      h("tbody", {}, invoice.lines.map((line) => h("tr", {}, h("td", { text: line.description }),
        h("td", { class: "num", text: `${line.quantity} ${line.unit}` }), h("td", { class: "num", text: line.unit_price }),
        h("td", { class: "num", text: line.amount })))),
      h("tfoot", {}, h("tr", {}, h("th", { scope: "row", colspan: 3, text: "Total" }),
        h("td", { class: "num", id: "invoice-total", "data-value": invoice.total, text: `${invoice.total} ${invoice.currency}` })))),
    invoice.cost_of_goods ? h("p", { class: "note", id: "invoice-cost",
      text: `Operator only: Bedrock cost ${invoice.cost_of_goods.total} ${invoice.cost_of_goods.currency}, gross margin ${invoice.cost_of_goods.gross_margin === null ? `not stated (${invoice.cost_of_goods.margin_note})` : `${invoice.cost_of_goods.gross_margin} ${invoice.cost_of_goods.currency}`}.` }) : null);
}

const API_NAMES = [["bedrock", "Bedrock runtime"], ["spec", "Spec route"], ["anthropic", "Anthropic Messages"], ["openai", "OpenAI Chat"]];

// The month's admitted calls by the API the customer called (those from before the API was
// recorded, if any, apart).
function byApiText(totals) {
  const byApi = totals.by_api || {};
  const parts = API_NAMES.filter(([key]) => byApi[key] > 0).map(([key, name]) => `${name} ${count(byApi[key])}`);
  const recorded = API_NAMES.reduce((sum, [key]) => sum + (byApi[key] || 0), 0);
  if (totals.requests > recorded) parts.push(`not recorded ${count(totals.requests - recorded)}`);
  return parts.length ? parts.join(" · ") : "none";
}

function costPanel(costs, failure) {
  const rows = costs ? costs.days.flatMap((day) => day.cost.by_model.map((model) => ({ day: day.day, currency: day.cost.currency, ...model }))) : [];
  return listPanel("costs", "Bedrock cost by day and model (this month, operator only)", rows,
    [["Day", (row) => row.day], ["Model", (row) => row.model_id], ["Input", (row) => count(row.input_tokens)],
      ["Output", (row) => count(row.output_tokens)], ["Cache read", (row) => count(row.cache_read_tokens)],
      ["Cache write", (row) => count(row.cache_write_tokens)],
      ["Cost", (row) => (row.cost === null ? "unpriced" : `${row.cost} ${row.currency}`)]],
    failure ? failure.message : "No token used this month.");
}

function listPanel(id, title, items, columns, empty) {
  return h("section", { class: "panel", id }, h("h2", { text: title }),
    items.length ? h("table", {}, h("thead", {}, h("tr", {}, columns.map(([name]) => h("th", { scope: "col", text: name })))),
      h("tbody", {}, items.map((item) => h("tr", {}, columns.map(([, value]) => h("td", { text: value(item) }))))))
      : h("p", { class: "muted", text: empty }));
}

async function optional(promise) {
  try { return [await promise, null]; } catch (failure) { return [null, failure]; }
}

async function viewCustomer(target, id) {
  const reload = () => viewCustomer(target, id);
  const profile = await api("GET", `/customers/${id}`);
  const customer = profile.customer;
  const period = new Date().toISOString().slice(0, 7);
  const [[invoice, invoiceFailure], [alerts], [audit], [usage], [plans], [costs, costFailure]] = await Promise.all([
    optional(api("GET", `/customers/${id}/invoices/${period}`)),
    optional(api("GET", "/alerts?since=30d")),
    optional(api("GET", `/audit?customer_id=${encodeURIComponent(id)}&limit=20`)),
    optional(api("GET", `/customers/${id}/usage`)),
    optional(api("GET", "/plans")),
    optional(api("GET", `/customers/${id}/costs`)),
  ]);
  const toggle = mayWrite() && customer.status !== "deleted" ? h("button", { type: "button", class: "secondary", id: "toggle-status",
    text: customer.status === "active" ? "Disable" : "Enable", onclick: async () => {
      try { await api("POST", `/customers/${id}/${customer.status === "active" ? "disable" : "enable"}`); await reload(); }
      catch (failure) { say(failure.message); }
    } }) : null;
  const totals = usage ? usage.totals : null;
  const holder = h("div", { id: "charts", class: "charts" });
  target.replaceChildren(
    h("p", {}, h("a", { href: "#/customers", text: "← Customers" })),
    h("h1", {}, customer.name, " ", h("span", { class: `badge ${customer.status}`, text: customer.status })),
    h("section", { class: "panel", id: "profile" }, h("dl", { class: "facts" },
      h("dt", { text: "Customer id" }), h("dd", { text: customer.customer_id }),
      h("dt", { text: "Email" }), h("dd", { text: customer.email }),
      h("dt", { text: "Created" }), h("dd", { text: when(customer.created_at) }),
      totals ? [h("dt", { text: "This month" }), h("dd", { id: "month-usage", "data-requests": totals.requests,
        "data-input-tokens": totals.input_tokens, "data-output-tokens": totals.output_tokens,
        text: `${count(totals.requests)} calls, ${count(totals.input_tokens)} input and ${count(totals.output_tokens)} output tokens, ${count(totals.errors)} errors, ${count(totals.rejected)} rejected` }),
        h("dt", { text: "Calls by API" }), h("dd", { id: "month-by-api", text: byApiText(totals) })] : null),
    h("div", { class: "actions" }, toggle)),
    h("section", { class: "panel" }, h("h2", { text: "Usage" }),
      rangePicker((range) => chartsInto(holder, range, new Date().toISOString().slice(0, 10), id), "30d"), holder),
    h("div", { class: "grid" }, limitsPanel(id, customer, reload), keysPanel(id, profile.keys, reload)),
    invoicePanel(invoice, invoiceFailure, profile.plan, assignForm(id, plans && plans.plans, reload)),
    costPanel(costs, costFailure),
    listPanel("customer-alerts", "Alerts (last 30 days)", (alerts ? alerts.alerts : []).filter((alert) => alert.customer_id === id),
      [["Raised", (alert) => when(alert.raised_at)], ["Rule", (alert) => alert.rule], ["Window", (alert) => alert.window], ["Message", (alert) => alert.message]],
      "No alert in the last 30 days."),
    listPanel("audit", "Audit trail (latest 20)", audit ? audit.entries : [],
      [["When", (entry) => when(entry.at)], ["Who", (entry) => entry.actor], ["Action", (entry) => entry.action]],
      "No change recorded."));
  await chartsInto(holder, "30d", new Date().toISOString().slice(0, 10), id);
}

// ---- create --------------------------------------------------------------------------

async function viewCreate(target) {
  if (!mayWrite()) {
    target.replaceChildren(h("h1", { text: "New customer" }), h("p", { class: "error", text: "A viewer credential can only read: sign in with an admin credential to create customers." }));
    return;
  }
  const error = h("p", { class: "error", role: "alert" });
  const result = h("div", { id: "created" });
  const form = h("form", { class: "panel", id: "create-form", onsubmit: async (event) => {
    event.preventDefault();
    const body = { name: form.elements.name.value, email: form.elements.email.value, ...limitsBody(form) };
    for (const key of Object.keys(body)) if (body[key] === null) delete body[key];
    try {
      const created = await api("POST", "/customers", body);
      error.textContent = "";
      form.reset();
      result.replaceChildren(secretBox(created.token, `Customer ${created.customer_id} created. Their token, shown once:`),
        h("p", {}, h("a", { href: `#/customers/${created.customer_id}`, id: "created-link", text: "Open the customer's page" })));
    } catch (failure) { failureInto(error)(failure); }
  } },
  h("div", { class: "fields" },
    h("div", {}, h("label", { for: "new-name", text: "Name" }), h("input", { type: "text", id: "new-name", name: "name", required: true })),
    h("div", {}, h("label", { for: "new-email", text: "Email" }), h("input", { type: "email", id: "new-email", name: "email", required: true }))),
  limitInputs(null, "new"), error,
  h("div", { class: "actions" }, h("button", { type: "submit", text: "Create customer" })));
  target.replaceChildren(h("h1", { text: "New customer" }), form, result);
}

// ---- alerts --------------------------------------------------------------------------

async function viewAlerts(target) {
  const holder = h("div");
  const names = {};
  const draw = async (since) => {
    const list = await api("GET", `/alerts?since=${since}`);
    holder.replaceChildren(listPanel("alerts", `Alerts (last ${since})`, [...list.alerts].reverse(),
      [["Raised", (alert) => when(alert.raised_at)], ["Customer", (alert) => names[alert.customer_id] || alert.customer_id],
        ["Rule", (alert) => alert.rule], ["Window", (alert) => alert.window], ["Message", (alert) => alert.message]],
      "No alert raised in this period."));
  };
  const page = await api("GET", "/customers?limit=1000");
  for (const customer of page.customers) names[customer.customer_id] = customer.name;
  const since = h("select", { id: "since", onchange: () => draw(since.value).catch((failure) => say(failure.message)) },
    ["1d", "7d", "30d"].map((value) => h("option", { value, text: `last ${value}`, selected: value === "7d" })));
  target.replaceChildren(h("h1", { text: "Alerts" }),
    h("div", { class: "toolbar" }, h("label", { for: "since", text: "Raised in the" }), since), holder);
  await draw("7d");
}

// ---- quarantine ----------------------------------------------------------------------

async function viewQuarantine(target) {
  const list = await api("GET", "/quarantine");
  const requeue = mayWrite() && list.items.length ? h("button", {
    type: "button", id: "requeue", text: "Send through the log again", onclick: async () => {
      try {
        const report = await api("POST", "/quarantine/requeue");
        say(`${report.requeued} sent through the log again` +
          (report.refused ? `; ${report.refused} refused by the log, try again.` : "."));
        await viewQuarantine(target);
      } catch (failure) { say(failure.message); }
    } }) : null;
  target.replaceChildren(h("h1", { text: "Quarantine" }),
    h("p", { class: "muted", text: "What the metering consumer could not meter, kept with the reason. " +
      "Once the cause is fixed (the consumers upgraded, a customer registered), send it through the " +
      "event log again: each event is counted once, and what still cannot be metered comes back here." }),
    h("div", { class: "actions" }, requeue),
    listPanel("quarantined", `Quarantined (${list.items.length})`, list.items,
      [["Partition", (item) => item.partition],
        ["Position", (item) => item.line ? `${item.position}, event ${item.line}` : item.position],
        ["Bytes", (item) => String(item.bytes)], ["Reason", (item) => item.reason]],
      "Nothing is quarantined."));
}

// ---- start ---------------------------------------------------------------------------

document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", route);
route();
