// kbs_client.mjs - an independent KBS protocol client (Node's crypto, the
// `jose` JWE library and the `canonicalize` RFC 8785 library from npm) against
// a running `cai kbs`: wire compatibility with Trustee's message formats, the
// protocol-level refusals, and the durability writer/checker.
//
//   node kbs_client.mjs interop|refusals|expired URL
//   node kbs_client.mjs coco URL SECRETFILE      what the real CoCo guest sends: init-data,
//                                              additional evidence, a P-521 TEE key
//   node kbs_client.mjs write URL N ACKFILE      admin writes dur/w/<i>, one ACK line each
//   node kbs_client.mjs check URL ACKFILE        every ACKed write readable after attestation
//   node kbs_client.mjs shutdown URL PID N DB OUT  N releases in flight, SIGTERM to PID
//   node kbs_client.mjs shared URL URL2 N      two brokers on one store: N nonces and N
//                                              create-only writes raced at both, sessions
//                                              and tokens of one honoured by the other
//
// Env: CAI (the cai binary), SIM (the sim PKI dir), ADMIN_KEY (admin PEM).
// Prints PASS/FAIL lines for tests/run.sh.
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import canonicalize from 'canonicalize';
import * as jose from 'jose';

const [mode, url, ...rest] = process.argv.slice(2);
const CAI = process.env.CAI, SIM = process.env.SIM;
let failed = 0;
const pass = (n) => console.log(`PASS ${n}`);
const fail = (n, why) => { console.log(`FAIL ${n}: ${why}`); failed++; };
const expect = (n, cond, why) => (cond ? pass(n) : fail(n, why));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kbs-client-'));

// A session: the kbs-session-id cookie, as Trustee's reqwest client keeps it.
class Session {
  constructor(base = url) { this.cookie = null; this.base = base; }
  async req(method, p, body, headers = {}) {
    const h = { ...headers };
    if (this.cookie) h.cookie = this.cookie;
    if (body !== undefined) h['content-type'] = 'application/json';
    const r = await fetch(this.base + p, { method, headers: h, body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)) });
    const sc = r.headers.get('set-cookie');
    if (sc) this.cookie = sc.split(';')[0];
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, json, text, setCookie: sc };
  }
}

function teeKey() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const j = publicKey.export({ format: 'jwk' });
  // The TeePubKey of kbs-types: kty, crv, alg, x, y.
  return { privateKey, jwk: { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: j.x, y: j.y } };
}

// REPORTDATA: SHA-384 over the JCS of the runtime data, zero padded to 64.
function reportData(nonce, jwk, additional = '') {
  const jcs = canonicalize({ 'tee-pubkey': jwk, nonce, 'additional-evidence': additional });
  const d = crypto.createHash('sha384').update(jcs).digest();
  return Buffer.concat([d, Buffer.alloc(16)]).toString('hex');
}

let qn = 0;
// A sim TDX quote over rdHex; opts.mrconfigid (hex, 48 bytes) as a CoCo
// launcher sets MRCONFIGID to the init-data digest; opts.debug a DEBUG TD.
function simQuote(rdHex, opts = {}) {
  const f = path.join(tmp, `q${qn++}.bin`);
  const extra = [];
  if (opts.mrconfigid) extra.push('--sim-mrconfigid', opts.mrconfigid);
  if (opts.debug) extra.push('--sim-debug');
  execFileSync(CAI, ['attest', 'quote', '--tee', 'sim', '--sim', SIM, '--report-data', rdHex, ...extra, '-o', f], { stdio: 'ignore' });
  return fs.readFileSync(f).toString('base64');
}

const request = { version: '0.4.0', tee: 'tdx', 'extra-params': { 'supported-hash-algorithms': ['sha256', 'sha384', 'sha512'] } };
function attestation(nonce, jwk, quoteB64) {
  return {
    'runtime-data': { nonce, 'tee-pubkey': jwk },
    'tee-evidence': { primary_evidence: { quote: quoteB64, cc_eventlog: null }, additional_evidence: '' },
  };
}

async function rcar(s, key) {
  const a = await s.req('POST', '/kbs/v0/auth', request);
  if (a.status !== 200) throw new Error(`auth ${a.status} ${a.text}`);
  const nonce = a.json.nonce;
  const att = attestation(nonce, key.jwk, simQuote(reportData(nonce, key.jwk)));
  const r = await s.req('POST', '/kbs/v0/attest', att);
  return { auth: a, attest: r, nonce, att };
}

const isError = (r, variant) =>
  r.json && typeof r.json.detail === 'string' &&
  r.json.type === `https://github.com/confidential-containers/kbs/errors/${variant}`;

