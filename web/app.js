// cai web chat: streaming replies, Markdown, stop/regenerate, settings, and the
// server's attestation. The conversation stays in this browser (localStorage).
'use strict';

const $ = (id) => document.getElementById(id);
const store = {
  get: (k, d) => { try { return JSON.parse(localStorage.getItem('cai.' + k)) ?? d; } catch { return d; } },
  set: (k, v) => localStorage.setItem('cai.' + k, JSON.stringify(v)),
};

let messages = store.get('messages', []);
let model = null;
let controller = null;

// ---- Markdown: escape everything, then allow a small safe subset ----------
function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function inline(s) {
  // s is already escaped; code spans first so their content stays literal
  const codes = [];
  s = s.replace(/`([^`\n]+)`/g, (_, c) => { codes.push(c); return '\u0000' + (codes.length - 1) + '\u0000'; });
  s = s.replace(/\*\*([^*\n]+)\*\*/g, '<strong>$1</strong>')
       .replace(/(^|[^*])\*([^*\n]+)\*/g, '$1<em>$2</em>')
       .replace(/\[([^\]\n]+)\]\((https?:\/\/[^)\s]+)\)/g, '<a href="$2" rel="noopener noreferrer" target="_blank">$1</a>');
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => '<code>' + codes[i] + '</code>');
}

function markdown(src) {
  const out = [];
  const lines = escapeHtml(src).split('\n');
  let para = [], list = null;
  const flush = () => {
    if (para.length) out.push('<p>' + inline(para.join('\n')).replace(/\n/g, '<br>') + '</p>');
    para = [];
    if (list) { out.push('</' + list + '>'); list = null; }
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = line.match(/^```\s*([\w+-]*)\s*$/);
    if (fence) {
      flush();
      const body = [];
      for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
      out.push('<pre><code' + (fence[1] ? ' class="language-' + fence[1] + '"' : '') + '>' + body.join('\n') + '</code></pre>');
      continue;
    }
    const h = line.match(/^(#{1,4})\s+(.*)$/);
    const li = line.match(/^\s*(?:[-*]|(\d+)\.)\s+(.*)$/);
    if (h) { flush(); out.push('<h' + (h[1].length + 2) + '>' + inline(h[2]) + '</h' + (h[1].length + 2) + '>'); }
    else if (li) {
      if (para.length) { const l = list; list = null; flush(); list = l; }
      const kind = li[1] ? 'ol' : 'ul';
      if (list !== kind) { if (list) out.push('</' + list + '>'); out.push('<' + kind + '>'); list = kind; }
      out.push('<li>' + inline(li[2]) + '</li>');
    } else if (line.trim() === '') flush();
    else { if (list) { out.push('</' + list + '>'); list = null; } para.push(line); }
  }
  flush();
  return out.join('');
}

// ---- rendering -------------------------------------------------------------
function render() {
  const log = $('log');
  log.textContent = '';
  messages.forEach((m, i) => log.appendChild(bubble(m, i === messages.length - 1)));
  log.scrollTop = log.scrollHeight;
}

function bubble(m, last) {
  const div = document.createElement('div');
  div.className = 'msg ' + m.role;
  if (m.role === 'user') div.textContent = m.content;
  else div.innerHTML = markdown(m.content);
  if (m.role === 'assistant' && last && !controller) {
    const a = document.createElement('div');
    a.className = 'actions';
    const b = document.createElement('button');
    b.textContent = 'Regenerate';
    b.className = 'regenerate';
    b.onclick = regenerate;
    a.appendChild(b);
    div.appendChild(a);
  }
  return div;
}

function showError(text) {
  const div = document.createElement('div');
  div.className = 'msg error';
  div.textContent = text;
  $('log').appendChild(div);
}

function busy(on) {
  $('send').hidden = on;
  $('stop').hidden = !on;
  $('input').disabled = on;
}

// ---- talking to the server -------------------------------------------------
function headers() {
  const h = { 'Content-Type': 'application/json' };
  const key = $('api-key').value.trim();
  if (key) h.Authorization = 'Bearer ' + key;
  return h;
}

