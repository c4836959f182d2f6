// The demo's notes application in a real browser: headless Debian Chromium
// driven by playwright-core, against the real guestuser-demo binary on the
// ctest fixture's PostgreSQL, once per server (--server mhd|civetweb|ulfius|evhttp).
// Every journey runs in its own browser with a fresh profile; every page
// visited is saved as a PNG under E2E_RESULTS.
//
// Environment (tests/CMakeLists.txt sets it): GUESTUSER_DEMO (the demo
// binary), GUESTUSER_TOOL (the guestuser tool), GUESTUSER_TEST_CONNINFO_FILE,
// E2E_SERVERS ("mhd civetweb"), E2E_RESULTS (screenshot folder), OIDC_ENV_FILE
// (the `oidc` fixture's env file, tests/oidc/README.md: the demo runs with
// --oidc op,OIDC_ISSUER,OIDC_CLIENT_ID,OIDC_CLIENT_SECRET_FILE; without it
// journey d is skipped), SMTP_ENV_FILE (the `smtp` fixture's env file,
// tests/smtp/README.md: journey e's demo sends through SMTP_URL and the
// journey reads the mail the fixture saved under SMTP_DIR; without it
// journey e is skipped).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (ctest sets it: tests/CMakeLists.txt)`);
  return v;
}

const DEMO = required('GUESTUSER_DEMO');
const TOOL = required('GUESTUSER_TOOL');
const CONNINFO = readFileSync(required('GUESTUSER_TEST_CONNINFO_FILE'), 'utf8').trim();
const SERVERS = (process.env.E2E_SERVERS || 'mhd').split(/[\s;,]+/).filter(Boolean);
const RESULTS = process.env.E2E_RESULTS || path.join(here, 'test-results');
const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
// Required on this closed network: without the background-networking ones
// Chromium keeps trying to reach Google's hosts.
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
               '--no-first-run', '--disable-background-networking',
               '--disable-component-update', '--disable-sync'];
const PASSWORD = 'Quartz-Lantern-58';

// The oidc fixture's KEY=VALUE lines (the value: everything after the
// first '='), or null when ctest did not say where they are.
function oidcEnv() {
  const file = process.env.OIDC_ENV_FILE;
  if (!file) return null;
  const env = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  for (const key of ['OIDC_ISSUER', 'OIDC_CLIENT_ID', 'OIDC_CLIENT_SECRET_FILE'])
    if (!env[key]) throw new Error(`${key} missing from ${file}: is the oidc fixture running?`);
  return env;
}
const OIDC = oidcEnv();

// The smtp fixture's KEY=VALUE lines, or null without SMTP_ENV_FILE.
function smtpEnv() {
  const file = process.env.SMTP_ENV_FILE;
  if (!file) return null;
  const env = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  for (const key of ['SMTP_URL', 'SMTP_DIR'])
    if (!env[key]) throw new Error(`${key} missing from ${file}: is the smtp fixture running?`);
  return env;
}
const SMTP = smtpEnv();
const INSPECT = path.join(here, '..', 'smtp', 'smtp-inspect.py');

// A loopback port free now (the links in the mails need it before the
// demo listens).
async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

