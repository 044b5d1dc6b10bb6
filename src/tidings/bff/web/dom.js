// Building the page: user text only ever becomes a text node, nothing here parses markup.

/** An element with attributes, listeners (`onclick`...) and children (nodes or strings, strings as text). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** The element with this id; a missing one is a bug in index.html, so say which. */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el;
}

/** Replace the text of `el` (never its markup). */
export function setText(el, text) {
  el.textContent = text;
}

/** Message text length as the server counts it: Unicode code points, not UTF-16 units. */
export function codePoints(text) {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

// How much of a long text is shown before its first match, in code points.
const LEAD_IN = 40;

/**
 * `text` with the `[start, end)` spans marked, as text nodes and <mark> elements (never markup): the spans are
 * Unicode code point offsets, as search returns them, so the text is cut by code points, not UTF-16 units. A long
 * text keeps `max` code points from a little before its first match, with "…" where it was cut; spans out of order,
 * overlapping or past the end are clamped rather than trusted.
 */
export function highlighted(text, spans, max = Infinity) {
  const chars = Array.from(text);
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  const lead = sorted.length ? Math.max(0, sorted[0].start - LEAD_IN) : 0;
  const from = chars.length > max ? Math.max(0, Math.min(lead, chars.length - max)) : 0;
  const to = Math.min(chars.length, from + max);
  const parts = from > 0 ? ['…'] : [];
  let at = from;
  for (const span of sorted) {
    const start = Math.max(at, Math.min(span.start, to));
    const end = Math.max(start, Math.min(span.end, to));
    if (!(end > start)) continue; // empty, or not a number
    if (start > at) parts.push(chars.slice(at, start).join(''));
    parts.push(h('mark', {}, chars.slice(start, end).join('')));
    at = end;
  }
  if (to > at) parts.push(chars.slice(at, to).join(''));
  if (to < chars.length) parts.push('…');
  return parts;
}

export const numberFormat = new Intl.NumberFormat();

/** "14:05" today, "Mon 14:05" this week, a date otherwise. */
export function shortTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return '';
  const now = new Date();
  const time = when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (when.toDateString() === now.toDateString()) return time;
  if (now - when < 6 * 86400_000) return `${when.toLocaleDateString([], { weekday: 'short' })} ${time}`;
  return when.toLocaleDateString();
}

/** A random id for `client_msg_id`: printable ASCII, works outside secure contexts too. */
export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
