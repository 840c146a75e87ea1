// The web chat in real Chromium (Debian's, driven by playwright-core) against
// a running cai serve --tee sim: streamed tokens, stop, regenerate, the
// attestation panel's browser-side check (and its failure on a tampered
// answer), no external requests, screenshots as test artifacts.
// usage: node tests/e2e/web_chat.mjs BASE_URL MODEL_SHA256 ARTIFACT_DIR
import { chromium } from 'playwright-core';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, modelDigest, artifacts, proxyBase] = process.argv.slice(2);
let failed = 0;
const assert = (c, m) => { if (!c) throw new Error(m); };
async function check(name, fn) {
  try {
    await fn();
    console.log('PASS ' + name);
  } catch (e) {
    failed++;
    console.log('FAIL ' + name + ': ' + (e && e.message ? e.message.split('\n')[0] : e));
  }
}

// The binding of docs/ATTESTATION-API.md, computed with Node's crypto (not the page's).
function binding(nonceHex, digestHex) {
  const be32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  const label = Buffer.from('cai-serve-attestation-v1');
  const nonce = Buffer.from(nonceHex, 'hex'), digest = Buffer.from(digestHex, 'hex');
  return createHash('sha512').update(Buffer.concat([be32(label.length), label, be32(nonce.length), nonce,
    be32(digest.length), digest])).digest('hex');
}

