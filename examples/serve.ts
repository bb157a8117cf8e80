/**
 * An image-classification endpoint on Node's own http module. Concurrent
 * requests share native batches: the Predictor queues their images and runs
 * them together (see PREDICTOR_DEFAULTS for when a batch starts).
 *
 *   npx tsx examples/serve.ts --model runs/latest [--port 8080] [--host 127.0.0.1]
 *   curl --data-binary @cat.jpg -H 'Content-Type: image/jpeg' 'http://127.0.0.1:8080/predict?top=3'
 *   {"predictions":[{"label":"cat","probability":0.93},{"label":"dog","probability":0.05},...]}
 *
 * The body is the image's bytes (any format sharp reads), sent as an image/*
 * type, application/octet-stream or with no Content-Type. Mistakes answer
 * 4xx with `{ "error": "..." }` and the server goes on serving. SIGINT or
 * SIGTERM stops it: no new connections, the requests in flight are answered,
 * then the model is freed (a second signal ends the process at once).
 */
import * as http from 'http';
import type { AddressInfo } from 'net';
import { parseArgs } from 'util';
// In your project: import { ImageInputError, PREDICTOR_DEFAULTS, Predictor } from 'torchts';
import { ImageInputError, PREDICTOR_DEFAULTS, Predictor } from '../lib';

/** The server's own defaults (the Predictor's are in PREDICTOR_DEFAULTS). */
const SERVE_DEFAULTS = Object.freeze({
  port: 8080,
  /** Loopback only: exposing a model to a network is a decision to make explicitly. */
  host: '127.0.0.1',
  device: 'auto',
  /** Largest accepted body; reading stops beyond it. */
  maxBytes: 10 * 1024 * 1024,
});

const ROUTE = '/predict';

const USAGE = `usage: npx tsx examples/serve.ts --model RUN_FOLDER|MODEL.tsl [--port ${SERVE_DEFAULTS.port} (0: any free port)] [--host ${SERVE_DEFAULTS.host}] [--device ${SERVE_DEFAULTS.device}] [--max-bytes ${SERVE_DEFAULTS.maxBytes}]
then: curl --data-binary @IMAGE -H 'Content-Type: image/jpeg' 'http://HOST:PORT${ROUTE}?top=3'`;

interface ServeOptions {
  model: string;
  port: number;
  host: string;
  device: string;
  maxBytes: number;
}

/** A request the server refuses: its status, message and extra headers. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: http.OutgoingHttpHeaders = {},
  ) {
    super(message);
  }
}

/** A mistake on the command line: printed with the usage, exit code 2. */
class UsageError extends Error {}

function optionsFrom(argv: string[]): ServeOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      device: { type: 'string' },
      'max-bytes': { type: 'string' },
    },
  });
  if (!values.model) throw new UsageError('--model: expected a run folder or a model file (last.tsl, best.tsl)');
  return {
    model: values.model,
    port: integerFlag('port', values.port, SERVE_DEFAULTS.port, 0, 65535),
    host: values.host ?? SERVE_DEFAULTS.host,
    device: values.device ?? SERVE_DEFAULTS.device,
    maxBytes: integerFlag('max-bytes', values['max-bytes'], SERVE_DEFAULTS.maxBytes, 1, 2 ** 31 - 1),
  };
}

function integerFlag(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) throw new UsageError(`--${name}: expected an integer in ${min}..${max}, got ${JSON.stringify(text)}`);
  return n;
}

