// Concord dashboard: plain modern JavaScript, no dependencies, no build step.
// Data: JSON snapshots from /dashboard/api and live events from /dashboard/events (SSE, read with fetch so the
// API key can travel in a header). The timeline is SVG, virtualized: one column per operation, one lane per agent,
// and only the columns and lanes in view are drawn, so 100 agents and thousands of operations stay cheap.

const MAX_ENTRIES = 6000;      // operations kept in the page
let LANE = 34;                 // lane height (px): 26–52, taller when few agents share the panel
const PAD_LEFT = 18, PAD_RIGHT = 60;
const KEYS_PAGE = 100;
const SVG_NS = 'http://www.w3.org/2000/svg';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const perf = (window.concordPerf = { firstRender: null, flushes: [], renders: [], events: 0 });

const state = {
  apiKey: sessionStorage.getItem('concord.apiKey'),
  startedAt: null,
  entries: [],
  bySeq: new Map(),
  lastSeq: 0,
  nsFilter: params.get('ns') || '',
  keyFilter: params.get('key') || null,
  view: [],                    // entries shown (after filters), in journal order
  viewIndex: new Map(),        // seq -> index in view
  lanes: [],                   // [{agent, ns:Set}]
  laneIndex: new Map(),        // agent -> lane index
  runs: [],                    // contiguous namespace runs in view: [{ns, from, to}]
  namespaces: new Map(),       // ns -> summary (ops, conflicts, ...)
  findings: [],
  victims: new Map(),          // seq of a write whose update was lost -> finding
  overwriters: new Map(),      // seq of the blind write -> finding
  verdicts: new Map(),
  selected: null,
  follow: true,
  zoom: 1,
  latestNs: null,
  stateNs: params.get('state') || '',
  tab: 'keys',
  keys: { ns: null, prefix: '', starts: [null], next: null, rows: [], loading: false },
  sse: null,
  connected: false,
};

// ------------------------------------------------------------------ helpers

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function plural(n, one, many) { return `${n} ${n === 1 ? one : many}`; }
function seconds(ms) { return `${(ms / 1000).toFixed(ms < 10000 ? 3 : 2)} s`; }
function span(ms) { return ms < 1000 ? `${ms.toFixed(ms < 10 ? 2 : ms < 100 ? 1 : 0)} ms` : seconds(ms); }
function clock(ms) {
  if (!state.startedAt) return seconds(ms);
  const d = new Date(state.startedAt.getTime() + ms);
  return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}
function col() {
  // One column per operation: 32 px at zoom 1, widened to fill the panel while there are few operations.
  const base = Math.min(80, Math.max(14, 32 * state.zoom));
  const fit = ((tl.scroll?.clientWidth || 800) - PAD_LEFT - PAD_RIGHT) / Math.max(1, state.view.length);
  return Math.round(fit > base ? Math.min(fit, 72 * state.zoom) : base);
}

async function api(path, init = {}) {
  const headers = Object.assign({ Accept: 'application/json' }, init.headers || {});
  if (state.apiKey) headers.Authorization = `Bearer ${state.apiKey}`;
  const res = await fetch(path, Object.assign({}, init, { headers }));
  if (res.status === 401) { showAuth(); throw new Error('unauthorized'); }
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  return res.json();
}

function opWord(e) {
  if (e.op === 'txn') return 'transaction';
  return e.op;
}

function describeShort(e) {
  const key = e.key ?? (e.parts || []).map((p) => p.key).join(', ');
  const v = e.version !== undefined ? ` v${e.version}` : '';
  if (e.outcome === 'conflict') return `${e.agent}: ${opWord(e)} ${key} refused (${e.conflict}); current v${e.version ?? 0}${e.writer ? ` by ${e.writer}` : ''}`;
  if (e.outcome === 'error') return `${e.agent}: ${opWord(e)} ${key} failed: ${e.message ?? ''}`;
  if (e.op === 'read') return `${e.agent}: read ${key}${e.outcome === 'absent' ? ' (absent)' : `${v} by ${e.writer ?? '?'}`}`;
  if (e.op === 'list') return `${e.agent}: list ${key || '(all)'} → ${e.count ?? 0} keys`;
  if (e.op === 'txn') return `${e.agent}: transaction on ${key}${e.outcome === 'else' ? ' (else branch)' : ''}`;
  return `${e.agent}: ${e.op} ${key} →${v}${e.blind ? ' (blind)' : ''}${e.basedOn !== undefined ? `, based on v${e.basedOn}` : ''}${(e.attempt || 1) > 1 ? `, attempt ${e.attempt}` : ''}`;
}

// ------------------------------------------------------------------ data: entries, view, lanes

function passes(e) {
  if (state.nsFilter && e.ns !== state.nsFilter) return false;
  if (state.keyFilter) {
    if (e.key === state.keyFilter) return true;
    return (e.parts || []).some((p) => p.key === state.keyFilter);
  }
  return true;
}

function addToView(e) {
  const i = state.view.length;
  state.view.push(e);
  state.viewIndex.set(e.seq, i);
  if (!state.laneIndex.has(e.agent)) {
    state.laneIndex.set(e.agent, state.lanes.length);
    state.lanes.push({ agent: e.agent, ns: new Set() });
  }
  state.lanes[state.laneIndex.get(e.agent)].ns.add(e.ns);
  const run = state.runs[state.runs.length - 1];
  if (run && run.ns === e.ns) run.to = i;
  else state.runs.push({ ns: e.ns, from: i, to: i });
}

function rebuildView() {
  state.view = [];
  state.viewIndex = new Map();
  state.lanes = [];
  state.laneIndex = new Map();
  state.runs = [];
  for (const e of state.entries) if (passes(e)) addToView(e);
  renderLabels();
}

function ingest(entries) {
  let laneAdded = false;
  for (const e of entries) {
    if (state.bySeq.has(e.seq)) continue;
    state.entries.push(e);
    state.bySeq.set(e.seq, e);
    state.lastSeq = Math.max(state.lastSeq, e.seq);
    state.latestNs = e.ns;
    noteNamespace(e.ns, e);
    if (passes(e)) {
      const lanes = state.lanes.length;
      addToView(e);
      if (state.lanes.length !== lanes) laneAdded = true;
    }
  }
  if (state.entries.length > MAX_ENTRIES) {
    const drop = state.entries.length - MAX_ENTRIES + 1000;
    for (const e of state.entries.slice(0, drop)) state.bySeq.delete(e.seq);
    state.entries = state.entries.slice(drop);
    rebuildView();
  } else if (laneAdded) {
    renderLabels();
  }
}

function noteNamespace(ns, e) {
  let s = state.namespaces.get(ns);
  const isNew = !s;
  if (!s) { s = { ns, ops: 0, conflicts: 0, lostUpdates: 0, retries: 0 }; state.namespaces.set(ns, s); }
  if (e) {
    s.ops = (s.ops || 0) + 1;
    if (e.outcome === 'conflict') s.conflicts = (s.conflicts || 0) + 1;
    if ((e.attempt || 1) > 1) s.retries = (s.retries || 0) + 1;
  }
  if (isNew) renderNamespaceOptions();
}

