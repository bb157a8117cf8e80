/**
 * Runs Python scripts from tests: the PyTorch peer (torch + torchvision) that parity
 * tests compare against. The default `python3` on PATH may lack torch, so the
 * interpreter is /usr/bin/python3 unless TORCHTS_PYTHON names another one.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** The interpreter the peer scripts run with. */
export const PYTHON = process.env.TORCHTS_PYTHON ?? '/usr/bin/python3';

/** Python source defining load_tsl(path) -> (meta, tensors): our checkpoint format read by PyTorch. Prepend it to a script. */
export const TSL_READER_PY = fs.readFileSync(path.join(__dirname, 'tsl_reader.py'), 'utf8');

export interface RunPythonOptions {
  /** Command-line arguments, available to the script as sys.argv[1:]. */
  args?: string[];
  /** Working directory (default: the current one). */
  cwd?: string;
  /** Kill the script after this many milliseconds (default 120000). */
  timeoutMs?: number;
  /** Another interpreter (a pip torch venv's python3); default PYTHON. */
  python?: string;
}

/**
 * Runs `script` (Python source text) and resolves with its stdout.
 * Rejects with an Error that quotes the exit status and stderr when Python fails,
 * so a broken peer reads as a clear failure rather than a parse error later.
 */
export function runPython(script: string, options: RunPythonOptions = {}): Promise<string> {
  const { args = [], cwd, timeoutMs = 120_000, python = PYTHON } = options;
  return new Promise((resolve, reject) => {
    execFile(
      python,
      ['-c', script, ...args],
      { cwd, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) {
          const status = error.killed ? `killed after ${timeoutMs} ms` : `exit status ${String(error.code)}`;
          reject(new Error(`${python} failed (${status}):\n${stderr.trim() || error.message}`));
          return;
        }
        resolve(stdout);
      },
    );
  });
}

/** Runs `script` and parses the JSON it prints as its last line of stdout. */
export async function runPythonJson<T>(script: string, options: RunPythonOptions = {}): Promise<T> {
  const out = (await runPython(script, options)).trim();
  const last = out.slice(out.lastIndexOf('\n') + 1);
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`${PYTHON} printed no JSON on its last line:\n${out.slice(-2000)}`);
  }
}

/** A fresh temporary folder for a script's files; remove it with `removeTempDir`. */
export function makeTempDir(prefix = 'torchts-py-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Reads a file of little-endian float32 values (numpy's `tofile` on a float32 array). */
export function readFloat32File(file: string): Float32Array {
  const bytes = fs.readFileSync(file);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}
