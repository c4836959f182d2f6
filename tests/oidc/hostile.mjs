// A hostile OpenID Provider of the tests' own making: plain node:http, JWS
// made here with node:crypto. No login: its authorization endpoint sends
// the browser straight back with a code. What its tokens (and its other
// answers) get wrong is chosen by the issuer's path, one issuer per mode:
//
//   issuer  http://127.0.0.1:PORT/MODE         (or /MODE.TAG: same mode,
//                                               its own state and counters)
//   GET  ISSUER/.well-known/openid-configuration
//   GET  ISSUER/jwks
//   GET  ISSUER/authorize    -> 303 to redirect_uri?code=..&state=..&iss=..
//   POST ISSUER/token        client_secret_basic or _post, PKCE S256
//   GET  ISSUER/userinfo     Bearer access token
//   GET  ISSUER/stats        what this issuer was asked (JSON)
//   POST ISSUER/reset        forget codes and counters
//   POST ISSUER/rotate       mode `rotating` only: publish key 2, sign with it
//   GET  /                   the modes (JSON)
//
//   node hostile.mjs [--port 0] [--port-file F] [--pid-file F]
//                    [--client-id hostile-client] [--client-secret hostile-secret]
//                    [--max-seconds 10800] [--huge-bytes 33554432]
//
// README.md beside this file lists the modes and what a relying party must
// do with each. Every request is logged to stderr.
import * as http from 'node:http';
import {
  constants, createHash, createHmac, generateKeyPairSync, randomBytes, sign, timingSafeEqual,
} from 'node:crypto';

import {
  log, logRequests, parseArgs, readBody, watchdog, writeFileAtomic,
} from './common.mjs';

const NAME = 'hostile-op';

const opts = parseArgs(process.argv.slice(2), {
  port: '0',
  'port-file': '',
  'pid-file': '',
  'client-id': 'hostile-client',
  'client-secret': 'hostile-secret',
  'max-seconds': '10800',
  'huge-bytes': String(32 << 20),
});
const HUGE = Number(opts['huge-bytes']);

// What a correct relying party does with each mode's flow: `accept` (it
// logs the visitor in) or `refuse` (the visitor stays as they were).
const MODES = {
  good: ['accept', 'a valid RS256 ID token'],
  'good-ps256': ['accept', 'a valid PS256 ID token (the RSA key)'],
  'good-es256': ['accept', 'a valid ES256 ID token (the P-256 key)'],
  'no-iss-param': ['accept', 'valid, but the authorization response has no iss parameter (RFC 9207: only checked when present)'],
  'multi-aud-azp': ['accept', 'aud [client_id, "another-client"] with azp = client_id'],
  'expired-within-skew': ['accept', 'exp 30 s in the past (inside 60 s of clock skew)'],
  'missing-kid': ['accept', 'no kid in the header; the JWKS has that one RSA key only (OIDC Core 10.1)'],
  'post-only': ['accept', 'discovery offers only client_secret_post; the token endpoint refuses basic'],
  rotating: ['accept', 'signs with key 1 until POST ISSUER/rotate, then with key 2, which only then appears in the JWKS'],
  'wrong-signature': ['refuse', 'kid of the published key, signed by another RSA key'],
  'wrong-aud': ['refuse', 'aud "another-client"'],
  'wrong-iss': ['refuse', 'iss "https://attacker.example"'],
  'iss-trailing-slash': ['refuse', 'iss is the issuer with a "/" appended'],
  expired: ['refuse', 'exp an hour in the past'],
  'iat-future': ['refuse', 'iat an hour in the future'],
  'wrong-nonce': ['refuse', 'a nonce other than the authorization request\'s'],
  'missing-nonce': ['refuse', 'no nonce claim'],
  'alg-none': ['refuse', 'alg "none", no signature'],
  'hs256-public-key': ['refuse', 'HS256 with the provider\'s RSA public key (SPKI PEM text) as the HMAC secret'],
  'unknown-kid': ['refuse', 'signed by a key whose kid never appears in the JWKS (each fetch is counted in /stats)'],
  'azp-mismatch': ['refuse', 'aud [client_id, "another-client"], azp "another-client"'],
  'huge-jwks': ['refuse', 'the JWKS is --huge-bytes (32 MiB) long: the real key first, then junk'],
  'huge-token': ['refuse', 'the token response is --huge-bytes long'],
  'jwks-hangs': ['refuse', 'the JWKS endpoint never answers'],
  'token-hangs': ['refuse', 'the token endpoint never answers'],
  'token-error': ['refuse', 'the token endpoint answers 400 invalid_grant'],
  'error-access-denied': ['refuse', 'the authorization endpoint sends back error=access_denied with the state'],
  'wrong-state': ['refuse', 'the authorization response carries another state'],
  'wrong-iss-param': ['refuse', 'the authorization response\'s iss parameter is "https://attacker.example"'],
};