function adminToken(ttl = 300) {
  const key = crypto.createPrivateKey(fs.readFileSync(process.env.ADMIN_KEY));
  const now = Math.floor(Date.now() / 1000);
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: 'EdDSA', typ: 'JWT' })}.${b64({ iat: now, nbf: now, exp: now + ttl })}`;
  return `${input}.${crypto.sign(null, Buffer.from(input), key).toString('base64url')}`;
}

async function interop() {
  const s = new Session(), key = teeKey();
  const { auth, attest } = await rcar(s, key);
  // Challenge: base64 of 32 bytes, "extra-params": "" (Trustee's generic challenge).
  expect('challenge_format', auth.json && Buffer.from(auth.json.nonce, 'base64').length === 32 &&
    auth.json['extra-params'] === '' && Object.keys(auth.json).length === 2, auth.text);
  expect('session_cookie', /^kbs-session-id=[0-9a-f]{32}$/.test(s.cookie || ''), auth.setCookie);
  expect('attest_token', attest.status === 200 && typeof attest.json.token === 'string', attest.text);
  const claims = jose.decodeJwt(attest.json.token);
  const header = jose.decodeProtectedHeader(attest.json.token);
  expect('token_is_es256_ear', header.alg === 'ES256' && claims.exp > claims.iat &&
    claims.eat_profile === 'tag:github.com,2023:veraison/ear', JSON.stringify(header));
  const pk = claims.submods?.cpu0?.['ear.veraison.annotated-evidence']?.runtime_data_claims?.['tee-pubkey'];
  expect('token_carries_tee_key', pk && pk.x === key.jwk.x && pk.y === key.jwk.y, JSON.stringify(pk));
  const r = await s.req('GET', '/kbs/v0/resource/pub/interop/key');
  expect('resource_200', r.status === 200, r.text);
  if (r.status !== 200) return;
  const jwe = r.json;
  expect('jwe_flattened_members', ['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag'].every((m) => typeof jwe[m] === 'string'), r.text);
  // Trustee's client re-serializes the protected header (serde: alg, enc,
  // then the other members) and uses that as the AAD: it must be these bytes.
  const raw = Buffer.from(jwe.protected, 'base64url').toString();
  const ph = JSON.parse(raw);
  const reser = JSON.stringify({ alg: ph.alg, enc: ph.enc, epk: { crv: ph.epk.crv, kty: ph.epk.kty, x: ph.epk.x, y: ph.epk.y } });
  expect('protected_header_as_trustee_reserializes', raw === reser && ph.alg === 'ECDH-ES+A256KW' && ph.enc === 'A256GCM', raw);
  try {
    const { plaintext } = await jose.flattenedDecrypt(jwe, key.privateKey);
    const want = fs.readFileSync(rest[0]);
    expect('jose_library_decrypts', Buffer.compare(Buffer.from(plaintext), want) === 0, 'plaintext differs');
  } catch (e) {
    fail('jose_library_decrypts', e.message);
  }
  // The token is also accepted as a Bearer token, without the cookie.
  const b = await new Session().req('GET', '/kbs/v0/resource/pub/interop/key', undefined, { authorization: `Bearer ${attest.json.token}` });
  expect('bearer_token_accepted', b.status === 200 && b.json.protected, b.text);
  // RSA-OAEP-256 keys, as Trustee's clients may use.
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rj = rsa.publicKey.export({ format: 'jwk' });
  const rkey = { privateKey: rsa.privateKey, jwk: { kty: 'RSA', alg: 'RSA-OAEP-256', n: rj.n, e: rj.e } };
  const s2 = new Session();
  const r2 = await rcar(s2, rkey);
  const g2 = await s2.req('GET', '/kbs/v0/resource/pub/interop/key');
  try {
    const { plaintext } = await jose.flattenedDecrypt(g2.json, rkey.privateKey);
    expect('rsa_oaep_256_release', r2.attest.status === 200 && plaintext.length > 0, g2.text);
  } catch (e) {
    fail('rsa_oaep_256_release', `${e.message} ${g2.text}`);
  }
}

// ---- CoCo guest components -------------------------------------------------
// The messages in the shapes guest-components' kbs_protocol sends (attestation-
// agent/kbs_protocol/src/client/rcar_client.rs: build_request, get_composite_
// evidence, the Attestation with InitData {format: "toml", body}), with the
// upstream fixtures where there are some:
// - init-data: trustee integration-tests/tests/init_data.rs SIMPLE_INIT_DATA
//   (tests/vectors/kbs/trustee/init-data-simple.toml);
// - additional evidence: the sample device attester's evidence {svn,
//   report_data} (guest-components attestation-agent/attester/src/
//   sample_device/mod.rs) keyed "sampledevice", serialized into a string as
//   kbs_protocol/src/evidence_provider/native.rs get_additional_evidence does;
//   its report_data is the hash of JCS({nonce, tee-pubkey}) (rcar_client.rs);
// - the TEE key: TeeKeyAlgorithm EcdhEsA256KwP521 (kbs_protocol/src/keypair.rs):
//   TeePubKey::EC {crv "P-521", alg "ECDH-ES+A256KW", x, y}.
// The TDX quote is a sim quote made here (upstream's are signed by Intel's
// PKI, not the sim one); its MRCONFIGID is the init-data digest, as a
// launcher sets it.
const VECTORS = process.env.VECTORS;
const initData = () => fs.readFileSync(path.join(VECTORS, 'trustee', 'init-data-simple.toml'), 'utf8');
const mrConfigId = (toml) => Buffer.concat([crypto.createHash('sha256').update(toml).digest(), Buffer.alloc(16)]).toString('hex');

function p521Key() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-521' });
  const j = publicKey.export({ format: 'jwk' });
  return { privateKey, jwk: { kty: 'EC', crv: 'P-521', alg: 'ECDH-ES+A256KW', x: j.x, y: j.y } };
}

function sampleDeviceEvidence(nonce, jwk, extra = {}) {
  const devRd = crypto.createHash('sha384').update(canonicalize({ nonce, 'tee-pubkey': jwk })).digest();
  return JSON.stringify({ sampledevice: { svn: '2', report_data: devRd.toString('base64'), ...extra } });
}

// One CoCo attestation: opts.toml (init-data body, null: none), opts.mrconfigid
// (the TD's), opts.additional (the string), opts.debug, opts.quoteNonce (the
// nonce the quote binds, default the session's).
async function cocoAttest(s, key, opts = {}) {
  const a = await s.req('POST', '/kbs/v0/auth', request); // build_request's shape
  if (a.status !== 200) throw new Error(`auth ${a.status} ${a.text}`);
  const nonce = a.json.nonce;
  const additional = opts.additional ?? '';
  const rd = reportData(opts.quoteNonce ?? nonce, key.jwk, additional);
  const body = {
    'runtime-data': { nonce, 'tee-pubkey': key.jwk },
    'tee-evidence': {
      primary_evidence: { cc_eventlog: null, quote: simQuote(rd, { mrconfigid: opts.mrconfigid, debug: opts.debug }) },
      additional_evidence: additional,
    },
  };
  if (opts.toml !== null && opts.toml !== undefined) body['init-data'] = { format: opts.format ?? 'toml', body: opts.toml };
  return { nonce, attest: await s.req('POST', '/kbs/v0/attest', body) };
}

async function coco(secretFile) {
  const want = fs.readFileSync(secretFile);
  const toml = initData(), mc = mrConfigId(toml);
  // The full CoCo request releases the key the policy grants only to this
  // init-data (coco/*: init_data and init_data_digests.aa.toml pinned).
  const s = new Session(), key = p521Key();
  const a = await s.req('POST', '/kbs/v0/auth', request);
  const nonce = a.json.nonce;
  const additional = sampleDeviceEvidence(nonce, key.jwk);
  const body = {
    'init-data': { format: 'toml', body: toml },
    'runtime-data': { nonce, 'tee-pubkey': key.jwk },
    'tee-evidence': {
      primary_evidence: { cc_eventlog: null, quote: simQuote(reportData(nonce, key.jwk, additional), { mrconfigid: mc }) },
      additional_evidence: additional,
    },
  };
  const at = await s.req('POST', '/kbs/v0/attest', body);
  expect('coco_attest_initdata_p521_additional', at.status === 200 && typeof at.json?.token === 'string', at.text);
  if (at.status !== 200) return;
  const ev = jose.decodeJwt(at.json.token).submods?.cpu0?.['ear.veraison.annotated-evidence'] ?? {};
  const aaSha = crypto.createHash('sha256').update('[token_configs]\n[token_configs.kbs]\nurl = "http://1.2.3.4:8080"\n').digest('hex');
  expect('coco_token_init_data_claims', ev.init_data === mc && ev.mr_config_id?.toLowerCase() === mc &&
    ev.init_data_digests?.['aa.toml'] === aaSha && Object.keys(ev.init_data_digests).length === 3, JSON.stringify(ev.init_data_digests));
  const devSha = crypto.createHash('sha256').update(canonicalize(JSON.parse(additional).sampledevice)).digest('hex');
  expect('coco_token_additional_evidence', ev.additional_evidence?.sampledevice === devSha, JSON.stringify(ev.additional_evidence));
  expect('coco_token_p521_key', ev.runtime_data_claims?.['tee-pubkey']?.crv === 'P-521' &&
    ev.runtime_data_claims['tee-pubkey'].x === key.jwk.x, JSON.stringify(ev.runtime_data_claims));
  const r = await s.req('GET', '/kbs/v0/resource/coco/pod/key');
  let ok = false, why = r.text;
  if (r.status === 200) {
    try {
      const ph = JSON.parse(Buffer.from(r.json.protected, 'base64url'));
      const { plaintext } = await jose.flattenedDecrypt(r.json, key.privateKey);
      ok = Buffer.compare(Buffer.from(plaintext), want) === 0 && ph.epk?.crv === 'P-521';
      why = `epk ${JSON.stringify(ph.epk)}`;
    } catch (e) {
      why = e.message;
    }
  }
  expect('coco_p521_jwe_decrypts_with_jose', ok, why);
  // The same token as a Bearer token: the claims in it pass the policy too.
  const b = await new Session().req('GET', '/kbs/v0/resource/coco/pod/key', undefined, { authorization: `Bearer ${at.json.token}` });
  expect('coco_bearer_token_release', b.status === 200, b.text);

  // Init-data that is not what the TD was launched with: refused, naming the check.
  {
    const other = toml.replace('1.2.3.4', '6.6.6.6');
    const r2 = await cocoAttest(new Session(), p521Key(), { toml: other, mrconfigid: mc });
    expect('coco_refuse_initdata_not_mrconfigid', r2.attest.status === 401 && isError(r2.attest, 'AttestationError') &&
      /init-data check failed.*MRCONFIGID/.test(r2.attest.json?.detail), r2.attest.text);
  }
  // No init-data: attested, but the policy's coco/* rule needs init_data.
  {
    const s3 = new Session();
    const r3 = await cocoAttest(s3, p521Key(), { toml: null, mrconfigid: mc });
    const g3 = await s3.req('GET', '/kbs/v0/resource/coco/pod/key');
    expect('coco_no_initdata_no_release', r3.attest.status === 200 && g3.status === 403 &&
      /claim init_data = \(missing\)/.test(g3.json?.detail), `${r3.attest.text} ${g3.text}`);
  }
  // Additional evidence never weakens the TDX check: a DEBUG TD stays refused
  // whatever the device evidence says, and so does a quote for another nonce
  // even with a good quote inside the additional evidence.
  {
    const k4 = p521Key(), s4 = new Session();
    const a4 = await s4.req('POST', '/kbs/v0/auth', request);
    const add4 = JSON.stringify({ sample: { debug: false, tcb_status: 'UpToDate', tee: 'tdx' } });
    const r4 = await s4.req('POST', '/kbs/v0/attest', {
      'runtime-data': { nonce: a4.json.nonce, 'tee-pubkey': k4.jwk },
      'tee-evidence': { primary_evidence: { cc_eventlog: null, quote: simQuote(reportData(a4.json.nonce, k4.jwk, add4), { debug: true }) }, additional_evidence: add4 },
    });
    expect('coco_additional_evidence_keeps_debug_refusal', r4.status === 401 && /claim debug = true/.test(r4.json?.detail), r4.text);
    const k5 = p521Key(), s5 = new Session();
    const a5 = await s5.req('POST', '/kbs/v0/auth', request);
    const good = simQuote(reportData(a5.json.nonce, k5.jwk, ''));
    const add5 = JSON.stringify({ tdx: { cc_eventlog: null, quote: good } });
    const other = crypto.randomBytes(32).toString('base64');
    const r5 = await s5.req('POST', '/kbs/v0/attest', {
      'runtime-data': { nonce: a5.json.nonce, 'tee-pubkey': k5.jwk },
      'tee-evidence': { primary_evidence: { cc_eventlog: null, quote: simQuote(reportData(other, k5.jwk, add5)) }, additional_evidence: add5 },
    });
    expect('coco_additional_evidence_keeps_binding_refusal', r5.status === 401 && /report_data/.test(r5.json?.detail), r5.text);
  }
  // Malformed CoCo inputs, each refused with what is wrong.
  {
    const bad = async (name, opts, re, keyFn = p521Key) => {
      const r6 = await cocoAttest(new Session(), keyFn(), opts);
      expect(name, r6.attest.status === 401 && re.test(r6.attest.json?.detail), r6.attest.text);
    };
    await bad('coco_refuse_initdata_json_format', { toml: '{}', format: 'json', mrconfigid: mc }, /Unsupported initdata format/);
    await bad('coco_refuse_initdata_bad_toml', { toml: 'version = "0.1.0"\nalgorithm = "sha256"\n[data]\nk = [1]\n', mrconfigid: mc }, /init-data line 4/);
    await bad('coco_refuse_additional_not_json', { toml: null, additional: '{sampledevice' }, /additional_evidence must be/);
    await bad('coco_refuse_additional_unknown_tee', { toml: null, additional: '{"gpu":{}}' }, /not a TEE name/);
    await bad('coco_refuse_p521_short_coordinate', { toml: null }, /P-521 coordinates must be 66 bytes/, () => {
      const k = p521Key();
      k.jwk = { ...k.jwk, x: Buffer.from(k.jwk.x, 'base64url').subarray(1).toString('base64url') };
      return k;
    });
  }
}

async function refusals() {
  // Evidence for another nonce (runtime-data carries the session's nonce).
  {
    const s = new Session(), key = teeKey();
    const a = await s.req('POST', '/kbs/v0/auth', request);
    const other = crypto.randomBytes(32).toString('base64');
    const r = await s.req('POST', '/kbs/v0/attest', attestation(a.json.nonce, key.jwk, simQuote(reportData(other, key.jwk))));
    expect('refuse_evidence_for_another_nonce', r.status === 401 && isError(r, 'AttestationError') && /report_data/.test(r.json.detail), r.text);
    const g = await s.req('GET', '/kbs/v0/resource/pub/interop/key');
    expect('no_release_after_refusal', g.status === 401 && isError(g, 'TokenNotFound'), g.text);
  }
  // runtime-data with a nonce that is not the session's.
  {
    const s = new Session(), key = teeKey();
    await s.req('POST', '/kbs/v0/auth', request);
    const other = crypto.randomBytes(32).toString('base64');
    const r = await s.req('POST', '/kbs/v0/attest', attestation(other, key.jwk, simQuote(reportData(other, key.jwk))));
    expect('refuse_nonce_not_the_sessions', r.status === 401 && /nonce/.test(r.json?.detail), r.text);
  }
  // A replayed nonce: the same Attestation again, on its session and on a new one.
  {
    const s = new Session(), key = teeKey();
    const first = await rcar(s, key);
    const again = await s.req('POST', '/kbs/v0/attest', first.att);
    expect('refuse_replayed_nonce_same_session', first.attest.status === 200 && again.status === 401 && /already used/.test(again.json?.detail), again.text);
    const s2 = new Session();
    await s2.req('POST', '/kbs/v0/auth', request);
    const replay = await s2.req('POST', '/kbs/v0/attest', first.att);
    expect('refuse_replayed_attestation_new_session', replay.status === 401, replay.text);
  }
  // A JWK swapped after the evidence was made (evidence binds key A, body carries key B).
  {
    const s = new Session(), a = teeKey(), b = teeKey();
    const au = await s.req('POST', '/kbs/v0/auth', request);
    const r = await s.req('POST', '/kbs/v0/attest', attestation(au.json.nonce, b.jwk, simQuote(reportData(au.json.nonce, a.jwk))));
    expect('refuse_swapped_jwk', r.status === 401 && /report_data/.test(r.json?.detail), r.text);
  }
  // A tampered token (another key's claims) as Bearer.
  {
    const s = new Session(), key = teeKey();
    const { attest } = await rcar(s, key);
    const [h, p, sig] = attest.json.token.split('.');
    const c = JSON.parse(Buffer.from(p, 'base64url'));
    c.submods.cpu0['ear.veraison.annotated-evidence'].runtime_data_claims['tee-pubkey'] = teeKey().jwk;
    const forged = `${h}.${Buffer.from(JSON.stringify(c)).toString('base64url')}.${sig}`;
    const r = await new Session().req('GET', '/kbs/v0/resource/pub/interop/key', undefined, { authorization: `Bearer ${forged}` });
    expect('refuse_forged_token', r.status === 401 && isError(r, 'TokenVerifierError'), r.text);
  }
  // Protocol errors, each in Trustee's error shape.
  {
    const s = new Session();
    const v = await s.req('POST', '/kbs/v0/auth', { ...request, version: '0.1.0' });
    expect('refuse_protocol_version', v.status === 401 && isError(v, 'AttestationError') && /Version Mismatch/.test(v.json.detail), v.text);
    const t = await s.req('POST', '/kbs/v0/auth', { ...request, tee: 'snp' });
    expect('refuse_unsupported_tee', t.status === 401 && /not supported/.test(t.json?.detail), t.text);
    const m = await s.req('POST', '/kbs/v0/auth', '{"version": "0.4.0",');
    expect('refuse_malformed_json', m.status === 401 && isError(m, 'AttestationError'), m.text);
    const d = await s.req('POST', '/kbs/v0/auth', '{"version":"0.4.0","version":"0.4.0","tee":"tdx","extra-params":""}');
    expect('refuse_duplicate_members', d.status === 401, d.text);
    const n = await s.req('GET', '/kbs/v0/nothing/here');
    expect('unknown_path_404', n.status === 404 && isError(n, 'InvalidRequestPath'), n.text);
    const noauth = await new Session().req('POST', '/kbs/v0/attest', {});
    expect('attest_without_session', noauth.status === 401 && /no session/.test(noauth.json?.detail), noauth.text);
    // Over the body limit (1 MiB + 64 KiB): read and answered 413 up to twice
    // the limit; beyond that the broker drops the connection without reading.
    const big = await s.req('POST', '/kbs/v0/auth', 'x'.repeat(1536 << 10));
    expect('big_body_413', big.status === 413, `${big.status}`);
    let huge;
    try {
      huge = (await s.req('POST', '/kbs/v0/auth', 'x'.repeat(8 << 20))).status;
    } catch (e) {
      huge = 'connection closed';
    }
    expect('huge_body_refused', huge === 413 || huge === 'connection closed', `${huge}`);
    const after = await new Session().req('POST', '/kbs/v0/auth', request);
    expect('serves_after_huge_body', after.status === 200, after.text);
  }
  // Admin API: no token, a token of another key, an expired token.
  {
    const r1 = await new Session().req('GET', '/kbs/v0/resource');
    expect('admin_refuses_no_token', r1.status === 401 && isError(r1, 'AdminAuthAccess'), r1.text);
    const other = crypto.generateKeyPairSync('ed25519').privateKey;
    const now = Math.floor(Date.now() / 1000);
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const inp = `${b64({ alg: 'EdDSA', typ: 'JWT' })}.${b64({ iat: now, exp: now + 300 })}`;
    const wrong = `${inp}.${crypto.sign(null, Buffer.from(inp), other).toString('base64url')}`;
    const r2 = await new Session().req('GET', '/kbs/v0/resource', undefined, { authorization: `Bearer ${wrong}` });
    expect('admin_refuses_other_key', r2.status === 401 && /signature/.test(r2.json?.detail), r2.text);
    const r3 = await new Session().req('GET', '/kbs/v0/resource', undefined, { authorization: `Bearer ${adminToken(-120)}` });
    expect('admin_refuses_expired_token', r3.status === 401 && /expired/.test(r3.json?.detail), r3.text);
    const r4 = await new Session().req('GET', '/kbs/v0/resource', undefined, { authorization: `Bearer ${adminToken()}` });
    expect('admin_accepts_valid_token', r4.status === 200 && Array.isArray(r4.json), r4.text);
    const put = await fetch(`${url}/kbs/v0/resource/cai/x/y`, { method: 'POST', body: 'v', headers: { authorization: `Bearer ${wrong}` } });
    expect('admin_put_refused_without_valid_token', put.status === 401, `${put.status}`);
  }
}

// Against a broker started with --session-ttl 2 (sessions valid for 2 to 3
// seconds): a session used after 3.5 seconds has expired.
async function expired() {
  const pastTtl = () => new Promise((r) => setTimeout(r, 3500));
  // Attesting on an expired session.
  const beforeAttest = (async () => {
    const s = new Session(), key = teeKey();
    const a = await s.req('POST', '/kbs/v0/auth', request);
    await pastTtl();
    const r = await s.req('POST', '/kbs/v0/attest', attestation(a.json.nonce, key.jwk, simQuote(reportData(a.json.nonce, key.jwk))));
    expect('refuse_expired_session', r.status === 401 && /no session|expired/.test(r.json?.detail), r.text);
  })();
  // A resource on an attested session that has since expired.
  const afterAttest = (async () => {
    const s = new Session(), key = teeKey();
    const { attest } = await rcar(s, key);
    const fresh = await s.req('GET', '/kbs/v0/resource/pub/expiry/key');
    await pastTtl();
    const r = await s.req('GET', '/kbs/v0/resource/pub/expiry/key');
    expect('refuse_resource_on_expired_session', attest.status === 200 && fresh.status === 200 &&
      r.status === 401 && isError(r, 'TokenNotFound'), `attest ${attest.status}, fresh ${fresh.status}, expired ${r.status} ${r.text}`);
  })();
  await Promise.all([beforeAttest, afterAttest]);
}

// Graceful shutdown with releases in flight: another process holds the
// broker's database write lock, so N concurrent releases wait in the audit
// writer's queue; SIGTERM to the broker, then the lock is let go. Writes to
// OUT the number of releases answered 200 with a JWE; the caller compares it
// with the release records in the audit log after a restart (a release on
// record but never answered is the failure).
async function shutdown(pid, n, db, out) {
  const s = new Session(), key = teeKey();
  const { attest } = await rcar(s, key);
  if (attest.status !== 200) return fail('shutdown_attest', attest.text);
  const auth = { authorization: `Bearer ${attest.json.token}` };
  const locked = path.join(tmp, 'locked'), unlock = path.join(tmp, 'unlock');
  const locker = spawn('python3', ['-c', `
