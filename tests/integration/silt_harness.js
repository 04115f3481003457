// silt_harness.js - start/stop a silt server for the node tests (kafkajs and
// @aws-sdk/client-s3; s3_harness.js builds on this). Same behaviour as
// harness.py: free 127.0.0.1 ports for both listeners, fresh data dir,
// optional key=value config, bounded wait for the listener the test uses,
// stderr to a log file printed on failure, server killed at exit.
'use strict';

const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const SILT_BIN = process.env.SILT_BIN || path.join(ROOT, 'build', 'silt');
const START_TIMEOUT_MS = 1000 * Number(process.env.SILT_START_TIMEOUT || 10);

const servers = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.setTimeout(300, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One `silt server` process. Subclasses say which listener start() waits
// for (waitPort).
class Server {
  constructor(config, prefix = 'silt-it-js-') {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.dataDir = path.join(this.tmp, 'data');
    this.logPath = path.join(this.tmp, 'silt.stderr.log');
    this.configPath = null;
    if (config) {
      this.configPath = path.join(this.tmp, 'silt.conf');
      fs.writeFileSync(this.configPath,
        Object.entries(config).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
    }
    this.proc = null;
    this.kafkaPort = null;
    this.s3Port = null;
    servers.push(this);
  }

  get waitPort() { return this.kafkaPort; }

  async start() {
    if (!fs.existsSync(SILT_BIN)) throw new Error(`no executable ${SILT_BIN} (run make build/silt)`);
    if (!this.kafkaPort) {
      this.kafkaPort = await freePort();
      this.s3Port = await freePort();
    }
    fs.mkdirSync(this.dataDir, { recursive: true });
    const args = ['server', '--data-dir', this.dataDir, '--kafka-addr', `127.0.0.1:${this.kafkaPort}`,
      '--s3-addr', `127.0.0.1:${this.s3Port}`];
    if (this.configPath) args.push('--config', this.configPath);
    fs.appendFileSync(this.logPath, `=== start: ${SILT_BIN} ${args.join(' ')}\n`);
    const fd = fs.openSync(this.logPath, 'a');
    this.proc = spawn(SILT_BIN, args, { stdio: ['ignore', fd, fd], cwd: this.tmp });
    fs.closeSync(fd);
    this.exited = null;
    this.proc.on('exit', (code, sig) => { this.exited = { code, sig }; });
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (this.exited) throw new Error(`silt exited during startup: ${JSON.stringify(this.exited)}`);
      if (await portOpen(this.waitPort)) return this;
      if (Date.now() > deadline) throw new Error(`silt did not accept connections on port ${this.waitPort} within ${START_TIMEOUT_MS} ms`);
      await sleep(50);
    }
  }

  // SIGTERM and wait (bounded); resolves to the exit code.
  async stop(timeoutMs = 10000) {
    if (!this.proc || this.exited) return this.exited ? this.exited.code : null;
    this.proc.kill('SIGTERM');
    const deadline = Date.now() + timeoutMs;
    while (!this.exited && Date.now() < deadline) await sleep(50);
    if (!this.exited) {
      this.proc.kill('SIGKILL');
      throw new Error(`silt did not exit within ${timeoutMs} ms of SIGTERM`);
    }
    return this.exited.code;
  }

  kill9() {
    if (this.proc && !this.exited) this.proc.kill('SIGKILL');
  }

  logText() {
    try { return fs.readFileSync(this.logPath, 'utf8'); } catch (e) { return ''; }
  }

  dumpLog(tail = 80) {
    const lines = this.logText().split('\n');
    console.log(`----- silt stderr (${this.logPath}), last ${tail} lines -----`);
    for (const l of lines.slice(-tail)) console.log(`  | ${l}`);
  }
}

// A silt server as the Kafka tests use it: port is the Kafka listener.
class Silt extends Server {
  get port() { return this.kafkaPort; }

  get bootstrap() { return `127.0.0.1:${this.kafkaPort}`; }
}

process.on('exit', () => { for (const s of servers) s.kill9(); });
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    console.log(`killed by ${sig}`);
    for (const s of servers) { s.dumpLog(40); s.kill9(); }
    process.exit(sig === 'SIGTERM' ? 143 : 130);
  });
}

class TestFailure extends Error {}

function check(cond, msg) {
  if (!cond) throw new TestFailure(msg);
}

function eq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new TestFailure(`${what}: got ${g}, want ${w}`);
}

function log(msg) {
  console.log(`  [${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

async function waitUntil(pred, timeoutMs, what, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let lastErr = null;
  for (;;) {
    try {
      const v = await pred();
      if (v) return v;
    } catch (e) { lastErr = e; }
    if (Date.now() > deadline) {
      throw new TestFailure(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${lastErr})` : ''}`);
    }
    await sleep(intervalMs);
  }
}

// Runs main() with an overall time limit; prints logs and exits 1 on failure.
function runTest(main, limitMs = 120000) {
  const t0 = Date.now();
  const timer = setTimeout(() => {
    console.log(`test exceeded ${limitMs} ms`);
    for (const s of servers) s.dumpLog();
    process.exit(1);
  }, limitMs);
  main().then(() => {
    clearTimeout(timer);
    for (const s of servers) { s.kill9(); fs.rmSync(s.tmp, { recursive: true, force: true }); }
    console.log(`ok (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
    process.exit(0);
  }, (err) => {
    clearTimeout(timer);
    console.log(err && err.stack ? err.stack : String(err));
    for (const s of servers) { s.dumpLog(); console.log(`kept for inspection: ${s.tmp}`); }
    console.log('FAILED');
    process.exit(1);
  });
}

module.exports = { Server, Silt, TestFailure, check, eq, log, waitUntil, runTest, sleep, freePort };
