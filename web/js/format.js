// Times in the viewer's zone with UTC on hover, durations, ages.
import { h } from './dom.js';

const local = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit',
});

export function parseTime(v) {
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function utcText(d) { return d.toISOString().replace('.000Z', 'Z') + ' (UTC)'; }

// <time> in the viewer's zone, UTC in the title.
export function timeEl(v, empty = '—') {
  const d = parseTime(v);
  if (!d) return h('span', { class: 'muted' }, empty);
  return h('time', { datetime: d.toISOString(), title: utcText(d) }, local.format(d));
}

// A time shown in a given IANA zone (the workflow's), UTC on hover.
export function zonedTimeEl(v, timeZone, empty = '—') {
  const d = parseTime(v);
  if (!d) return h('span', { class: 'muted' }, empty);
  let txt;
  try {
    txt = new Intl.DateTimeFormat(undefined, {
      timeZone: timeZone || 'UTC', weekday: 'short', month: 'short', day: '2-digit',
      hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
    }).format(d);
  } catch {
    txt = local.format(d);
  }
  return h('time', { datetime: d.toISOString(), title: `${utcText(d)} · in your zone: ${local.format(d)}` }, txt);
}

export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60), rs = Math.round(s % 60);
  if (m < 60) return `${m} min ${rs} s`;
  const hr = Math.floor(m / 60);
  return `${hr} h ${m % 60} min`;
}

export function between(a, b) {
  const da = parseTime(a);
  if (!da) return null;
  const db = parseTime(b) || new Date();
  return db - da;
}

export function age(v, now = Date.now()) {
  const d = parseTime(v);
  if (!d) return '—';
  const ms = now - d.getTime();
  if (ms < 0) return 'in ' + duration(-ms);
  return duration(ms) + ' ago';
}

export function plural(n, one, many) { return `${n} ${n === 1 ? one : (many || one + 's')}`; }
