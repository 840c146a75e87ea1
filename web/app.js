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
  const body = {
    model: model || 'default',
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
            div.innerHTML = markdown(reply.content);
            $('log').scrollTop = $('log').scrollHeight;
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
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const unhex = (s) => new Uint8Array((s.match(/../g) || []).map((h) => parseInt(h, 16)));

async function attest() {
  const badge = $('attest-toggle');
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  const fields = $('attest-fields');
  fields.textContent = '';
  try {
    const res = await fetch('/v1/attestation?nonce=' + hex(nonce), { headers: headers() });
    if (!res.ok) throw new Error('the server gave no attestation (' + res.status + ')');
    const a = await res.json();
    const c = a.claims || {};
    const show = { TEE: a.tee, 'Model digest': a.model_digest, MRTD: c.mr_td, RTMR0: c.rtmr_0,
                   RTMR1: c.rtmr_1, RTMR2: c.rtmr_2, RTMR3: c.rtmr_3, 'TCB status': c.tcb_status,
                   Debug: String(c.debug), 'Report data': c.report_data };
    for (const [k, v] of Object.entries(show)) {
      if (v === undefined) continue;
      const dt = document.createElement('dt'); dt.textContent = k;
      const dd = document.createElement('dd'); dd.textContent = v;
      fields.append(dt, dd);
    }
    // The quote's report data must be SHA-512(nonce || model digest): fresh, and
    // about this model.
    const msg = new Uint8Array(32 + 32);
    msg.set(nonce, 0);
    msg.set(unhex(a.model_digest || ''), 32);
    const want = hex(new Uint8Array(await crypto.subtle.digest('SHA-512', msg)));
    const bound = (c.report_data || '').toLowerCase() === want;
    const ok = bound && a.verified === true && c.debug === false;
    badge.textContent = ok ? (a.tee === 'sim' ? 'attested (simulated TEE)' : 'attested (' + a.tee + ')')
                           : 'attestation check failed';
    badge.className = 'badge ' + (ok ? 'ok' : 'bad');
    $('attest-verdict').textContent =
      (bound ? 'This page checked: the quote binds its fresh nonce and the model digest. '
             : 'This page checked: the quote does NOT bind the nonce and model digest. ') +
      (a.verified ? 'The server verified the quote to its root of trust' +
                    (a.tee === 'sim' ? ' (the simulated TEE: development only).' : '.')
                  : 'The quote did not verify.') +
      ' For a full independent check use `cai chat --url` or `cai proxy`.';
  } catch (e) {
    badge.textContent = 'not attested';
    badge.className = 'badge bad';
    $('attest-verdict').textContent = e.message;
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