function addFinding(f) {
  if (state.overwriters.has(f.overwriteSeq)) return false;
  state.findings.push(f);
  state.overwriters.set(f.overwriteSeq, f);
  // A version can be lost to several later blind writes; the one that overwrote it directly explains it best.
  for (const v of f.lost) if (v.seq && (!state.victims.has(v.seq) || f.lost[0].seq === v.seq)) state.victims.set(v.seq, f);
  return true;
}

// ------------------------------------------------------------------ timeline rendering

const tl = {
  root: $('timeline'), scroll: $('tl-scroll'), svg: $('tl-svg'), axis: $('tl-axis-svg'),
  labels: $('tl-labels-inner'), empty: $('tl-empty'), content: null, programmaticLeft: null,
};

function setupSvg() {
  tl.svg.innerHTML = `
    <defs>
      <marker id="ah-based" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M1 1 L9 5 L1 9" class="a-based-head"/></marker>
      <marker id="ah-reads" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M1 1 L9 5 L1 9" class="a-based-head"/></marker>
      <marker id="ah-conflict" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M1 1 L9 5 L1 9" fill="none" stroke="#f97316" stroke-width="1.6"/></marker>
      <marker id="ah-lost" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M1 1 L9 5 L1 9" class="a-lost-head"/></marker>
    </defs>
    <g id="tl-bg"></g><g id="tl-arrows"></g><g id="tl-marks"></g>`;
  tl.bg = $('tl-bg'); tl.arrows = $('tl-arrows'); tl.marks = $('tl-marks');
}

function laneColor(i) {
  const hues = [215, 150, 20, 275, 190, 330, 95, 45, 250, 0];
  return `hsl(${hues[i % hues.length]} 55% 45%)`;
}

function renderLabels() {
  const frag = document.createDocumentFragment();
  const selectedAgent = state.selected !== null ? state.bySeq.get(state.selected)?.agent : null;
  state.lanes.forEach((lane, i) => {
    const nsList = [...lane.ns];
    const tag = !state.nsFilter && nsList.length === 1 && state.runs.length > 1 ? nsList[0].replace(/^demo-/, '') : '';
    const div = h('div', { class: 'tl-label' + (lane.agent === selectedAgent ? ' current' : ''), title: `${lane.agent}${nsList.length ? ' — ' + nsList.join(', ') : ''}` },
      h('span', { class: 'swatch' }), h('span', { text: lane.agent }), tag ? h('span', { class: 'ns-tag', text: tag }) : null);
    div.firstChild.style.background = laneColor(i);
    frag.append(div);
  });
  tl.labels.replaceChildren(frag);
  tl.root.style.setProperty('--lane-height', `${LANE}px`);
}

function x(i) { const c = col(); return PAD_LEFT + i * c + c / 2; }
function y(lane) { return lane * LANE + LANE / 2; }

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; renderTimeline(); });
}

function renderTimeline() {
  const t0 = performance.now();
  const laneHeight = Math.min(52, Math.max(state.lanes.length > 12 ? 26 : 34, Math.floor((tl.scroll.clientHeight || 300) / Math.max(1, state.lanes.length))));
  if (laneHeight !== LANE) { LANE = laneHeight; tl.root.style.setProperty('--lane-height', `${LANE}px`); }
  const c = col();
  const n = state.view.length;
  const width = Math.max(PAD_LEFT + n * c + PAD_RIGHT, tl.scroll.clientWidth || 0);
  const height = Math.max(state.lanes.length * LANE, 10);
  tl.svg.setAttribute('width', width);
  tl.svg.setAttribute('height', height);
  tl.empty.hidden = n > 0;

  const left = tl.scroll.scrollLeft, top = tl.scroll.scrollTop;
  const w = tl.scroll.clientWidth || 800, hh = tl.scroll.clientHeight || 300;
  const c0 = Math.max(0, Math.floor((left - PAD_LEFT) / c) - 2);
  const c1 = Math.min(n - 1, Math.ceil((left + w - PAD_LEFT) / c) + 2);
  const l0 = Math.max(0, Math.floor(top / LANE) - 1);
  const l1 = Math.min(state.lanes.length - 1, Math.ceil((top + hh) / LANE) + 1);
  const selected = state.selected !== null ? state.bySeq.get(state.selected) : null;
  const selectedLane = selected ? state.laneIndex.get(selected.agent) : -1;

  // Lanes and namespace boundaries.
  let bg = '';
  for (let l = l0; l <= l1; l++) {
    bg += `<rect class="lane-bg${l === selectedLane ? ' current' : l % 2 ? ' alt' : ''}" x="${left}" y="${l * LANE}" width="${w}" height="${LANE}"/>`;
    bg += `<line class="lane-line" x1="${left}" x2="${left + w}" y1="${(l + 1) * LANE - 0.5}" y2="${(l + 1) * LANE - 0.5}"/>`;
  }
  for (const run of state.runs) {
    if (run.from === 0 || run.from < c0 || run.from > c1) continue;
    const bx = PAD_LEFT + run.from * c;
    bg += `<line class="ns-band-line" x1="${bx}" x2="${bx}" y1="${top}" y2="${top + hh}"/>`;
  }
  tl.bg.innerHTML = bg;

  // Marks: one column per operation, so at most one mark per visible column.
  let marks = '';
  for (let i = c0; i <= c1; i++) {
    const e = state.view[i];
    const lane = state.laneIndex.get(e.agent);
    if (lane < l0 || lane > l1) continue;
    marks += markSvg(e, x(i), y(lane), c, e.seq === state.selected);
  }
  tl.marks.innerHTML = marks;

  // Arrows whose head is in view (or just right of it): based-on, reads-from, conflicts, lost updates.
  let arrows = '';
  const reach = Math.min(n - 1, c1 + 60);
  for (let i = c0; i <= reach; i++) {
    const e = state.view[i];
    const tx = x(i), ty = y(state.laneIndex.get(e.agent));
    const dim = selected && !related(selected, e) ? ' arrow-dim' : '';
    if (e.basedOnSeq && e.op !== 'list') {
      const s = state.viewIndex.get(e.basedOnSeq);
      if (s !== undefined && s < i) {
        const src = state.view[s];
        const read = e.op === 'read';
        arrows += arrowSvg(x(s), y(state.laneIndex.get(src.agent)), tx, ty, read ? 'a-reads' : 'a-based', read ? 'ah-reads' : 'ah-based', dim);
      }
    }
    if (e.conflictWithSeq) {
      const s = state.viewIndex.get(e.conflictWithSeq);
      if (s !== undefined && s < i) arrows += arrowSvg(x(s), y(state.laneIndex.get(state.view[s].agent)), tx, ty, 'a-conflict', 'ah-conflict', dim);
    }
    const f = state.overwriters.get(e.seq);
    if (f) {
      for (const v of f.lost) {
        const s = v.seq ? state.viewIndex.get(v.seq) : undefined;
        if (s !== undefined && s < i) arrows += arrowSvg(x(s), y(state.laneIndex.get(state.view[s].agent)), tx, ty, 'a-lost', 'ah-lost', '');
      }
    }
  }
  tl.arrows.innerHTML = arrows;

  renderAxis(left, w, c0, c1);
  tl.labels.style.transform = `translateY(${-top}px)`;
  perf.renders.push(performance.now() - t0);
  if (perf.renders.length > 500) perf.renders.splice(0, 250);
}

