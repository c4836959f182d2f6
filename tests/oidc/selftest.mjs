// Checks the running fixture's two providers with an independent relying
// party (jose for the JWTs): every client and user of the real provider,
// and that each hostile mode is accepted or refused as README.md says, for
// the reason it says.
//   node selftest.mjs ENV_FILE
import { readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { strict as assert } from 'node:assert';

import * as jose from 'jose';

import { ACCOUNTS } from './accounts.mjs';

const envFile = process.argv[2] || process.env.OIDC_ENV_FILE;
if (!envFile) {
  console.error('usage: node selftest.mjs ENV_FILE');
  process.exit(2);
}
const env = Object.fromEntries(readFileSync(envFile, 'utf8').split('\n').filter(Boolean)
  .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

const REDIRECT = 'http://127.0.0.1:9/accounts/oidc/test/callback/';
let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok ${name}`);
  } catch (err) {
    failed += 1;
    console.log(`FAIL ${name}: ${err.stack || err}`);
  }
}

// A browser as far as the providers care: cookies by path, no redirects
// followed on its own.
class Browser {
  constructor() { this.jar = new Map(); }

  cookieHeader(url) {
    const { pathname } = new URL(url);
    return [...this.jar.values()]
      .filter((c) => pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map((c) => `${c.name}=${c.value}`).join('; ');
  }

  async request(url, { method = 'GET', form } = {}) {
    const headers = {};
    const cookie = this.cookieHeader(url);
    if (cookie) headers.cookie = cookie;
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(10000) });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const pathAttr = attrs.find((a) => /^path=/i.test(a));
      const path = pathAttr ? pathAttr.slice(5) : '/';
      const expired = attrs.some((a) => /^expires=/i.test(a) && Date.parse(a.slice(8)) < Date.now());
      if (expired || value === '') this.jar.delete(`${name}|${path}`);
      else this.jar.set(`${name}|${path}`, { name, value, path });
    }
    const location = res.headers.get('location');
    return { status: res.status, location: location && new URL(location, url).toString(), text: await res.text() };
  }

  // What oidc_browser_login does: follow the provider's redirects, POST
  // login=USER at the interaction, stop at the first address off the
  // provider's origin (the callback), without requesting it.
  async login(authorizeUrl, user, { abort = false } = {}) {
    const origin = new URL(authorizeUrl).origin;
    let url = authorizeUrl;
    let posted = false;
    for (let hop = 0; hop < 20; hop += 1) {
      const res = await this.request(url);
      if (res.status >= 300 && res.status < 400 && res.location) {
        if (new URL(res.location).origin !== origin) return res.location;
        url = res.location;
      } else if (res.status === 200 && /\/interaction\/[^/]+$/.test(new URL(url).pathname) && !posted) {
        posted = true;
        const post = await this.request(`${url}/${abort ? 'abort' : 'login'}`, { method: 'POST', form: abort ? {} : { login: user } });
        assert.equal(post.status, 303, `POST login: ${post.status} ${post.text.slice(0, 300)}`);
        if (new URL(post.location).origin !== origin) return post.location;
        url = post.location;
      } else {
        throw new Error(`${url}: ${res.status} ${res.text.slice(0, 300)}`);
      }
    }
    throw new Error('too many redirects');
  }
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

async function discovery(issuer) {
  const res = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(10000) });
  assert.equal(res.status, 200);
  const doc = await res.json();
  assert.equal(doc.issuer, issuer);
  return doc;
}

function authorizeUrl(doc, clientId, state, nonce, challenge) {
  const u = new URL(doc.authorization_endpoint);
  u.search = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope: 'openid email profile',
    state, nonce, code_challenge: challenge, code_challenge_method: 'S256',
  }).toString();
  return u.toString();
}

async function tokenRequest(doc, clientId, secret, method, code, verifier, timeout = 10000) {
  const form = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier };
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (method === 'basic') {
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  } else {
    form.client_id = clientId;
    form.client_secret = secret;
  }
  const res = await fetch(doc.token_endpoint, {
    method: 'POST', headers, body: new URLSearchParams(form).toString(), signal: AbortSignal.timeout(timeout),
  });
  return { status: res.status, body: await res.text() };
}

// The checks the library must make; throws with the reason of a refusal.
async function verifyIdToken(token, { doc, issuer, clientId, nonce }) {
  const header = jose.decodeProtectedHeader(token);
  if (!['RS256', 'PS256', 'ES256'].includes(header.alg)) throw new Error(`alg ${header.alg} refused`);
  const jwks = await (await fetch(doc.jwks_uri, { signal: AbortSignal.timeout(3000) })).json();
  const { payload } = await jose.jwtVerify(token, jose.createLocalJWKSet(jwks), {
    issuer, audience: clientId, algorithms: ['RS256', 'PS256', 'ES256'], clockTolerance: 60,
  });
  if (payload.iat > Date.now() / 1000 + 60) throw new Error('iat in the future');
  if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== clientId) {
    throw new Error(`azp ${payload.azp} is not ${clientId}`);
  }
  if (payload.nonce !== nonce) throw new Error(`nonce ${payload.nonce} is not ${nonce}`);
  return { header, payload };
}

// ---- the real provider ----
const issuer = env.OIDC_ISSUER;
const realDoc = await discovery(issuer);
const clients = [
  ['basic', env.OIDC_CLIENT_ID, env.OIDC_CLIENT_SECRET, 'RS256'],
  ['post', env.OIDC_POST_CLIENT_ID, env.OIDC_POST_CLIENT_SECRET, 'RS256'],
  ['basic', env.OIDC_ES256_CLIENT_ID, env.OIDC_ES256_CLIENT_SECRET, 'ES256'],
  ['basic', env.OIDC_PS256_CLIENT_ID, env.OIDC_PS256_CLIENT_SECRET, 'PS256'],
];
assert.equal(readFileSync(env.OIDC_CLIENT_SECRET_FILE, 'utf8'), env.OIDC_CLIENT_SECRET);

async function realFlow(clientId, secret, method, user) {
  const { verifier, challenge } = pkce();
  const state = randomBytes(12).toString('base64url');
  const nonce = randomBytes(12).toString('base64url');
  const cb = new URL(await new Browser().login(authorizeUrl(realDoc, clientId, state, nonce, challenge), user));
  assert.equal(`${cb.origin}${cb.pathname}`, REDIRECT);
  assert.equal(cb.searchParams.get('state'), state);
  assert.equal(cb.searchParams.get('iss'), issuer);
  const code = cb.searchParams.get('code');
  assert.ok(code, `no code in ${cb}`);
  const tok = await tokenRequest(realDoc, clientId, secret, method, code, verifier);
  assert.equal(tok.status, 200, tok.body);
  const again = await tokenRequest(realDoc, clientId, secret, method, code, verifier);
  assert.equal(again.status, 400, 'a code is single-use');
  return verifyIdToken(JSON.parse(tok.body).id_token, { doc: realDoc, issuer, clientId, nonce });
}

for (const [method, clientId, secret, alg] of clients) {
  await check(`real ${clientId} (client_secret_${method}, ${alg}) alice`, async () => {
    const { header, payload } = await realFlow(clientId, secret, method, 'alice');
    assert.equal(header.alg, alg);
    assert.equal(payload.sub, ACCOUNTS.alice.sub);
  });
}
for (const [user, account] of Object.entries(ACCOUNTS)) {
  await check(`real claims of ${user}`, async () => {
    const { payload } = await realFlow(env.OIDC_CLIENT_ID, env.OIDC_CLIENT_SECRET, 'basic', user);
    for (const claim of ['sub', 'email', 'email_verified', 'preferred_username', 'name']) {
      assert.deepEqual(payload[claim], account[claim], claim);
    }
  });
}
await check('real: a wrong code_verifier is refused', async () => {
  const { challenge } = pkce();
  const cb = new URL(await new Browser().login(authorizeUrl(realDoc, env.OIDC_CLIENT_ID, 's', 'n', challenge), 'alice'));
  const tok = await tokenRequest(realDoc, env.OIDC_CLIENT_ID, env.OIDC_CLIENT_SECRET, 'basic', cb.searchParams.get('code'), pkce().verifier);
  assert.equal(tok.status, 400, tok.body);
});
await check('real: cancel at the login page gives error=access_denied', async () => {
  const cb = new URL(await new Browser().login(authorizeUrl(realDoc, env.OIDC_CLIENT_ID, 'st', 'n', pkce().challenge), null, { abort: true }));
  assert.equal(cb.searchParams.get('error'), 'access_denied');
  assert.equal(cb.searchParams.get('state'), 'st');
});
await check('real: no PKCE gives error=invalid_request', async () => {
  const u = new URL(authorizeUrl(realDoc, env.OIDC_CLIENT_ID, 'st', 'n', 'x'));
  u.searchParams.delete('code_challenge');
  u.searchParams.delete('code_challenge_method');
  const cb = new URL(await new Browser().login(u.toString(), 'alice'));
  assert.equal(cb.searchParams.get('error'), 'invalid_request');
});
await check('real: an unknown user is answered 400 at the login form', async () => {
  const b = new Browser();
  const first = await b.request(authorizeUrl(realDoc, env.OIDC_CLIENT_ID, 'st', 'n', pkce().challenge));
  assert.equal(first.status, 303);
  const page = await b.request(first.location);
  assert.equal(page.status, 200);
  assert.match(page.text, /name="login"/);
  const post = await b.request(`${first.location}/login`, { method: 'POST', form: { login: 'nobody' } });
  assert.equal(post.status, 400);
});
await check('real: a redirect_uri off loopback is refused', async () => {
  const u = new URL(authorizeUrl(realDoc, env.OIDC_CLIENT_ID, 'st', 'n', pkce().challenge));
  u.searchParams.set('redirect_uri', 'https://attacker.example/cb');
  const res = await new Browser().request(u.toString());
  assert.equal(res.status, 400);
});

// ---- the hostile provider: each mode as a relying party meets it ----
const modes = (await (await fetch(`${env.HOSTILE_BASE}/`)).json()).modes;
assert.deepEqual(Object.keys(modes).join(','), env.HOSTILE_MODES);

async function hostileFlow(mode, tag) {
  const iss = `${env.HOSTILE_BASE}/${mode}${tag ? `.${tag}` : ''}`;
  const doc = await discovery(iss);
  const method = doc.token_endpoint_auth_methods_supported.includes('client_secret_basic') ? 'basic' : 'post';
  const { verifier, challenge } = pkce();
  const state = randomBytes(12).toString('base64url');
  const nonce = randomBytes(12).toString('base64url');
  const cb = new URL(await new Browser().login(authorizeUrl(doc, env.HOSTILE_CLIENT_ID, state, nonce, challenge), 'ignored'));
  if (cb.searchParams.get('error')) throw new Error(`error=${cb.searchParams.get('error')}`);
  if (cb.searchParams.get('state') !== state) throw new Error('state mismatch');
  if (cb.searchParams.has('iss') && cb.searchParams.get('iss') !== iss) throw new Error('iss parameter mismatch');
  const tok = await tokenRequest(doc, env.HOSTILE_CLIENT_ID, env.HOSTILE_CLIENT_SECRET, method, cb.searchParams.get('code'), verifier, 3000);
  if (tok.status !== 200) throw new Error(`token endpoint ${tok.status}`);
  if (tok.body.length > 1 << 20) throw new Error(`token response of ${tok.body.length} bytes`);
  const idToken = JSON.parse(tok.body).id_token;
  if (mode === 'huge-jwks') {
    const res = await fetch(doc.jwks_uri);
    const size = (await res.arrayBuffer()).byteLength;
    if (size > 1 << 20) throw new Error(`JWKS of ${size} bytes`);
  }
  return { ...(await verifyIdToken(idToken, { doc, issuer: iss, clientId: env.HOSTILE_CLIENT_ID, nonce })), iss };
}

const reasons = {
  'wrong-signature': /signature verification failed/,
  'wrong-aud': /"aud"/,
  'wrong-iss': /"iss"/,
  'iss-trailing-slash': /"iss"/,
  expired: /"exp"/,
  'iat-future': /iat in the future/,
  'wrong-nonce': /nonce/,
  'missing-nonce': /nonce/,
  'alg-none': /alg none refused/,
  'hs256-public-key': /alg HS256 refused/,
  'unknown-kid': /no applicable key/i,
  'azp-mismatch': /azp/,
  'huge-jwks': /JWKS of \d+ bytes/,
  'huge-token': /token response of \d+ bytes/,
  'jwks-hangs': /timeout|abort/i,
  'token-hangs': /timeout|abort/i,
  'token-error': /token endpoint 400/,
  'error-access-denied': /error=access_denied/,
  'wrong-state': /state mismatch/,
  'wrong-iss-param': /iss parameter mismatch/,
};

for (const [mode, { outcome }] of Object.entries(modes)) {
  if (mode === 'rotating') continue;
  await check(`hostile ${mode}: ${outcome}`, async () => {
    let result;
    let error;
    try {
      result = await hostileFlow(mode);
    } catch (err) {
      error = err;
    }
    if (outcome === 'accept') {
      if (error) throw error;
      assert.equal(result.payload.sub, 'hostile-user-1');
    } else {
      assert.ok(error, 'accepted');
      assert.match(String(error.message || error), reasons[mode]);
    }
  });
}

await check('hostile hs256-public-key: the HMAC secret is the public key PEM', async () => {
  const iss = `${env.HOSTILE_BASE}/hs256-public-key.pem`;
  const doc = await discovery(iss);
  const jwks = await (await fetch(doc.jwks_uri)).json();
  // The PEM as OpenSSL writes it: 64-character lines, a final newline.
  const pem = `${await jose.exportSPKI(await jose.importJWK(jwks.keys.find((k) => k.kty === 'RSA'), 'RS256'))}\n`;
  const { verifier, challenge } = pkce();
  const cb = new URL(await new Browser().login(authorizeUrl(doc, env.HOSTILE_CLIENT_ID, 's', 'n', challenge), 'x'));
  const tok = await tokenRequest(doc, env.HOSTILE_CLIENT_ID, env.HOSTILE_CLIENT_SECRET, 'basic', cb.searchParams.get('code'), verifier);
  const { payload } = await jose.jwtVerify(JSON.parse(tok.body).id_token, new TextEncoder().encode(pem), { algorithms: ['HS256'] });
  assert.equal(payload.iss, iss);
});

await check('hostile rotating: key 2 appears in the JWKS at rotate', async () => {
  const tag = randomBytes(4).toString('hex');
  const before = await hostileFlow('rotating', tag);
  assert.equal(before.header.kid, 'hostile-rsa-1');
  const rot = await fetch(`${before.iss}/rotate`, { method: 'POST' });
  assert.equal(rot.status, 200);
  const after = await hostileFlow('rotating', tag);
  assert.equal(after.header.kid, 'hostile-rsa-2');
  const stats = await (await fetch(`${before.iss}/stats`)).json();
  assert.equal(stats.codes_redeemed, 2);
  assert.equal(stats.jwks, 2);
  await fetch(`${before.iss}/reset`, { method: 'POST' });
  const reset = await (await fetch(`${before.iss}/stats`)).json();
  assert.equal(reset.rotated, false);
  assert.equal(reset.token, 0);
});

await check('hostile: a replayed code, a wrong secret, the wrong method are refused', async () => {
  const iss = `${env.HOSTILE_BASE}/post-only.replay`;
  const doc = await discovery(iss);
  const { verifier, challenge } = pkce();
  const cb = new URL(await new Browser().login(authorizeUrl(doc, env.HOSTILE_CLIENT_ID, 's', 'n', challenge), 'x'));
  const code = cb.searchParams.get('code');
  const basic = await tokenRequest(doc, env.HOSTILE_CLIENT_ID, env.HOSTILE_CLIENT_SECRET, 'basic', code, verifier);
  assert.equal(basic.status, 401);
  const wrong = await tokenRequest(doc, env.HOSTILE_CLIENT_ID, 'nope', 'post', code, verifier);
  assert.equal(wrong.status, 401);
  const ok = await tokenRequest(doc, env.HOSTILE_CLIENT_ID, env.HOSTILE_CLIENT_SECRET, 'post', code, verifier);
  assert.equal(ok.status, 200, ok.body);
  const replay = await tokenRequest(doc, env.HOSTILE_CLIENT_ID, env.HOSTILE_CLIENT_SECRET, 'post', code, verifier);
  assert.equal(replay.status, 400);
  const stats = await (await fetch(`${iss}/stats`)).json();
  assert.deepEqual(stats.token_auth_methods, ['basic', 'post', 'post', 'post']);
});

console.log(`selftest: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
