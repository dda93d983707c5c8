// Safe DOM building. Every value from the API goes in as text
// (createTextNode) or through setAttribute on an allow-listed attribute;
// nothing here ever assigns innerHTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Attributes that may carry API data. Event handlers (on*), style, href
// with javascript: and srcdoc are refused.
const SAFE_ATTRS = new Set([
  'id', 'class', 'title', 'type', 'name', 'value', 'placeholder', 'for', 'role',
  'tabindex', 'disabled', 'checked', 'selected', 'readonly', 'required', 'min', 'max',
  'step', 'rows', 'cols', 'colspan', 'rowspan', 'scope', 'datetime', 'lang', 'open',
  'autocomplete', 'spellcheck', 'multiple', 'hidden', 'href', 'target', 'rel', 'method',
  // svg geometry
  'viewBox', 'width', 'height', 'x', 'y', 'x1', 'y1', 'x2', 'y2', 'cx', 'cy', 'r', 'rx', 'ry',
  'd', 'points', 'transform', 'text-anchor', 'dominant-baseline', 'preserveAspectRatio',
  'focusable', 'marker-end', 'markerWidth', 'markerHeight', 'refX', 'refY', 'orient',
]);

function setAttr(el, k, v) {
  if (v === undefined || v === null || v === false) return;
  if (k.startsWith('data-') || k.startsWith('aria-')) { el.setAttribute(k, String(v)); return; }
  if (!SAFE_ATTRS.has(k)) throw new Error(`attribute not allowed: ${k}`);
  if (k === 'href') {
    const s = String(v);
    // Only in-app hash routes and same-origin relative paths.
    if (!(s.startsWith('#') || s.startsWith('/'))) throw new Error('href not allowed');
  }
  el.setAttribute(k, v === true ? '' : String(v));
}

function append(el, c) {
  if (c === undefined || c === null || c === false) return;
  if (Array.isArray(c)) { for (const x of c) append(el, x); return; }
  if (c instanceof Node) { el.appendChild(c); return; }
  el.appendChild(document.createTextNode(String(c)));
}

// h('div', {class: 'x', onclick: fn}, 'text', child, [more])
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

// The same for SVG elements.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

function apply(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class' && Array.isArray(v)) {
      setAttr(el, k, v.filter(Boolean).join(' '));
    } else {
      setAttr(el, k, v);
    }
  }
}

export function text(v) { return document.createTextNode(v === null || v === undefined ? '' : String(v)); }

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

export function replace(el, ...children) { clear(el); append(el, children); return el; }

export { append };
