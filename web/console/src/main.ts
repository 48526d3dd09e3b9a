// secretlog audit console: sign in with a token, read the domain's audit
// trail. Views (in the URL's hash, so they can be bookmarked and reloaded):
//
//   #/timeline?actor=&rtype=&rid=&types=&from=&to=&oldest=1   the audit trail, filtered
//   #/reads?...                                              who read which value when
//   #/history/<ResourceType>/<id>                            one resource's history
//
// Only metadata is ever shown: the API's audit events carry no values (a
// value change is the field "data" without old or new).

import "./style.css";
import {
  APIError,
  auditEvents,
  claimsOf,
  clearToken,
  getToken,
  history,
  isRead,
  readTypes,
  resourceTypes,
  setToken,
  type AuditEvent,
  type AuditFilter,
  type AuditPage,
  type FieldChange,
} from "./api";
import { clear, el } from "./dom";

const app = document.getElementById("app")!;

const knownTypes = [
  "SecretCreated",
  "SecretUpdated",
  "SecretLinkChanged",
  "SecretDataUpdated",
  "SecretDeleted",
  "SecretDataRead",
  "UserSecretCreated",
  "UserSecretUpdated",
  "UserSecretDataUpdated",
  "UserSecretDeleted",
  "UserSecretDataRead",
  "TrustedSecretCreated",
  "TrustedSecretUpdated",
  "TrustedSecretDataUpdated",
  "TrustedSecretDeleted",
  "TrustedSecretDataRead",
];

// ---- routing ----------------------------------------------------------

interface Route {
  view: "timeline" | "reads" | "history";
  params: URLSearchParams;
  rtype?: string;
  rid?: string;
}

