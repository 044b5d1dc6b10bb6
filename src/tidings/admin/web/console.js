// The back office's console: plain DOM, no framework. Every piece of text from the server is set with
// textContent (never innerHTML). The session lives in an HttpOnly cookie; every change also sends the session's
// CSRF token, which the console keeps in memory (and asks for again after a reload).

const API = "/admin/v1";
let csrf = "";
let hitsCursor = null;
let auditBefore = null;

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function say(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.reason = error.reason || "";
  }
}

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrf;
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401 && path !== "/auth/login") showLogin();
    throw new ApiError(response.status, data);
  }
  return data;
}

async function attempt(work) {
  try {
    await work();
  } catch (error) {
    say(error.reason ? `${error.reason}: ${error.message}` : String(error.message || error), true);
  }
}

// Sessions ------------------------------------------------------------------------------------------------------

function showLogin() {
  $("login").hidden = false;
  $("tabs").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  for (const tab of document.querySelectorAll(".tab")) tab.hidden = true;
}

function signedIn(session) {
  csrf = session.csrf_token;
  $("login").hidden = true;
  $("tabs").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = `${session.operator.username} (${session.operator.role})`;
  show("messages");
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  attempt(async () => {
    const session = await call("POST", "/auth/login", {
      username: form.get("username"),
      password: form.get("password"),
      code: form.get("code") || "",
    });
    event.target.reset();
    say("");
    signedIn(session);
  });
});

$("logout").addEventListener("click", () =>
  attempt(async () => {
    await call("POST", "/auth/logout");
    csrf = "";
    say("Logged out.");
    showLogin();
  }),
);

function show(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== name;
  for (const button of document.querySelectorAll("#tabs button")) {
    if (button.dataset.tab === name) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  if (name === "audit") attempt(() => loadAudit(false));
  if (name === "stats") attempt(loadStats);
}

for (const button of document.querySelectorAll("#tabs button")) {
  button.addEventListener("click", () => show(button.dataset.tab));
}

// An action asks for its reason in place, then runs.
function reasonForm(label, run) {
  const input = el("input", { name: "reason", placeholder: "Reason (required)", maxlength: "500", required: "" });
  const form = el("form", { class: "reason-form" }, input, el("button", { type: "submit" }, label));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(async () => {
      await run(input.value);
      input.value = "";
    });
  });
  return form;
}

// Messages ------------------------------------------------------------------------------------------------------

function highlighted(text, spans) {
  const points = Array.from(text);
  const out = el("span", { class: "text" });
  let at = 0;
  for (const [start, end] of spans) {
    if (start > at) out.append(points.slice(at, start).join(""));
    out.append(el("mark", {}, points.slice(start, end).join("")));
    at = end;
  }
  if (at < points.length) out.append(points.slice(at).join(""));
  return out;
}

function messageLine(message) {
  const text = message.recalled
    ? el("span", { class: "recalled" }, "(recalled)")
    : el("span", { class: "text" }, message.text);
  return el("li", { "data-seq": String(message.seq) }, el("span", { class: "meta" }, `#${message.seq} from ${message.sender_id} `), text);
}

async function searchMessages(more) {
  const form = new FormData($("message-search"));
  const params = new URLSearchParams({ query: form.get("query"), limit: "20" });
  if (form.get("conversation_id")) params.set("conversation_id", form.get("conversation_id"));
  if (more && hitsCursor) params.set("cursor", hitsCursor);
  const found = await call("GET", `/messages/search?${params}`);
  if (!more) $("hits").replaceChildren();
  for (const hit of found.hits) $("hits").append(hitItem(hit));
  hitsCursor = found.next_cursor;
  $("more-hits").hidden = !hitsCursor;
  say(found.hits.length || more ? "" : "Nothing found.");
}

function hitItem(hit) {
  const m = hit.message;
  const context = el("ol", { class: "context" });
  const item = el(
    "li",
    { class: "hit", "data-message-id": m.id },
    el("div", { class: "meta" }, `${hit.sender_name} (${m.sender_id}) in conversation ${m.conversation_id}, #${m.seq}, ${m.created_at}`),
    highlighted(m.text, hit.highlights),
    el("div", {},
      el("button", { type: "button", onclick: () => attempt(async () => {
        const page = await call("GET", `/conversations/${m.conversation_id}/messages?around_seq=${m.seq}`);
        context.replaceChildren(...page.messages.map(messageLine));
      }) }, "Context"),
      reasonForm("Remove message", async (reason) => {
        await call("POST", `/conversations/${m.conversation_id}/messages/${m.seq}/remove`, { reason });
        item.classList.add("removed");
        item.querySelector(".text").replaceChildren("(removed)");
        say(`Message #${m.seq} removed.`);
      }),
    ),
    context,
  );
  return item;
}

$("message-search").addEventListener("submit", (event) => {
  event.preventDefault();
  attempt(() => searchMessages(false));
});
$("more-hits").addEventListener("click", () => attempt(() => searchMessages(true)));

// Users ---------------------------------------------------------------------------------------------------------

$("user-search").addEventListener("submit", (event) => {
  event.preventDefault();
  const query = new FormData(event.target).get("query");
  attempt(async () => {
    const found = await call("GET", `/users?${new URLSearchParams({ query })}`);
    $("user-list").replaceChildren(
      ...found.users.map((u) =>
        el("li", {},
          el("button", { type: "button", onclick: () => attempt(() => openUser(u.id)) }, `${u.username} (${u.display_name})`),
          u.banned ? el("span", { class: "meta" }, " banned") : null,
        ),
      ),
    );
    say(found.users.length ? "" : "No such user.");
  });
});

