// Line diff (Myers' O(ND) algorithm, linear refinement not needed at the
// sizes of workflow files). Returns [{op:' '|'-'|'+', text, a, b}] where a
// and b are 1-based line numbers in the old and new text (null when absent).

export function splitLines(t) {
  if (!t) return [];
  const lines = String(t).split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

export function diffLines(oldText, newText) {
  const a = splitLines(oldText), b = splitLines(newText);
  // Trim the common prefix and suffix: cheap and keeps the search small.
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const A = a.slice(pre, a.length - suf), B = b.slice(pre, b.length - suf);
  const mid = myers(A, B);
  const out = [];
  for (let i = 0; i < pre; i++) out.push({ op: ' ', text: a[i], a: i + 1, b: i + 1 });
  for (const m of mid) {
    out.push({ op: m.op, text: m.text, a: m.a === null ? null : m.a + pre + 1, b: m.b === null ? null : m.b + pre + 1 });
  }
  for (let i = suf; i > 0; i--) {
    out.push({ op: ' ', text: a[a.length - i], a: a.length - i + 1, b: b.length - i + 1 });
  }
  return out;
}

function myers(A, B) {
  const n = A.length, m = B.length, max = n + m;
  if (n === 0) return B.map((t, j) => ({ op: '+', text: t, a: null, b: j }));
  if (m === 0) return A.map((t, i) => ({ op: '-', text: t, a: i, b: null }));
  const off = max;
  let v = new Int32Array(2 * max + 2);
  const trace = [];
  let found = -1;
  for (let d = 0; d <= max; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x;
      if (k === -d || (k !== d && v[off + k - 1] < v[off + k + 1])) x = v[off + k + 1];
      else x = v[off + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && A[x] === B[y]) { x++; y++; }
      v[off + k] = x;
      if (x >= n && y >= m) { found = d; break; }
    }
    if (found >= 0) break;
  }
  // Backtrack through the saved frontiers.
  const ops = [];
  let x = n, y = m;
  for (let d = found; d > 0; d--) {
    const vd = trace[d];
    const k = x - y;
    let prevK;
    if (k === -d || (k !== d && vd[off + k - 1] < vd[off + k + 1])) prevK = k + 1;
    else prevK = k - 1;
    const prevX = vd[off + prevK];
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) { x--; y--; ops.push({ op: ' ', text: A[x], a: x, b: y }); }
    if (x === prevX) { y--; ops.push({ op: '+', text: B[y], a: null, b: y }); }
    else { x--; ops.push({ op: '-', text: A[x], a: x, b: null }); }
  }
  while (x > 0 && y > 0) { x--; y--; ops.push({ op: ' ', text: A[x], a: x, b: y }); }
  return ops.reverse();
}

export function diffStats(d) {
  let add = 0, del = 0;
  for (const l of d) { if (l.op === '+') add++; else if (l.op === '-') del++; }
  return { add, del };
}
