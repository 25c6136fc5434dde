import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';

/*
 * The control socket: how the CLI reaches the embedded database while the server holds it. PGlite is one process's
 * database (src/db/data-dir-lock.ts), so the CLI never opens it then: it sends its command here and the server runs
 * it, with the very same code (src/commands.ts), in its own process.
 *
 * Only the owner gets in: the socket is created with mode 0600 in the data folder (which must be the user's own and
 * writable by nobody else), and every request carries the token of `control.token`, a file of mode 0600 made anew at
 * each start: a process that cannot read the owner's files cannot talk to the server. A socket file left by a crash
 * is replaced at the next start (the data folder's lock says no live server uses it).
 */

export const SOCKET_FILE = 'control.sock';
export const TOKEN_FILE = 'control.token';
/** Longest request: a command line and a password on its standard input. */
const MAX_REQUEST_BYTES = 1024 * 1024;
/** The time a client has to send its request, once connected. */
const REQUEST_TIMEOUT_MS = 10_000;
/** How long the CLI waits for the socket of a server that is still starting. */
const SOCKET_WAIT_MS = 10_000;
/** Linux's limit for a socket's path (sun_path holds 108 bytes, with the final NUL). */
const MAX_SOCKET_PATH = 107;

export interface ControlRequest {
  token: string;
  argv: string[];
  /** The CLI's standard input, for commands that read a password from it. */
  stdin: string | null;
}

/** The server's answer: the command's JSON result, or the failure the CLI reports with its exit code. */
export type ControlReply = { exitCode: 0; result: unknown } | { exitCode: number; error: string; usage?: boolean };

export interface ControlSocket {
  readonly path: string;
  close(): Promise<void>;
}

const currentUid = (): number | undefined => process.getuid?.();

/** Why the data folder may not hold the socket (not the user's, or writable by others), or undefined when it may. */
function unsafeFolder(dir: string): string | undefined {
  const stat = fs.statSync(dir);
  const uid = currentUid();
  if (uid !== undefined && stat.uid !== uid) return `${dir} belongs to user ${stat.uid}, not to this process's ${uid}`;
  if ((stat.mode & 0o022) !== 0) return `${dir} is writable by other users (mode ${(stat.mode & 0o777).toString(8)})`;
  return undefined;
}

/** Removes what a crashed server left at `file`: a socket or a link only, never a file someone put there. */
function removeStale(file: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(file);
  } catch {
    return;
  }
  if (!stat.isSocket() && !stat.isSymbolicLink() && !stat.isFile()) throw new Error(`${file} is in the way`);
  fs.unlinkSync(file);
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Listens on `<dataDir>/control.sock` and runs each authenticated request with `execute`. Returns undefined, with a
 * warning, when the folder cannot hold the socket safely: the server then runs without it (the CLI says so).
 */
