// Drive headless Chromium over the DevTools protocol (a pipe, no extra packages) on one page of
// `rulecast coverage --format html`, and report what a user sees, as JSON on stdout:
//   node tests/browser/check.js PAGE.html SCREENSHOT.png
// - errors:   console errors, uncaught exceptions, log entries of level error
// - requests: every request other than the page itself (a self-contained page makes none)
// - matrices: per matrix table, key -> platform -> the cell's visible text
// - summary:  platform -> the summary row's visible figures
// - filtered: visible rows of the action matrix after typing FILTER (argv[4]) in the filter box
// - gaps:     visible rows of the technique matrix with "gaps only" checked
// - detail:   the drill-down text after clicking the first non-empty cell of the action matrix
// The screenshot (PNG) is taken with no filter set.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const page = path.resolve(process.argv[2]);
const shot = process.argv[3];
const filterText = process.argv[4] || 'DeleteTrail';
const chrome = process.env.CHROMIUM || 'chromium';
const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rulecast-chromium-'));
const proc = spawn(chrome, [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
  '--disable-extensions', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--metrics-recording-only', '--remote-debugging-pipe',
  `--user-data-dir=${userDir}`, '--window-size=1400,1000', 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
let stderr = '';
proc.stderr.on('data', (d) => { stderr += d; });
const toChrome = proc.stdio[3];
const fromChrome = proc.stdio[4];

let next = 0;
const pending = new Map();
const listeners = [];
let buf = '';
fromChrome.on('data', (d) => {
  buf += d.toString('utf8');
  let i;
  while ((i = buf.indexOf('\0')) >= 0) {
    const msg = JSON.parse(buf.slice(0, i));
    buf = buf.slice(i + 1);
    if (msg.id !== undefined && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(JSON.stringify(msg.error))); else resolve(msg.result);
    } else if (msg.method) {
      listeners.forEach((l) => l(msg));
    }
  }
});
function send(method, params, sessionId) {
  const id = ++next;
  const m = { id, method, params: params || {} };
  if (sessionId) m.sessionId = sessionId;
  toChrome.write(JSON.stringify(m) + '\0');
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}
function once(method) {
  return new Promise((resolve) => listeners.push((m) => { if (m.method === method) resolve(m.params); }));
}

async function main() {
  const url = 'file://' + page;
  const errors = [];
  const requests = [];
  listeners.push((m) => {
    const p = m.params;
    if (m.method === 'Runtime.consoleAPICalled' && (p.type === 'error' || p.type === 'assert')) errors.push('console: ' + p.args.map((a) => a.value || a.description).join(' '));
    if (m.method === 'Runtime.exceptionThrown') errors.push('exception: ' + (p.exceptionDetails.exception ? p.exceptionDetails.exception.description : p.exceptionDetails.text));
    if (m.method === 'Log.entryAdded' && p.entry.level === 'error') errors.push('log: ' + p.entry.text);
    if (m.method === 'Network.requestWillBeSent' && p.request.url !== url) requests.push(p.request.url);
  });
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  for (const d of ['Runtime.enable', 'Log.enable', 'Network.enable', 'Page.enable']) await send(d, {}, sessionId);
  const loaded = once('Page.loadEventFired');
  await send('Page.navigate', { url }, sessionId);
  await loaded;
  const evaluate = async (expr) => {
    const r = await send('Runtime.evaluate', { expression: expr, returnByValue: true, awaitPromise: true }, sessionId);
    if (r.exceptionDetails) throw new Error('evaluate: ' + JSON.stringify(r.exceptionDetails));
    return r.result.value;
  };
  const report = await evaluate(`(() => {
    const visible = (el) => el.offsetParent !== null;
    const matrices = {};
    document.querySelectorAll('table.matrix').forEach((t) => {
      const platforms = Array.from(t.tHead.rows[0].cells).slice(1).map((c) => c.textContent);
      const rows = {};
      Array.from(t.tBodies[0].rows).forEach((r) => {
        const o = {};
        platforms.forEach((p, i) => { o[p] = r.cells[i + 1].textContent; });
        rows[r.getAttribute('data-key')] = o;
      });
      matrices[t.id] = rows;
    });
    const summary = {};
    document.querySelectorAll('#summary tbody tr').forEach((r) => {
      summary[r.cells[0].textContent] = Array.from(r.cells).slice(1).map((c) => +c.textContent);
    });
    const box = document.getElementById('filter');
    box.value = ${JSON.stringify(filterText)};
    box.dispatchEvent(new Event('input'));
    const filtered = Array.from(document.querySelectorAll('#actions tbody tr')).filter(visible).map((r) => r.getAttribute('data-key'));
    box.value = '';
    box.dispatchEvent(new Event('input'));
    const gapsBox = document.getElementById('gaps');
    gapsBox.checked = true;
    gapsBox.dispatchEvent(new Event('change'));
    const gaps = Array.from(document.querySelectorAll('#techniques tbody tr')).filter(visible).map((r) => r.getAttribute('data-key'));
    gapsBox.checked = false;
    gapsBox.dispatchEvent(new Event('change'));
    const cell = Array.from(document.querySelectorAll('#actions td[data-count]')).find((c) => c.getAttribute('data-count') !== '0');
    if (cell) cell.click();
    const detail = document.getElementById('detail').textContent;
    return { matrices, summary, filtered, gaps, detail, clicked: cell ? [cell.parentNode.getAttribute('data-key'), cell.getAttribute('data-platform')] : null };
  })()`);
  const png = await send('Page.captureScreenshot', { format: 'png' }, sessionId);
  fs.writeFileSync(shot, Buffer.from(png.data, 'base64'));
  report.errors = errors;
  report.requests = requests;
  process.stdout.write(JSON.stringify(report) + '\n');
}

const timer = setTimeout(() => { process.stderr.write('check.js: timed out\n' + stderr); proc.kill('SIGKILL'); process.exit(2); }, 60000);
main().then(() => {
  clearTimeout(timer);
  proc.on('exit', () => {
    try { fs.rmSync(userDir, { recursive: true, force: true, maxRetries: 3 }); } catch (e) { /* a temp folder left behind */ }
  });
  proc.kill('SIGTERM');
}).catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n' + stderr);
  proc.kill('SIGKILL');
  process.exit(1);
});
