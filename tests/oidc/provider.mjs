// A real OpenID Provider for the tests: oidc-provider (the certified
// Node.js implementation) on 127.0.0.1, with fixed test users and a login
// that a program completes with one form POST (README.md beside this file).
//
//   node provider.mjs [--port 0] [--port-file FILE] [--pid-file FILE]
//                     [--clients clients.json] [--max-seconds 10800]
//
// The issuer is http://127.0.0.1:PORT. With --port 0 the kernel picks a free
// port; it is written to --port-file once the provider answers.
import * as http from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';
// Its in-memory adapter, over a store without its 1000-entry cap (a whole
// test run's sessions, codes and grants fit; entries expire by TTL).
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

import {
  htmlEscape, log, logRequests, parseArgs, readBody, watchdog, writeFileAtomic,
} from './common.mjs';
import { ACCOUNTS } from './accounts.mjs';

const NAME = 'oidc-provider';

const opts = parseArgs(process.argv.slice(2), {
  port: '0',
  'port-file': '',
  'pid-file': '',
  clients: '',
  'max-seconds': '10800',
});

const BY_SUB = new Map(Object.values(ACCOUNTS).map((a) => [a.sub, a]));

// Two clients by default, for client_secret_basic and client_secret_post;
// the fixture passes its own file (with random secrets and more clients).
function loadClients() {
  if (!opts.clients) {
    return [
      {
        client_id: 'guestuser-basic', client_secret: 'basic-secret',
        redirect_uris: ['http://127.0.0.1/*', 'http://localhost/*'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: 'guestuser-post', client_secret: 'post-secret',
        redirect_uris: ['http://127.0.0.1/*', 'http://localhost/*'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ];
  }
  return JSON.parse(readFileSync(opts.clients, 'utf8'));
}

// Signing keys made at start: RSA (RS256, PS256) and P-256 (ES256). The
// clients' id_token_signed_response_alg picks one (RS256 by default).
function makeKeys() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const stamp = randomBytes(4).toString('hex');
  return [
    { ...rsa, kid: `rsa-${stamp}`, use: 'sig' },
    { ...ec, kid: `ec-${stamp}`, use: 'sig' },
  ];
}

class TtlStore {
  #m = new Map();

  constructor() {
    setInterval(() => {
      const now = Date.now();
      for (const [k, e] of this.#m) if (e.exp <= now) this.#m.delete(k);
    }, 60000).unref();
  }

  get(key) {
    const e = this.#m.get(key);
    if (!e) return undefined;
    if (e.exp <= Date.now()) {
      this.#m.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key, value, options) {
    const exp = options?.maxAge !== undefined ? Date.now() + options.maxAge : Infinity;
    this.#m.set(key, { value, exp });
  }

  delete(key) {
    this.#m.delete(key);
  }
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

// A registered redirect URI matches as oidc-provider matches it (exactly),
// and also:
//  - on a loopback host registered without a port, any port matches (the
//    tests' servers listen on free ports; RFC 8252 7.3 does the same);
//  - a registered path ending in `*` matches any path starting with what
//    comes before it (query allowed, never a fragment).
// http://127.0.0.1/* therefore takes every callback on 127.0.0.1.
function redirectMatches(registered, value) {
  let r;
  let v;
  try {
    r = new URL(registered);
    v = new URL(value);
  } catch {
    return false;
  }
  if (v.hash || value.includes('#')) return false;
  if (r.protocol !== v.protocol || r.hostname !== v.hostname) return false;
  if (!(r.port === '' && LOOPBACK.has(r.hostname)) && r.port !== v.port) return false;
  if (r.pathname.endsWith('*')) {
    return v.pathname.startsWith(r.pathname.slice(0, -1));
  }
  return r.pathname === v.pathname && r.search === v.search;
}

function page(title, body) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${htmlEscape(title)}</title></head>
<body><h1>${htmlEscape(title)}</h1>${body}</body></html>\n`;
}

function send(res, status, type, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

function loginPage(uid, clientId, error) {
  const users = Object.keys(ACCOUNTS).map((u) => `<li><code>${u}</code></li>`).join('');
  return page('Sign in to the test provider', `
<p>Client <code>${htmlEscape(clientId)}</code> asks you to sign in.</p>
${error ? `<p role="alert" class="error">${htmlEscape(error)}</p>` : ''}
<form method="post" action="/interaction/${htmlEscape(uid)}/login">
  <label for="login">Test user</label>
  <input id="login" name="login" autocomplete="off" autofocus required>
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${htmlEscape(uid)}/abort">
  <button type="submit">Cancel</button>
</form>
<p>Test users (no password):</p><ul>${users}</ul>`);
}

async function main() {
  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(opts.port), '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const clients = loadClients();

  const store = new TtlStore();
  const provider = new Provider(issuer, {
    adapter: (model) => new MemoryAdapter(model, store),
    clients,
    jwks: { keys: makeKeys() },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    // PKCE for every client (oidc-provider accepts only S256).
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['preferred_username', 'name'],
    },
    // The scopes' claims go into the ID token too, not only to userinfo.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
    },
    interactions: {
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 120,
      ClientCredentials: 600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
      IdToken: 3600,
      Interaction: 900,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 86400,
    },
    async findAccount(ctx, sub) {
      const account = BY_SUB.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { ...account };
        },
      };
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Provider error', Object.entries(out)
        .map(([k, v]) => `<p><strong>${htmlEscape(k)}</strong>: ${htmlEscape(v)}</p>`).join(''));
    },
  });
  provider.on('server_error', (ctx, err) => log(NAME, 'server_error', err.stack || err));
  for (const ev of ['authorization.error', 'grant.error', 'userinfo.error']) {
    provider.on(ev, (ctx, err) => log(NAME, ev, err.message, err.error_description || '', err.error_detail || '', err.cause ? `(${err.cause.message || err.cause})` : ''));
  }

  const Client = provider.Client;
  const original = Client.prototype.redirectUriAllowed;
  Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
    return original.call(this, value) || this.redirectUris.some((r) => redirectMatches(r, value));
  };

  // Login and consent in one POST: login=NAME finishes the interaction with
  // that user logged in and every requested scope granted.
  async function interaction(req, res, uid, action) {
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch (err) {
      send(res, 400, 'text/html; charset=utf-8',
        page('No such sign-in', `<p>${htmlEscape(err.message)} (expired, or no _interaction cookie for ${htmlEscape(uid)})</p>`));
      return;
    }
    if (details.uid !== uid) {
      send(res, 400, 'text/html; charset=utf-8', page('No such sign-in', '<p>interaction mismatch</p>'));
      return;
    }
    const { params } = details;
    if (action === 'show') {
      send(res, 200, 'text/html; charset=utf-8', loginPage(uid, params.client_id));
      return;
    }
    if (action === 'abort') {
      await provider.interactionFinished(req, res, {
        error: 'access_denied', error_description: 'End-User aborted interaction',
      }, { mergeWithLastSubmission: false });
      return;
    }
    const form = new URLSearchParams(await readBody(req));
    const login = (form.get('login') || '').trim();
    const account = ACCOUNTS[login];
    if (!account) {
      send(res, 400, 'text/html; charset=utf-8', loginPage(uid, params.client_id, `no test user "${login}"`));
      return;
    }
    const grant = new provider.Grant({ accountId: account.sub, clientId: params.client_id });
    grant.addOIDCScope(String(params.scope || 'openid'));
    if (params.claims) {
      const claims = typeof params.claims === 'string' ? JSON.parse(params.claims) : params.claims;
      grant.addOIDCClaims([...Object.keys(claims.id_token || {}), ...Object.keys(claims.userinfo || {})]);
    }
    const grantId = await grant.save();
    log(NAME, `interaction ${uid}: ${login} (sub ${account.sub}) signed in for ${params.client_id}`);
    await provider.interactionFinished(req, res, {
      login: { accountId: account.sub },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
  }

  const callback = provider.callback();
  server.on('request', (req, res) => {
    logRequests(NAME, req, res);
    const path = req.url.split('?')[0];
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?$/.exec(path);
    if (m) {
      const action = m[2] || 'show';
      const allowed = action === 'show' ? req.method === 'GET' : req.method === 'POST';
      if (!allowed) {
        send(res, 405, 'text/plain', 'method not allowed\n');
        return;
      }
      interaction(req, res, m[1], action).catch((err) => {
        log(NAME, 'interaction error', err.stack || err);
        if (!res.headersSent) send(res, 500, 'text/plain', `${err.message}\n`);
      });
      return;
    }
    callback(req, res);
  });

  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const exit = () => {
    server.close();
    for (const s of sockets) s.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);

  if (opts['pid-file']) writeFileAtomic(opts['pid-file'], `${process.pid}\n`);
  if (opts['port-file']) writeFileAtomic(opts['port-file'], `${port}\n`);
  watchdog(NAME, opts['pid-file'], opts['max-seconds'], exit);
  log(NAME, `issuer ${issuer}, clients ${clients.map((c) => c.client_id).join(', ')}, pid ${process.pid}`);
}

main().catch((err) => {
  log(NAME, 'failed to start:', err.stack || err);
  process.exit(1);
});