const b64u = (b) => Buffer.from(b).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

// Key 1 (RSA) is the provider's; key 2 (RSA) appears only for `rotating`
// and signs `unknown-kid`; the EC key signs `good-es256`; the forger's key
// is never published.
function rsaKey(kid) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, publicKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, use: 'sig' } };
}
const K1 = rsaKey('hostile-rsa-1');
const K2 = rsaKey('hostile-rsa-2');
const FORGER = rsaKey('forger');
const EC = (() => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = 'hostile-ec-1';
  return { kid, privateKey, publicKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'ES256' } };
})();
const K1_PEM = K1.publicKey.export({ type: 'spki', format: 'pem' });

function jws(header, payload, signer) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  return `${input}.${b64u(signer(Buffer.from(input)))}`;
}
const rs256 = (key) => (data) => sign('sha256', data, key);
const ps256 = (key) => (data) => sign('sha256', data, {
  key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32,
});
const es256 = (key) => (data) => sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
const hs256 = (secret) => (data) => createHmac('sha256', secret).update(data).digest();

// State per issuer path segment (MODE or MODE.TAG).
const issuers = new Map();
function stateFor(seg) {
  let s = issuers.get(seg);
  if (!s) {
    s = { codes: new Map(), tokens: new Map(), rotated: false, stats: null };
    resetStats(s);
    issuers.set(seg, s);
  }
  return s;
}
function resetStats(s) {
  s.stats = {
    discovery: 0, jwks: 0, authorize: 0, token: 0, userinfo: 0,
    codes_issued: 0, codes_redeemed: 0, token_auth_methods: [], nonces: [],
  };
}

function jwksFor(mode, s) {
  switch (mode) {
    case 'missing-kid': return { keys: [K1.jwk] };
    case 'rotating': return { keys: s.rotated ? [K1.jwk, K2.jwk] : [K1.jwk] };
    default: return { keys: [K1.jwk, EC.jwk] };
  }
}

function idToken(mode, issuer, code, s) {
  const t = now();
  const claims = {
    iss: issuer,
    sub: 'hostile-user-1',
    aud: code.clientId,
    exp: t + 600,
    iat: t,
    auth_time: t,
    email: 'hostile-user@hostile.test',
    email_verified: true,
    preferred_username: 'hostile',
    name: 'Hostile User',
  };
  if (code.nonce !== undefined) claims.nonce = code.nonce;
  let header = { alg: 'RS256', typ: 'JWT', kid: K1.kid };
  let signer = rs256(K1.privateKey);
  switch (mode) {
    case 'good-ps256': header.alg = 'PS256'; signer = ps256(K1.privateKey); break;
    case 'good-es256': header = { alg: 'ES256', typ: 'JWT', kid: EC.kid }; signer = es256(EC.privateKey); break;
    case 'multi-aud-azp': claims.aud = [code.clientId, 'another-client']; claims.azp = code.clientId; break;
    case 'expired-within-skew': claims.exp = t - 30; claims.iat = t - 330; claims.auth_time = t - 330; break;
    case 'missing-kid': delete header.kid; break;
    case 'rotating':
      if (s.rotated) { header.kid = K2.kid; signer = rs256(K2.privateKey); }
      break;
    case 'wrong-signature': signer = rs256(FORGER.privateKey); break;
    case 'wrong-aud': claims.aud = 'another-client'; break;
    case 'wrong-iss': claims.iss = 'https://attacker.example'; break;
    case 'iss-trailing-slash': claims.iss = `${issuer}/`; break;
    case 'expired': claims.exp = t - 3600; claims.iat = t - 7200; claims.auth_time = t - 7200; break;
    case 'iat-future': claims.iat = t + 3600; claims.exp = t + 4200; claims.auth_time = t + 3600; break;
    case 'wrong-nonce': claims.nonce = `not-${code.nonce ?? ''}-${b64u(randomBytes(6))}`; break;
    case 'missing-nonce': delete claims.nonce; break;
    case 'alg-none': header = { alg: 'none', typ: 'JWT' }; signer = () => Buffer.alloc(0); break;
    case 'hs256-public-key': header = { alg: 'HS256', typ: 'JWT', kid: K1.kid }; signer = hs256(K1_PEM); break;
    case 'unknown-kid': header.kid = K2.kid; signer = rs256(K2.privateKey); break;
    case 'azp-mismatch': claims.aud = [code.clientId, 'another-client']; claims.azp = 'another-client'; break;
    default: break;
  }
  return { token: jws(header, claims, signer), claims };
}