function related(a, b) {
  if (a.seq === b.seq) return true;
  return b.basedOnSeq === a.seq || a.basedOnSeq === b.seq || b.conflictWithSeq === a.seq || a.conflictWithSeq === b.seq;
}

function arrowSvg(x1, y1, x2, y2, cls, marker, dim) {
  let d;
  if (Math.abs(y1 - y2) < 1) {
    const lift = Math.min(LANE * 0.62, 10 + Math.abs(x2 - x1) * 0.12);
    d = `M${x1 + 5} ${y1 - 6} Q${(x1 + x2) / 2} ${y1 - lift - 6} ${x2 - 6} ${y2 - 7}`;
  } else {
    const dx = Math.max(18, (x2 - x1) * 0.45);
    const sy = y2 > y1 ? 7 : -7;
    d = `M${x1 + 6} ${y1 + sy * 0.4} C${x1 + dx} ${y1 + sy}, ${x2 - dx} ${y2 - sy * 2}, ${x2 - 7} ${y2 - sy}`;
  }
  return `<path class="arrow ${cls}${dim}" d="${d}" marker-end="url(#${marker})"/>`;
}

function markSvg(e, cx, cy, c, selected) {
  const victim = state.victims.get(e.seq);
  const overwriter = state.overwriters.get(e.seq);
  const retry = (e.attempt || 1) > 1 && e.outcome !== 'error';
  let shape;
  if (e.outcome === 'error') shape = '<path class="m-error" d="M-5 -5 L5 5 M5 -5 L-5 5"/>';
  else if (e.outcome === 'conflict') shape = '<path class="m-conflict" d="M0 -7 L7 6 L-7 6 Z"/>';
  else if (e.op === 'read') shape = `<circle r="5.5" class="${e.outcome === 'absent' ? 'm-read-absent' : 'm-read'}"/>`;
  else if (e.op === 'list') shape = '<rect x="-6" y="-4" width="12" height="8" rx="2" class="m-list"/>';
  else if (e.op === 'patch') shape = '<path class="m-patch" d="M0 -7 L7 0 L0 7 L-7 0 Z"/>';
  else if (e.op === 'delete') shape = '<rect x="-5.5" y="-5.5" width="11" height="11" class="m-delete"/><path d="M-5 -5 L5 5" stroke="#111827" stroke-width="1.6"/>';
  else if (e.op === 'txn') shape = '<path class="m-txn" d="M-3.5 -6 L3.5 -6 L7 0 L3.5 6 L-3.5 6 L-7 0 Z"/>';
  else shape = `<rect x="-6" y="-6" width="12" height="12" rx="1.5" class="${e.blind ? 'm-blind' : 'm-write'}"/>`;
  let extra = '';
  if (retry) extra += '<circle r="10" class="m-retry-ring"/>';
  if (victim) extra += '<circle r="11" class="m-lost-ring"/>';
  if (overwriter) extra += '<circle r="11" class="m-overwriter-ring"/>';
  if (selected) extra += '<circle r="14" class="sel-ring"/>';
  let badge = '';
  if (victim) badge = '<text class="m-badge" y="-14" text-anchor="middle">LOST</text>';
  else if (overwriter) badge = `<text class="m-badge" y="-14" text-anchor="middle">${c >= 66 ? 'OVERWROTE' : 'BLIND'}</text>`;
  else if (retry) badge = `<text class="m-badge retry" y="-13" text-anchor="middle">↻${e.attempt}</text>`;
  const label = c >= 22 && LANE >= 30 && e.version !== undefined && e.op !== 'list' ? `<text class="m-label" y="${LANE / 2 - 3}" text-anchor="middle">v${e.version}</text>` : '';
  const title = esc(`#${e.seq} ${describeShort(e)} · ${e.ns}${victim ? ' · LOST: ' + victim.explanation : ''}${overwriter ? ' · ' + overwriter.explanation : ''}`);
  return `<g class="mark" data-seq="${e.seq}" transform="translate(${cx} ${cy})"><title>${title}</title><rect class="hit" x="${-c / 2}" y="${-LANE / 2}" width="${c}" height="${LANE}"/>${extra}${shape}${badge}${label}</g>`;
}

function renderAxis(left, w, c0, c1) {
  const c = col();
  tl.axis.setAttribute('width', w);
  let s = '';
  // Namespace runs: a label at the start of each run (pinned to the left edge while the run is in view).
  for (const run of state.runs) {
    if (run.to < c0 || run.from > c1) continue;
    const start = Math.max(PAD_LEFT + run.from * c, left + 4) - left;
    const end = PAD_LEFT + (run.to + 1) * c - left;
    if (state.runs.length > 1 || !state.nsFilter) {
      s += `<text class="axis-ns" x="${start + 2}" y="11">${esc(run.ns)}</text>`;
      s += `<line class="axis-tick" x1="${Math.max(0, PAD_LEFT + run.from * c - left)}" x2="${Math.min(w, end)}" y1="15.5" y2="15.5"/>`;
    }
  }
  // Time ticks: the operation's start, relative to the first one in view.
  const every = Math.max(1, Math.round(110 / c));
  const base = state.view.length ? state.view[0].start || 0 : 0;
  for (let i = Math.ceil(c0 / every) * every; i <= c1; i += every) {
    const e = state.view[i];
    if (!e) continue;
    s += `<text class="axis-text" x="${x(i) - left}" y="24" text-anchor="middle">+${esc(span((e.start || 0) - base))}</text>`;
  }
  tl.axis.innerHTML = s;
}

function followToEnd() {
  const max = tl.scroll.scrollWidth - tl.scroll.clientWidth;
  if (max > 0 && Math.abs(tl.scroll.scrollLeft - max) > 1) {
    tl.programmaticLeft = max;
    tl.scroll.scrollLeft = max;
  }
}

function setFollow(on) {
  state.follow = on;
  $('follow').setAttribute('aria-pressed', String(on));
  if (on) { renderTimeline(); followToEnd(); scheduleRender(); }
}

// ------------------------------------------------------------------ selection, keyboard