/** `?top=K`: a positive integer (the Predictor caps it at the class count), or its default. */
function topFrom(url: URL): number {
  const text = url.searchParams.get('top');
  if (text === null) return PREDICTOR_DEFAULTS.topK;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new HttpError(400, `top: expected a positive integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** Refuses a declared type that is not image bytes (a form, JSON, text); no type at all is accepted. */
function checkContentType(header: string | undefined): void {
  const type = header?.split(';')[0].trim().toLowerCase();
  if (!type || type.startsWith('image/') || type === 'application/octet-stream') return;
  const hints: Record<string, string> = {
    'multipart/form-data': ' (send the file itself as the body, not a form)',
    'application/x-www-form-urlencoded': " (curl --data-binary sends that unless told: add -H 'Content-Type: image/jpeg')",
  };
  const hint = hints[type] ?? '';
  throw new HttpError(415, `expected the image bytes as an image/* or application/octet-stream body, got Content-Type ${type}${hint}`);
}

/**
 * The body, up to `maxBytes`. A declared length over the limit is refused
 * before reading; an undeclared one as soon as it passes the limit, and what
 * follows is not kept (the connection is closed after the answer).
 */
function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = () => new HttpError(413, `the body is larger than the limit of ${maxBytes} bytes`, { Connection: 'close' });
  if (Number(req.headers['content-length']) > maxBytes) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      req.off('data', onData);
      req.pause();
      reject(tooLarge());
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

/** One request: the top classes of the posted image, or an HttpError. */
async function classifyRequest(req: http.IncomingMessage, predictor: Predictor, maxBytes: number): Promise<unknown> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname !== ROUTE) throw new HttpError(404, `no such path ${url.pathname}; POST an image to ${ROUTE}`);
  if (req.method !== 'POST') throw new HttpError(405, `${req.method} is not allowed on ${ROUTE}; POST the image bytes`, { Allow: 'POST' });
  const topK = topFrom(url);
  checkContentType(req.headers['content-type']);
  const body = await readBody(req, maxBytes);
  if (body.length === 0) throw new HttpError(400, 'empty body: POST the image bytes (JPEG, PNG, WebP, ...)');
  try {
    const answer = await predictor.classify(body, { topK });
    return { predictions: answer.top.map(({ label, probability }) => ({ label, probability })) };
  } catch (err) {
    if (!(err instanceof ImageInputError)) throw err;
    const sent = req.headers['content-type'] ? `sent as ${req.headers['content-type']}` : 'sent without a Content-Type';
    throw new HttpError(415, `not an image: got ${body.length} bytes ${sent}, beginning ${err.input.replace(/^.* beginning /, '')} (${err.reason})`);
  }
}

function answer(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function serve(predictor: Predictor, maxBytes: number): http.Server {
  return http.createServer((req, res) => {
    classifyRequest(req, predictor, maxBytes).then(
      (result) => answer(res, 200, result),
      (err: unknown) => {
        if (err instanceof HttpError) {
          // A body over the limit is not read to its end: the connection ends with the answer.
          // (Node reads and drops what remains of other refused bodies, keeping the connection.)
          if (err.status === 413) res.on('finish', () => req.socket.destroy());
          answer(res, err.status, { error: err.message }, err.headers);
          return;
        }
        console.error(`serve: ${req.method} ${req.url}: ${(err as Error).stack ?? err}`);
        answer(res, 500, { error: `internal error: ${(err as Error).message}` });
      },
    );
  });
}

function listen(server: http.Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server.address() as AddressInfo));
  });
}

function urlOf(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}${ROUTE}`;
}

/** Stops taking connections, lets the requests in flight finish, then frees the model. */
function stopOn(signals: NodeJS.Signals[], server: http.Server, predictor: Predictor): void {
  const stop = (signal: NodeJS.Signals) => {
    for (const s of signals) process.off(s, stop);
    console.log(`${signal}: stopping`);
    server.close(() => {
      predictor.dispose();
      const stats = predictor.stats();
      console.log(
        `served ${stats.images} images in ${stats.batches} batches (mean ${stats.meanBatchSize.toFixed(1)}), ` +
          `${stats.imagesPerSecond.toFixed(1)} img/s while the model ran; ${stats.failed} refused`,
      );
    });
    server.closeIdleConnections();
  };
  for (const signal of signals) process.on(signal, stop);
}

async function main(): Promise<void> {
  const options = optionsFrom(process.argv.slice(2));
  const predictor = await Predictor.load(options.model, { device: options.device });
  const server = serve(predictor, options.maxBytes);
  try {
    const address = await listen(server, options.port, options.host);
    stopOn(['SIGINT', 'SIGTERM'], server, predictor);
    console.log(`model ${predictor.arch}, ${predictor.classes.length} classes, ${predictor.size} px, device ${predictor.model.device}`);
    console.log(`listening on ${urlOf(address)}`);
  } catch (err) {
    predictor.dispose();
    throw err;
  }
}

main().catch((err: Error) => {
  const usage = err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS');
  console.error(`serve: ${err.message}${usage ? `\n${USAGE}` : ''}`);
  process.exitCode = usage ? 2 : 1;
});