// Waits for the first mail the smtp fixture saved for RCPT; its decoded
// FIELD (tests/smtp/smtp-inspect.py).
async function receivedMail(rcpt, field) {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    for (const name of readdirSync(SMTP.SMTP_DIR).filter((n) => n.endsWith('.envelope'))) {
      const env = readFileSync(path.join(SMTP.SMTP_DIR, name), 'utf8');
      const m = env.match(/^RCPT_TO=(.*)$/m);
      const eml = path.join(SMTP.SMTP_DIR, name.replace(/\.envelope$/, '.eml'));
      if (m && m[1].split(',').includes(rcpt) && existsSync(eml))
        return execFileSync('python3', [INSPECT, eml, field], { encoding: 'utf8' });
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no mail to ${rcpt} reached the smtp fixture within 30 s`);
}
const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';

// Only this run's pictures: a failed run leaves no older ones to mislead.
rmSync(RESULTS, { recursive: true, force: true });
mkdirSync(RESULTS, { recursive: true });

// One SQL script through psql; psql variables (:'name') carry the values.
function sql(script, vars = {}) {
  const args = [CONNINFO, '-XAtq', '-v', 'ON_ERROR_STOP=1'];
  for (const [k, v] of Object.entries(vars)) args.push('-v', `${k}=${v}`);
  return execFileSync('psql', [...args, '-f', '-'], { input: script, encoding: 'utf8' }).trim();
}

function guestuserTool(schema, ...args) {
  return execFileSync(TOOL, ['--db', CONNINFO, '--schema', schema, ...args],
                      { encoding: 'utf8' });
}

function userCount(schema) {
  const m = guestuserTool(schema, 'stats').match(/^users: (\d+)$/m);
  assert.ok(m, 'guestuser stats printed no users line');
  return Number(m[1]);
}

function notesOf(schema, userId) {
  return Number(sql(`SELECT count(*) FROM ${schema}_demo.notes WHERE user_id = :'uid';`,
                    { uid: userId }));
}

// Starts guestuser-demo on a free port with its own, emptied schemas.
async function startDemo(server, schema, extra = [], port = 0) {
  sql(`SET client_min_messages = warning;
       DROP SCHEMA IF EXISTS ${schema}_demo CASCADE; DROP SCHEMA IF EXISTS ${schema} CASCADE;`);
  // "Continue with op": the fixture's real OpenID Provider (oidc-provider).
  const oidc = OIDC ? ['--oidc', `op,${OIDC.OIDC_ISSUER},${OIDC.OIDC_CLIENT_ID},` +
                                 OIDC.OIDC_CLIENT_SECRET_FILE] : [];
  const proc = spawn(DEMO, ['--server', server, '--port', String(port), '--db', CONNINFO,
                            '--schema', schema, ...oidc, ...extra],
                     { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`demo did not start:\n${log}`)), 20000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`demo exited with status ${code}:\n${log}`));
    });
  });
  return { proc, url, log: () => log };
}

// SIGTERM, and the demo must exit cleanly.
async function stopDemo(demo) {
  if (!demo || demo.proc.exitCode !== null) return;
  const exited = once(demo.proc, 'exit');
  demo.proc.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0, `demo exit status after SIGTERM:\n${demo.log()}`);
}

// A browser of its own with a fresh profile for one journey.
async function browse(name, options = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'guestuser-e2e-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, ...options,
  });
  context.setDefaultTimeout(20000);
  const page = context.pages()[0] ?? await context.newPage();
  let n = 0;
  return {
    context,
    page,
    // Saves the page as NAME-NN-LABEL.png.
    async shot(label) {
      n += 1;
      const file = `${name}-${String(n).padStart(2, '0')}-${label}.png`;
      await page.screenshot({ path: path.join(RESULTS, file), fullPage: true });
    },
    async close() {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// The demo's /whoami, with the browser's cookies.
async function whoami(b, url) {
  const r = await b.context.request.get(`${url}/whoami`);
  assert.equal(r.status(), 200);
  return r.json();
}

async function cookie(b, name) {
  return (await b.context.cookies()).find((c) => c.name === name);
}

async function noteTexts(page) {
  return page.locator('.note p').allTextContents();
}

// Fills the note form and submits it; back on /notes/ afterwards.
async function addNote(page, text) {
  await page.fill('#id_body', text);
  await Promise.all([page.waitForURL(/\/notes\/$/), page.click('button:has-text("Add note")')]);
}

for (const server of SERVERS) {
  describe(`notes demo over ${server}`, () => {
    const schema = `t_e2e_${server}`;
    let demo;
    before(async () => { demo = await startDemo(server, schema); });
    after(async () => { await stopDemo(demo); });

    test('a: a first visit is a guest who writes notes, signs up, logs out and in, and finds them', async () => {
      const b = await browse(`${server}-a-journey`);
      const { page } = b;
      const url = demo.url;
      try {
        await page.goto(`${url}/`);
        await b.shot('home-anonymous');
        assert.equal(await cookie(b, 'sessionid'), undefined, 'the home page made a guest');
        await Promise.all([page.waitForURL(`${url}/notes/`),
                           page.click('main a[href="/notes/"]')]);
        await b.shot('notes-new-guest');

        // a guest at once, told to sign up
        const session = await cookie(b, 'sessionid');
        assert.ok(session, 'no session cookie on the first visit to /notes/');
        assert.equal(session.httpOnly, true);
        const guest = await whoami(b, url);
        assert.equal(guest.authenticated, true);
        assert.equal(guest.guest, true);
        const signUp = page.locator('.callout a', { hasText: 'Sign up and save your work!' });
        assert.equal(await signUp.getAttribute('href'), '/convert/');
        assert.equal(await page.locator('.top .who').textContent(), `Guest ${guest.username}`);
        assert.equal(await page.locator('#no-notes').count(), 1);

        // two notes, shown as text (escaped), newest first
        const first = `Milk <b>& eggs</b> "for ${server}"`;
        const second = `Call <script>alert("x")</script> Ann's bank\nat 10:00`;
        await addNote(page, first);
        await b.shot('notes-one');
        await addNote(page, second);
        await b.shot('notes-two');
        assert.deepEqual(await noteTexts(page), [second, first]);
        assert.equal(await page.locator('.note b, .note script').count(), 0);
        assert.equal(notesOf(schema, guest.id), 2);

        // sign up with a new username and password
        await Promise.all([page.waitForURL(`${url}/convert/`), signUp.click()]);
        await b.shot('convert');
        const username = `e2e_${server}_${Date.now()}`;
        await page.fill('#id_username', username);
        await page.fill('#id_password1', PASSWORD);
        await page.fill('#id_password2', PASSWORD);
        await Promise.all([page.waitForURL(`${url}/convert/success/`),
                           page.click('button:has-text("Sign up")')]);
        await b.shot('convert-success');
        const converted = await whoami(b, url);
        assert.deepEqual(converted, { authenticated: true, guest: false, id: guest.id,
                                      username });

        // the same notes, no more guest call-out
        await Promise.all([page.waitForURL(`${url}/`), page.click('a:has-text("Continue")')]);
        await b.shot('home-registered');
        await Promise.all([page.waitForURL(`${url}/notes/`), page.click('main a[href="/notes/"]')]);
        await b.shot('notes-registered');
        assert.deepEqual(await noteTexts(page), [second, first]);
        assert.equal(await page.locator('.callout').count(), 0);
        assert.equal(await page.locator('.top .who').textContent(), `Signed in as ${username}`);

        // log out: anonymous again, on the home page
        await Promise.all([page.waitForURL(`${url}/`),
                           page.click('.top button:has-text("Log out")')]);
        await b.shot('logged-out');
        assert.equal((await whoami(b, url)).authenticated, false);

        // log back in and find the notes
        await Promise.all([page.waitForURL(`${url}/accounts/login/`),
                           page.click('.top a:has-text("Log in")')]);
        await b.shot('login');
        await page.fill('#id_username', username);
        await page.fill('#id_password', PASSWORD);
        await Promise.all([page.waitForURL(`${url}/accounts/profile/`),
                           page.click('button:has-text("Log in")')]);
        await b.shot('profile');
        assert.equal((await whoami(b, url)).id, guest.id);
        await Promise.all([page.waitForURL(`${url}/notes/`), page.click('.top a[href="/notes/"]')]);
        await b.shot('notes-after-login');
        assert.deepEqual(await noteTexts(page), [second, first]);

        // delete the older note
        const older = page.locator('.note', { hasText: 'Milk' });
        await Promise.all([page.waitForURL(`${url}/notes/`),
                           older.locator('button:has-text("Delete")').click()]);
        await b.shot('notes-after-delete');
        assert.deepEqual(await noteTexts(page), [second]);
        assert.equal(notesOf(schema, guest.id), 1);
      } finally {
        await b.close();
      }
    });

    test('b: a crawler gets no cookie and no user row', async () => {
      const b = await browse(`${server}-b-crawler`, { userAgent: GOOGLEBOT });
      const { page } = b;
      const url = demo.url;
      try {
        const users = userCount(schema);
        for (const [target, label, text] of [
          ['/notes/', 'notes', 'Notes belong to an account.'],
          ['/allow_guest_user/', 'allow-guest-user', 'Hello, !'],
          ['/', 'home', 'Start using the site'],
        ]) {
          const r = await page.goto(`${url}${target}`);
          await b.shot(label);
          assert.equal(r.status(), 200, target);
          assert.equal(await r.headerValue('set-cookie'), null, `${target} set a cookie`);
          assert.ok((await page.locator('body').textContent()).includes(text),
                    `${target} does not say '${text}'`);
        }
        assert.equal(await page.locator('textarea').count(), 0);
        assert.deepEqual(await b.context.cookies(), []);
        assert.equal(userCount(schema), users, 'a crawler made a user');
      } finally {
        await b.close();
      }
    });

    test('c: an expired guest and their notes are gone after guestuser delete-expired', async () => {
      // a phone: the page must lay out at the device's width, no sideways scrolling
      const b = await browse(`${server}-c-expiry`, {
        viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
        deviceScaleFactor: 2,
      });
      const { page } = b;
      const url = demo.url;
      try {
        await page.goto(`${url}/notes/`);
        const guest = await whoami(b, url);
        assert.equal(guest.guest, true);
        await addNote(page, `A long word that must wrap: ${'x'.repeat(300)}`);
        await b.shot('notes-phone');
        const widths = await page.evaluate(() => ({
          layout: document.documentElement.clientWidth,
          content: document.documentElement.scrollWidth,
        }));
        assert.equal(widths.layout, 390, 'no viewport meta: laid out for a desktop');
        assert.ok(widths.content <= widths.layout, `sideways scrolling: ${JSON.stringify(widths)}`);
        assert.equal(notesOf(schema, guest.id), 1);
        const oldSession = (await cookie(b, 'sessionid')).value;

        await new Promise((r) => setTimeout(r, 2100));
        const out = guestuserTool(schema, 'delete-expired', '--max-age', '1');
        assert.match(out, /^deleted: 1$/m, out);

        // gone from the database: user, guest row and (by the cascade) notes
        assert.equal(notesOf(schema, guest.id), 0);
        assert.equal(sql(`SELECT count(*) FROM ${schema}.users WHERE id = :'uid';`,
                         { uid: guest.id }), '0');
        // the browser's session no longer works: anonymous, and /notes/ makes a new guest
        assert.equal((await whoami(b, url)).authenticated, false);
        await page.reload();
        await b.shot('notes-after-cleanup');
        const again = await whoami(b, url);
        assert.equal(again.guest, true);
        assert.notEqual(again.id, guest.id);
        assert.notEqual((await cookie(b, 'sessionid')).value, oldSession);
        assert.equal(await page.locator('.note').count(), 0);
        assert.equal(await page.locator('#no-notes').count(), 1);
      } finally {
        await b.close();
      }
    });

    test('d: a guest continues with an identity provider and keeps the notes; another browser logs into that account', { skip: !OIDC && 'OIDC_ENV_FILE not set (ctest sets it with the oidc fixture)' }, async () => {
      const url = demo.url;
      // At the provider (oidc-provider's interaction page): log in as alice.
      async function atProvider(b, label) {
        const { page } = b;
        await page.waitForURL((u) => u.href.startsWith(`${OIDC.OIDC_ISSUER}/interaction/`));
        await page.waitForSelector('input#login');
        await b.shot(label);
        await page.fill('input#login', 'alice');
        await Promise.all([page.waitForURL(`${url}/accounts/profile/`),
                           page.click('button:has-text("Sign in")')]);
      }

      const a = await browse(`${server}-d-oidc-first`);
      let alice;
      const note = `Written as a guest on ${server}, kept by alice`;
      try {
        const { page } = a;
        await page.goto(`${url}/notes/`);
        const guest = await whoami(a, url);
        assert.equal(guest.guest, true);
        await addNote(page, note);
        await a.shot('notes-guest');

        // the sign-up page offers the provider beside the password form
        await Promise.all([page.waitForURL(`${url}/convert/`),
                           page.click('.top a:has-text("Sign up")')]);
        await a.shot('convert');
        const button = page.locator('button:has-text("Continue with op")');
        assert.equal(await button.count(), 1);
        await button.click();
        await atProvider(a, 'provider-login');
        await a.shot('profile');

        // the same user, no longer a guest, named after the identity
        alice = await whoami(a, url);
        assert.deepEqual(alice, { authenticated: true, guest: false, id: guest.id,
                                  username: 'alice' });
        assert.ok((await page.locator('#identities').textContent()).includes(OIDC.OIDC_ISSUER),
                  'the profile does not list the identity');
        await Promise.all([page.waitForURL(`${url}/notes/`), page.click('.top a[href="/notes/"]')]);
        await a.shot('notes-alice');
        assert.deepEqual(await noteTexts(page), [note]);
        assert.equal(await page.locator('.top .who').textContent(), 'Signed in as alice');
      } finally {
        await a.close();
      }

      // another browser: a guest with a note of their own logs in with alice's identity
      const b = await browse(`${server}-d-oidc-second`);
      try {
        const { page } = b;
        await page.goto(`${url}/notes/`);
        const guest2 = await whoami(b, url);
        assert.equal(guest2.guest, true);
        assert.notEqual(guest2.id, alice.id);
        const note2 = `Written by a second guest on ${server}`;
        await addNote(page, note2);
        await Promise.all([page.waitForURL(`${url}/accounts/login/`),
                           page.click('.top a:has-text("Log in")')]);
        await b.shot('login');
        await page.click('button:has-text("Continue with op")');
        await atProvider(b, 'provider-login');
        assert.deepEqual(await whoami(b, url), alice);
        await Promise.all([page.waitForURL(`${url}/notes/`), page.click('.top a[href="/notes/"]')]);
        await b.shot('notes-alice');
        // alice's note, and the guest's, which moved with them (on_guest_login)
        assert.deepEqual((await noteTexts(page)).sort(), [note, note2].sort());
        assert.equal(notesOf(schema, guest2.id), 0);
        assert.equal(notesOf(schema, alice.id), 2);
      } finally {
        await b.close();
      }
    });

    // The reset link's page sends Referrer-Policy: same-origin: under
    // no-referrer Chromium posts its form with "Origin: null" and the CSRF
    // check refuses it (this journey found that).
    test('e: a user who forgot their password gets a link by mail, sets a new one and logs in with it', {
      skip: !SMTP && 'SMTP_ENV_FILE not set (ctest sets it with the smtp fixture)',
    }, async () => {
      // a demo of its own that sends mail, its links to its own port
      const port = await freePort();
      const mailDemo = await startDemo(server, `${schema}_mail`, [
        '--smtp-url', SMTP.SMTP_URL, '--smtp-starttls', 'off',
        '--mail-from', 'Demo <noreply@example.test>',
        '--public-url', `http://127.0.0.1:${port}`], port);
      const url = mailDemo.url;
      const b = await browse(`${server}-e-reset`);
      const { page } = b;
      const NEW_PASSWORD = 'Copper-Harbour-93';
      try {
        // a registered user with a verified address
        const username = `e2e_reset_${server}_${Date.now()}`;
        const address = `${username}@example.test`;
        await page.goto(`${url}/notes/`);
        await page.goto(`${url}/convert/`);
        await page.fill('#id_username', username);
        await page.fill('#id_password1', PASSWORD);
        await page.fill('#id_password2', PASSWORD);
        await Promise.all([page.waitForURL(`${url}/convert/success/`),
                           page.click('button:has-text("Sign up")')]);
        const user = await whoami(b, url);
        sql(`UPDATE ${schema}_mail.users SET email = :'addr', email_verified_at = now()
             WHERE id = :'uid';`, { addr: address, uid: user.id });
        await Promise.all([page.waitForURL(`${url}/`),
                           page.click('.top button:has-text("Log out")')]);

        // forgot the password: the login page's link, the form, the answer
        await page.goto(`${url}/accounts/login/`);
        await Promise.all([page.waitForURL(`${url}/accounts/password/reset/`),
                           page.click('a[href="/accounts/password/reset/"]')]);
        await b.shot('reset-form');
        await page.fill('#id_email', address);
        await Promise.all([page.waitForNavigation(),
                           page.click('button:has-text("Reset my password")')]);
        await b.shot('reset-sent');
        assert.match(await page.content(), /a link/);

        // the link from the mail as the SMTP server received it
        const text = await receivedMail(address, 'text');
        const link = text.match(new RegExp(`http://127\\.0\\.0\\.1:${port}/accounts/password/reset/\\S+`));
        assert.ok(link, `no reset link in the mail:\n${text}`);
        await page.goto(link[0]);
        await b.shot('reset-link');
        await page.fill('#id_new_password1', NEW_PASSWORD);
        await page.fill('#id_new_password2', NEW_PASSWORD);
        await Promise.all([page.waitForNavigation(),
                           page.click('button:has-text("Set my password")')]);
        await b.shot('reset-done');
        assert.match(await page.content(), /Your password was set/);

        // the old password is refused, the new one logs in
        await page.goto(`${url}/accounts/login/`);
        await page.fill('#id_username', username);
        await page.fill('#id_password', PASSWORD);
        await Promise.all([page.waitForNavigation(),
                           page.click('button:has-text("Log in")')]);
        assert.notEqual((await whoami(b, url)).id, user.id);
        await page.goto(`${url}/accounts/login/`);
        await page.fill('#id_username', username);
        await page.fill('#id_password', NEW_PASSWORD);
        await Promise.all([page.waitForURL(`${url}/accounts/profile/`),
                           page.click('button:has-text("Log in")')]);
        await b.shot('logged-in-new-password');
        const me = await whoami(b, url);
        assert.equal(me.authenticated, true);
        assert.equal(me.id, user.id);
      } finally {
        await b.close();
        await stopDemo(mailDemo);
      }
    });
  });
}