function select(seq, { scroll = true, announce = true } = {}) {
  const e = state.bySeq.get(seq);
  if (!e) return;
  if (!state.viewIndex.has(seq)) {
    // The operation is filtered out: clear the filters that hide it.
    state.keyFilter = null;
    if (state.nsFilter && state.nsFilter !== e.ns) { state.nsFilter = ''; $('ns-filter').value = ''; }
    updateKeyFilterChip();
    rebuildView();
    renderTimeline();
  }
  const previousAgent = state.selected !== null ? state.bySeq.get(state.selected)?.agent : null;
  state.selected = seq;
  if (previousAgent !== e.agent) renderLabels();
  if (scroll) scrollIntoView(state.viewIndex.get(seq), state.laneIndex.get(e.agent));
  setFollow(false);
  renderTimeline();
  renderDetail(e);
  if (announce) $('timeline-status').textContent = `Operation ${state.viewIndex.get(seq) + 1} of ${state.view.length}. ${describeShort(e)}.${state.victims.has(seq) ? ' This update was lost.' : ''}${state.overwriters.has(seq) ? ' This write overwrote updates it never read.' : ''}`;
}

function scrollIntoView(i, lane) {
  const c = col();
  const cx = PAD_LEFT + i * c;
  const sc = tl.scroll;
  if (cx < sc.scrollLeft + c) sc.scrollLeft = Math.max(0, cx - c * 3);
  else if (cx + c > sc.scrollLeft + sc.clientWidth - c) sc.scrollLeft = cx - sc.clientWidth + c * 4;
  const ly = lane * LANE;
  if (ly < sc.scrollTop) sc.scrollTop = ly;
  else if (ly + LANE > sc.scrollTop + sc.clientHeight) sc.scrollTop = ly + LANE - sc.clientHeight;
}

function moveInLane(step) {
  const v = state.view;
  if (!v.length) return;
  if (state.selected === null || !state.viewIndex.has(state.selected)) { select(v[v.length - 1].seq); return; }
  const i = state.viewIndex.get(state.selected);
  const agent = v[i].agent;
  for (let j = i + step; j >= 0 && j < v.length; j += step) if (v[j].agent === agent) { select(v[j].seq); return; }
}

function moveLane(step) {
  const v = state.view;
  if (!v.length) return;
  if (state.selected === null || !state.viewIndex.has(state.selected)) { select(v[v.length - 1].seq); return; }
  const i = state.viewIndex.get(state.selected);
  const target = state.laneIndex.get(v[i].agent) + step;
  if (target < 0 || target >= state.lanes.length) return;
  const agent = state.lanes[target].agent;
  for (let d = 0; d < v.length; d++) {
    if (i - d >= 0 && v[i - d].agent === agent) { select(v[i - d].seq); return; }
    if (i + d < v.length && v[i + d].agent === agent) { select(v[i + d].seq); return; }
  }
}

function jumpTo(pred, step) {
  const v = state.view;
  if (!v.length) return;
  let i = state.selected !== null && state.viewIndex.has(state.selected) ? state.viewIndex.get(state.selected) : (step > 0 ? -1 : v.length);
  for (let j = i + step; j >= 0 && j < v.length; j += step) if (pred(v[j])) { select(v[j].seq); return; }
  $('timeline-status').textContent = step > 0 ? 'No more below this point.' : 'None before this point.';
}

function onTimelineKey(ev) {
  if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
  const k = ev.key;
  let handled = true;
  if (k === 'ArrowRight') moveInLane(1);
  else if (k === 'ArrowLeft') moveInLane(-1);
  else if (k === 'ArrowUp') moveLane(-1);
  else if (k === 'ArrowDown') moveLane(1);
  else if (k === 'Home') { if (state.view.length) select(state.view[0].seq); }
  else if (k === 'End') { if (state.view.length) { select(state.view[state.view.length - 1].seq); setFollow(true); } }
  else if (k === 'c' || k === 'C') jumpTo((e) => e.outcome === 'conflict', k === 'C' ? -1 : 1);
  else if (k === 'l' || k === 'L') jumpTo((e) => state.overwriters.has(e.seq) || state.victims.has(e.seq), k === 'L' ? -1 : 1);
  else if (k === '+' || k === '=') zoom(1.25);
  else if (k === '-' || k === '_') zoom(0.8);
  else if (k === 'f' || k === 'F') setFollow(!state.follow);
  else if (k === 'Escape') clearSelection();
  else handled = false;
  if (handled) ev.preventDefault();
}

function zoom(f) {
  const i = state.selected !== null ? state.viewIndex.get(state.selected) : null;
  state.zoom = Math.min(2.5, Math.max(0.45, state.zoom * f));
  renderTimeline();
  if (i !== undefined && i !== null) scrollIntoView(i, state.laneIndex.get(state.view[i].agent));
  else if (state.follow) followToEnd();
  scheduleRender();
}

function clearSelection() {
  state.selected = null;
  state.keyFilter = null;
  updateKeyFilterChip();
  rebuildView();
  renderDetailEmpty();
  setFollow(true);
}

// ------------------------------------------------------------------ detail panel

function seqLink(seq, text) {
  if (!seq || !state.bySeq.has(seq)) return h('span', { text });
  return h('button', { type: 'button', class: 'link', 'data-seq': seq, text, title: `Select operation #${seq}` });
}

function renderDetailEmpty() {
  $('detail').replaceChildren(h('p', { class: 'muted', text: 'Select an operation in the timeline (click it, or focus the timeline and use the arrow keys).' }));
}

function versionBy(seq, version) {
  const src = seq ? state.bySeq.get(seq) : null;
  return src ? `v${version} by ${src.agent} (#${seq})` : `v${version}`;
}