function sendJson(res, status, obj, extraHeaders = {}) {
  const body = `${JSON.stringify(obj)}\n`;
  res.writeHead(status, {
    'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...extraHeaders,
  });
  res.end(body);
}
function sendText(res, status, text) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(`${text}\n`);
}
function redirect(res, url) {
  res.writeHead(303, { Location: url, 'Content-Length': '0', 'Cache-Control': 'no-store' });
  res.end();
}

// A JSON document of about `bytes`: head, then filler items, then tail;
// written as fast as the client reads, stopped when it goes away.
function streamHuge(res, head, item, tail, bytes) {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  let written = 0;
  let i = 0;
  let closed = false;
  res.on('close', () => { closed = true; });
  const pump = () => {
    if (closed) return;
    if (i === 0) { res.write(head); written += head.length; }
    while (written < bytes) {
      const chunk = item(i);
      i += 1;
      written += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end(tail);
  };
  pump();
}
const junkKey = (i) => `,{"kty":"RSA","kid":"junk-${i}","use":"sig","alg":"RS256","n":"${'x'.repeat(4000)}","e":"AQAB"}`;

// Client authentication: client_secret_basic (RFC 6749 2.3.1: the id and
// secret form-urlencoded, then Basic) or client_secret_post.
function clientAuth(req, form) {
  const h = req.headers.authorization;
  if (h && /^Basic /i.test(h)) {
    const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { method: 'basic' };
    const dec = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
    try {
      return { method: 'basic', id: dec(decoded.slice(0, colon)), secret: dec(decoded.slice(colon + 1)) };
    } catch {
      return { method: 'basic' };
    }
  }
  if (form.has('client_secret')) {
    return { method: 'post', id: form.get('client_id'), secret: form.get('client_secret') };
  }
  return { method: 'none', id: form.get('client_id') };
}
const sameSecret = (a, b) => {
  const x = createHash('sha256').update(String(a)).digest();
  const y = createHash('sha256').update(String(b)).digest();
  return timingSafeEqual(x, y);
};

function appendQuery(uri, params) {
  const u = new URL(uri);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined) u.searchParams.append(k, v);
  }
  return u.toString();
}

let base = '';
const hanging = new Set();
function hang(res) {
  hanging.add(res);
  res.on('close', () => hanging.delete(res));
}