async function openUser(id) {
  const detail = await call("GET", `/users/${id}`);
  const u = detail.user;
  const box = $("user-detail");
  box.replaceChildren(
    el("h3", {}, `${u.display_name} (@${u.username}), id ${u.id}`),
    el("p", { class: "meta" }, `joined ${u.created_at}; last active ${u.last_active_at || "never"}; ${u.banned ? "BANNED" : "not banned"}`),
    el("p", {}, u.bio),
    el("h4", {}, `Devices online now: ${detail.devices.length}`),
    el("ul", {}, ...detail.devices.map((d) => el("li", {}, `${d.session_id} on ${d.instance}`))),
    el("h4", {}, `Conversations: ${detail.conversations.length}`),
    el("ul", {}, ...detail.conversations.map((c) =>
      el("li", {}, el("button", { type: "button", onclick: () => { show("conversations"); attempt(() => openConversation(c.id)); } },
        `${c.kind} ${c.title || ""} (${c.id}), ${c.member_ids.length} members, max seq ${c.max_seq}`)),
    )),
    u.banned
      ? reasonForm("Unban", async (reason) => { await call("POST", `/users/${u.id}/unban`, { reason }); say(`${u.username} unbanned.`); await openUser(u.id); })
      : reasonForm("Ban", async (reason) => { await call("POST", `/users/${u.id}/ban`, { reason }); say(`${u.username} banned.`); await openUser(u.id); }),
    reasonForm("Reset password", async (reason) => {
      const answer = await call("POST", `/users/${u.id}/reset-password`, { reason });
      say(`Temporary password for ${u.username} (shown once): ${answer.temporary_password}`);
    }),
  );
}

// Conversations -------------------------------------------------------------------------------------------------

$("conversation-open").addEventListener("submit", (event) => {
  event.preventDefault();
  attempt(() => openConversation(new FormData(event.target).get("id")));
});

async function openConversation(id) {
  const [detail, page] = await Promise.all([
    call("GET", `/conversations/${id}`),
    call("GET", `/conversations/${id}/messages?limit=50&before_seq=9223372036854775807`),
  ]);
  const c = detail.conversation;
  $("conversation-detail").replaceChildren(
    el("h3", {}, `${c.kind} ${c.title || ""} (${c.id})`),
    el("p", { class: "meta" }, `${detail.message_count} messages (${detail.recalled_count} recalled), created ${c.created_at}, last activity ${c.updated_at}`),
    el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Member"), el("th", {}, "Role"), el("th", {}, "Read up to"), el("th", {}, "Joined"))),
      el("tbody", {}, ...detail.members.map((m) => el("tr", {}, el("td", {}, m.user_id), el("td", {}, m.role), el("td", {}, m.read_seq), el("td", {}, m.joined_at)))),
    ),
    c.kind === "group"
      ? reasonForm("Delete group", async (reason) => { await call("POST", `/conversations/${c.id}/delete`, { reason }); say(`Group ${c.id} deleted.`); })
      : null,
    el("h4", {}, "Latest messages"),
    el("ol", {}, ...page.messages.map(messageLine)),
  );
}

// Audit log -----------------------------------------------------------------------------------------------------

async function loadAudit(older) {
  const form = new FormData($("audit-filter"));
  const params = new URLSearchParams({ limit: "50" });
  for (const key of ["operator", "action", "text"]) if (form.get(key)) params.set(key, form.get(key));
  if (older && auditBefore) params.set("before", auditBefore);
  const page = await call("GET", `/audit?${params}`);
  const body = $("audit-table").querySelector("tbody");
  if (!older) body.replaceChildren();
  for (const e of page.entries) {
    body.append(
      el("tr", { "data-action": e.action },
        el("td", {}, e.at), el("td", {}, e.operator), el("td", {}, e.action), el("td", {}, `${e.target_kind} ${e.target}`),
        el("td", {}, e.reason), el("td", { class: `outcome-${e.outcome}` }, e.error ? `${e.outcome}: ${e.error}` : e.outcome),
        el("td", { class: "meta" }, e.trace_id),
      ),
    );
  }
  auditBefore = page.next_before;
  $("older-audit").hidden = !auditBefore;
}

$("audit-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  attempt(() => loadAudit(false));
});
$("older-audit").addEventListener("click", () => attempt(() => loadAudit(true)));

// Stats ---------------------------------------------------------------------------------------------------------

async function loadStats() {
  const stamp = Date.now();
  $("chart-messages").src = `${API}/stats/charts/messages.svg?days=30&t=${stamp}`;
  $("chart-active").src = `${API}/stats/charts/active-users.svg?days=30&t=${stamp}`;
  const [days, pipeline] = await Promise.all([call("GET", "/stats/days?days=30"), call("GET", "/stats/pipeline")]);
  $("top-day").textContent = days.top_day || "no day computed yet";
  $("top-table").querySelector("tbody").replaceChildren(
    ...days.top_conversations.map((t) => el("tr", {}, el("td", {}, t.conversation_id), el("td", {}, t.messages))),
  );
  $("lag-table").querySelector("tbody").replaceChildren(
    ...pipeline.lag.map((l) => el("tr", {}, el("td", {}, l.group), el("td", {}, l.topic), el("td", {}, l.lag))),
  );
  $("dlq-table").querySelector("tbody").replaceChildren(
    ...pipeline.dead_letters.map((d) => el("tr", {}, el("td", {}, d.topic), el("td", {}, d.count))),
  );
}

// Start: an existing session (a reload) goes straight in.
call("GET", "/auth/session").then(signedIn, showLogin);