function renderDetail(e) {
  const rows = [];
  const row = (k, ...v) => rows.push(h('dt', { text: k }), h('dd', {}, ...v));
  const key = e.key ?? (e.parts || []).map((p) => p.key).join(', ');
  row('Namespace', h('span', { class: 'mono', text: e.ns }));
  if (key) row(e.op === 'list' ? 'Prefix' : 'Key', h('span', { class: 'mono', text: key || '(all)' }));
  row('Outcome', e.outcome === 'conflict' ? h('b', { class: 'check-bad', text: `conflict: ${e.conflict}` }) : e.outcome);
  if (e.expect) row('Expectation', e.expect + (e.blind ? ' — blind: replaces whatever is there' : e.expect.startsWith('v') ? ' — compare-and-swap' : ''));
  if (e.op === 'read' && e.outcome === 'ok') row('Read', seqLink(e.basedOnSeq, `v${e.version} written by ${e.writer ?? '?'}`), e.revision ? ` (revision ${e.revision})` : '');
  if (['put', 'patch', 'delete'].includes(e.op) && e.outcome === 'ok') {
    row('Wrote', `v${e.version}`, e.revision ? ` (revision ${e.revision})` : '');
    if (e.basedOn !== undefined) row('Based on', e.basedOn === 0 ? 'nothing (the key was new to this agent)' : seqLink(e.basedOnSeq, versionBy(e.basedOnSeq, e.basedOn)),
      e.op === 'patch' ? ' — applied atomically to the current version' : '');
  }
  if (e.outcome === 'conflict') row('Current', seqLink(e.conflictWithSeq, `v${e.version ?? 0}${e.writer ? ` by ${e.writer}` : ''}`), ' — the write was refused, nothing changed');
  if ((e.attempt || 1) > 1) row('Attempt', `${e.attempt} (a retry after ${plural(e.attempt - 1, 'refusal', 'refusals')})`);
  if (e.parts) row('Keys', h('ul', { class: 'findings' }, e.parts.map((p) => h('li', {}, `${p.op} `, h('span', { class: 'mono', text: p.key }), ` v${p.version}`))));
  if (e.count !== undefined) row('Records', String(e.count));
  if (e.replayed) row('Replayed', 'yes — an idempotent retry; the original result was returned');
  if (e.causal) row('Causal', h('span', { class: 'mono', text: e.causal }));
  if (e.message && e.outcome !== 'ok') row('Message', e.message);
  row('When', `t = ${seconds(e.start || 0)} (${clock(e.start || 0)}), took ${((e.end || 0) - (e.start || 0)).toFixed(1)} ms`);
  row('Journal', `#${e.seq}`);

  const parts = [h('h3', { text: `${opWord(e)} by ${e.agent}` }), h('dl', { class: 'kv' }, rows)];
  const victim = state.victims.get(e.seq);
  if (victim) parts.push(h('p', { class: 'callout bad' }, h('b', { text: 'This update was lost. ' }), victim.explanation, ' ', seqLink(victim.overwriteSeq, 'Show the overwrite →')));
  const overwriter = state.overwriters.get(e.seq);
  if (overwriter) parts.push(h('p', { class: 'callout bad' }, h('b', { text: 'Lost update. ' }), overwriter.explanation, ' ',
    ...overwriter.lost.filter((v) => v.seq).map((v) => seqLink(v.seq, `Show v${v.version} →`))));
  if (e.outcome === 'conflict') parts.push(h('p', { class: 'callout warn', text: 'The store refused this stale write instead of letting it erase a newer version: the agent was told, and can recompute from the current value it got back.' }));
  $('detail').replaceChildren(...parts);
}

// ------------------------------------------------------------------ verdicts

function renderVerdicts() {
  const names = new Set([...state.verdicts.keys(), ...state.findings.map((f) => f.ns)]);
  const list = [...names].sort();
  const box = $('verdicts');
  if (!list.length) { box.replaceChildren(h('p', { class: 'muted', text: 'No checks yet: verdicts appear a moment after the first operations.' })); return; }
  const cards = list.map((ns) => {
    const v = state.verdicts.get(ns);
    const findings = state.findings.filter((f) => f.ns === ns);
    const status = findings.length ? 'anomaly' : v ? v.status : 'unknown';
    const badge = status === 'anomaly' ? (findings.length ? 'Lost updates' : 'Anomaly') : status === 'ok' ? 'OK' : 'Checking';
    const card = h('div', { class: `verdict ${status}`, 'data-ns': ns });
    card.append(h('div', { class: 'verdict-head' }, h('span', { class: `badge ${status}`, text: badge }), h('h3', { text: ns, title: ns })));
    const lostText = `${plural(findings.length, 'lost update', 'lost updates')}: blind writes silently erased versions their writers never read.`;
    // Findings arrive live; the verdict catches up at the next check.
    const summary = v && (v.lostUpdates.verdict === 'invalid' || !findings.length) ? v.summary : findings.length ? `${lostText} Checking the rest…` : 'Checking…';
    card.append(h('p', { class: 'summary', text: summary }));
    if (findings.length) {
      const shown = findings.slice(-4).reverse();
      card.append(h('ul', { class: 'findings' }, shown.map((f) => h('li', {}, h('button', { type: 'button', class: 'link', 'data-seq': f.overwriteSeq, text: f.explanation })))));
      if (findings.length > shown.length) card.append(h('p', { class: 'muted', text: `… and ${findings.length - shown.length} more (press L in the timeline to step through them).` }));
    }
    if (v) {
      const lin = v.linearizability;
      card.append(h('div', { class: 'checks' },
        h('span', {}, 'Linearizability: ', h('b', { class: lin.verdict === 'valid' ? 'check-ok' : 'check-bad', text: lin.verdict }), ` (${plural(lin.operations || 0, 'op', 'ops')}, ${plural(lin.keys || 0, 'key', 'keys')})`),
        h('span', {}, 'Lost updates: ', h('b', { class: findings.length ? 'check-bad' : 'check-ok', text: String(findings.length) })),
        h('span', { text: `Conflicts: ${v.conflicts || 0}` }),
        h('span', { text: `Retries: ${v.retries || 0}` })));
      const text = [lin.explanation, v.lostUpdates.explanation, ...(v.notes || [])].join('\n\n');
      card.append(h('details', {}, h('summary', { text: 'Checker explanation' }), h('pre', { text })));
    }
    return card;
  });
  box.replaceChildren(...cards);
  const latest = [...state.verdicts.values()].reduce((a, b) => (a && a.checkedAt > b.checkedAt ? a : b), null);
  $('verdicts-when').textContent = latest ? `checked at ${clock(latest.checkedAt)}` : '';
}

// ------------------------------------------------------------------ top bar, namespaces

function renderStats() {
  const scope = state.nsFilter ? [state.namespaces.get(state.nsFilter)].filter(Boolean) : [...state.namespaces.values()];
  const ops = scope.reduce((a, s) => a + (s.ops || 0), 0);
  const conflicts = scope.reduce((a, s) => a + (s.conflicts || 0), 0);
  const lost = state.findings.filter((f) => !state.nsFilter || f.ns === state.nsFilter).length;
  $('stats').innerHTML = `<b>${ops}</b> ops · <b>${state.lanes.length}</b> agents · <b>${conflicts}</b> conflicts · <b class="${lost ? 'bad' : ''}">${lost}</b> lost updates`;
}

function renderNamespaceOptions() {
  for (const [id, first] of [['ns-filter', 'All namespaces'], ['ns-state', 'latest active namespace']]) {
    const sel = $(id);
    const current = id === 'ns-filter' ? state.nsFilter : state.stateNs;
    const names = [...state.namespaces.keys()].sort();
    if (current && !names.includes(current)) names.push(current);
    sel.replaceChildren(h('option', { value: '', text: first }), ...names.map((n) => h('option', { value: n, text: n })));
    sel.value = current;
  }
}

function updateKeyFilterChip() {
  $('key-filter').hidden = !state.keyFilter;
  $('key-filter-text').textContent = state.keyFilter ? `key ${state.keyFilter}` : '';
}

// ------------------------------------------------------------------ state panel (keys, agents, locks, queues, streams)

function stateNs() { return state.stateNs || state.nsFilter || state.latestNs; }

