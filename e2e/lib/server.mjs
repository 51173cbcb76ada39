// Starts the real API binary on a free port with a temporary data directory.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const E2E_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const API_BIN = resolve(E2E_DIR, process.env.MAGIC_MASTER_API_BIN || '../target/release/magic-master-api');

export const ADMIN = { email: 'admin@e2e.example', password: 'e2e-admin-password-1' };

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}

/**
 * Starts magic-master-api with one embedded worker and waits until /api/health answers.
 * `extraEnv` is an object of variables, or a function of the chosen port returning one (for
 * settings that name the server's own URL). Returns {base, port, dataDir, logPath, log(), stop()}.
 * Throws with the server's log when it does not come up.
 */
export async function startApi(extraEnv = {}) {
  if (!existsSync(API_BIN)) {
    throw new Error(`API binary not found at ${API_BIN}: build it with \`cargo build --release -p magic-master-api\` or set MAGIC_MASTER_API_BIN`);
  }
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'mm-e2e-data-'));
  const logPath = join(dataDir, 'api.log');
  const log = openSync(logPath, 'a');
  const env = {
    ...process.env,
    MAGIC_MASTER_HOST: '127.0.0.1',
    MAGIC_MASTER_PORT: String(port),
    MAGIC_MASTER_DATA_DIR: dataDir,
    MAGIC_MASTER_EMBEDDED_WORKERS: '1',
    MAGIC_MASTER_GUEST_DAILY_LIMIT: '1000',
    MAGIC_MASTER_GLOBAL_RATE_LIMIT: '100000',
    // Random, as `openssl rand -hex 32` makes one: the API refuses weak secrets.
    MAGIC_MASTER_JWT_SECRET: randomBytes(32).toString('hex'),
    MAGIC_MASTER_ADMIN_EMAIL: ADMIN.email,
    MAGIC_MASTER_ADMIN_PASSWORD: ADMIN.password,
    ...(typeof extraEnv === 'function' ? extraEnv(port) : extraEnv),
  };
  const child = spawn(API_BIN, [], { env, stdio: ['ignore', log, log], cwd: dataDir });
  let exited = null;
  child.on('exit', (code, sig) => { exited = { code, sig }; });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) break;
    try {
      const r = await fetch(`${base}/api/health`);
      if (r.status < 500 || r.status === 503) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (exited || Date.now() > deadline) {
    child.kill('SIGKILL');
    closeSync(log);
    const text = readFileSync(logPath, 'utf8').slice(-4000);
    rmSync(dataDir, { recursive: true, force: true });
    throw new Error(`API did not start (${exited ? `exited ${JSON.stringify(exited)}` : 'timeout'}). Log tail:\n${text}`);
  }
  return {
    base, port, dataDir, logPath,
    /** The API's log so far (for assertion messages). */
    log: () => readFileSync(logPath, 'utf8'),
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const t0 = Date.now();
        while (!exited && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 100));
        if (!exited) child.kill('SIGKILL');
      }
      closeSync(log);
      if (!process.env.E2E_KEEP_DATA) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
