// An admin logs in through the page and downloads a database backup that opens in sqlite3.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApi, ADMIN } from '../lib/server.mjs';
import { launchBrowser, VIEWPORTS, screenshot } from '../lib/browser.mjs';

let api, browser;
before(async () => { api = await startApi(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await api?.stop(); });

test('an admin logs in and downloads a backup that opens in sqlite3', async (t) => {
  const probe = await fetch(`${api.base}/api/admin/backup/db`);
  if (probe.status === 404) {
    t.skip('GET /api/admin/backup/db answers 404: the admin API (issue 5) is not on this server yet');
    return;
  }
  assert.equal(probe.status, 401, 'the backup route refuses a request without a token');

  const ctx = await browser.newContext({ viewport: VIEWPORTS.desktop, locale: 'en-US', acceptDownloads: true });
  const page = await ctx.newPage();
  await page.goto(`${api.base}/login?next=/admin`);
  await page.getByLabel('E-mail').fill(ADMIN.email);
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.waitForURL(/\/admin$/);
  const backup = page.getByRole('button', { name: /Backup DB/ });
  await backup.waitFor({ state: 'visible' });
  await screenshot(page, 'admin', 'desktop');

  const [download] = await Promise.all([page.waitForEvent('download'), backup.click()]);
  assert.match(download.suggestedFilename(), /^magic_master_backup_\d{8}_\d{6}\.sqlite3$/);
  const dir = mkdtempSync(join(tmpdir(), 'mm-backup-'));
  try {
    const file = join(dir, download.suggestedFilename());
    copyFileSync(await download.path(), file);
    assert.equal(readFileSync(file).subarray(0, 16).toString('latin1'), 'SQLite format 3\0');
    assert.equal(execFileSync('sqlite3', [file, 'PRAGMA integrity_check;'], { encoding: 'utf8' }).trim(), 'ok');
    const tables = execFileSync('sqlite3', [file, "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name;"], { encoding: 'utf8' });
    assert.match(tables, /users/, `the snapshot holds the users table:\n${tables}`);
    const admins = execFileSync('sqlite3', [file, `SELECT count(*) FROM users WHERE email='${ADMIN.email}';`], { encoding: 'utf8' }).trim();
    assert.equal(admins, '1', 'the admin account is in the snapshot');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(await page.locator('#admin-msg').innerText(), /Backup saved/);
  await ctx.close();
});
