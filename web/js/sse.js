// The live feed: GET /api/v1/events as Server-Sent Events read through
// fetch() (EventSource cannot send the Authorization header) and parsed
// here. Reconnects with backoff and Last-Event-ID; reports 'live',
// 'connecting' and 'unavailable' so a view can fall back to polling.
import { authHeaders, paths } from './api.js';

// Feeds text chunks, calls onEvent({event, data, id}) per dispatched event.
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buf = '';
    this.reset();
    this.lastId = null;
  }
  reset() { this.event = ''; this.data = []; this.id = null; }
  feed(chunk) {
    this.buf += chunk;
    let i;
    while ((i = this.buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buf.slice(0, i);
      const nl = this.buf[i] === '\r' && this.buf[i + 1] === '\n' ? 2 : 1;
      // A lone \r at the very end may be half of \r\n: wait for more.
      if (this.buf[i] === '\r' && i + 1 === this.buf.length) break;
      this.buf = this.buf.slice(i + nl);
      this.line(line);
    }
  }
  line(line) {
    if (line === '') {
      if (this.data.length) {
        if (this.id !== null) this.lastId = this.id;
        this.onEvent({ event: this.event || 'message', data: this.data.join('\n'), id: this.id !== null ? this.id : this.lastId });
      }
      this.reset();
      return;
    }
    if (line.startsWith(':')) return;
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? '' : line.slice(c + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }
}

// Opens the feed. onEvent gets {event, data (parsed JSON when it is),
// id}; onStatus gets 'connecting' | 'live' | 'unavailable'. Returns a
// function that closes it.
export function openEvents({ onEvent, onStatus, query }) {
  let closed = false;
  let ctrl = null;
  let lastId = null;
  let failures = 0;
  let timer = null;
  const status = (s) => { if (!closed && onStatus) onStatus(s); };

  async function connect() {
    if (closed) return;
    status('connecting');
    ctrl = new AbortController();
    const headers = authHeaders({ Accept: 'text/event-stream' });
    if (lastId !== null) headers['Last-Event-ID'] = lastId;
    let url = paths.events();
    if (query) url += '?' + new URLSearchParams(query).toString();
    try {
      const resp = await fetch(url, { headers, signal: ctrl.signal, credentials: 'omit', cache: 'no-store' });
      const ct = resp.headers.get('content-type') || '';
      if (!resp.ok || !resp.body || !ct.includes('text/event-stream')) {
        try { await resp.body?.cancel(); } catch { /* ignore */ }
        // No such endpoint (404/405): ask again only every 30 s.
        if (resp.status === 404 || resp.status === 405) failures = 10;
        throw new Error(`events: ${resp.status}`);
      }
      failures = 0;
      status('live');
      const parser = new SseParser((ev) => {
        if (ev.id !== null) lastId = ev.id;
        let data = ev.data;
        try { data = JSON.parse(ev.data); } catch { /* keep text */ }
        onEvent({ event: ev.event, data, id: ev.id });
      });
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
      throw new Error('events: stream ended');
    } catch (e) {
      if (closed) return;
      failures++;
      status('unavailable');
      const wait = Math.min(30000, 1000 * 2 ** Math.min(failures, 5));
      timer = setTimeout(connect, wait);
    }
  }
  connect();
  return () => {
    closed = true;
    clearTimeout(timer);
    if (ctrl) ctrl.abort();
  };
}

// The run id an event is about, if it says (top level or under data).
export function eventRunId(d) {
  if (!d || typeof d !== 'object') return null;
  const v = d.run_id ?? (d.data && typeof d.data === 'object' ? d.data.run_id : undefined) ?? (d.run && d.run.id);
  return v === undefined || v === null ? null : String(v);
}
