// Plain-words descriptions of common cron forms; anything else is shown as
// the expression itself (honest beats clever).

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
  'September', 'October', 'November', 'December'];
const DAY_NAMES = { SUN: 0, MON: 1, TUE: 2, WED: 3, THU: 4, FRI: 5, SAT: 6 };

const MACROS = {
  '@yearly': 'every year on January 1 at 00:00', '@annually': 'every year on January 1 at 00:00',
  '@monthly': 'on day 1 of every month at 00:00', '@weekly': 'every Sunday at 00:00',
  '@daily': 'every day at 00:00', '@midnight': 'every day at 00:00', '@hourly': 'every hour at minute 0',
};

const isNum = (x) => /^\d+$/.test(x);
const pad = (n) => String(n).padStart(2, '0');

function dayName(x) {
  const u = x.toUpperCase();
  if (u in DAY_NAMES) return DAYS[DAY_NAMES[u]];
  if (isNum(x)) return DAYS[Number(x) % 7];
  return null;
}

function describeDow(f) {
  if (f === '*' || f === '?') return null;
  if (/^(1-5|MON-FRI)$/i.test(f)) return 'on weekdays';
  if (/^(0,6|6,0|SAT,SUN|SUN,SAT)$/i.test(f)) return 'on weekends';
  const parts = f.split(',');
  const names = parts.map((p) => {
    const r = p.split('-');
    if (r.length === 2 && dayName(r[0]) && dayName(r[1])) return `${dayName(r[0])} to ${dayName(r[1])}`;
    return dayName(p);
  });
  if (names.every(Boolean)) return 'every ' + names.join(', ');
  return null;
}

function ordinal(n) {
  const s = ['th', 'st', 'nd', 'rd'], v = n % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
}

// Returns {text, exact}: exact=false when the expression is passed through.
export function describeCron(expr) {
  if (!expr || typeof expr !== 'string') return { text: '', exact: false };
  const e = expr.trim();
  if (MACROS[e.toLowerCase()]) return { text: MACROS[e.toLowerCase()], exact: true };
  let f = e.split(/\s+/);
  let sec = '0';
  if (f.length === 6) { sec = f[0]; f = f.slice(1); }
  if (f.length !== 5) return { text: e, exact: false };
  const [mi, ho, dom, mon, dow] = f;
  const fallback = { text: e, exact: false };
  if (sec !== '0') {
    const m = /^\*\/(\d+)$/.exec(sec);
    if (f.every((x) => x === '*')) {
      if (sec === '*') return { text: 'every second', exact: true };
      if (m) return { text: `every ${m[1]} seconds`, exact: true };
    }
    return fallback;
  }
  if (mon !== '*' && !(isNum(mon) && dom !== '*')) return fallback;
  const dowText = describeDow(dow);
  if (dow !== '*' && dow !== '?' && !dowText) return fallback;
  if (dom !== '*' && dom !== '?' && !isNum(dom)) return fallback;

  let when;
  if (mi === '*' && ho === '*') when = 'every minute';
  else if (/^\*\/\d+$/.test(mi) && ho === '*') when = `every ${mi.slice(2)} minutes`;
  else if (isNum(mi) && ho === '*') when = Number(mi) === 0 ? 'every hour' : `every hour at minute ${Number(mi)}`;
  else if (isNum(mi) && /^\*\/\d+$/.test(ho)) when = `every ${ho.slice(2)} hours at minute ${Number(mi)}`;
  else if (isNum(mi) && isNum(ho)) when = `at ${pad(ho)}:${pad(mi)}`;
  else if (isNum(mi) && /^\d+(,\d+)+$/.test(ho)) when = 'at ' + ho.split(',').map((x) => `${pad(x)}:${pad(mi)}`).join(', ');
  else return fallback;

  const daily = when.startsWith('at ');
  let days = '';
  if (dom !== '*' && dom !== '?') {
    days = isNum(mon) ? `on ${MONTHS[Number(mon) - 1]} ${Number(dom)}` : `on the ${ordinal(Number(dom))} of every month`;
    if (dowText) return fallback; // dom OR dow semantics: too subtle for plain words
  } else if (dowText) {
    days = dowText;
  } else if (daily) {
    days = 'every day';
  }
  return { text: [days, when].filter(Boolean).join(' '), exact: true };
}

// A schedule object ({cron, timezone} or {at, timezone}) in words.
export function describeSchedule(sch) {
  if (!sch) return { text: 'manual only', exact: true };
  if (sch.at) return { text: `once at ${sch.at}`, exact: true, once: true };
  const d = describeCron(sch.cron);
  return d;
}
