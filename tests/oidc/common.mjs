// Shared by provider.mjs and hostile.mjs: command-line options, the files
// the fixture reads (port, pid), request logging, and a watchdog that ends
// a server the fixture has forgotten.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

// --name value pairs; every option must be known.
export function parseArgs(argv, known) {
  const opts = {};
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m || !(m[1] in known)) {
      throw new Error(`unknown argument ${arg}; options: ${Object.keys(known).map((k) => `--${k}`).join(' ')}`);
    }
    let value = m[2];
    if (value === undefined) {
      i += 1;
      if (i >= argv.length) throw new Error(`--${m[1]} needs a value`);
      value = argv[i];
    }
    opts[m[1]] = value;
  }
  return { ...known, ...opts };
}

// Written whole or not at all: the fixture polls for these files.
export function writeFileAtomic(path, text) {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export function log(name, ...parts) {
  process.stderr.write(`${new Date().toISOString()} ${name}: ${parts.join(' ')}\n`);
}

// One line per request, when its answer is finished (or abandoned).
export function logRequests(name, req, res) {
  const started = Date.now();
  let done = false;
  const line = (what) => {
    if (done) return;
    done = true;
    log(name, req.method, req.url, what, `${Date.now() - started}ms`);
  };
  res.on('finish', () => line(String(res.statusCode)));
  res.on('close', () => line(res.writableFinished ? String(res.statusCode) : 'closed before the answer ended'));
}

// The server exits when its pid file no longer names it (the fixture
// stopped it, started another, or the build tree is gone) and after
// max-seconds in any case, so an interrupted ctest leaves no node behind
// for long.
export function watchdog(name, pidFile, maxSeconds, onExit) {
  const deadline = Date.now() + Number(maxSeconds) * 1000;
  const timer = setInterval(() => {
    let mine = true;
    if (pidFile) {
      try {
        mine = readFileSync(pidFile, 'utf8').trim() === String(process.pid);
      } catch {
        mine = false;
      }
    }
    if (!mine || Date.now() > deadline) {
      log(name, mine ? `exiting after ${maxSeconds}s (max-seconds)` : `exiting: ${pidFile} no longer names this process`);
      onExit();
    }
  }, 2000);
  timer.unref();
}

export function readBody(req, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function htmlEscape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