import os, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
for _ in range(1000):
    if os.path.exists(sys.argv[3]):
        break
    time.sleep(0.01)
c.execute("COMMIT")
`, db, locked, unlock], { stdio: 'inherit' });
  const exited = new Promise((r) => locker.on('exit', r));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  for (let i = 0; i < 500 && !fs.existsSync(locked); i++) await sleep(10);
  const one = async () => {
    try {
      const r = await fetch(`${url}/kbs/v0/resource/pub/shutdown/key`, { headers: auth });
      const j = JSON.parse(await r.text());
      return r.status === 200 && typeof j.ciphertext === 'string';
    } catch {
      return false; /* no answer: the broker closed the connection */
    }
  };
  const burst = Promise.all(Array.from({ length: n }, one));
  await sleep(1000); // the requests reach the broker and queue behind the lock
  process.kill(pid, 'SIGTERM');
  await sleep(300);
  fs.writeFileSync(unlock, '');
  const answered = (await burst).filter(Boolean).length;
  await exited;
  fs.writeFileSync(out, `${answered}\n`);
  console.log(`  ${answered} of ${n} releases answered before the broker stopped`);
}

async function write(n, ackFile) {
  const fd = fs.openSync(ackFile, 'a');
  for (let i = 0; i < n; i++) {
    const body = `value-${i}-${crypto.randomBytes(8).toString('hex')}`;
    try {
      const r = await fetch(`${url}/kbs/v0/resource/dur/w/${i}`, { method: 'POST', body, headers: { authorization: `Bearer ${adminToken()}` } });
      if (r.status !== 200) break;
      fs.writeSync(fd, `${i} ${body}\n`); // only after the broker acknowledged
    } catch {
      break; // the broker died
    }
  }
  fs.closeSync(fd);
}

async function check(ackFile) {
  const acks = fs.readFileSync(ackFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' '));
  const s = new Session(), key = teeKey();
  const { attest } = await rcar(s, key);
  if (attest.status !== 200) return fail('durability_attest', attest.text);
  let bad = 0;
  for (const [i, body] of acks) {
    const r = await s.req('GET', `/kbs/v0/resource/dur/w/${i}`);
    let ok = false;
    try {
      ok = r.status === 200 && Buffer.from((await jose.flattenedDecrypt(r.json, key.privateKey)).plaintext).toString() === body;
    } catch { /* counted below */ }
    if (!ok && bad++ < 3) console.log(`  write ${i} lost or wrong: ${r.status} ${r.text.slice(0, 120)}`);
  }
  expect('every_acknowledged_write_readable', acks.length > 0 && bad === 0, `${bad} of ${acks.length} acknowledged writes missing`);
  console.log(`  ${acks.length} acknowledged writes checked`);
}

// Two brokers (url, url2) on one PostgreSQL store.
async function shared(url2, n) {
  const other = (u) => (u === url ? url2 : url);
  // A nonce taken at both brokers at once is accepted by exactly one.
  let once = 0;
  const seen = [];
  for (let i = 0; i < n; i++) {
    const at = i % 2 ? url2 : url;
    const s = new Session(at), key = teeKey();
    const a = await s.req('POST', '/kbs/v0/auth', request);
    if (a.status !== 200) return fail('shared_auth', `${a.status} ${a.text}`);
    const att = attestation(a.json.nonce, key.jwk, simQuote(reportData(a.json.nonce, key.jwk)));
    const s2 = new Session(other(at));
    s2.cookie = s.cookie;
    const rs = await Promise.all([s.req('POST', '/kbs/v0/attest', att), s2.req('POST', '/kbs/v0/attest', att)]);
    const codes = rs.map((r) => r.status).sort().join(',');
    seen.push(codes);
    if (codes === '200,401' && rs.some((r) => /already used/.test(r.json?.detail ?? ''))) once++;
  }
  expect('nonce_raced_at_two_brokers_accepted_once', once === n, `answers per race: ${seen.join(' ')}`);
  // A create-only write raced at both brokers: one stores it, one is refused.
  let oneWins = 0;
  const wseen = [];
  for (let i = 0; i < n; i++) {
    const h = { authorization: `Bearer ${adminToken()}`, 'if-none-match': '*' };
    const p = `/kbs/v0/resource/race/create/k${i}`;
    const rs = await Promise.all([url, url2].map((u, j) =>
      fetch(u + p, { method: 'POST', headers: h, body: `value-${j}` }).then(async (r) => ({ status: r.status, text: await r.text() }))));
    const codes = rs.map((r) => r.status).sort().join(',');
    wseen.push(codes);
    if (codes === '200,409' && rs.some((r) => /ResourceExists/.test(r.text))) oneWins++;
  }
  expect('create_only_raced_at_two_brokers_one_wins', oneWins === n, `answers per race: ${wseen.join(' ')}`);
  // A session attested at one broker serves its cookie and its token at the other.
  const s = new Session(url), key = teeKey();
  const { attest } = await rcar(s, key);
  if (attest.status !== 200) return fail('shared_attest', attest.text);
  const viaCookie = new Session(url2);
  viaCookie.cookie = s.cookie;
  const c = await viaCookie.req('GET', '/kbs/v0/resource/pub/shared/key');
  let plain = '';
  try { plain = Buffer.from((await jose.flattenedDecrypt(c.json, key.privateKey)).plaintext).toString(); } catch { /* below */ }
  expect('session_cookie_honoured_by_other_broker', c.status === 200 && plain === 'shared-value', `${c.status} ${c.text.slice(0, 200)}`);
  const b = await new Session(url2).req('GET', '/kbs/v0/resource/pub/shared/key', undefined, { authorization: `Bearer ${attest.json.token}` });
  expect('token_honoured_by_other_broker', b.status === 200 && b.json?.protected, `${b.status} ${b.text.slice(0, 200)}`);
  // Opened at one broker, attested at the other, fetched at the first: the
  // first still holds the session as opened, not attested, and must look in
  // the store (a client's pooled connections land like this behind HAProxy).
  {
    const sa = new Session(url), ka = teeKey();
    const a = await sa.req('POST', '/kbs/v0/auth', request);
    const sb = new Session(url2);
    sb.cookie = sa.cookie;
    const at = await sb.req('POST', '/kbs/v0/attest', attestation(a.json.nonce, ka.jwk, simQuote(reportData(a.json.nonce, ka.jwk))));
    const g = at.status === 200 ? await sa.req('GET', '/kbs/v0/resource/pub/shared/key') : at;
    let p = '';
    try { p = Buffer.from((await jose.flattenedDecrypt(g.json, ka.privateKey)).plaintext).toString(); } catch { /* below */ }
    expect('opened_here_attested_there_fetched_here', g.status === 200 && p === 'shared-value', `${g.status} ${g.text.slice(0, 200)}`);
  }
  // A refusal quoting what the client sent, cut inside a UTF-8 sequence
  // (the alg at 32 bytes), is refused and audited all the same.
  const s3 = new Session(url2), k3 = teeKey();
  const a3 = await s3.req('POST', '/kbs/v0/auth', request);
  const jwk3 = { ...k3.jwk, alg: 'A'.repeat(31) + '\u00e9' };
  const r3 = await s3.req('POST', '/kbs/v0/attest', attestation(a3.json.nonce, jwk3, simQuote(reportData(a3.json.nonce, jwk3))));
  expect('cut_utf8_alg_refused', r3.status === 401, `${r3.status} ${r3.text.slice(0, 200)}`);
}

try {
  if (mode === 'interop') await interop();
  else if (mode === 'coco') await coco(rest[0]);
  else if (mode === 'shared') await shared(rest[0], Number(rest[1]));
  else if (mode === 'refusals') await refusals();
  else if (mode === 'expired') await expired();
  else if (mode === 'shutdown') await shutdown(Number(rest[0]), Number(rest[1]), rest[2], rest[3]);
  else if (mode === 'write') await write(Number(rest[0]), rest[1]);
  else if (mode === 'check') await check(rest[0]);
  else throw new Error(`unknown mode ${mode}`);
} catch (e) {
  fail(mode, e.stack);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
