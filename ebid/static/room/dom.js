// Small DOM helpers of the scoring room pages (room.js, clarifications.js): translated strings from the
// page's data-strings, element building, Beijing time.

export function translator(strings) {
  return (key, params = {}) => (strings[key] || key).replace(/%\((\w+)\)s/g, (_m, name) => (params[name] ?? ""));
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const beijing = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit",
  day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });

// an ISO time (UTC when it carries no offset) as "YYYY-MM-DD HH:MM" in Beijing time
export function when(iso) {
  if (!iso) return "";
  const date = new Date(/[zZ]|[+-]\d\d:\d\d$/.test(iso) ? iso : `${iso}Z`);
  return beijing.format(date).replace(/\//g, "-");
}
