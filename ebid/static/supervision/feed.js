// The supervision console's live feed (监督实时动态): connects to the /supervision Socket.IO namespace
// (the vendored client, window.io) and adds each audit event of the centre to the top of the table,
// keeping the filters of the form (tender id, organisation id, event-kind prefix). The rows the server
// rendered are the latest events; new ones arrive live. The page holds no text: labels come from the table.

const table = document.querySelector("[data-feed]");
const status = document.querySelector("[data-feed-status]");
const form = document.querySelector("[data-feed-filters]");
const MAX_ROWS = 200;

function filters() {
  const data = new FormData(form);
  return { tender: (data.get("tender") || "").trim(), organisation: (data.get("organisation") || "").trim(),
    kind: (data.get("kind") || "").trim() };
}

function matches(event, f) {
  if (f.tender && String(event.tender_id) !== f.tender) return false;
  if (f.organisation && String(event.organisation_id) !== f.organisation) return false;
  if (f.kind && !event.action.startsWith(f.kind)) return false;
  return true;
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  return td;
}

function addRow(event) {
  const tr = document.createElement("tr");
  tr.dataset.seq = event.seq;
  tr.dataset.live = "yes";
  const when = new Date(event.at);
  tr.append(cell(event.seq), cell(when.toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false })),
    cell(event.action), cell(event.tender_id || ""), cell(`${event.actor}${event.role ? ` (${event.role})` : ""}`),
    cell(`${event.object_type} ${event.object_id || ""}`));
  const body = table.tBodies[0];
  body.insertBefore(tr, body.firstChild);
  while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
}

if (table && window.io) {
  const socket = window.io(table.dataset.namespace, { path: "/socket.io", transports: ["websocket", "polling"] });
  socket.on("connect", () => { status.dataset.state = "live"; status.textContent = status.dataset.live; });
  socket.on("disconnect", () => { status.dataset.state = "offline"; status.textContent = status.dataset.offline; });
  socket.on("supervision.event", (event) => { if (matches(event, filters())) addRow(event); });
}