async function loadKeys(after) {
  const ns = stateNs();
  const k = state.keys;
  if (!ns) { $('keys-body').replaceChildren(emptyRow(7, 'No namespace yet.')); return; }
  if (k.loading) { k.reload = true; return; }
  k.loading = true;
  try {
    const q = new URLSearchParams({ limit: String(KEYS_PAGE) });
    if (k.prefix) q.set('prefix', k.prefix);
    if (after) q.set('after', after);
    const page = await api(`/dashboard/api/ns/${encodeURIComponent(ns)}/keys?${q}`);
    k.ns = ns;
    k.rows = page.keys;
    k.next = page.next;
    renderKeys();
  } catch (err) {
    if (err.message !== 'unauthorized') $('keys-info').textContent = `Could not load keys: ${err.message}`;
  } finally {
    k.loading = false;
    if (k.reload) { k.reload = false; setTimeout(() => loadKeys(k.starts[k.starts.length - 1]), 0); }
  }
}

function emptyRow(cols, text) { return h('tr', { class: 'empty' }, h('td', { colspan: cols, text })); }

function renderKeys() {
  const k = state.keys;
  const body = $('keys-body');
  if (!k.rows.length) body.replaceChildren(emptyRow(7, k.prefix ? `No key starts with “${k.prefix}”.` : 'No keys in this namespace.'));
  else body.replaceChildren(...k.rows.map(keyRow));
  const page = k.starts.length;
  $('keys-info').textContent = `${k.ns} · page ${page} · ${plural(k.rows.length, 'key', 'keys')}${k.next ? ', more after' : ''}`;
  $('keys-prev').disabled = page <= 1;
  $('keys-first').disabled = page <= 1;
  $('keys-next').disabled = !k.next;
}

function keyRow(r) {
  const tr = h('tr', { 'data-key': r.key },
    h('td', { class: 'key', text: r.key }),
    h('td', { class: 'num', text: `v${r.version}` }),
    h('td', { text: r.writer ?? '—' }),
    h('td', { class: 'num', text: String(r.revision) }),
    h('td', { text: new Date(r.committedAt).toLocaleTimeString([], { hour12: false }) }),
    h('td', { class: 'value', text: r.preview, title: r.preview }),
    h('td', {}, h('button', { type: 'button', class: 'btn btn-small', 'data-key-filter': r.key, 'aria-label': `Show ${r.key} in the timeline`, text: 'Timeline' })));
  return tr;
}

let keysReloadTimer = null;
function keysTouched(entries) {
  const k = state.keys;
  if (state.tab !== 'keys') return;
  if (k.ns !== stateNs()) {
    // "Latest active namespace" moved on (or the first operations arrived): show its keys.
    if (!keysReloadTimer) keysReloadTimer = setTimeout(() => { keysReloadTimer = null; k.starts = [null]; loadKeys(null); }, 300);
    return;
  }
  let reload = false;
  for (const e of entries) {
    if (e.ns !== k.ns || e.outcome !== 'ok' || !['put', 'patch', 'delete', 'txn'].includes(e.op)) continue;
    const keys = e.key ? [e.key] : (e.parts || []).filter((p) => p.op !== 'read').map((p) => p.key);
    for (const key of keys) {
      const tr = $('keys-body').querySelector(`tr[data-key="${CSS.escape(key)}"]`);
      if (tr && e.op !== 'txn') {
        tr.children[1].textContent = `v${e.version}`;
        tr.children[2].textContent = e.writer ?? e.agent;
        tr.children[3].textContent = String(e.revision ?? '');
        tr.classList.remove('flash'); void tr.offsetWidth; tr.classList.add('flash');
      }
      reload = true;
    }
  }
  // Values, new keys and deletions: reload the page at most once a second.
  if (reload && !keysReloadTimer) keysReloadTimer = setTimeout(() => { keysReloadTimer = null; loadKeys(k.starts[k.starts.length - 1]); }, 1000);
}

async function loadAgents() {
  const ns = state.stateNs || state.nsFilter;
  const rows = await api(`/dashboard/api/agents${ns ? `?ns=${encodeURIComponent(ns)}` : ''}`);
  const body = $('agents-body');
  if (!rows.length) { body.replaceChildren(emptyRow(10, 'No agent has called this server yet.')); return; }
  body.replaceChildren(...rows.map((a) => h('tr', {},
    h('td', {}, h('b', { text: a.agent })), h('td', { class: 'key', text: a.ns }),
    h('td', { class: 'num', text: String(a.ops || 0) }), h('td', { class: 'num', text: String(a.reads || 0) }), h('td', { class: 'num', text: String(a.writes || 0) }),
    h('td', { class: 'num', text: String(a.conflicts || 0) }), h('td', { class: 'num', text: String(a.retries || 0) }),
    h('td', { class: 'num' + (a.overwrote ? ' bad' : ''), text: String(a.overwrote || 0) }), h('td', { class: 'num' + (a.lostUpdates ? ' bad' : ''), text: String(a.lostUpdates || 0) }),
    h('td', { text: clock(a.lastSeen || 0) }))));
}

function expiresIn(iso) {
  const s = (new Date(iso).getTime() - Date.now()) / 1000;
  return s > 0 ? `in ${s.toFixed(1)} s` : 'expired';
}

async function loadLocks() {
  const ns = stateNs();
  const body = $('locks-body');
  if (!ns) { body.replaceChildren(emptyRow(5, 'No namespace yet.')); return; }
  const locks = await api(`/dashboard/api/ns/${encodeURIComponent(ns)}/locks`);
  if (!locks.length) { body.replaceChildren(emptyRow(5, `No lock in ${ns}.`)); return; }
  body.replaceChildren(...locks.map((l) => h('tr', {},
    h('td', { class: 'key', text: l.name }),
    h('td', {}, l.holders.length ? l.holders.map((o) => h('div', {}, h('b', { text: o.owner }), ` ${String(o.mode ?? '').toLowerCase()} `, h('span', { class: 'token', text: `token ${o.token}` }), ` expires ${expiresIn(o.expiresAt)}`)) : h('span', { class: 'muted', text: 'free' })),
    h('td', {}, l.waiters.length ? l.waiters.map((w) => h('div', {}, h('b', { text: w.owner }), ` ${String(w.mode ?? '').toLowerCase()}, waiting since ${new Date(w.since).toLocaleTimeString([], { hour12: false })}`)) : h('span', { class: 'muted', text: 'none' })),
    h('td', { class: 'num', text: String(l.issuedToken) }),
    h('td', { class: 'num', text: String(l.fenceFloor) }))));
}

