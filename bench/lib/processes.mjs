// Child processes of the benchmark: every one is tracked and killed on any exit path; logs go to files.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export const HOST = '127.0.0.1';
const children = new Set();
/** Cleanups run synchronously on exit (e.g. stopping a HAPI server started with setsid). */
const exitHooks = [];

export function onExit(hook) {
  exitHooks.push(hook);
}

function killAll(signal = 'SIGKILL') {
  for (const child of children) {
    try {
      child.kill(signal);
    } catch {}
  }
  while (exitHooks.length) {
    try {
      exitHooks.pop()();
    } catch {}
  }
}

/** Kills the children on exit, on a signal, on an uncaught error, and when the run takes longer than timeoutMs. */
export function installExitHandlers(timeoutMs) {
  process.on('exit', () => killAll('SIGKILL'));
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}: killing child processes\n`);
      killAll('SIGKILL');
      process.exit(130);
    });
  }
  for (const event of ['uncaughtException', 'unhandledRejection']) {
    process.on(event, (error) => {
      process.stderr.write(`\nbench FAILED: ${error?.stack ?? error}\n`);
      killAll('SIGKILL');
      process.exit(1);
    });
  }
  setTimeout(() => {
    process.stderr.write(`\nbench FAILED: the run took longer than ${timeoutMs / 1000} s\n`);
    killAll('SIGKILL');
    process.exit(1);
  }, timeoutMs).unref();
}

let tasksetChecked;
export function hasTaskset() {
  if (tasksetChecked === undefined) {
    try {
      tasksetChecked = readFileSync('/usr/bin/taskset').length > 0;
    } catch {
      tasksetChecked = false;
    }
  }
  return tasksetChecked;
}

/**
 * Spawns `node <args>` with stdout/stderr going to a log file (never a pipe this process must drain).
 * `profileDir`: write a V8 CPU profile there; `pin`: a core for taskset.
 */
export function spawnNode(root, logs, name, args, extraEnv, { profileDir, pin, nodeArgs: extra = [] } = {}) {
  const logFile = join(logs, `${name}.log`);
  const fd = openSync(logFile, 'w');
  const nodeArgs = [
    ...extra,
    ...(profileDir
      ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`]
      : []),
  ];
  const command = pin !== undefined && hasTaskset() ? 'taskset' : process.execPath;
  const commandArgs =
    command === 'taskset'
      ? ['-c', String(pin), process.execPath, ...nodeArgs, ...args]
      : [...nodeArgs, ...args];
  const child = spawn(command, commandArgs, {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production', ...extraEnv },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  child.logFile = logFile;
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Stops a child: SIGTERM (lets --cpu-prof write its profile), then SIGKILL after a grace period. */
export async function stop(child, graceMs = 2_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

export async function stopAll(graceMs) {
  for (const child of [...children]) await stop(child, graceMs);
}

export function logTail(child, lines = 15) {
  try {
    return readFileSync(child.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls url until it answers 200; fails when the child exits or the time is up. */
export async function waitFor200(url, child, timeoutMs, intervalMs = 5) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(
        `${child.spawnargs.join(' ')} exited (${child.exitCode ?? child.signalCode}) before ${url} answered:\n${logTail(child)}`,
      );
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {}
    await sleep(intervalMs);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms${child ? `:\n${logTail(child)}` : ''}`);
}
