// kbs_ha.mjs - load and races for tests/e2e/kbs_ha.sh: several `cai kbs`
// brokers on one PostgreSQL behind HAProxy. Each agent does what a TD's agent
// does (auth, a fresh key and sim quote, attest, fetch, decrypt), records what
// became of each attempt, keyed by its evidence's digest (the audit log's
// evidence_digest), and retries what failed for want of a broker or database.
//
//   node kbs_ha.mjs agents LB N STOPFILE KEYFILE BROKERS OUT
//        N agents releasing cai/ha/key through LB until STOPFILE exists (and
//        each has released once; 120 s at most); after each release the same
//        attestation is replayed at one of BROKERS (comma-separated URLs,
//        straight, not through LB): it must be refused. OUT.progress holds
//        the number of releases so far; OUT: JSON {attempts: [{evd, outcome,
//        step, why}], replays}.
//   node kbs_ha.mjs write LB STOPFILE ACKFILE
//        create-only admin writes ha/w/<i> (If-None-Match: *) through LB until
//        STOPFILE exists; a line "<i> <value>" in ACKFILE only once a broker said 200.
//   node kbs_ha.mjs check LB ACKFILE      every acknowledged write released, with its value
//   node kbs_ha.mjs race BROKERS N OUT    N nonces each attested at two brokers at once
//
// Env: CAI (the cai binary), SIM (the sim PKI dir), ADMIN_KEY (admin PEM).
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import canonicalize from 'canonicalize';
import * as jose from 'jose';

const run = promisify(execFile);
const [mode, ...args] = process.argv.slice(2);
const CAI = process.env.CAI, SIM = process.env.SIM;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kbs-ha-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One HTTP exchange over |conn| (an http.Agent: one kept-alive connection
// per agent, as `cai agent` and Trustee's client hold one); a transport
// error (no answer) is status 0.
function req(base, method, p, { body, cookie, headers = {}, conn } = {}) {
  const h = { ...headers };
  if (cookie) h.cookie = cookie;
  const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  if (data !== undefined) {
    if (typeof body !== 'string') h['content-type'] = 'application/json';
    h['content-length'] = Buffer.byteLength(data);
  }
  return new Promise((resolve) => {
    const r = http.request(base + p, { method, headers: h, agent: conn ?? false, timeout: 20000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (e) => resolve({ status: 0, json: null, text: e.code ?? e.message, cookie }));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        const sc = res.headers['set-cookie'];
        resolve({ status: res.statusCode, json, text, cookie: sc ? sc[0].split(';')[0] : cookie });
      });
    });
    r.on('timeout', () => r.destroy(new Error('timeout')));
    r.on('error', (e) => resolve({ status: 0, json: null, text: e.code ?? e.message, cookie }));
    r.end(data);
  });
}
const connection = () => new http.Agent({ keepAlive: true, maxSockets: 1 });

function teeKey() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const j = publicKey.export({ format: 'jwk' });
  return { privateKey, jwk: { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: j.x, y: j.y } };
}

let qn = 0;
// A sim quote whose REPORTDATA binds |nonce| and |jwk| (SHA-384 of the JCS of
// the runtime data); returns it base64 and the hex SHA-256 of its bytes.
async function quote(nonce, jwk) {
  const jcs = canonicalize({ 'tee-pubkey': jwk, nonce, 'additional-evidence': '' });
  const rd = Buffer.concat([crypto.createHash('sha384').update(jcs).digest(), Buffer.alloc(16)]);
  const f = path.join(tmp, `q${qn++}.bin`);
  await run(CAI, ['attest', 'quote', '--tee', 'sim', '--sim', SIM, '--report-data', rd.toString('hex'), '-o', f]);
  const q = fs.readFileSync(f);
  fs.unlinkSync(f);
  return { b64: q.toString('base64'), evd: crypto.createHash('sha256').update(q).digest('hex') };
}

const request = { version: '0.4.0', tee: 'tdx', 'extra-params': { 'supported-hash-algorithms': ['sha256', 'sha384', 'sha512'] } };
const attestation = (nonce, jwk, q) => ({
  'runtime-data': { nonce, 'tee-pubkey': jwk },
  'tee-evidence': { primary_evidence: { quote: q, cc_eventlog: null }, additional_evidence: '' },
});
// Worth another attempt: no answer, or the broker could not serve (5xx, 429).
const transient = (s) => s === 0 || s === 429 || s >= 500;