async function metric(name) {
  const text = await (await fetch(base + '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.split(' ')[1]) : NaN;
}

mkdirSync(artifacts, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'cai-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1100, height: 900 },
});
const requests = [];
context.on('request', (r) => requests.push(r.url()));
try {
  const page = context.pages()[0] || await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  let attestation = null;
  page.on('response', async (r) => {
    if (r.url().includes('/v1/attestation')) attestation = { url: r.url(), body: await r.json() };
  });
  await page.goto(base + '/', { waitUntil: 'load' });

  await check('web_attestation_browser_check_passes', async () => {
    await page.waitForSelector('#attest-check:not([data-result="pending"])', { state: 'attached', timeout: 30000 });
    const result = await page.getAttribute('#attest-check', 'data-result');
    assert(result === 'pass', 'the panel says ' + result + ': ' + await page.textContent('#attest-check'));
  });
  await check('web_attestation_panel_fields', async () => {
    await page.click('#attest-toggle');
    assert(attestation, 'no /v1/attestation request seen');
    const nonce = new URL(attestation.url).searchParams.get('nonce');
    assert(/^[0-9a-f]{64}$/.test(nonce), 'the page sent no 32-byte random nonce: ' + nonce);
    const want = binding(nonce, modelDigest);
    const shown = (await page.textContent('#attest-report-data')).trim();
    assert(shown === want, 'report data shown ' + shown + ', the binding is ' + want);
    const quote = Buffer.from(attestation.body.quote, 'base64');
    assert(quote.subarray(568, 632).toString('hex') === want, 'the quote does not carry the binding');
    assert((await page.textContent('#attest-digest')).trim() === modelDigest, 'wrong model digest shown');
    assert((await page.textContent('#attest-tee')).startsWith('sim'), 'TEE not shown');
    assert(/^[0-9a-f]{96}$/.test((await page.textContent('#attest-mrtd')).trim()), 'no MRTD shown');
    const verdict = await page.textContent('#attest-verdict');
    assert(/Not checked in this browser: the quote's signature chain/.test(verdict), 'the panel overclaims: ' + verdict);
    assert((await page.textContent('#attest-toggle')).includes('binding checked'), 'badge');
  });

  // A long reply: tokens arrive while we watch, then Stop. Greedy decoding
  // makes it deterministic; first check that it cannot end by itself before
  // we stop it (no end-of-turn token in its first 1000 tokens).
  await check('web_precondition_long_greedy_reply', async () => {
    const r = await (await fetch(base + '/v1/chat/completions', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Tell me a long story' }], max_tokens: 1000, temperature: 0 }),
    })).json();
    assert(r.choices[0].finish_reason === 'length', 'the test model ends this reply early: pick another prompt');
  });
  await page.click('#settings-toggle');
  await page.fill('#max-tokens', '4000');
  await page.fill('#temperature', '0');
  await page.click('#settings-toggle');
  const cancelled0 = await metric('cai_http_requests_total{endpoint="chat_completions",code="4xx"}');
  const done0 = await metric('cai_http_requests_total{endpoint="chat_completions",code="2xx"}');
  await page.fill('#input', 'Tell me a long story');
  await page.press('#input', 'Enter');
  const reply = page.locator('.msg.assistant').last();
  await check('web_streams_tokens', async () => {
    const lengths = [];
    for (let i = 0; i < 600 && lengths.length < 3; i++) {
      const n = ((await reply.textContent()) || '').length;
      if (n > 0 && (lengths.length === 0 || n > lengths[lengths.length - 1])) lengths.push(n);
      await page.waitForTimeout(50);
    }
    assert(lengths.length >= 3, 'the reply did not grow across observations: ' + JSON.stringify(lengths));
    assert(await page.isVisible('#stop'), 'no stop button while streaming');
    console.log('# reply lengths seen while streaming: ' + lengths.join(', '));
  });
  await check('web_stop', async () => {
    await page.click('#stop');
    await page.waitForSelector('#stop', { state: 'hidden', timeout: 10000 });
    await page.waitForSelector('.msg.assistant .regenerate', { timeout: 10000 });
    assert(await page.isVisible('#send'), 'no send button after stop');
    const text = await reply.textContent();
    assert(text.length > 0, 'the partial reply was dropped');
    // The server saw the client go and cancelled the generation (a 499).
    let cancelled = cancelled0;
    for (let i = 0; i < 100 && cancelled <= cancelled0; i++) {
      await page.waitForTimeout(100);
      cancelled = await metric('cai_http_requests_total{endpoint="chat_completions",code="4xx"}');
    }
    assert(cancelled > cancelled0, 'the server did not cancel the generation');
    assert(await metric('cai_http_requests_total{endpoint="chat_completions",code="2xx"}') === done0,
      'the stopped reply completed on the server');
  });
  await page.screenshot({ path: join(artifacts, 'web_chat_stopped.png'), fullPage: true });

  await check('web_regenerate', async () => {
    const before = await reply.textContent();
    await page.click('#settings-toggle');
    await page.fill('#max-tokens', '12');
    await page.dispatchEvent('#max-tokens', 'change');
    await page.click('#settings-toggle');
    await page.click('.msg.assistant .regenerate');
    // A short reply: wait for the server to finish it, then for the page.
    let done = done0;
    for (let i = 0; i < 300 && done <= done0; i++) {
      await page.waitForTimeout(100);
      done = await metric('cai_http_requests_total{endpoint="chat_completions",code="2xx"}');
    }
    await page.waitForSelector('#stop', { state: 'hidden', timeout: 10000 });
    await page.waitForSelector('.msg.assistant .regenerate', { timeout: 10000 });
    const users = await page.locator('.msg.user').count(), bots = await page.locator('.msg.assistant').count();
    assert(users === 1 && bots === 1, `regenerate should replace the reply: ${users} user, ${bots} assistant messages`);
    const after = (await page.locator('.msg.assistant').last().textContent()).replace(/Regenerate$/, '');
    assert(after.length > 0 && after !== before, 'no new reply');
    assert(await metric('cai_http_requests_total{endpoint="chat_completions",code="2xx"}') === done0 + 1,
      'the regenerated reply did not complete on the server');
  });
  await page.screenshot({ path: join(artifacts, 'web_chat.png'), fullPage: true });

  // The system prompt setting reaches the request, and a fenced code block in
  // a reply renders as <pre><code>. The reply is a fixed SSE answer fulfilled
  // here (the synthetic model writes no Markdown), cut mid-fence across chunks.
  const SYSTEM = 'You are a terse assistant. <b>not markup</b>';
  const CODE = '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }';
  const ANSWER = 'Here it is:\n\n```c\n' + CODE + '\n```\n\nDone.';
  let sent = null;
  await page.route('**/v1/chat/completions', async (route) => {
    sent = route.request().postDataJSON();
    const pieces = [ANSWER.slice(0, 15), ANSWER.slice(15, 30), ANSWER.slice(30)];
    const chunk = (delta, finish) => 'data: ' + JSON.stringify({ id: 'chatcmpl-test', object: 'chat.completion.chunk',
      created: Math.floor(Date.now() / 1000), model: 'm', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] }) + '\n\n';
    const body = chunk({ role: 'assistant', content: '' }, null) + pieces.map((c) => chunk({ content: c }, null)).join('') +
      chunk({}, 'stop') + 'data: [DONE]\n\n';
    await route.fulfill({ status: 200, headers: { 'Content-Type': 'text/event-stream' }, body });
  });
  await page.click('#settings-toggle');
  await page.fill('#system', SYSTEM);
  await page.dispatchEvent('#system', 'change');
  await page.click('#settings-toggle');
  await page.fill('#input', 'Show me some C');
  await page.press('#input', 'Enter');
  await check('web_system_prompt_sent', async () => {
    for (let i = 0; i < 100 && !sent; i++) await page.waitForTimeout(50);
    assert(sent, 'no chat request seen');
    const m = sent.messages;
    assert(m[0].role === 'system' && m[0].content === SYSTEM, 'first message: ' + JSON.stringify(m[0]));
    assert(m.filter((x) => x.role === 'system').length === 1, 'more than one system message');
    assert(m[m.length - 1].role === 'user' && m[m.length - 1].content === 'Show me some C',
      'last message: ' + JSON.stringify(m[m.length - 1]));
    assert(sent.stream === true, 'not streamed');
  });
  const codeOf = async (p) => {
    const last = p.locator('.msg.assistant').last();
    await last.locator('pre > code').waitFor({ timeout: 10000 });
    return { code: await last.locator('pre > code').textContent(), cls: await last.locator('pre > code').getAttribute('class'),
      html: await last.innerHTML() };
  };
  await check('web_code_block_renders_pre_code', async () => {
    await page.waitForSelector('#stop', { state: 'hidden', timeout: 10000 });
    const { code, cls, html } = await codeOf(page);
    assert(code === CODE, 'code block text: ' + JSON.stringify(code));
    assert(cls === 'language-c', 'class ' + cls);
    assert(!/<stdio\.h>|<b>/.test(html), 'the reply was not escaped: ' + html);
    assert(html.includes('Here it is:') && html.includes('Done.'), 'the text around the block is missing');
  });
  await page.unroute('**/v1/chat/completions');
  await page.screenshot({ path: join(artifacts, 'web_chat_code.png'), fullPage: true });

  // The conversation and the settings are kept in the browser: a reload
  // shows the same messages (the code block rendered again) and settings.
  await check('web_conversation_survives_reload', async () => {
    const texts = async () => page.$$eval('.msg', (els) => els.map((e) => e.className + ':' + e.textContent));
    const before = await texts();
    assert(before.filter((t) => t.startsWith('msg user')).length === 2, 'want 2 user messages: ' + before);
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector('.msg.assistant pre > code', { timeout: 10000 });
    const after = await texts();
    assert(JSON.stringify(after) === JSON.stringify(before), 'before ' + JSON.stringify(before) + ' after ' + JSON.stringify(after));
    assert((await codeOf(page)).code === CODE, 'the code block after reload');
    assert(await page.inputValue('#system') === SYSTEM, 'the system prompt was not kept');
    assert(await page.inputValue('#max-tokens') === '12', 'the max tokens setting was not kept');
  });

  await check('web_channel_says_not_behind_proxy', async () => {
    await page.waitForSelector('#attest-channel:not([data-verified="pending"])', { state: 'attached', timeout: 30000 });
    assert(await page.getAttribute('#attest-channel', 'data-verified') === 'none', 'a direct page claims a verified channel');
    assert(/Not behind a verifying proxy/.test(await page.textContent('#attest-channel')), await page.textContent('#attest-channel'));
  });

  // Through cai proxy (mapping mode) to an attested TLS server: the panel
  // shows what the proxy verified.
  if (proxyBase) {
    await check('web_channel_verified_by_proxy', async () => {
      const p3 = await context.newPage();
      await p3.goto(proxyBase + '/', { waitUntil: 'load' });
      await p3.waitForSelector('#attest-channel:not([data-verified="pending"])', { state: 'attached', timeout: 30000 });
      assert(await p3.getAttribute('#attest-channel', 'data-verified') === 'proxy', await p3.textContent('#attest-channel'));
      const text = await p3.textContent('#attest-channel');
      assert(text.includes('verified by cai proxy') && text.includes(modelDigest), text);
      await p3.click('#attest-toggle');
      await p3.screenshot({ path: join(artifacts, 'web_chat_proxy.png') });
      await p3.close();
    });
  }

  await check('web_no_page_errors', async () => assert(errors.length === 0, errors.join('; ')));

  // The browser check can fail: a tampered answer (another model's digest).
  await check('web_attestation_tampered_fails', async () => {
    const p2 = await context.newPage();
    await p2.route('**/v1/attestation*', async (route) => {
      const r = await route.fetch();
      const body = await r.json();
      body.model_digest = createHash('sha256').update('another model').digest('hex');
      await route.fulfill({ response: r, json: body });
    });
    await p2.goto(base + '/', { waitUntil: 'load' });
    await p2.waitForSelector('#attest-check:not([data-result="pending"])', { state: 'attached', timeout: 30000 });
    assert(await p2.getAttribute('#attest-check', 'data-result') === 'fail', 'a tampered digest passed');
    assert(/does not bind/.test(await p2.textContent('#attest-check')), await p2.textContent('#attest-check'));
    assert((await p2.textContent('#attest-toggle')).includes('failed'), 'badge');
    await p2.close();
  });

  await check('web_no_external_requests', async () => {
    const outside = requests.filter((u) => !u.startsWith(base + '/') && !u.startsWith('data:') &&
      !(proxyBase && u.startsWith(proxyBase + '/')));
    assert(requests.length > 0, 'no requests seen');
    assert(outside.length === 0, 'requests outside the server: ' + outside.join(', '));
  });
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
