// CitySteward operator dashboard (issue #2): the district's sensors on a map, open cases with live
// deadlines, the emergency mode. Plain ES module, no framework, no build step, no external origin.
// Every data call carries `Authorization: Bearer TOKEN`; the token comes from the `#token=` fragment
// (never the query string, so it never reaches a server log) or the form, and is kept in
// sessionStorage (this tab only). The pure helpers below are exported for the unit tests.

export const TOKEN_KEY = 'citysteward.token';
export const OPEN_STATES = ['registered', 'dispatched', 'accepted', 'handled', 'deferred'];
/** States in which a deadline runs (cloud/workflow.ts RUNNING_STATES): only these can be overdue. */
export const RUNNING_STATES = ['registered', 'dispatched', 'accepted'];
const SVG_NS = 'http://www.w3.org/2000/svg';
const CITY_ZONE = 'Asia/Shanghai';
const REFRESH_MS = { devices: 5000, emergency: 4000, cases: 15000, detail: 10000 };
const READINGS_LIMIT = 50;

// ---- pure helpers ------------------------------------------------------------------------------

/** The token of a `#token=...` fragment, or null. */
export function tokenFromFragment(hash) {
  if (!hash || hash.length < 2) return null;
  const t = new URLSearchParams(hash.replace(/^#/, '')).get('token');
  return t && t.trim() ? t.trim() : null;
}

/**
 * Equirectangular projection fitted to the points' bounding box with a margin (pixels): x grows
 * with longitude scaled by cos(mid latitude), y grows southwards; one scale for both axes.
 * The height follows the box's shape within [minHeight, maxHeight].
 */
export function fitProjection(points, { width = 1000, margin = 48, minHeight = 420, maxHeight = 760 } = {}) {
  const lats = points.map((p) => p.lat);
  const lons = points.map((p) => p.lon);
  let [s, n] = [Math.min(...lats), Math.max(...lats)];
  let [w, e] = [Math.min(...lons), Math.max(...lons)];
  if (!points.length) [s, n, w, e] = [22.27, 22.28, 113.54, 113.55];
  // A single point (or a line) still needs an area around it: at least ~500 m.
  const minSpan = 0.005;
  if (n - s < minSpan) [s, n] = [(s + n) / 2 - minSpan / 2, (s + n) / 2 + minSpan / 2];
  if (e - w < minSpan) [w, e] = [(w + e) / 2 - minSpan / 2, (w + e) / 2 + minSpan / 2];
  const k = Math.cos(((s + n) / 2) * Math.PI / 180);
  const dx = (e - w) * k;
  const dy = n - s;
  const height = Math.round(Math.min(maxHeight, Math.max(minHeight, margin * 2 + (width - margin * 2) * dy / dx)));
  const scale = Math.min((width - 2 * margin) / dx, (height - 2 * margin) / dy);
  const ox = (width - dx * scale) / 2;
  const oy = (height - dy * scale) / 2;
  return {
    width,
    height,
    bounds: { south: s, north: n, west: w, east: e },
    /** Metres per SVG unit (for the scale bar): one degree of latitude is about 111.32 km. */
    metresPerUnit: 111_320 / scale,
    project(lat, lon) {
      return [ox + (lon - w) * k * scale, oy + (n - lat) * scale];
    },
  };
}

/** "2h 05m 09s", "1d 03h 20m", "45s" for a duration in ms (sign ignored). */
export function formatDuration(ms) {
  let t = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(t / 86400); t -= d * 86400;
  const h = Math.floor(t / 3600); t -= h * 3600;
  const m = Math.floor(t / 60);
  const sec = t - m * 60;
  const p = (x) => String(x).padStart(2, '0');
  if (d > 0) return `${d}d ${p(h)}h ${p(m)}m`;
  if (h > 0) return `${h}h ${p(m)}m ${p(sec)}s`;
  if (m > 0) return `${m}m ${p(sec)}s`;
  return `${sec}s`;
}

/** The countdown of a case at `now`: text and whether it is overdue (running past its deadline). */
export function countdown(c, now) {
  const left = Date.parse(c.deadline) - now;
  const overdue = RUNNING_STATES.includes(c.state) && left < 0;
  if (!RUNNING_STATES.includes(c.state)) return { overdue: false, text: c.state === 'handled' ? '待核查 awaiting verification' : '缓办 deferred' };
  return { overdue, text: overdue ? `超期 overdue ${formatDuration(left)}` : `剩余 ${formatDuration(left)} left` };
}

/** Open cases for the panel: overdue first, then by deadline (earliest first), then by id. */
export function orderCases(cases, now) {
  const open = cases.filter((c) => OPEN_STATES.includes(c.state));
  const rank = (c) => (countdown(c, now).overdue ? 0 : RUNNING_STATES.includes(c.state) ? 1 : 2);
  return open.sort((a, b) => rank(a) - rank(b) || Date.parse(a.deadline) - Date.parse(b.deadline) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * A server-sent events parser (the text/event-stream format): feed it decoded text in chunks of any
 * size; it calls `onEvent({ type, data, id })` for each complete event. Comments are skipped.
 */
export function createSseParser(onEvent) {
  let buffer = '';
  let data = [];
  let type = '';
  let id = '';
  const line = (l) => {
    if (l === '') {
      if (data.length) onEvent({ type: type || 'message', data: data.join('\n'), id });
      data = [];
      type = '';
      return;
    }
    if (l.startsWith(':')) return;
    const i = l.indexOf(':');
    const field = i < 0 ? l : l.slice(0, i);
    let value = i < 0 ? '' : l.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') type = value;
    else if (field === 'id') id = value;
  };
  return {
    push(text) {
      buffer += text;
      for (;;) {
        const m = /\r\n|\r|\n/.exec(buffer);
        // A lone \r at the very end may be the first half of \r\n: wait for more.
        if (!m || (m[0] === '\r' && m.index === buffer.length - 1)) return;
        line(buffer.slice(0, m.index));
        buffer = buffer.slice(m.index + m[0].length);
      }
    },
  };
}

/** An SVG path through the numeric values (oldest first) in a w×h box, or null under two values. */
export function sparklinePath(values, w, h, pad = 2) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (v.length < 2) return null;
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  const span = hi - lo || 1;
  const step = (w - 2 * pad) / (v.length - 1);
  return v.map((x, i) => `${i ? 'L' : 'M'}${(pad + i * step).toFixed(1)},${(h - pad - ((x - lo) / span) * (h - 2 * pad)).toFixed(1)}`).join(' ');
}

/** A reading's value for people: numbers to at most 3 decimals, flags as 是/否, with the unit. */
export function formatValue(v, unit) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'boolean') return v ? '是 yes' : '否 no';
  if (typeof v === 'number') return `${Number.isInteger(v) ? v : Number(v.toFixed(3))}${unit ? ` ${unit}` : ''}`;
  return String(v);
}

/** An instant as the city's wall-clock time, "2026-11-25 14:03:05". */
export function cityTime(iso) {
  if (!iso) return '—';
  return new Date(iso).toLocaleString('sv-SE', { timeZone: CITY_ZONE });
}

// ---- DOM helpers -------------------------------------------------------------------------------

/** An element with attributes and children (text children become text nodes: never HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  return fill(el, attrs, children);
}

function s(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

function fill(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const $ = (id) => document.getElementById(id);

// ---- the application ---------------------------------------------------------------------------

const SHAPES = {
  'water-level': () => s('circle', { class: 'shape', r: 7 }),
  'manhole-cover': () => s('rect', { class: 'shape', x: -6.5, y: -6.5, width: 13, height: 13 }),
  pipeline: () => s('polygon', { class: 'shape', points: '0,-8.5 8.5,0 0,8.5 -8.5,0' }),
};
const KIND_LABEL = { 'water-level': '水位 water level', 'manhole-cover': '井盖 manhole cover', pipeline: '管网 pipeline' };
const STATUS_LABEL = { online: '在线 online', offline: '离线 offline', 'never-seen': '未上线 never seen' };
const SEVERITY_LABEL = { info: '提示 info', minor: '一般 minor', major: '较大 major', critical: '重大 critical' };
const STATE_LABEL = {
  registered: '立案 registered', dispatched: '派遣 dispatched', accepted: '受理 accepted', handled: '已处置 handled',
  deferred: '缓办 deferred', closed: '结案 closed', void: '作废 void',
};

class UnauthorizedError extends Error {}

function createApp() {
  const st = {
    token: null,
    devices: new Map(),
    markers: new Map(),
    projection: null,
    cases: [],
    units: new Map(),
    points: {},
    selected: null,
    timers: [],
    stream: null,
    pending: new Map(),
    overdueKey: '',
  };

  // -- token ---------------------------------------------------------------------------------
  function initialToken() {
    const fromUrl = tokenFromFragment(location.hash);
    if (fromUrl) {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
      // Out of the address bar (and history) at once, so it is not copied or shared by accident.
      history.replaceState(null, '', location.pathname + location.search);
      return fromUrl;
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function showLogin(message) {
    stopAll();
    st.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $('board').hidden = true;
    $('mode').hidden = true;
    $('signout').hidden = true;
    $('login').hidden = false;
    setLive('off');
    const err = $('login-error');
    err.hidden = !message;
    err.textContent = message ?? '';
    $('token-input').value = '';
    $('token-input').focus();
  }

  async function api(path) {
    const res = await fetch(path, { headers: { authorization: `Bearer ${st.token}`, accept: 'application/json' }, cache: 'no-store' });
    if (res.status === 401) throw new UnauthorizedError('令牌无效或已撤销 token unknown or revoked');
    if (!res.ok) {
      let msg = `${res.status}`;
      try { msg = (await res.json()).message ?? msg; } catch { /* not JSON */ }
      const e = new Error(`${path}: ${msg}`);
      e.status = res.status;
      throw e;
    }
    return res.json();
  }

  /** Runs a refresh; a 401 sends the operator back to the form, other failures show a notice. */
  async function guarded(name, fn) {
    try {
      await fn();
      clearNotice(name);
    } catch (err) {
      if (err instanceof UnauthorizedError) return showLogin(err.message);
      notice(name, `${name}: ${err.message}`);
    }
  }

  const notices = new Map();
  function notice(key, text) {
    notices.set(key, text);
    renderNotice();
  }
  function clearNotice(key) {
    if (notices.delete(key)) renderNotice();
  }
  function renderNotice() {
    const el = $('notice');
    el.hidden = notices.size === 0;
    el.textContent = [...notices.values()].join(' · ');
  }

  // -- start / stop -----------------------------------------------------------------------------
  async function start(token) {
    st.token = token;
    try {
      // The device list doubles as the token check.
      const [devices, points] = await Promise.all([api('/api/devices'), api('/web/points.json')]);
      st.points = points.profiles ?? {};
      $('login').hidden = true;
      $('board').hidden = false;
      $('signout').hidden = false;
      applyDevices(devices.items);
    } catch (err) {
      if (err instanceof UnauthorizedError) return showLogin(err.message);
      return showLogin(`无法连接 cannot reach the API: ${err.message}`);
    }
    await Promise.all([
      guarded('units', loadUnits), guarded('cases', loadCases), guarded('emergency', loadEmergency),
    ]);
    every(REFRESH_MS.devices, () => guarded('devices', loadDevices));
    every(REFRESH_MS.emergency, () => guarded('emergency', loadEmergency));
    every(REFRESH_MS.cases, () => guarded('cases', loadCases));
    every(REFRESH_MS.detail, () => st.selected && guarded('readings', () => loadDetail(st.selected)));
    every(1000, tick);
    tick();
    connectStream();
  }

  function every(ms, fn) {
    st.timers.push(setInterval(fn, ms));
  }

  function stopAll() {
    for (const t of st.timers) clearInterval(t);
    st.timers = [];
    for (const t of st.pending.values()) clearTimeout(t);
    st.pending.clear();
    st.stream?.abort();
    st.stream = null;
  }

  /** Coalesces bursts (a storm of events) into one refresh per kind. */
  function soon(key, fn, ms = 250) {
    if (st.pending.has(key)) return;
    st.pending.set(key, setTimeout(() => { st.pending.delete(key); void fn(); }, ms));
  }

  // -- live events: fetch + stream reader, because EventSource cannot send the Authorization header
  function setLive(state) {
    const el = $('live');
    el.dataset.state = state;
    el.textContent = { on: '实时 live', connecting: '连接中 connecting', retry: '重连中 reconnecting', off: '离线 offline' }[state];
  }

  function connectStream() {
    const ctrl = new AbortController();
    st.stream = ctrl;
    let backoff = 1000;
    const run = async () => {
      while (!ctrl.signal.aborted) {
        setLive('connecting');
        try {
          const res = await fetch('/api/events', { headers: { authorization: `Bearer ${st.token}`, accept: 'text/event-stream' }, signal: ctrl.signal, cache: 'no-store' });
          if (res.status === 401) return showLogin('令牌无效或已撤销 token unknown or revoked');
          if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
          setLive('on');
          backoff = 1000;
          // Anything that happened while disconnected: reload once.
          soon('cases', () => guarded('cases', loadCases));
          const parser = createSseParser(onEvent);
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            parser.push(value);
          }
        } catch (err) {
          if (ctrl.signal.aborted) return;
        }
        if (ctrl.signal.aborted) return;
        setLive('retry');
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 15000);
      }
    };
    void run();
  }

  function onEvent(ev) {
    if (ev.type.startsWith('case.')) soon('cases', () => guarded('cases', loadCases));
    if (ev.type.startsWith('alarm.') || ev.type === 'case.opened') soon('devices', () => guarded('devices', loadDevices));
    try {
      const e = JSON.parse(ev.data);
      if (st.selected && e.device === st.selected) soon('detail', () => guarded('readings', () => loadDetail(st.selected)), 500);
    } catch { /* a comment-only or malformed event */ }
  }

  // -- devices and the map ------------------------------------------------------------------------
  async function loadDevices() {
    applyDevices((await api('/api/devices')).items);
  }

  function applyDevices(items) {
    const fresh = items.some((d) => !st.devices.has(d.id)) || items.length !== st.devices.size;
    st.devices = new Map(items.map((d) => [d.id, d]));
    if (fresh) buildMap();
    updateMarkers();
    if (st.selected && st.devices.has(st.selected)) renderDetailHead();
    const online = items.filter((d) => d.status === 'online').length;
    $('device-count').textContent = `${items.length} 台 · ${online} 在线 online`;
  }

  function unitOf(profile, key) {
    return st.points[profile]?.points.find((p) => p.key === key);
  }

  function buildMap() {
    const list = [...st.devices.values()];
    const proj = fitProjection(list.map((d) => d.location));
    st.projection = proj;
    const svg = s('svg', { id: 'map-svg', viewBox: `0 0 ${proj.width} ${proj.height}`, role: 'group', 'aria-label': '设备地图 Sensor map' });
    svg.append(s('rect', { class: 'sea', x: 0, y: 0, width: proj.width, height: proj.height }));
    svg.append(graticule(proj));
    svg.append(scaleBar(proj), northArrow(proj));
    const layer = s('g', { class: 'markers' });
    st.markers = new Map();
    for (const d of list) {
      const [x, y] = proj.project(d.location.lat, d.location.lon);
      const title = s('title');
      const label = s('text', { class: 'label', x: 11, y: -11 }, d.id);
      const g = s('g', {
        class: 'device', 'data-device': d.id, 'data-kind': d.kind, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`,
        tabindex: 0, role: 'button',
        onclick: () => select(d.id),
        onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(d.id); } },
      }, s('circle', { class: 'ring', r: 13 }), (SHAPES[d.kind] ?? SHAPES['water-level'])(), label, title);
      st.markers.set(d.id, { g, title });
      layer.append(g);
    }
    svg.append(layer);
    $('map').replaceChildren(svg);
  }

  function graticule(proj) {
    const g = s('g', { class: 'graticule' });
    const { south, north, west, east } = proj.bounds;
    const step = 0.01;
    // Lines a little past the box: the margin shows grid too.
    for (let lat = Math.ceil((south - 0.02) / step) * step; lat <= north + 0.02; lat += step) {
      const [, y] = proj.project(lat, west);
      if (y < 0 || y > proj.height) continue;
      g.append(s('line', { x1: 0, x2: proj.width, y1: y, y2: y }), s('text', { x: 4, y: y - 3 }, `${lat.toFixed(2)}°N`));
    }
    for (let lon = Math.ceil((west - 0.03) / step) * step; lon <= east + 0.03; lon += step) {
      const [x] = proj.project(south, lon);
      if (x < 0 || x > proj.width) continue;
      g.append(s('line', { x1: x, x2: x, y1: 0, y2: proj.height }), s('text', { x: x + 3, y: proj.height - 4 }, `${lon.toFixed(2)}°E`));
    }
    return g;
  }

  function scaleBar(proj) {
    // The largest of 100 m, 200 m, 500 m, 1 km, 2 km that fits in a fifth of the width.
    const target = (proj.width / 5) * proj.metresPerUnit;
    const m = [2000, 1000, 500, 200, 100].find((x) => x <= target) ?? 100;
    const len = m / proj.metresPerUnit;
    const x = proj.width - len - 24;
    const y = proj.height - 24;
    return s('g', { class: 'scalebar' },
      s('path', { d: `M${x},${y - 6} V${y} H${x + len} V${y - 6}` }),
      s('text', { x: x + len / 2, y: y - 9, 'text-anchor': 'middle' }, m >= 1000 ? `${m / 1000} km` : `${m} m`));
  }

  function northArrow(proj) {
    const x = proj.width - 30;
    return s('g', { class: 'north', transform: `translate(${x},34)` },
      s('path', { d: 'M0,-18 L7,6 L0,1 L-7,6 Z' }), s('text', { y: 20, 'text-anchor': 'middle' }, 'N 北'));
  }

  function openCaseDevices() {
    return new Set(st.cases.filter((c) => OPEN_STATES.includes(c.state)).map((c) => c.device));
  }

  function updateMarkers() {
    const withCase = openCaseDevices();
    for (const [id, m] of st.markers) {
      const d = st.devices.get(id);
      if (!d) continue;
      // From the cases this token may see (a crew sees its unit's), kept live by the event stream.
      const hasCase = withCase.has(id);
      m.g.setAttribute('class', `device st-${d.status}${hasCase ? ' has-case' : ''}${st.selected === id ? ' selected' : ''}`);
      m.g.setAttribute('aria-label', `${d.name} (${d.id}), ${STATUS_LABEL[d.status] ?? d.status}${hasCase ? ', 有案件 open case' : ''}`);
      const values = d.latest ? Object.entries(d.latest.values).map(([k, v]) => {
        const p = unitOf(d.profile, k);
        return `${p?.name ?? k}: ${formatValue(v, p?.unit)}`;
      }) : ['尚无读数 no readings yet'];
      m.title.textContent = [`${d.name}`, `${d.id} · ${KIND_LABEL[d.kind] ?? d.kind} · ${STATUS_LABEL[d.status] ?? d.status}`, ...values,
        d.latest ? `@ ${cityTime(d.latest.ts)}` : '', hasCase ? '⚠ 有进行中案件 open case' : ''].filter(Boolean).join('\n');
    }
  }

  // -- device detail ------------------------------------------------------------------------------
  function select(id) {
    st.selected = id;
    updateMarkers();
    renderDetailHead();
    void guarded('readings', () => loadDetail(id));
  }

  function renderDetailHead() {
    const d = st.devices.get(st.selected);
    if (!d) return;
    const box = $('detail');
    if (box.dataset.device !== d.id) {
      box.dataset.device = d.id;
      box.replaceChildren(h('div', { id: 'detail-head' }), h('div', { id: 'detail-cases' }), h('div', { id: 'detail-readings' }, h('p', { class: 'empty' }, '读取中 loading readings…')));
    }
    $('detail-head').replaceChildren(
      h('h3', {}, d.name),
      h('dl', { class: 'facts' },
        h('dt', {}, '编号 ID'), h('dd', {}, d.id),
        h('dt', {}, '类型 Kind'), h('dd', {}, KIND_LABEL[d.kind] ?? d.kind),
        h('dt', {}, '状态 Status'), h('dd', {}, h('span', { class: `badge st-${d.status}` }, STATUS_LABEL[d.status] ?? d.status)),
        h('dt', {}, '最近 Last seen'), h('dd', {}, cityTime(d.lastSeen)),
        h('dt', {}, '位置 Location'), h('dd', {}, `${d.location.address ?? ''} (${d.location.lat.toFixed(5)}, ${d.location.lon.toFixed(5)})`),
        h('dt', {}, '网关 Gateway'), h('dd', {}, d.gateway),
        h('dt', {}, '权属 Owner'), h('dd', {}, unitName(d.ownerUnit)),
        h('dt', {}, '部件编码 Component'), h('dd', {}, d.componentCode),
      ),
    );
    const mine = orderCases(st.cases.filter((c) => c.device === d.id), Date.now());
    $('detail-cases').replaceChildren(...(mine.length ? [h('h4', {}, '案件 Cases'), h('ul', { class: 'mini-cases' },
      mine.map((c) => h('li', {}, `${c.id} · ${c.hazard} · ${SEVERITY_LABEL[c.severity] ?? c.severity} · ${STATE_LABEL[c.state] ?? c.state}`)))] : []));
  }

  async function loadDetail(id) {
    const r = await api(`/api/devices/${encodeURIComponent(id)}/readings?limit=${READINGS_LIMIT}`);
    if (st.selected !== id) return;
    const d = st.devices.get(id);
    const readings = r.items.slice().reverse();
    const box = $('detail-readings');
    if (!box) return;
    if (!readings.length) return box.replaceChildren(h('p', { class: 'empty' }, '尚无读数 No readings yet.'));
    const latest = readings[readings.length - 1];
    const rows = Object.keys(latest.values).map((key) => {
      const p = unitOf(d.profile, key);
      const series = readings.map((x) => x.values[key]);
      const nums = series.filter((v) => typeof v === 'number');
      const path = sparklinePath(nums, 120, 28);
      const spark = path ? s('svg', { class: 'spark', viewBox: '0 0 120 28', width: 120, height: 28, role: 'img', 'aria-label': `${p?.name ?? key}: ${nums.length} readings` },
        s('path', { d: path })) : null;
      const range = nums.length > 1 ? `${formatValue(Math.min(...nums), '')}–${formatValue(Math.max(...nums), p?.unit)}` : '';
      return h('tr', { 'data-point': key },
        h('th', { scope: 'row' }, p?.name ?? key, h('span', { class: 'key' }, key)),
        h('td', { class: 'value' }, formatValue(latest.values[key], p?.unit)),
        h('td', {}, spark, h('span', { class: 'range' }, range)));
    });
    box.replaceChildren(
      h('h4', {}, `最新读数 Latest values · ${cityTime(latest.ts)}`, latest.quality !== 'good' ? h('span', { class: 'badge warn' }, latest.quality) : null),
      h('table', { class: 'values' }, h('thead', {}, h('tr', {}, h('th', {}, '测点 Point'), h('th', {}, '值 Value'), h('th', {}, `近 ${readings.length} 条 Last ${readings.length}`))), h('tbody', {}, rows)),
    );
  }

  // -- cases ----------------------------------------------------------------------------------------
  async function loadUnits() {
    const r = await api('/api/units');
    st.units = new Map(r.items.map((u) => [u.id, u.name]));
  }

  function unitName(id) {
    return st.units.get(id) ?? id;
  }

  async function loadCases() {
    // One query per open state: a page of the newest cases could miss an old open one.
    const pages = await Promise.all(OPEN_STATES.map((state) => api(`/api/cases?state=${state}&limit=500`)));
    st.cases = pages.flatMap((p) => p.items);
    renderCases();
    updateMarkers();
    if (st.selected) renderDetailHead();
  }

  function renderCases() {
    const now = Date.now();
    const list = orderCases(st.cases, now);
    const overdue = list.filter((c) => countdown(c, now).overdue);
    st.overdueKey = overdue.map((c) => c.id).join(',');
    $('case-count').textContent = `${list.length}${overdue.length ? ` · ${overdue.length} 超期 overdue` : ''}`;
    $('cases-empty').hidden = list.length > 0;
    $('cases').replaceChildren(...list.map((c) => {
      const cd = countdown(c, now);
      const dev = st.devices.get(c.device);
      return h('li', { class: `case sev-${c.severity}${cd.overdue ? ' overdue' : ''}${c.emergencyPeriod != null ? ' emergency' : ''}`, 'data-case': c.id, 'data-device': c.device },
        h('div', { class: 'case-top' },
          h('span', { class: 'countdown', 'data-deadline': c.deadline, 'data-state': c.state }, cd.text),
          h('span', { class: `badge sev sev-${c.severity}` }, SEVERITY_LABEL[c.severity] ?? c.severity),
          c.class === 'urgent' ? h('span', { class: 'badge urgent', title: '12 小时内处置 due within 12 h' }, '紧急 urgent') : null,
          c.emergencyPeriod !== null && c.emergencyPeriod !== undefined ? h('span', { class: 'badge emg', title: `应急期 emergency period ${c.emergencyPeriod}` }, '应急 emergency') : null),
        h('div', { class: 'case-title' }, c.title || c.hazard),
        h('div', { class: 'case-meta' },
          h('span', {}, `${c.id}`), ' · ', h('span', { class: 'hazard' }, c.hazards?.length > 1 ? c.hazards.join(' + ') : c.hazard), ' · ',
          h('span', {}, STATE_LABEL[c.state] ?? c.state)),
        h('div', { class: 'case-meta' },
          h('span', { title: '责任单位 responsible unit' }, unitName(c.unit)), ' · ',
          h('button', { type: 'button', class: 'link', onclick: () => select(c.device), title: dev?.name ?? c.device }, c.device)),
        h('div', { class: 'case-meta due' }, `期限 due ${cityTime(c.deadline)}`));
    }));
  }

  function tick() {
    const now = Date.now();
    $('clock').textContent = `${cityTime(new Date(now).toISOString())} 北京时间`;
    if (!st.cases.length) return;
    const key = orderCases(st.cases, now).filter((c) => countdown(c, now).overdue).map((c) => c.id).join(',');
    // A case just went overdue: re-sort; otherwise only the countdown texts change.
    if (key !== st.overdueKey) return renderCases();
    for (const el of document.querySelectorAll('#cases .countdown')) {
      el.textContent = countdown({ deadline: el.dataset.deadline, state: el.dataset.state }, now).text;
    }
  }

  // -- emergency banner -----------------------------------------------------------------------------
  async function loadEmergency() {
    let e;
    try {
      e = await api('/api/emergency');
    } catch (err) {
      // A cloud without the emergency service has no route: no banner, no error.
      if (err.status === 404) { $('mode').hidden = true; return; }
      throw err;
    }
    const el = $('mode');
    el.hidden = false;
    const emergency = e.mode === 'emergency';
    el.className = `mode ${emergency ? `emergency level-${e.level}` : 'normal'}`;
    el.dataset.mode = e.mode;
    const gw = e.gateways ?? {};
    const acked = gw.acknowledged?.length ?? 0;
    const missing = gw.missing ?? [];
    // The mode's who, when and why once someone (or a warning) switched it; the gateways' answers.
    el.replaceChildren();
    fill(el, {}, [
      h('strong', {}, emergency ? `应急状态 Emergency mode: ${e.level} 级响应 level ${e.level}` : '应急状态 Emergency mode: 常态 normal'),
      e.since ? h('span', {}, ` · 自 since ${cityTime(e.since)}`) : null,
      e.since && e.reason ? h('span', {}, ` · ${e.reason}`) : null,
      e.since && e.actor ? h('span', { class: 'actor' }, ` (${e.actor})`) : null,
      gw.id ? h('span', { class: 'gateways' }, ` · 网关确认 gateways acknowledged ${acked}/${acked + missing.length}`,
        missing.length ? h('span', { class: 'missing' }, ` · 未确认 missing: ${missing.map((m) => `${m.gateway}${m.online ? '' : ' (离线 offline)'}`).join(', ')}`) : null) : null,
    ]);
  }

  // -- wiring ---------------------------------------------------------------------------------------
  function init() {
    $('login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = $('token-input').value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      void start(t);
    });
    $('signout').addEventListener('click', () => showLogin());
    // A link with a new #token= opened in this tab.
    window.addEventListener('hashchange', () => {
      const t = tokenFromFragment(location.hash);
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      history.replaceState(null, '', location.pathname + location.search);
      stopAll();
      void start(t);
    });
    const t = initialToken();
    if (t) void start(t);
    else showLogin();
  }

  return { init };
}

if (typeof document !== 'undefined') createApp().init();