function adminToken() {
  const key = crypto.createPrivateKey(fs.readFileSync(process.env.ADMIN_KEY));
  const now = Math.floor(Date.now() / 1000);
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: 'EdDSA', typ: 'JWT' })}.${b64({ iat: now, nbf: now, exp: now + 300 })}`;
  return `${input}.${crypto.sign(null, Buffer.from(input), key).toString('base64url')}`;
}

// An attested session at |base|: {cookie, key, evd, att} or {fail: {step, status, why}}.
async function attest(base, conn) {
  const key = teeKey();
  const a = await req(base, 'POST', '/kbs/v0/auth', { body: request, conn });
  if (a.status !== 200) return { fail: { step: 'auth', status: a.status, why: a.text.slice(0, 200) } };
  const q = await quote(a.json.nonce, key.jwk);
  const att = attestation(a.json.nonce, key.jwk, q.b64);
  const r = await req(base, 'POST', '/kbs/v0/attest', { body: att, cookie: a.cookie, conn });
  if (r.status !== 200) return { evd: q.evd, fail: { step: 'attest', status: r.status, why: r.text.slice(0, 200) } };
  return { cookie: r.cookie, key, evd: q.evd, att };
}

async function decrypts(r, key, want) {
  try {
    return r.status === 200 && Buffer.compare(Buffer.from((await jose.flattenedDecrypt(r.json, key.privateKey)).plaintext), want) === 0;
  } catch {
    return false;
  }
}

// Until |stop| exists (120 s at most).
const going = (stop, t0) => !fs.existsSync(stop) && Date.now() < t0 + 120000;

async function agents(lb, n, stop, keyFile, brokers, out) {
  const want = fs.readFileSync(keyFile);
  const direct = brokers.split(',');
  const t0 = Date.now();
  let total = 0;
  const attempts = [];
  const replays = { sent: 0, refused: 0, accepted: 0, unanswered: 0 };
  const agent = async (i) => {
    let backoff = 100;
    const conn = connection();
    let released = 0;
    while (going(stop, t0) || (!released && Date.now() < t0 + 120000)) {
      const s = await attest(lb, conn);
      if (s.fail) {
        attempts.push({ agent: i, evd: s.evd ?? null, outcome: transient(s.fail.status) ? 'retried' : 'refused', ...s.fail });
      } else {
        const g = await req(lb, 'GET', '/kbs/v0/resource/cai/ha/key', { cookie: s.cookie, conn });
        const ok = await decrypts(g, s.key, want);
        const outcome = ok ? 'released' : g.status === 200 ? 'wrong' : transient(g.status) ? 'lost' : 'refused';
        attempts.push({ agent: i, evd: s.evd, outcome, step: 'resource', status: g.status, why: ok ? '' : g.text.slice(0, 200) });
        if (ok) {
          released++;
          fs.writeFileSync(`${out}.progress`, `${++total}\n`);
          // The same attestation again, at a broker of its own: its nonce is spent.
          const r = await req(direct[(i + attempts.length) % direct.length], 'POST', '/kbs/v0/attest', { body: s.att, cookie: s.cookie });
          replays.sent++;
          if (r.status === 200) replays.accepted++;
          else if (r.status === 401 && /already used|no such session/.test(r.json?.detail ?? '')) replays.refused++;
          else replays.unanswered++;
          backoff = 100;
          continue;
        }
      }
      await sleep(backoff + Math.random() * backoff); // as cai agent: back off, then a new attempt
      backoff = Math.min(backoff * 2, 2000);
    }
  };
  await Promise.all(Array.from({ length: n }, (_, i) => agent(i)));
  fs.writeFileSync(out, JSON.stringify({ attempts, replays }));
}

async function write(lb, stop, ackFile) {
  const conn = connection();
  const fd = fs.openSync(ackFile, 'a');
  const t0 = Date.now();
  for (let i = 0; going(stop, t0); i++) {
    const value = `value-${i}-${crypto.randomBytes(8).toString('hex')}`;
    const r = await req(lb, 'POST', `/kbs/v0/resource/ha/w/${i}`, { body: value, headers: { authorization: `Bearer ${adminToken()}`, 'if-none-match': '*' }, conn });
    if (r.status === 200) fs.writeSync(fd, `${i} ${value}\n`); // only once acknowledged
    else await sleep(50);
  }
  fs.closeSync(fd);
}

async function check(lb, ackFile) {
  const acks = fs.readFileSync(ackFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' '));
  const conn = connection();
  const s = await attest(lb, conn);
  if (s.fail) {
    console.log(`FAIL every_acknowledged_write_present: attest ${JSON.stringify(s.fail)}`);
    return;
  }
  let bad = 0;
  for (const [i, value] of acks) {
    const r = await req(lb, 'GET', `/kbs/v0/resource/ha/w/${i}`, { cookie: s.cookie, conn });
    if (!(await decrypts(r, s.key, Buffer.from(value))) && bad++ < 3) console.log(`  write ${i} lost or wrong: ${r.status} ${r.text.slice(0, 120)}`);
  }
  if (acks.length > 0 && bad === 0) console.log('PASS every_acknowledged_write_present');
  else console.log(`FAIL every_acknowledged_write_present: ${bad} of ${acks.length} acknowledged writes missing or wrong`);
  console.log(`  ${acks.length} acknowledged create-only writes, each released with its value`);
}

async function race(brokers, n, out) {
  const b = brokers.split(',');
  const races = [];
  const one = async (i, conn) => {
    const [x, y] = [b[i % b.length], b[(i + 1) % b.length]];
    const key = teeKey();
    const a = await req(x, 'POST', '/kbs/v0/auth', { body: request, conn });
    if (a.status !== 200) {
      races.push({ at: [x, y], codes: [a.status], why: [a.text.slice(0, 200)] });
      return;
    }
    const att = attestation(a.json.nonce, key.jwk, (await quote(a.json.nonce, key.jwk)).b64);
    const rs = await Promise.all([x, y].map((u) => req(u, 'POST', '/kbs/v0/attest', { body: att, cookie: a.cookie })));
    races.push({ at: [x, y], codes: rs.map((r) => r.status), why: rs.map((r) => (r.json?.detail ?? r.text).slice(0, 120)) });
  };
  // Eight racers at a time, each its own races in turn.
  await Promise.all(Array.from({ length: 8 }, async (_, r) => {
    const conn = connection();
    for (let i = r; i < n; i += 8) await one(i, conn);
  }));
  fs.writeFileSync(out, JSON.stringify(races));
}

try {
  if (mode === 'agents') await agents(args[0], Number(args[1]), args[2], args[3], args[4], args[5]);
  else if (mode === 'write') await write(args[0], args[1], args[2]);
  else if (mode === 'check') await check(args[0], args[1]);
  else if (mode === 'race') await race(args[0], Number(args[1]), args[2]);
  else throw new Error(`unknown mode ${mode}`);
} catch (e) {
  console.log(`FAIL ${mode}: ${e.stack}`);
  process.exitCode = 1;
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
