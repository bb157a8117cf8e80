/**
 * examples/serve.ts as a real child process on loopback: real PNG and JPEG
 * uploads against a tiny exported model, the refusals of bad uploads, and a
 * clean stop on SIGTERM.
 */
import { strict as assert } from 'assert';
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { pathToFileURL } from 'url';
import sharp from 'sharp';
import { imageFolder } from '../../lib/data';
import { Learner } from '../../lib/learn';
import { Predictor } from '../../lib/learn/predictor';
import { native } from '../../lib/native';
import { TEST_DEVICE } from '../helpers/device';
import { removeDir, tempDir, writeClassFolder } from '../helpers/images';

const ROOT = path.resolve(__dirname, '..', '..');
const SERVE = path.join(ROOT, 'examples', 'serve.ts');
/** tsx's loader, registered as `node --import tsx` does. */
const TSX = pathToFileURL(require.resolve('tsx', { paths: [ROOT] })).href;
/** The server's body limit here: small, so a too-large upload is cheap. */
const MAX_BYTES = 64 * 1024;

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: { predictions?: { label: string; probability: number }[]; error?: string };
}

/** The server process and what it printed. */
interface Server {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startServer(args: string[]): Server {
  const child = spawn(process.execPath, ['--import', TSX, SERVE, ...args], {
    cwd: ROOT,
    env: { ...process.env, TORCHTS_THREADS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, output: () => output, exited };
}

/** The URL the server printed, once it listens. */
async function listeningUrl(server: Server): Promise<string> {
  for (;;) {
    const url = /^listening on (http:\/\/\S+)$/m.exec(server.output())?.[1];
    if (url) return url;
    if (server.child.exitCode !== null) throw new Error(`the server exited (${server.child.exitCode}) before listening:\n${server.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Sends a request and reads the JSON reply. `write` sends the body (default: `body`, then ends). */
function request(url: string, options: http.RequestOptions, body?: Buffer, write?: (req: http.ClientRequest) => void): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        req.destroy();
      });
    });
    req.on('error', reject);
    if (write) write(req);
    else req.end(body);
  });
}

const post = (url: string, body: Buffer, type: string | undefined = 'application/octet-stream') =>
  request(url, { method: 'POST', headers: type ? { 'Content-Type': type } : {} }, body);

describe('examples/serve.ts: an HTTP classification endpoint', function () {
  this.timeout(120_000);
  let dir: string;
  let run: string;
  let server: Server;
  let url: string;
  let png: Buffer;
  let jpeg: Buffer;

  before(async () => {
    native().setThreads(Number(process.env.TORCHTS_TEST_THREADS ?? 1));
    dir = tempDir('torchts-serve-');
    const files = await writeClassFolder(dir, { classes: { red: 8, green: 8, blue: 8 }, split: 'train' });
    await writeClassFolder(dir, { classes: { red: 3, green: 3, blue: 3 }, split: 'val' });
    const learn = new Learner({ data: await imageFolder(dir, { seed: 0, log: () => undefined }), arch: 'xresnet18', device: TEST_DEVICE, size: 16, bs: 8, seed: 1 });
    await learn.fit(1, 1e-3);
    run = path.join(dir, 'run');
    fs.mkdirSync(run);
    await learn.export(path.join(run, 'last.tsl'));
    learn.dispose();
    png = fs.readFileSync(files[0]);
    jpeg = await sharp(files[9]).jpeg({ quality: 90 }).toBuffer();
    server = startServer(['--model', run, '--port', '0', '--host', '127.0.0.1', '--device', TEST_DEVICE, '--max-bytes', String(MAX_BYTES)]);
    url = await listeningUrl(server);
  });

  after(() => {
    if (server?.child.exitCode === null) server.child.kill('SIGKILL');
    removeDir(dir);
  });

  it('prints the URL it listens on, with the ephemeral port that port 0 got', () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:[1-9]\d*\/predict$/);
    assert.match(server.output(), /^model xresnet18, 3 classes, 16 px, device cpu/m);
  });

  it("answers PNG and JPEG uploads with the Predictor's top K", async () => {
    await using predictor = await Predictor.load(run, { device: TEST_DEVICE });
    for (const [image, type] of [[png, 'image/png'], [jpeg, 'image/jpeg']] as const) {
      const reply = await post(`${url}?top=2`, image, type);
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assert.match(String(reply.headers['content-type']), /^application\/json/);
      const want = await predictor.classify(image, { topK: 2 });
      assert.deepEqual(reply.body.predictions!.map((p) => p.label), want.top.map((t) => t.label));
      for (const [i, p] of reply.body.predictions!.entries()) assert.ok(Math.abs(p.probability - want.top[i].probability) <= 1e-6, `${p.probability}`);
    }
    // No ?top: the Predictor's default 5, capped at the 3 classes; no Content-Type is accepted.
    const all = await post(url, png, undefined);
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.equal(all.body.predictions!.length, 3);
  });

  it('refuses bad requests with a 4xx JSON error naming the problem, and keeps serving', async () => {
    const cases: [string, Promise<Reply>, number, RegExp][] = [
      ['an empty body', post(url, Buffer.alloc(0)), 400, /^empty body: POST the image bytes/],
      ['text', post(url, Buffer.from('just some text, no image')), 415, /^not an image: got 24 bytes sent as application\/octet-stream, beginning "just some text, " \(not a readable image/],
      ['a truncated PNG', post(url, png.subarray(0, 100), 'image/png'), 415, /^not an image: got 100 bytes sent as image\/png, beginning 89 50 4e 47/],
      ['a form', post(url, png, 'multipart/form-data; boundary=x'), 415, /got Content-Type multipart\/form-data \(send the file itself as the body, not a form\)$/],
      ['a bad top', post(`${url}?top=two`, png), 400, /^top: expected a positive integer, got "two"$/],
      ['GET', request(url, { method: 'GET' }), 405, /^GET is not allowed on \/predict; POST the image bytes$/],
      ['another path', post(url.replace('/predict', '/nope'), png), 404, /^no such path \/nope; POST an image to \/predict$/],
    ];
    for (const [what, reply, status, message] of cases) {
      const { status: got, body } = await reply;
      assert.equal(got, status, `${what}: ${JSON.stringify(body)}`);
      assert.match(body.error!, message, what);
    }
    const good = await post(url, png, 'image/png');
    assert.equal(good.status, 200, JSON.stringify(good.body));
  });

  it('refuses a body over the limit (413) without reading it to the end, and keeps serving', async () => {
    // Declared too large: refused from the headers, before any of the body is sent.
    const declared = await request(url, { method: 'POST', headers: { 'Content-Type': 'image/png', 'Content-Length': MAX_BYTES + 1 } }, undefined, (req) => req.flushHeaders());
    assert.equal(declared.status, 413);
    assert.equal(declared.body.error, `the body is larger than the limit of ${MAX_BYTES} bytes`);
    // Streamed without a length: refused once past the limit, while the upload has not ended.
    const streamed = await request(url, { method: 'POST', headers: { 'Content-Type': 'image/png' } }, undefined, (req) => req.write(Buffer.alloc(MAX_BYTES + 1)));
    assert.equal(streamed.status, 413);
    assert.equal(streamed.headers.connection, 'close');
    const good = await post(url, jpeg, 'image/jpeg');
    assert.equal(good.status, 200, JSON.stringify(good.body));
  });

  it('serves concurrent uploads, then stops cleanly on SIGTERM', async () => {
    const replies = await Promise.all(Array.from({ length: 8 }, () => post(url, png, 'image/png')));
    const first = replies[0].body.predictions!;
    for (const reply of replies) {
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      // Batches of other sizes round differently in the last float bits.
      reply.body.predictions!.forEach((p, i) => assert.ok(p.label === first[i].label && Math.abs(p.probability - first[i].probability) <= 1e-6));
    }
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null }, server.output());
    assert.match(server.output(), /^SIGTERM: stopping$/m);
    assert.match(server.output(), /^served \d+ images in \d+ batches \(mean \d+\.\d\), [\d.]+ img\/s while the model ran; 2 refused$/m);
  });
});