async function complete() {
  const system = $('system').value.trim();
  // No "model" until /v1/models has named it: the server then serves its
  // own (a made-up name would get 404 model_not_found).
  const body = {
    ...(model ? { model } : {}),
    messages: (system ? [{ role: 'system', content: system }] : []).concat(messages),
    stream: true,
    temperature: Number($('temperature').value),
    max_tokens: Number($('max-tokens').value),
  };
  const reply = { role: 'assistant', content: '' };
  messages.push(reply);
  controller = new AbortController();
  busy(true);
  render();
  const div = $('log').lastChild;
  try {
    const res = await fetch('/v1/chat/completions', {
      method: 'POST', headers: headers(), body: JSON.stringify(body), signal: controller.signal,
    });
    if (!res.ok) {
      const err = await res.json().catch(() => ({}));
      throw new Error((err.error && err.error.message) || res.status + ' ' + res.statusText);
    }
    const reader = res.body.getReader();
    let painting = false;
    const decoder = new TextDecoder();
    let pending = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = pending.indexOf('\n\n')) >= 0) {
        const event = pending.slice(0, cut);
        pending = pending.slice(cut + 2);
        for (const line of event.split('\n')) {
          if (!line.startsWith('data: ')) continue;
          const data = line.slice(6);
          if (data === '[DONE]') continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
          if (delta && delta.content) {
            reply.content += delta.content;
            // Paint at most once a frame: re-rendering the whole reply per
            // token would keep the page too busy to take a click on Stop.
            if (!painting) {
              painting = true;
              requestAnimationFrame(() => {
                painting = false;
                div.innerHTML = markdown(reply.content);
                $('log').scrollTop = $('log').scrollHeight;
              });
            }
          }
        }
      }
    }
  } catch (e) {
    if (e.name !== 'AbortError') {
      if (!reply.content) messages.pop();
      controller = null;
      render();
      showError(e.message);
    }
  } finally {
    controller = null;
    busy(false);
    store.set('messages', messages);
    render();
    $('input').focus();
  }
}

function send(ev) {
  ev.preventDefault();
  const text = $('input').value.trim();
  if (!text || controller) return;
  $('input').value = '';
  messages.push({ role: 'user', content: text });
  complete();
}

function regenerate() {
  if (controller) return;
  if (messages.length && messages[messages.length - 1].role === 'assistant') messages.pop();
  complete();
}

// ---- attestation -------------------------------------------------------------
// GET /v1/attestation with a fresh nonce (docs/ATTESTATION-API.md). This page
// parses the TDX quote itself and recomputes its REPORTDATA with WebCrypto:
//   SHA-512(be32(24) || "cai-serve-attestation-v1" || be32(len(nonce)) || nonce
//           || be32(32) || model_digest)
// It does NOT check the quote's signature chain (that needs Intel's collateral):
// `cai chat --url` and `cai attest verify` do.
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const unhex = (s) => {
  if (!/^([0-9a-fA-F]{2})*$/.test(s)) throw new Error('not hex');
  return new Uint8Array((s.match(/../g) || []).map((h) => parseInt(h, 16)));
};
const BINDING_LABEL = 'cai-serve-attestation-v1';

async function bindingReportData(nonce, digest) {
  const label = new TextEncoder().encode(BINDING_LABEL);
  const msg = new Uint8Array(4 + label.length + 4 + nonce.length + 4 + digest.length);
  const view = new DataView(msg.buffer);
  let off = 0;
  for (const field of [label, nonce, digest]) {
    view.setUint32(off, field.length, false);
    msg.set(field, off + 4);
    off += 4 + field.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-512', msg));
}

// The fields of a TDX quote (v4, or v5 with a TD report 1.0/1.5 body) this page shows.
function parseQuote(q) {
  if (q.length < 48 + 584) throw new Error('the quote is too short');
  const v = new DataView(q.buffer, q.byteOffset, q.byteLength);
  const version = v.getUint16(0, true), teeType = v.getUint32(4, true);
  if (teeType !== 0x81) throw new Error('not a TDX quote (TEE type ' + teeType + ')');
  let body = 48;
  if (version === 5) {
    body = 48 + 6;
    if (q.length < body + 584) throw new Error('the quote is too short');
  } else if (version !== 4) {
    throw new Error('unknown quote version ' + version);
  }
  const at = (off, n) => q.subarray(body + off, body + off + n);
  return {
    version, mrTd: at(136, 48), rtmr: [0, 1, 2, 3].map((i) => at(328 + 48 * i, 48)),
    debug: (at(120, 8)[0] & 1) === 1, reportData: at(520, 64),
  };
}

async function attest() {
  const badge = $('attest-toggle');
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  const fields = $('attest-fields');
  const check = $('attest-check');
  fields.textContent = '';
  check.textContent = '';
  check.dataset.result = 'pending';
  const show = (k, v, id) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    if (id) dd.id = id;
    fields.append(dt, dd);
  };
  try {
    const res = await fetch('/v1/attestation?nonce=' + hex(nonce), { headers: headers() });
    const a = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((a.error && a.error.message) || 'the server gave no attestation (' + res.status + ')');
    const quote = Uint8Array.from(atob(a.quote || ''), (c) => c.charCodeAt(0));
    const digest = unhex(a.model_digest || '');
    if (digest.length !== 32) throw new Error('the server named no model digest');
    const q = parseQuote(quote);
    show('TEE', a.tee === 'sim' ? 'sim (the simulated TEE: no security, development only)' : a.tee, 'attest-tee');
    show('Quote', 'TDX quote v' + q.version + ', ' + quote.length + ' bytes');
    show('Model', a.model || '');
    show('Model SHA-256', hex(digest), 'attest-digest');
    show('MRTD', hex(q.mrTd), 'attest-mrtd');
    q.rtmr.forEach((r, i) => show('RTMR' + i, hex(r)));
    show('Debug TD', q.debug ? 'YES: the host can read its memory' : 'no');
    show('Report data', hex(q.reportData), 'attest-report-data');
    const want = await bindingReportData(nonce, digest);
    const bound = hex(q.reportData) === hex(want);
    const ok = bound && !q.debug;
    check.dataset.result = ok ? 'pass' : 'fail';
    check.textContent = ok
      ? 'Browser check passed: the quote\'s REPORTDATA is the SHA-512 binding of this page\'s fresh nonce and the model digest, and the TD is not in debug mode.'
      : 'Browser check FAILED: ' + (bound ? 'the TD runs in debug mode.' : 'the quote\'s REPORTDATA does not bind this page\'s nonce and the model digest (a replayed or foreign quote).');
    badge.textContent = ok ? (a.tee === 'sim' ? 'sim TEE: binding checked' : a.tee + ': binding checked') : 'attestation check failed';
    badge.className = 'badge ' + (ok ? (a.tee === 'sim' ? 'warn' : 'ok') : 'bad');
    $('attest-verdict').textContent =
      'Not checked in this browser: the quote\'s signature chain (to Intel\'s root, or the simulated TEE\'s test root), ' +
      'its TCB status and whether these measurements are the ones you trust. `cai chat --url` checks the chain before ' +
      'it talks to the server; `cai attest verify` checks a saved quote.';
  } catch (e) {
    check.dataset.result = 'fail';
    check.textContent = 'Browser check FAILED: ' + e.message;
    badge.textContent = 'not attested';
    badge.className = 'badge bad';
    $('attest-verdict').textContent = '';
  }
}