async function handle(req, res) {
  const url = new URL(req.url, base);
  if (url.pathname === '/') {
    sendJson(res, 200, {
      issuer_pattern: `${base}/MODE`,
      client_id: opts['client-id'],
      modes: Object.fromEntries(Object.entries(MODES).map(([m, [outcome, what]]) => [m, { outcome, what }])),
    });
    return;
  }
  const m = /^\/([a-z0-9-]+)(?:\.([A-Za-z0-9_-]+))?\/(.+)$/.exec(url.pathname);
  if (!m || !(m[1] in MODES)) {
    sendText(res, 404, `no such issuer or endpoint: ${url.pathname} (modes: GET /)`);
    return;
  }
  const mode = m[1];
  const seg = m[2] ? `${m[1]}.${m[2]}` : m[1];
  const issuer = `${base}/${seg}`;
  const s = stateFor(seg);
  const endpoint = m[3];

  switch (`${req.method} ${endpoint}`) {
    case 'GET .well-known/openid-configuration':
      s.stats.discovery += 1;
      sendJson(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        userinfo_endpoint: `${issuer}/userinfo`,
        response_types_supported: ['code'],
        response_modes_supported: ['query'],
        grant_types_supported: ['authorization_code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256', 'PS256', 'ES256'],
        scopes_supported: ['openid', 'email', 'profile'],
        claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'email', 'email_verified', 'preferred_username', 'name'],
        token_endpoint_auth_methods_supported: mode === 'post-only'
          ? ['client_secret_post'] : ['client_secret_basic', 'client_secret_post'],
        code_challenge_methods_supported: ['S256'],
        authorization_response_iss_parameter_supported: mode !== 'no-iss-param',
      });
      return;
    case 'GET jwks':
      s.stats.jwks += 1;
      if (mode === 'jwks-hangs') { hang(res); return; }
      if (mode === 'huge-jwks') {
        streamHuge(res, `{"keys":[${JSON.stringify(K1.jwk)}`, junkKey, ']}\n', HUGE);
        return;
      }
      sendJson(res, 200, jwksFor(mode, s));
      return;
    case 'GET authorize': {
      s.stats.authorize += 1;
      const p = url.searchParams;
      const redirectUri = p.get('redirect_uri');
      // Never redirect to an unchecked address: a wrong client or a
      // missing redirect_uri is answered here.
      if (p.get('client_id') !== opts['client-id'] || !redirectUri || !URL.canParse(redirectUri)) {
        sendText(res, 400, `unknown client_id or bad redirect_uri (client_id must be ${opts['client-id']})`);
        return;
      }
      const state = p.get('state') ?? undefined;
      const iss = mode === 'no-iss-param' ? undefined
        : mode === 'wrong-iss-param' ? 'https://attacker.example' : issuer;
      const fail = (error, description) => redirect(res, appendQuery(redirectUri, {
        error, error_description: description, state, iss,
      }));
      if (mode === 'error-access-denied') { fail('access_denied', 'The user denied the request'); return; }
      if (p.get('response_type') !== 'code') { fail('unsupported_response_type', 'only code'); return; }
      if (!(p.get('scope') || '').split(' ').includes('openid')) { fail('invalid_scope', 'openid is required'); return; }
      if (!p.get('code_challenge') || p.get('code_challenge_method') !== 'S256') {
        fail('invalid_request', 'PKCE with S256 is required');
        return;
      }
      const code = b64u(randomBytes(32));
      s.codes.set(code, {
        clientId: p.get('client_id'),
        redirectUri,
        nonce: p.get('nonce') ?? undefined,
        challenge: p.get('code_challenge'),
        created: Date.now(),
        used: false,
      });
      s.stats.codes_issued += 1;
      s.stats.nonces.push(p.get('nonce'));
      redirect(res, appendQuery(redirectUri, {
        code, state: mode === 'wrong-state' ? `${state ?? ''}x${b64u(randomBytes(6))}` : state, iss,
      }));
      return;
    }
    case 'POST token': {
      s.stats.token += 1;
      const form = new URLSearchParams(await readBody(req));
      if (mode === 'token-hangs') { hang(res); return; }
      const auth = clientAuth(req, form);
      s.stats.token_auth_methods.push(auth.method);
      const allowed = mode === 'post-only' ? ['post'] : ['basic', 'post'];
      if (!allowed.includes(auth.method) || auth.id !== opts['client-id']
          || !sameSecret(auth.secret, opts['client-secret'])) {
        sendJson(res, 401, { error: 'invalid_client', error_description: `client authentication failed (${auth.method})` },
          { 'WWW-Authenticate': 'Basic realm="hostile"' });
        return;
      }
      if (form.get('grant_type') !== 'authorization_code') {
        sendJson(res, 400, { error: 'unsupported_grant_type' });
        return;
      }
      const code = s.codes.get(form.get('code') || '');
      const invalid = (why) => sendJson(res, 400, { error: 'invalid_grant', error_description: why });
      if (!code) { invalid('unknown code'); return; }
      if (code.used) { invalid('code already used'); return; }
      code.used = true;
      if (Date.now() - code.created > 120000) { invalid('code expired'); return; }
      if (code.clientId !== auth.id) { invalid('code issued to another client'); return; }
      if (form.get('redirect_uri') !== code.redirectUri) { invalid('redirect_uri mismatch'); return; }
      const verifier = form.get('code_verifier') || '';
      if (createHash('sha256').update(verifier).digest('base64url') !== code.challenge) {
        invalid('code_verifier does not match code_challenge');
        return;
      }
      if (mode === 'token-error') { invalid('the provider refuses this code'); return; }
      s.stats.codes_redeemed += 1;
      const { token, claims } = idToken(mode, issuer, code, s);
      const accessToken = b64u(randomBytes(24));
      s.tokens.set(accessToken, claims);
      const body = {
        access_token: accessToken, token_type: 'Bearer', expires_in: 600, scope: 'openid email profile', id_token: token,
      };
      if (mode === 'huge-token') {
        const head = JSON.stringify(body).slice(0, -1);
        streamHuge(res, `${head},"padding":"`, () => 'x'.repeat(65536), '"}\n', HUGE);
        return;
      }
      sendJson(res, 200, body);
      return;
    }
    case 'GET userinfo': {
      s.stats.userinfo += 1;
      const h = req.headers.authorization || '';
      const claims = /^Bearer /i.test(h) && s.tokens.get(h.slice(7).trim());
      if (!claims) {
        sendJson(res, 401, { error: 'invalid_token' }, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
        return;
      }
      const { sub, email, email_verified: ev, preferred_username: pu, name } = claims;
      sendJson(res, 200, { sub, email, email_verified: ev, preferred_username: pu, name });
      return;
    }
    case 'GET stats':
      sendJson(res, 200, { issuer, mode, rotated: s.rotated, ...s.stats });
      return;
    case 'POST reset':
      s.codes.clear();
      s.tokens.clear();
      s.rotated = false;
      resetStats(s);
      sendJson(res, 200, { issuer, reset: true });
      return;
    case 'POST rotate':
      if (mode !== 'rotating') { sendText(res, 404, 'only the rotating mode rotates'); return; }
      s.rotated = true;
      sendJson(res, 200, { issuer, rotated: true, kid: K2.kid });
      return;
    default:
      sendText(res, 404, `no ${req.method} ${endpoint} at ${issuer}`);
  }
}

async function main() {
  const server = http.createServer((req, res) => {
    logRequests(NAME, req, res);
    handle(req, res).catch((err) => {
      log(NAME, 'error', err.stack || err);
      if (!res.headersSent) sendText(res, 500, err.message);
      else res.destroy();
    });
  });
  server.requestTimeout = 0; // the hanging modes hang as long as asked
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(opts.port), '127.0.0.1', resolve);
  });
  const { port } = server.address();
  base = `http://127.0.0.1:${port}`;

  const sockets = new Set();
  server.on('connection', (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  const exit = () => {
    server.close();
    for (const sock of sockets) sock.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);

  if (opts['pid-file']) writeFileAtomic(opts['pid-file'], `${process.pid}\n`);
  if (opts['port-file']) writeFileAtomic(opts['port-file'], `${port}\n`);
  watchdog(NAME, opts['pid-file'], opts['max-seconds'], exit);
  log(NAME, `base ${base} (issuers ${base}/MODE), client ${opts['client-id']}, pid ${process.pid}`);
}

main().catch((err) => {
  log(NAME, 'failed to start:', err.stack || err);
  process.exit(1);
});