async function loadQueues() {
  const ns = stateNs();
  const body = $('queues-body');
  if (!ns) { body.replaceChildren(emptyRow(8, 'No namespace yet.')); return; }
  const queues = await api(`/dashboard/api/ns/${encodeURIComponent(ns)}/queues`);
  if (!queues.length) { body.replaceChildren(emptyRow(8, `No queue in ${ns}.`)); return; }
  body.replaceChildren(...queues.map((q) => h('tr', {},
    h('td', { class: 'key', text: q.queue }),
    h('td', { class: 'num', text: String(q.depth || 0) }), h('td', { class: 'num', text: String(q.ready || 0) }), h('td', { class: 'num', text: String(q.delayed || 0) }),
    h('td', { class: 'num', text: String(q.waiting || 0) }), h('td', { class: 'num', text: String(q.inFlight || 0) }),
    h('td', { class: 'num' + (q.dead ? ' bad' : ''), text: String(q.dead || 0) }),
    h('td', {}, (q.deadLetters || []).map((d) => h('div', { class: 'mono', text: `${d.id} (${plural(d.attempts || 0, 'attempt', 'attempts')})${d.lastError ? ': ' + d.lastError : ''}` }))))));
}

async function loadStreams() {
  const ns = stateNs();
  const body = $('streams-body');
  if (!ns) { body.replaceChildren(emptyRow(3, 'No namespace yet.')); return; }
  const data = await api(`/dashboard/api/ns/${encodeURIComponent(ns)}/streams`);
  body.replaceChildren(...(data.streams.length ? data.streams.map((s) => h('tr', {},
    h('td', { class: 'key', text: s.stream }), h('td', { class: 'num', text: String(s.version) }), h('td', { class: 'num', text: String(s.lastRevision) }))) : [emptyRow(3, `No stream in ${ns}.`)]));
  $('checkpoints-body').replaceChildren(...(data.checkpoints.length ? data.checkpoints.map((c) => h('tr', {},
    h('td', { class: 'key', text: c.group }), h('td', { class: 'mono', text: c.position }))) : [emptyRow(2, 'No consumer group.')]));
}

function refreshTab() {
  const run = { keys: () => loadKeys(state.keys.starts[state.keys.starts.length - 1]), agents: loadAgents, locks: loadLocks, queues: loadQueues, streams: loadStreams }[state.tab];
  Promise.resolve(run()).catch((err) => { if (err.message !== 'unauthorized') console.warn(err); });
}

function selectTab(name, focus) {
  state.tab = name;
  for (const tab of document.querySelectorAll('#tabs [role="tab"]')) {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(tab.getAttribute('aria-controls')).hidden = !on;
    if (on && focus) tab.focus();
  }
  refreshTab();
}

let agentsTimer = null;
function agentsTouched() {
  if (state.tab !== 'agents' || agentsTimer) return;
  agentsTimer = setTimeout(() => { agentsTimer = null; loadAgents().catch(() => {}); }, 1000);
}

// ------------------------------------------------------------------ live events (SSE over fetch)

let pending = [];
let flushQueued = false;

function onEvent(type, data, id) {
  perf.events++;
  if (type === 'op') { pending.push(JSON.parse(data)); scheduleFlush(); }
  else if (type === 'lost') { if (addFinding(JSON.parse(data))) { scheduleFlush(); renderVerdicts(); } }
  else if (type === 'verdict') { const v = JSON.parse(data); state.verdicts.set(v.ns, v); renderVerdicts(); }
  else if (type === 'coord') { if (['locks', 'queues', 'streams'].includes(state.tab)) refreshTab(); }
  else if (type === 'reset') { reloadAll(); }
  else if (type === 'hello') { /* connected */ }
  void id;
}

function scheduleFlush() {
  if (flushQueued) return;
  flushQueued = true;
  requestAnimationFrame(flush);
}

function flush() {
  flushQueued = false;
  const t0 = performance.now();
  const batch = pending;
  pending = [];
  ingest(batch);
  renderTimeline();
  if (state.follow) { followToEnd(); renderTimeline(); }
  renderStats();
  keysTouched(batch);
  agentsTouched();
  if (state.selected !== null && batch.length) {
    const e = state.bySeq.get(state.selected);
    if (e && (state.victims.has(e.seq) || state.overwriters.has(e.seq))) renderDetail(e);
  }
  perf.flushes.push({ events: batch.length, ms: performance.now() - t0 });
  if (perf.flushes.length > 2000) perf.flushes.splice(0, 1000);
}

function setLive(on, text) {
  state.connected = on;
  $('live').className = `live ${on ? 'on' : 'off'}`;
  $('live-text').textContent = text;
}