// ---- the channel ------------------------------------------------------------
// Behind `cai proxy` (mapping mode) this page reaches the server over attested
// TLS that the proxy verified before forwarding a byte; /.cai/proxy says what
// it verified. Served directly, the channel is whatever the address bar says,
// and nothing binds the attestation above to it.
async function channel() {
  const dd = $('attest-channel');
  let info = null;
  try {
    const r = await fetch('/.cai/proxy', { cache: 'no-store' });
    const j = r.ok ? await r.json() : null;
    if (j && j.proxy === 'cai' && Array.isArray(j.servers)) info = j;
  } catch (e) { /* not a proxy */ }
  const v = info && info.servers.length ? info.servers[0].verified : null;
  if (v && v.model_digest) {
    dd.dataset.verified = 'proxy';
    dd.textContent = 'Attested TLS, verified by cai proxy before forwarding: ' +
      (v.tee === 'sim' ? 'simulated TEE (no security, development only)' : 'Intel TDX') +
      ', TCB ' + v.tcb_status + ', MRTD ' + v.mr_td + ', model SHA-256 ' + v.model_digest +
      ', certificate SHA-256 ' + v.cert_sha256 + ' (' + info.servers[0].server + ').';
  } else {
    dd.dataset.verified = 'none';
    dd.textContent = 'Not behind a verifying proxy: this page talks to the server directly (' +
      location.protocol.replace(':', '') + '), and nothing here ties the attestation above to this ' +
      'connection. Use cai proxy (docs/RATLS.md) to have the channel itself verified.';
  }
}

// ---- wiring ----------------------------------------------------------------
function bindSetting(id, key) {
  const el = $(id);
  el.value = store.get(key, el.value);
  el.addEventListener('change', () => store.set(key, el.value));
}

bindSetting('system', 'system');
bindSetting('temperature', 'temperature');
bindSetting('max-tokens', 'max_tokens');
$('composer').addEventListener('submit', send);
$('input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) send(e);
});
$('stop').onclick = () => controller && controller.abort();
$('new-chat').onclick = () => { if (!controller) { messages = []; store.set('messages', messages); render(); } };
$('settings-toggle').onclick = () => { $('settings').hidden = !$('settings').hidden; };
$('attest-toggle').onclick = () => { $('attest').hidden = !$('attest').hidden; };

fetch('/v1/models', { headers: headers() }).then((r) => r.json()).then((j) => {
  model = j.data && j.data[0] && j.data[0].id;
  $('model-name').textContent = model || '';
}).catch(() => {});
render();
attest();
channel();
