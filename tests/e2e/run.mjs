// Runs the browser journeys (journeys.test.mjs) with node's test runner, or
// exits 77, which ctest reports as skipped, saying what is missing.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const SKIP = 77;
const here = path.dirname(fileURLToPath(import.meta.url));
const chromium = process.env.E2E_CHROMIUM || '/usr/bin/chromium';

function skip(why) {
  console.log(`SKIPPED: ${why}`);
  process.exit(SKIP);
}

if (Number(process.versions.node.split('.')[0]) < 20)
  skip(`node ${process.versions.node} is too old for playwright-core (20 or later)`);
if (!existsSync(chromium))
  skip(`${chromium} not found: install the Debian package chromium (scripts/deps.sh does)`);
try {
  createRequire(path.join(here, 'package.json')).resolve('playwright-core');
} catch {
  skip(`${path.join(here, 'node_modules', 'playwright-core')} not found: ` +
       'run `npm ci --prefix tests/e2e` (scripts/test.sh does)');
}

const r = spawnSync(process.execPath,
                    ['--test', '--test-reporter=spec', path.join(here, 'journeys.test.mjs')],
                    { stdio: 'inherit' });
process.exit(r.status ?? 1);