async function connect() {
  if (state.sse) state.sse.abort();
  const controller = new AbortController();
  state.sse = controller;
  const coord = stateNs();
  const q = new URLSearchParams({ after: String(state.lastSeq) });
  if (coord) q.set('coord', coord);
  state.sseCoord = coord;
  try {
    const headers = { Accept: 'text/event-stream' };
    if (state.apiKey) headers.Authorization = `Bearer ${state.apiKey}`;
    const res = await fetch(`/dashboard/events?${q}`, { headers, signal: controller.signal, cache: 'no-store' });
    if (res.status === 401) { showAuth(); return; }
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} from ${res.url}: ${(await res.text()).slice(0, 300)}`);
    setLive(true, 'live');
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '', type = 'message', data = [], id = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (line === '') {
          if (data.length) onEvent(type, data.join('\n'), id);
          type = 'message'; data = []; id = null;
        } else if (line.startsWith(':')) {
          // comment / keep-alive
        } else {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') type = val;
          else if (field === 'data') data.push(val);
          else if (field === 'id') id = val;
        }
      }
    }
  } catch (err) {
    if (controller.signal.aborted) return;
    console.warn('event stream interrupted:', err);
  }
  if (controller.signal.aborted) return;
  setLive(false, 'reconnecting…');
  setTimeout(() => { if (state.sse === controller) connect(); }, 1500);
}

// ------------------------------------------------------------------ auth

function showAuth() {
  if (state.sse) state.sse.abort();
  setLive(false, 'API key needed');
  $('auth').hidden = false;
  $('auth-key').focus();
}

$('auth-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  state.apiKey = $('auth-key').value.trim();
  try {
    await api('/dashboard/api/overview');
    sessionStorage.setItem('concord.apiKey', state.apiKey);
    $('auth').hidden = true;
    $('auth-error').textContent = '';
    reloadAll();
  } catch {
    $('auth-error').textContent = 'That key was not accepted.';
    $('auth').hidden = false;
  }
});

// ------------------------------------------------------------------ startup

async function loadSnapshot() {
  const [overview, journal, findings, verdicts] = await Promise.all([
    api('/dashboard/api/overview'),
    api('/dashboard/api/journal?limit=5000'),
    api('/dashboard/api/findings'),
    api('/dashboard/api/verdicts'),
  ]);
  state.startedAt = new Date(overview.startedAt);
  state.entries = []; state.bySeq = new Map(); state.lastSeq = 0;
  state.findings = []; state.victims = new Map(); state.overwriters = new Map();
  state.namespaces = new Map(overview.namespaces.map((n) => [n.ns, n]));
  for (const f of findings) addFinding(Object.assign({ explanation: f.explanation }, f.finding));
  state.verdicts = new Map(verdicts.map((v) => [v.ns, v]));
  for (const e of journal.entries) { state.entries.push(e); state.bySeq.set(e.seq, e); }
  state.lastSeq = journal.lastSeq || 0; // zero values are omitted from the JSON
  if (journal.entries.length) state.latestNs = journal.entries[journal.entries.length - 1].ns;
  else if (overview.namespaces.length) state.latestNs = overview.namespaces[overview.namespaces.length - 1].ns;
  renderNamespaceOptions();
  rebuildView();
}

async function reloadAll() {
  try {
    await loadSnapshot();
  } catch (err) {
    if (err.message !== 'unauthorized') setLive(false, 'server unreachable');
    if (err.message !== 'unauthorized') setTimeout(reloadAll, 3000);
    return;
  }
  renderTimeline();
  if (state.follow) { followToEnd(); renderTimeline(); }
  renderVerdicts();
  renderStats();
  updateKeyFilterChip();
  state.keys.starts = [null];
  refreshTab();
  connect();
}

function wire() {
  setupSvg();
  tl.scroll.tabIndex = -1; // the timeline container takes focus, not the scroller
  tl.scroll.addEventListener('scroll', () => {
    // Scrolls we made ourselves (following) land where we put them; anything else is the user looking back.
    const ours = tl.programmaticLeft !== null && Math.abs(tl.scroll.scrollLeft - tl.programmaticLeft) < 2;
    tl.programmaticLeft = null;
    const atEnd = tl.scroll.scrollLeft >= tl.scroll.scrollWidth - tl.scroll.clientWidth - 4;
    if (!ours && state.follow && !atEnd) setFollow(false);
    scheduleRender();
  }, { passive: true });
  new ResizeObserver(() => scheduleRender()).observe(tl.scroll);
  tl.root.addEventListener('keydown', onTimelineKey);
  tl.root.addEventListener('focus', () => {
    if (state.selected === null && state.view.length) $('timeline-status').textContent = `${plural(state.view.length, 'operation', 'operations')} by ${plural(state.lanes.length, 'agent', 'agents')}. Press an arrow key to select one.`;
  });
  tl.svg.addEventListener('click', (ev) => {
    const g = ev.target.closest('[data-seq]');
    if (g) { select(Number(g.getAttribute('data-seq')), { scroll: false }); tl.root.focus({ preventScroll: true }); }
  });
  document.addEventListener('click', (ev) => {
    const link = ev.target.closest('button.link[data-seq]');
    if (link) { select(Number(link.getAttribute('data-seq'))); tl.root.focus({ preventScroll: true }); return; }
    const keyButton = ev.target.closest('[data-key-filter]');
    if (keyButton) {
      state.keyFilter = keyButton.getAttribute('data-key-filter');
      updateKeyFilterChip();
      rebuildView();
      setFollow(true);
      tl.root.focus();
    }
  });
  $('key-filter-clear').addEventListener('click', () => { state.keyFilter = null; updateKeyFilterChip(); rebuildView(); setFollow(true); });
  $('follow').addEventListener('click', () => setFollow(!state.follow));
  $('check-now').addEventListener('click', async () => {
    const btn = $('check-now');
    btn.disabled = true; btn.textContent = 'Checking…';
    try {
      const verdicts = await api(`/dashboard/api/check${state.nsFilter ? `?ns=${encodeURIComponent(state.nsFilter)}` : ''}`, { method: 'POST' });
      for (const v of verdicts) state.verdicts.set(v.ns, v);
      renderVerdicts();
    } catch (err) { console.warn(err); } finally { btn.disabled = false; btn.textContent = 'Check now'; }
  });
  $('help-toggle').addEventListener('click', () => {
    const open = $('help').hidden;
    $('help').hidden = !open;
    $('help-toggle').setAttribute('aria-expanded', String(open));
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !$('help').hidden) { $('help').hidden = true; $('help-toggle').setAttribute('aria-expanded', 'false'); $('help-toggle').focus(); }
  });
  $('ns-filter').addEventListener('change', (ev) => {
    state.nsFilter = ev.target.value;
    rebuildView();
    setFollow(true);
    renderStats();
    state.keys.starts = [null];
    refreshTab();
    if (stateNs() !== state.sseCoord) connect();
  });
  $('ns-state').addEventListener('change', (ev) => {
    state.stateNs = ev.target.value;
    state.keys.starts = [null];
    refreshTab();
    if (stateNs() !== state.sseCoord) connect();
  });
  // Tabs: arrow keys move between tabs (WAI-ARIA tabs pattern, automatic activation).
  const tabs = [...document.querySelectorAll('#tabs [role="tab"]')];
  for (const tab of tabs) {
    tab.addEventListener('click', () => selectTab(tab.id.slice(4), false));
    tab.addEventListener('keydown', (ev) => {
      const i = tabs.indexOf(tab);
      let j = null;
      if (ev.key === 'ArrowRight') j = (i + 1) % tabs.length;
      else if (ev.key === 'ArrowLeft') j = (i - 1 + tabs.length) % tabs.length;
      else if (ev.key === 'Home') j = 0;
      else if (ev.key === 'End') j = tabs.length - 1;
      if (j !== null) { ev.preventDefault(); selectTab(tabs[j].id.slice(4), true); }
    });
  }
  let prefixTimer = null;
  $('key-prefix').addEventListener('input', (ev) => {
    clearTimeout(prefixTimer);
    prefixTimer = setTimeout(() => { state.keys.prefix = ev.target.value; state.keys.starts = [null]; loadKeys(null); }, 250);
  });
  $('keys-next').addEventListener('click', () => { if (state.keys.next) { state.keys.starts.push(state.keys.next); loadKeys(state.keys.next); } });
  $('keys-prev').addEventListener('click', () => { if (state.keys.starts.length > 1) { state.keys.starts.pop(); loadKeys(state.keys.starts[state.keys.starts.length - 1]); } });
  $('keys-first').addEventListener('click', () => { state.keys.starts = [null]; loadKeys(null); });
  // Lock expiry and queue visibility change with time alone: refresh the open coordination view now and then.
  setInterval(() => { if (['locks', 'queues', 'streams'].includes(state.tab) && !document.hidden) refreshTab(); }, 5000);
  // Namespace activity can shift the "latest active namespace": follow it for the state panel and coord events.
  setInterval(() => {
    if (!state.stateNs && !state.nsFilter && state.latestNs && state.keys.ns !== state.latestNs && state.tab === 'keys') { state.keys.starts = [null]; refreshTab(); }
    if (state.connected && stateNs() !== state.sseCoord) connect();
  }, 2000);
}

wire();
window.__concordRenderNow = renderTimeline; // lets the browser tests time one render
reloadAll().then(() => {
  requestAnimationFrame(() => requestAnimationFrame(() => { perf.firstRender = performance.now(); document.body.dataset.ready = 'true'; }));
});