export async function openControlSocket(options: {
  dataDir: string;
  log: Logger;
  execute: (argv: string[], stdin: string | null) => Promise<ControlReply>;
}): Promise<ControlSocket | undefined> {
  const { log } = options;
  const dir = path.resolve(options.dataDir);
  const socketPath = path.join(dir, SOCKET_FILE);
  const tokenPath = path.join(dir, TOKEN_FILE);
  const refusal = unsafeFolder(dir);
  if (refusal) {
    log.warn({ dataDir: dir }, `no control socket, so no CLI while the server runs: ${refusal}`);
    return undefined;
  }
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    log.warn({ socketPath }, 'no control socket, so no CLI while the server runs: the path of DATA_DIR is too long for a socket');
    return undefined;
  }
  removeStale(socketPath);
  removeStale(tokenPath);
  const token = randomBytes(32).toString('base64url');
  // `wx`: never through a link someone planted; 0600: the owner's only.
  fs.writeFileSync(tokenPath, `${token}\n`, { mode: 0o600, flag: 'wx' });
  const expected = digest(token);

  const connections = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
        socket.off('data', onData);
        reply(socket, { exitCode: 65, error: 'request too large' });
        return;
      }
      chunks.push(chunk);
      if (!chunk.includes(0x0a)) return;
      socket.off('data', onData);
      socket.setTimeout(0);
      void handle(socket, Buffer.concat(chunks).toString('utf8').split('\n')[0]!);
    };
    socket.on('data', onData);
  });

  const handle = async (socket: net.Socket, line: string) => {
    let request: ControlRequest;
    try {
      request = JSON.parse(line) as ControlRequest;
      if (typeof request.token !== 'string' || !Array.isArray(request.argv) || !request.argv.every((a) => typeof a === 'string'))
        throw new Error('malformed');
      if (request.stdin !== null && typeof request.stdin !== 'string') throw new Error('malformed');
    } catch {
      return reply(socket, { exitCode: 65, error: 'malformed control request' });
    }
    if (!timingSafeEqual(digest(request.token), expected)) {
      log.warn('control socket: a request with a wrong token was refused');
      return reply(socket, { exitCode: 77, error: 'refused: wrong control token' });
    }
    const started = Date.now();
    const answer = await options.execute(request.argv, request.stdin);
    // The command's name only: its arguments may be keys or passwords.
    log.info(
      { command: request.argv.slice(0, 2).join(' '), exitCode: answer.exitCode, ms: Date.now() - started },
      'CLI command run',
    );
    reply(socket, answer);
  };

  // Created with mode 0600 from the start: the umask holds only while listen() binds (synchronously), so there is no
  // moment when another user could connect.
  const listening = new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const umask = process.umask(0o177);
  try {
    server.listen(socketPath);
  } finally {
    process.umask(umask);
  }
  await listening;
  fs.chmodSync(socketPath, 0o600);
  if ((fs.statSync(socketPath).mode & 0o077) !== 0) throw new Error(`${socketPath} could not be made the owner's only`);
  log.info({ socketPath }, 'control socket ready: the CLI works while the server runs');

  return {
    path: socketPath,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // A client that connected and sent nothing does not hold the stop.
        for (const socket of connections) if (socket.bytesRead === 0) socket.destroy();
      });
      for (const file of [socketPath, tokenPath]) fs.rmSync(file, { force: true });
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function reply(socket: net.Socket, answer: ControlReply): void {
  socket.end(`${JSON.stringify(answer)}\n`);
}

/**
 * The CLI's side: sends a command to the server that holds `dataDir` and returns its answer. Refuses a socket or a
 * token that is not the user's own, and says what to do when no server answers.
 */
export async function sendToServer(dataDir: string, pid: number, argv: string[], stdin: string | null): Promise<ControlReply> {
  const dir = path.resolve(dataDir);
  const socketPath = path.join(dir, SOCKET_FILE);
  const unavailable = (why: string) =>
    new Error(
      `The embedded database in ${dir} is in use by process ${pid}, which runs no control socket (${why}). Run the ` +
        'CLI as the user of the server, or stop the server first.',
    );
  // A server that is starting holds the folder before its socket is up: give it a moment.
  for (let waited = 0; !fs.existsSync(socketPath) && waited < SOCKET_WAIT_MS && isAlive(pid); waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    throw unavailable(`${socketPath} does not exist`);
  }
  const uid = currentUid();
  if (!stat.isSocket()) throw unavailable(`${socketPath} is not a socket`);
  if (uid !== undefined && stat.uid !== uid) throw unavailable(`${socketPath} belongs to user ${stat.uid}, not to you`);
  if ((stat.mode & 0o077) !== 0) throw unavailable(`${socketPath} is open to other users`);
  let token: string;
  try {
    token = fs.readFileSync(path.join(dir, TOKEN_FILE), 'utf8').trim();
  } catch (err) {
    throw unavailable(`its token cannot be read: ${(err as Error).message}`);
  }
  const request: ControlRequest = { token, argv, stdin };
  return new Promise<ControlReply>((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    const chunks: Buffer[] = [];
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err) => reject(unavailable(err.message)));
    socket.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ControlReply);
      } catch {
        reject(new Error(`process ${pid} gave no answer on ${socketPath}`));
      }
    });
  });
}