function parseRoute(): Route {
  const h = location.hash.replace(/^#\/?/, "");
  const [path, query] = h.split("?", 2);
  const params = new URLSearchParams(query ?? "");
  const parts = path.split("/").map(decodeURIComponent);
  if (parts[0] === "reads") return { view: "reads", params };
  if (parts[0] === "history") return { view: "history", params, rtype: parts[1] || "Secret", rid: parts[2] || "" };
  return { view: "timeline", params };
}

function go(hash: string): void {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function historyHash(rtype: string, id: string): string {
  return `#/history/${encodeURIComponent(rtype)}/${encodeURIComponent(id)}`;
}

window.addEventListener("hashchange", render);

// ---- formatting -------------------------------------------------------

function utc(s: string): string {
  const d = new Date(s);
  return isNaN(d.getTime()) ? s : d.toISOString().replace("T", " ").replace("Z", " UTC");
}

function shortType(t: string): string {
  return t.replace(/\.v\d+$/, "");
}

function who(e: AuditEvent): string {
  return e.actor.userId ?? e.actor.subject ?? "(no user)";
}

function show(v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

/** A value change carries no old or new: say so, never more. */
function dataNote(e: AuditEvent): string {
  return /Created$/.test(shortType(e.type)) ? "value set (not shown)" : "value changed (not shown)";
}

function changeText(e: AuditEvent, c: FieldChange): string {
  if (c.field === "data") return "data: " + dataNote(e);
  return `${c.field}: ${show(c.old)} → ${show(c.new)}`;
}

function resourceLink(e: AuditEvent): HTMLElement {
  return el("a", { href: historyHash(e.resourceType, e.resourceId), class: "resource", title: "open this resource's history" },
    el("span", { class: "rtype" }, e.resourceType), " ", e.resourceId);
}

function typeBadge(t: string): HTMLElement {
  const s = shortType(t);
  const kind = /DataRead$/.test(s) ? "read" : /Deleted$/.test(s) ? "delete" : /Created$/.test(s) ? "create" : "change";
  return el("span", { class: `badge ${kind}` }, s);
}

function errorBox(e: unknown): HTMLElement {
  if (e instanceof APIError) {
    let hint = "";
    if (e.code === "PERMISSION_DENIED") hint = " The audit trail needs a DOMAIN_ADMIN or SYSTEM token.";
    if (e.code === "UNAUTHENTICATED") hint = " The token was refused (expired?): sign out and paste a new one.";
    return el("p", { class: "error", role: "alert" }, `${e.code}: ${e.message}.${hint}`);
  }
  return el("p", { class: "error", role: "alert" }, String(e));
}

// ---- sign in ----------------------------------------------------------

function signIn(): HTMLElement {
  const input = el("textarea", {
    id: "token",
    rows: 4,
    placeholder: "eyJhbGciOi…",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const msg = el("p", { class: "hint" },
    "Paste a bearer token (DOMAIN_ADMIN or SYSTEM), e.g. from ",
    el("code", {}, "secretlog token --role DOMAIN_ADMIN --domain D"),
    ". It is kept in this tab's session storage only and sent only to this server's /graphql.");
  const form = el("form", {
    id: "signin",
    onsubmit: (ev: Event) => {
      ev.preventDefault();
      const t = input.value.trim().replace(/^Bearer\s+/i, "");
      if (!claimsOf(t)) {
        msg.replaceWith(el("p", { class: "error", role: "alert" }, "That is not a secretlog token (a JWT with a role and a domain)."));
        return;
      }
      setToken(t);
      input.value = "";
      go("#/timeline");
    },
  },
    el("h2", {}, "Sign in"),
    el("label", { for: "token" }, "Token"),
    input,
    msg,
    el("button", { type: "submit", id: "signin-submit" }, "Sign in"));
  return el("main", { class: "signin" }, form);
}

// ---- shell ------------------------------------------------------------

function header(route: Route): HTMLElement {
  const c = claimsOf(getToken() ?? "");
  const tab = (view: Route["view"], hash: string, label: string) =>
    el("a", { href: hash, class: route.view === view ? "tab active" : "tab", id: `tab-${view}` }, label);
  return el("header", {},
    el("h1", {}, "secretlog ", el("span", { class: "sub" }, "audit console")),
    el("nav", {},
      tab("timeline", "#/timeline", "Timeline"),
      tab("reads", "#/reads", "Value reads"),
      tab("history", "#/history", "Resource history")),
    el("div", { class: "who" },
      c ? el("span", { id: "identity" }, `${c.domainId} · ${c.role}${c.userId ? " · " + c.userId : ""}`) : null,
      c?.expires ? el("span", { class: "expires" }, ` (token until ${utc(c.expires.toISOString())})`) : null,
      el("button", {
        type: "button",
        id: "signout",
        onclick: () => {
          clearToken();
          go("#/");
        },
      }, "Sign out")));
}

// ---- filters ------------------------------------------------------------

function input(name: string, label: string, value: string, attrs: Record<string, string> = {}): HTMLElement {
  return el("label", { class: "field" }, el("span", {}, label),
    el("input", { name, id: `f-${name}`, value, autocomplete: "off", ...attrs }));
}

function filterForm(view: "timeline" | "reads", p: URLSearchParams): HTMLElement {
  const rtype = el("select", { name: "rtype", id: "f-rtype" },
    el("option", { value: "" }, "any"),
    resourceTypes.map((t) => el("option", { value: t, selected: p.get("rtype") === t }, t)));
  const typeList = el("datalist", { id: "event-types" }, knownTypes.map((t) => el("option", { value: t })));
  const form = el("form", {
    id: "filters",
    class: "filters",
    onsubmit: (ev: Event) => {
      ev.preventDefault();
      const fd = new FormData(form);
      const q = new URLSearchParams();
      for (const k of ["actor", "rtype", "rid", "types", "from", "to"]) {
        const v = String(fd.get(k) ?? "").trim();
        if (v) q.set(k, v);
      }
      if (fd.get("oldest")) q.set("oldest", "1");
      go(`#/${view}` + (q.toString() ? "?" + q.toString() : ""));
    },
  },
    input("actor", "Actor (user id)", p.get("actor") ?? ""),
    el("label", { class: "field" }, el("span", {}, "Resource type"), rtype),
    input("rid", "Resource id", p.get("rid") ?? ""),
    view === "timeline"
      ? input("types", "Event types (comma-separated)", p.get("types") ?? "", { list: "event-types", placeholder: "SecretUpdated, SecretDataRead" })
      : null,
    typeList,
    input("from", "From (UTC)", p.get("from") ?? "", { type: "datetime-local", step: "1" }),
    input("to", "To (UTC)", p.get("to") ?? "", { type: "datetime-local", step: "1" }),
    el("label", { class: "check" }, el("input", { type: "checkbox", name: "oldest", id: "f-oldest", checked: p.get("oldest") === "1" }), " oldest first"),
    el("div", { class: "actions" },
      el("button", { type: "submit", id: "apply" }, "Apply"),
      el("a", { href: `#/${view}`, class: "reset" }, "Reset")));
  return form;
}

function utcParam(v: string | null): string | undefined {
  if (!v) return undefined;
  const d = new Date(v + (/[zZ]|[+-]\d\d:\d\d$/.test(v) ? "" : "Z"));
  return isNaN(d.getTime()) ? undefined : d.toISOString();
}

function filterOf(view: "timeline" | "reads", p: URLSearchParams): AuditFilter {
  const f: AuditFilter = {};
  if (p.get("actor")) f.actorUserId = p.get("actor")!;
  if (p.get("rtype")) f.resourceType = p.get("rtype")!;
  if (p.get("rid")) f.resourceId = p.get("rid")!;
  const types = view === "reads" ? readTypes : (p.get("types") ?? "").split(/[\s,]+/).filter(Boolean);
  if (types.length) f.types = types;
  f.from = utcParam(p.get("from"));
  f.to = utcParam(p.get("to"));
  return f;
}

// ---- paged table --------------------------------------------------------

async function pagedTable(
  container: HTMLElement,
  id: string,
  head: string[],
  row: (e: AuditEvent) => HTMLElement,
  load: (after: string | null) => Promise<AuditPage>,
  empty: string,
): Promise<void> {
  const tbody = el("tbody");
  const table = el("table", { id, class: "events" }, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))), tbody);
  const status = el("p", { class: "status", id: `${id}-status` }, "Loading…");
  const more = el("button", { type: "button", class: "more", id: `${id}-more`, hidden: true }, "Load more");
  container.append(table, status, more);
  let count = 0;
  const next = async (after: string | null) => {
    more.hidden = true;
    status.textContent = "Loading…";
    try {
      const page = await load(after);
      for (const e of page.results) tbody.append(row(e));
      count += page.results.length;
      status.textContent = count === 0 ? empty : `${count} event${count === 1 ? "" : "s"}${page.nextCursor ? " (more available)" : ""}`;
      if (page.nextCursor) {
        const cursor = page.nextCursor;
        more.hidden = false;
        more.onclick = () => void next(cursor);
      }
    } catch (e) {
      status.replaceChildren(errorBox(e));
    }
  };
  await next(null);
}

// ---- views --------------------------------------------------------------

function timelineRow(e: AuditEvent): HTMLElement {
  return el("tr", { class: isRead(e) ? "read" : "", "data-type": shortType(e.type) },
    el("td", { class: "time" }, utc(e.occurredAt)),
    el("td", {}, typeBadge(e.type)),
    el("td", {}, resourceLink(e)),
    el("td", {}, el("span", { class: "actor" }, who(e)), el("span", { class: "role" }, e.actor.role)),
    el("td", { class: "num" }, isRead(e) ? `read v${e.dataVersion}` : `v${e.dataVersion}`),
    el("td", { class: "changes" }, e.changes.length ? el("ul", {}, e.changes.map((c) => el("li", {}, changeText(e, c)))) : ""));
}

function readRow(e: AuditEvent): HTMLElement {
  return el("tr", { class: "read", "data-type": shortType(e.type) },
    el("td", { class: "time" }, utc(e.occurredAt)),
    el("td", {}, el("span", { class: "actor" }, who(e)), el("span", { class: "role" }, e.actor.role)),
    el("td", {}, resourceLink(e)),
    el("td", { class: "num" }, `version ${e.dataVersion}`),
    el("td", { class: "mono" }, e.correlationId ?? ""));
}

function timeline(main: HTMLElement, route: Route): void {
  main.append(el("h2", {}, "Audit trail"), filterForm("timeline", route.params));
  const f = filterOf("timeline", route.params);
  const newest = route.params.get("oldest") !== "1";
  void pagedTable(main, "events", ["When", "Event", "Resource", "Actor", "Version", "Changes"], timelineRow,
    (after) => auditEvents(f, after, newest), "No events match.");
}

function reads(main: HTMLElement, route: Route): void {
  main.append(el("h2", {}, "Who read which value when"),
    el("p", { class: "hint" }, "Every read of a secret value (secretData, userSecretData, trustedSecretData) with the version read. Values are never shown."),
    filterForm("reads", route.params));
  const f = filterOf("reads", route.params);
  const newest = route.params.get("oldest") !== "1";
  void pagedTable(main, "reads", ["When", "Who", "Resource", "Version read", "Correlation id"], readRow,
    (after) => auditEvents(f, after, newest), "No value was read (in this range).");
}

function historyEntry(e: AuditEvent): HTMLElement {
  const read = isRead(e);
  return el("li", { class: read ? "entry read" : "entry", "data-type": shortType(e.type) },
    el("div", { class: "entry-head" },
      typeBadge(e.type),
      el("span", { class: "time" }, utc(e.occurredAt)),
      el("span", { class: "actor" }, who(e)),
      el("span", { class: "role" }, e.actor.role),
      el("span", { class: "num" }, read ? `read version ${e.dataVersion}` : `event ${e.version} · data version ${e.dataVersion}`)),
    e.changes.length
      ? el("table", { class: "changes" },
          el("thead", {}, el("tr", {}, el("th", {}, "Field"), el("th", {}, "Old"), el("th", {}, "New"))),
          el("tbody", {}, e.changes.map((c) =>
            c.field === "data"
              ? el("tr", {}, el("td", {}, "data"), el("td", { colspan: 2, class: "muted" }, dataNote(e)))
              : el("tr", {}, el("td", {}, c.field), el("td", {}, show(c.old)), el("td", {}, show(c.new))))))
      : null);
}

function resourceHistory(main: HTMLElement, route: Route): void {
  const rtype = resourceTypes.includes(route.rtype ?? "") ? route.rtype! : "Secret";
  const sel = el("select", { name: "rtype", id: "h-rtype" }, resourceTypes.map((t) => el("option", { value: t, selected: t === rtype }, t)));
  const idInput = el("input", { name: "id", id: "h-id", value: route.rid ?? "", placeholder: "secret-…", autocomplete: "off", required: true });
  const form = el("form", {
    id: "history-form",
    class: "filters",
    onsubmit: (ev: Event) => {
      ev.preventDefault();
      go(historyHash(sel.value, idInput.value.trim()));
    },
  },
    el("label", { class: "field" }, el("span", {}, "Resource type"), sel),
    el("label", { class: "field wide" }, el("span", {}, "Resource id"), idInput),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "h-open" }, "Open")));
  main.append(el("h2", {}, "Resource history"), form);
  if (!route.rid) {
    main.append(el("p", { class: "hint" }, "Open a resource from the timeline, or enter its id."));
    return;
  }
  main.append(el("h3", { id: "history-title" }, `${rtype} ${route.rid}`));
  const list = el("ol", { id: "history", class: "history" });
  const status = el("p", { class: "status", id: "history-status" }, "Loading…");
  const more = el("button", { type: "button", class: "more", hidden: true }, "Load more");
  main.append(list, status, more);
  let count = 0;
  const next = async (after: string | null) => {
    more.hidden = true;
    try {
      const page = await history(rtype, route.rid!, after);
      for (const e of page.results) list.append(historyEntry(e));
      count += page.results.length;
      status.textContent = count === 0 ? "No events: unknown id, or not in your domain." : `${count} event${count === 1 ? "" : "s"}, oldest first`;
      if (page.nextCursor) {
        const c = page.nextCursor;
        more.hidden = false;
        more.onclick = () => void next(c);
      }
    } catch (e) {
      status.replaceChildren(errorBox(e));
    }
  };
  void next(null);
}

// ---- render -------------------------------------------------------------

function render(): void {
  clear(app);
  if (!getToken()) {
    app.append(el("header", {}, el("h1", {}, "secretlog ", el("span", { class: "sub" }, "audit console"))), signIn());
    return;
  }
  const route = parseRoute();
  const main = el("main", { id: `view-${route.view}` });
  app.append(header(route), main);
  if (route.view === "reads") reads(main, route);
  else if (route.view === "history") resourceHistory(main, route);
  else timeline(main, route);
}

render();
